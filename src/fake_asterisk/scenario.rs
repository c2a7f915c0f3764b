//! Finding a recorded scenario on disk.

use std::io;
use std::path::{Path, PathBuf};

/// One folder of recordings, `tests/asterisk-fixtures/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The folder name, e.g. `01-internal-answered-caller-hangup`.
    pub name: String,
    pub dir: PathBuf,
}

impl Scenario {
    /// The fixtures of this source tree (`$CARGO_MANIFEST_DIR/tests/asterisk-fixtures`).
    pub fn default_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("asterisk-fixtures")
    }

    /// A scenario of [`default_root`](Self::default_root), by full folder name or by its
    /// number prefix (`"01"`, `"07b"`).
    pub fn load(name: &str) -> io::Result<Scenario> {
        Self::load_from(&Self::default_root(), name)
    }

    /// A scenario under `root`, by full folder name or by a prefix that names one folder.
    pub fn load_from(root: &Path, name: &str) -> io::Result<Scenario> {
        let exact = root.join(name);
        if !name.is_empty() && !name.contains(['/', '\\']) && exact.is_dir() {
            return Ok(Scenario {
                name: name.to_string(),
                dir: exact,
            });
        }
        let prefix = format!("{name}-");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with(&prefix) && entry.path().is_dir() {
                found.push(file_name);
            }
        }
        match found.as_slice() {
            [one] => Ok(Scenario {
                name: one.clone(),
                dir: root.join(one),
            }),
            [] => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no scenario {name:?} in {}", root.display()),
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("scenario {name:?} is ambiguous: {found:?}"),
            )),
        }
    }

    /// Path of one file of the scenario.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Reads one file of the scenario.
    pub fn read(&self, file: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_name_and_prefix() {
        let s = Scenario::load("01").expect("01");
        assert_eq!(s.name, "01-internal-answered-caller-hangup");
        assert!(s.path("ami.raw").is_file());
        assert_eq!(Scenario::load(&s.name).expect("full name"), s);
        assert_eq!(Scenario::load("07b").expect("07b").name, "07b-ami-redirect");
        assert!(Scenario::load("07").is_ok(), "07- is only 07-blind-transfer");
        assert!(Scenario::load("99").is_err());
        assert!(Scenario::load("../..").is_err());
    }
}

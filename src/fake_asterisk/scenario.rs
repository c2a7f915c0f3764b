//! A recorded scenario: one folder of `tests/asterisk-fixtures/`
//! (`ami.raw`, `ari-events.jsonl`, `ari-rest.jsonl`, …), some files gzipped.

use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("no scenario {name:?} in {root}")]
    NotFound { name: String, root: PathBuf },
    #[error("scenario name {name:?} matches several folders in {root}")]
    Ambiguous { name: String, root: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

/// One recorded scenario folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The folder name, e.g. `05-ari-mixing-bridge`.
    pub name: String,
    pub dir: PathBuf,
}

impl Scenario {
    /// The fixtures folder of this source tree.
    pub fn default_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asterisk-fixtures")
    }

    /// Finds `name` in [`Scenario::default_root`].
    pub fn load(name: &str) -> Result<Scenario, ScenarioError> {
        Self::load_from(&Self::default_root(), name)
    }

    /// Finds `name` under `root`: the exact folder name, or else the one
    /// folder whose name starts with `<name>-` (`"05"` finds
    /// `05-ari-mixing-bridge`).
    pub fn load_from(root: &Path, name: &str) -> Result<Scenario, ScenarioError> {
        let not_found = || ScenarioError::NotFound {
            name: name.to_owned(),
            root: root.to_owned(),
        };
        if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(not_found());
        }
        let exact = root.join(name);
        if exact.is_dir() {
            return Ok(Scenario {
                name: name.to_owned(),
                dir: exact,
            });
        }
        let prefix = format!("{name}-");
        let entries = std::fs::read_dir(root).map_err(|_| not_found())?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        match found.len() {
            0 => Err(not_found()),
            1 => {
                let dir = found.remove(0);
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(Scenario { name, dir })
            }
            _ => Err(ScenarioError::Ambiguous {
                name: name.to_owned(),
                root: root.to_owned(),
            }),
        }
    }

    /// Every scenario folder under `root`, sorted by name.
    pub fn all_in(root: &Path) -> Result<Vec<Scenario>, ScenarioError> {
        let entries = std::fs::read_dir(root).map_err(|source| ScenarioError::Read {
            path: root.to_owned(),
            source,
        })?;
        let mut all: Vec<Scenario> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .map(|dir| Scenario {
                name: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                dir,
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// The bytes of `file`, or of `file.gz` decompressed; `Ok(None)` when
    /// the scenario has neither.
    pub fn read(&self, file: &str) -> Result<Option<Vec<u8>>, ScenarioError> {
        let plain = self.dir.join(file);
        let read_err = |path: &Path| {
            let path = path.to_owned();
            move |source| ScenarioError::Read { path, source }
        };
        if plain.is_file() {
            return std::fs::read(&plain).map(Some).map_err(read_err(&plain));
        }
        let gz = self.dir.join(format!("{file}.gz"));
        if !gz.is_file() {
            return Ok(None);
        }
        let f = std::fs::File::open(&gz).map_err(read_err(&gz))?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut out)
            .map_err(read_err(&gz))?;
        Ok(Some(out))
    }

    /// The non-empty lines of a text file (see [`Scenario::read`]); empty
    /// when the file is absent.
    pub fn lines(&self, file: &str) -> Result<Vec<String>, ScenarioError> {
        let Some(bytes) = self.read(file)? else {
            return Ok(Vec::new());
        };
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect())
    }
}

impl From<ScenarioError> for std::io::Error {
    fn from(e: ScenarioError) -> Self {
        let kind = match e {
            ScenarioError::NotFound { .. } => std::io::ErrorKind::NotFound,
            ScenarioError::Ambiguous { .. } => std::io::ErrorKind::InvalidInput,
            ScenarioError::Read { ref source, .. } => source.kind(),
        };
        std::io::Error::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_full_name_or_number_and_reads_gz() {
        let s = Scenario::load("05").expect("05");
        assert_eq!(s.name, "05-ari-mixing-bridge");
        assert_eq!(Scenario::load("05-ari-mixing-bridge").expect("full"), s);
        assert!(!s.lines("ari-events.jsonl").expect("lines").is_empty());
        assert!(s.lines("nope.jsonl").expect("absent").is_empty());
        let burst = Scenario::load("15").expect("15");
        assert!(burst.lines("ari-events.jsonl").expect("gz").len() > 20_000);
        assert!(matches!(Scenario::load("99"), Err(ScenarioError::NotFound { .. })));
        assert!(matches!(Scenario::load("../x"), Err(ScenarioError::NotFound { .. })));
        // "07" is both 07-blind-transfer and 07b-…? No: 07b starts with "07b-".
        assert_eq!(Scenario::load("07").expect("07").name, "07-blind-transfer");
    }
}

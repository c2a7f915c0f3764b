//! Rendering the Asterisk configuration from the confd store: the
//! templates of `asterisk-conf-templates/` (`*.j2` rendered with minijinja,
//! other files copied as they are) over a [`model::Model`] loaded in one read
//! transaction. Every rendered file is parsed ([`syntax`]) and the dialplan
//! checked before anything is written; files are written atomically (temp
//! file + rename), only when their content changed, readable by the owner
//! and group only (they hold SIP and voicemail secrets).

pub mod conferences;
pub mod model;
pub mod parking;
pub mod pjsip;
pub mod routing;
pub mod syntax;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::Environment;

use crate::store::Store;

macro_rules! builtin {
    ($name:literal) => {
        ($name, include_str!(concat!("../../../asterisk-conf-templates/", $name)))
    };
}

/// The templates built into the binary, so a fresh install renders without
/// the directory: `(file name, content)`.
const BUILTIN: &[(&str, &str)] = &[
    builtin!("extensions.conf.j2"),
    builtin!("accentd-dialplan.conf"),
    builtin!("pjsip.conf.j2"),
    builtin!("voicemail.conf.j2"),
    builtin!("features.conf.j2"),
    builtin!("confbridge.conf.j2"),
    builtin!("iax.conf.j2"),
    builtin!("res_parking.conf.j2"),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read the confd store: {0}")]
    Store(String),
    #[error("template {file}: {message}")]
    Template { file: String, message: String },
    #[error("rendered {file} is not valid Asterisk configuration: {message}")]
    Invalid { file: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The template set: the built-in files, each replaced by a file of the same
/// name in `dir` when there is one.
#[derive(Debug, Clone)]
pub struct Templates {
    files: BTreeMap<String, String>,
}

impl Templates {
    pub fn load(dir: Option<&Path>) -> Result<Templates, RenderError> {
        let mut files: BTreeMap<String, String> = BUILTIN.iter().map(|(n, c)| (n.to_string(), c.to_string())).collect();
        if let Some(dir) = dir {
            for name in files.clone().keys() {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        files.insert(name.clone(), text);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(RenderError::Template {
                            file: path.display().to_string(),
                            message: e.to_string(),
                        })
                    }
                }
            }
        }
        Ok(Templates { files })
    }

    /// Renders every file: `(output name, text)`.
    pub fn render(&self, model: &model::Model) -> Result<BTreeMap<String, String>, RenderError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| RenderError::Template {
                file: "(syntax)".into(),
                message: e.to_string(),
            })?;
        env.set_syntax(syntax);
        // Values never contain newlines or brackets (validated at the API), but
        // undefined variables in an edited template must fail loudly.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let ctx = minijinja::Value::from(minijinja::value::Serde(model));
        let mut out = BTreeMap::new();
        for (name, text) in &self.files {
            match name.strip_suffix(".j2") {
                Some(target) => {
                    let tmpl = env
                        .template_from_named_str(name, text)
                        .map_err(|e| RenderError::Template {
                            file: name.clone(),
                            message: e.to_string(),
                        })?;
                    let rendered = tmpl.render(ctx.clone()).map_err(|e| RenderError::Template {
                        file: name.clone(),
                        message: e.to_string(),
                    })?;
                    out.insert(target.to_string(), rendered);
                }
                None => {
                    out.insert(name.clone(), text.clone());
                }
            }
        }
        check(&out)?;
        Ok(out)
    }
}

/// Every file parses; the dialplan files together pass the dialplan checks.
pub fn check(files: &BTreeMap<String, String>) -> Result<(), RenderError> {
    let mut parsed = BTreeMap::new();
    for (name, text) in files {
        let f = syntax::parse(text).map_err(|e| RenderError::Invalid {
            file: name.clone(),
            message: e.to_string(),
        })?;
        parsed.insert(name.clone(), f);
    }
    let dialplan: Vec<&syntax::ConfFile> = ["extensions.conf", "accentd-dialplan.conf"]
        .iter()
        .filter_map(|n| parsed.get(*n))
        .collect();
    syntax::check_dialplan(&dialplan).map_err(|message| RenderError::Invalid {
        file: "extensions.conf".into(),
        message,
    })
}

/// Loads the model and renders every file.
pub async fn render_store(store: &Store, templates: &Templates) -> Result<BTreeMap<String, String>, RenderError> {
    render_store_for(store, templates, "accentd").await
}

/// [`render_store`] for accentd's Stasis application `stasis_app` (config `ari.app`),
/// which the dialplan of switchboard incalls names.
pub async fn render_store_for(
    store: &Store,
    templates: &Templates,
    stasis_app: &str,
) -> Result<BTreeMap<String, String>, RenderError> {
    let app = stasis_app.to_string();
    let model = store
        .read(move |c| model::Model::load_for(c, &app).map_err(|e| RenderError::Store(e.to_string())))
        .await?;
    templates.render(&model)
}

impl From<crate::store::StoreError> for RenderError {
    fn from(e: crate::store::StoreError) -> Self {
        RenderError::Store(e.to_string())
    }
}

/// Writes the files whose content differs from what `dir` holds; returns
/// their names. Each goes to a temporary file first, then is renamed over
/// the old one, so Asterisk never reads half a file.
pub fn write_changed(dir: &Path, files: &BTreeMap<String, String>) -> Result<Vec<String>, RenderError> {
    std::fs::create_dir_all(dir).map_err(|source| RenderError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut changed = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        if std::fs::read(&path).map(|old| old == text.as_bytes()).unwrap_or(false) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.accentd-tmp"));
        let io = |source| RenderError::Write {
            path: path.clone(),
            source,
        };
        write_private(&tmp, text.as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        changed.push(name.clone());
    }
    Ok(changed)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_what_changed_atomically_and_privately() {
        let dir = tempfile::tempdir().expect("dir");
        let mut files = BTreeMap::new();
        files.insert("a.conf".to_string(), "[a]\nk = v\n".to_string());
        files.insert("b.conf".to_string(), "[b]\n".to_string());
        assert_eq!(
            write_changed(dir.path(), &files).expect("write"),
            vec!["a.conf", "b.conf"]
        );
        assert!(write_changed(dir.path(), &files).expect("write").is_empty());
        files.insert("b.conf".to_string(), "[b]\nx = y\n".to_string());
        assert_eq!(write_changed(dir.path(), &files).expect("write"), vec!["b.conf"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("b.conf"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o640);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("accentd-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn an_edited_template_overrides_the_builtin_and_errors_name_it() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("extensions.conf.j2"), "[general]\n{{ nope.field }}\n").expect("write");
        let t = Templates::load(Some(dir.path())).expect("load");
        let err = t.render(&model::Model::default()).expect_err("undefined");
        assert!(err.to_string().contains("extensions.conf.j2"), "{err}");
        std::fs::write(dir.path().join("extensions.conf.j2"), "[general]\nbroken line\n").expect("write");
        let t = Templates::load(Some(dir.path())).expect("load");
        let err = t.render(&model::Model::default()).expect_err("invalid");
        assert!(err.to_string().contains("not valid Asterisk configuration"), "{err}");
    }
}

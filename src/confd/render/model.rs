//! What the templates see: the confd store flattened into plain data, loaded
//! in one read transaction so a render never mixes two states. Each
//! resource that reaches Asterisk adds its part here.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use crate::confd::contexts::{self, Context};
use crate::confd::resource;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Model {
    pub contexts: Vec<DialContext>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DialContext {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub includes: Vec<String>,
    pub extensions: Vec<DialExtension>,
}

/// One routed extension: `exten => <exten>,1,<action>` (+ its hint).
#[derive(Debug, Clone, Serialize)]
pub struct DialExtension {
    pub exten: String,
    pub action: String,
    pub hint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored {kind} {id} is unreadable: {message}")]
    Corrupt {
        kind: &'static str,
        id: i64,
        message: String,
    },
}

impl Model {
    pub fn load(c: &Connection) -> Result<Model, ModelError> {
        let mut stmt = c.prepare(&format!(
            "SELECT id, uuid, tenant_uuid, doc FROM {} ORDER BY name",
            contexts::TABLE
        ))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut includes: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut inc = c.prepare(
            "SELECT i.context_id, c.name FROM confd_context_include i JOIN confd_context c ON c.id = i.included_id \
             ORDER BY i.context_id, i.position",
        )?;
        for r in inc.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (id, name) = r?;
            includes.entry(id).or_default().push(name);
        }
        let mut model = Model::default();
        for (id, doc) in rows {
            let map = serde_json::from_str(&doc).map_err(|e| ModelError::Corrupt {
                kind: "context",
                id,
                message: e.to_string(),
            })?;
            let ctx: Context = resource::from_map(map).map_err(|e| ModelError::Corrupt {
                kind: "context",
                id,
                message: e.to_string(),
            })?;
            if !ctx.enabled {
                continue;
            }
            model.contexts.push(DialContext {
                name: ctx.name,
                label: ctx.label.replace(['\n', '\r'], " "),
                kind: ctx.kind.as_str().to_string(),
                includes: includes.remove(&id).unwrap_or_default(),
                extensions: Vec::new(),
            });
        }
        // An include of a disabled (not rendered) context would not load.
        let rendered: std::collections::BTreeSet<String> = model.contexts.iter().map(|c| c.name.clone()).collect();
        for ctx in &mut model.contexts {
            ctx.includes.retain(|i| rendered.contains(i));
        }
        Ok(model)
    }
}

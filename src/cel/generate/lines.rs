//! Line identities and the users behind them (section 3.7: a channel is resolved to a user
//! through its line, `protocol/name` → line → user), and dialplan contexts and their tenants
//! (the requested context's tenant, when nothing else names one).
//!
//! Until confd lands, [`StoreLines`] and [`StoreContexts`] read the `calllog_line` and
//! `calllog_context` tables that confd will fill; tests use [`StaticLines`] and
//! [`StaticContexts`].

use std::collections::HashMap;

use rusqlite::Connection;
use uuid::Uuid;

/// The user (and line) that owns a line identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOwner {
    pub line_id: i64,
    pub user_uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub tags: Vec<String>,
    pub user_name: String,
    /// The user's main extension and its context (the `*_internal_*` fields of a call log).
    pub exten: Option<String>,
    pub context: Option<String>,
}

/// Finds the owner of a line identity (lowercased `protocol/name`, see [`identity`]).
pub trait LineResolver: Send + Sync {
    fn resolve(&self, identity: &str) -> Option<LineOwner>;
}

/// The line identity of a channel: its technology and endpoint, lowercased, without the
/// per-channel sequence (`PJSIP/2001-0000000a` → `pjsip/2001`). Local channels are not lines
/// (they are dialplan plumbing), so they have none.
pub fn identity(channame: &str) -> Option<String> {
    let (tech, rest) = channame.trim().split_once('/')?;
    if tech.is_empty() || rest.is_empty() || tech.eq_ignore_ascii_case("local") {
        return None;
    }
    let name = match rest.rsplit_once('-') {
        Some((name, seq)) if !name.is_empty() && !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => rest,
    };
    Some(format!("{tech}/{name}").to_lowercase())
}

/// True for a Local channel (`Local/1001@caller-0000001d;1`).
pub fn is_local(channame: &str) -> bool {
    channame.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("local/"))
}

/// A fixed map of identities, for tests and tools.
#[derive(Debug, Clone, Default)]
pub struct StaticLines(pub HashMap<String, LineOwner>);

impl StaticLines {
    pub fn new() -> Self {
        StaticLines(HashMap::new())
    }

    /// Adds a line; the identity is lowercased as [`identity`] does.
    pub fn with(mut self, identity: &str, owner: LineOwner) -> Self {
        self.0.insert(identity.to_lowercase(), owner);
        self
    }
}

impl LineResolver for StaticLines {
    fn resolve(&self, identity: &str) -> Option<LineOwner> {
        self.0.get(identity).cloned()
    }
}

/// The `calllog_line` table (`calllog/sql/002_line_identity.sql`) loaded in memory: resolution
/// happens for every channel of every call, so it must not cost a query each.
#[derive(Debug, Clone, Default)]
pub struct StoreLines(StaticLines);

impl StoreLines {
    /// Reads every row. Rows with a user or tenant that is not a UUID are skipped (confd's data
    /// must not stop generation); tags that are not a JSON list of strings count as none.
    pub fn load(conn: &Connection) -> rusqlite::Result<StoreLines> {
        let mut stmt = conn.prepare(
            "SELECT identity, line_id, user_uuid, tenant_uuid, tags, user_name, exten, context FROM calllog_line",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut map = HashMap::new();
        for row in rows {
            let (ident, line_id, user, tenant, tags, user_name, exten, context) = row?;
            let (Some(user_uuid), Some(tenant_uuid)) = (parse_uuid(user), parse_uuid(tenant)) else {
                continue;
            };
            let tags = tags
                .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
                .unwrap_or_default();
            map.insert(
                ident.to_lowercase(),
                LineOwner {
                    line_id: line_id.unwrap_or_default(),
                    user_uuid,
                    tenant_uuid,
                    tags,
                    user_name: user_name.unwrap_or_default(),
                    exten,
                    context,
                },
            );
        }
        Ok(StoreLines(StaticLines(map)))
    }

    pub fn len(&self) -> usize {
        self.0 .0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0 .0.is_empty()
    }
}

fn parse_uuid(text: Option<String>) -> Option<Uuid> {
    text.and_then(|t| Uuid::parse_str(t.trim()).ok())
}

impl LineResolver for StoreLines {
    fn resolve(&self, identity: &str) -> Option<LineOwner> {
        self.0.resolve(identity)
    }
}

/// Finds the tenant of a dialplan context (confd's contexts).
pub trait ContextResolver: Send + Sync {
    fn tenant(&self, context: &str) -> Option<Uuid>;
}

/// A fixed map of contexts, for tests and tools; empty, it knows none.
#[derive(Debug, Clone, Default)]
pub struct StaticContexts(pub HashMap<String, Uuid>);

impl StaticContexts {
    pub fn new() -> Self {
        StaticContexts(HashMap::new())
    }

    pub fn with(mut self, context: &str, tenant: Uuid) -> Self {
        self.0.insert(context.to_owned(), tenant);
        self
    }
}

impl ContextResolver for StaticContexts {
    fn tenant(&self, context: &str) -> Option<Uuid> {
        self.0.get(context).copied()
    }
}

/// The `calllog_context` table (`calllog/sql/004_call_status.sql`) loaded in memory, as
/// [`StoreLines`] does for lines.
#[derive(Debug, Clone, Default)]
pub struct StoreContexts(StaticContexts);

impl StoreContexts {
    /// Reads every row; a tenant that is not a UUID skips its row.
    pub fn load(conn: &Connection) -> rusqlite::Result<StoreContexts> {
        let mut stmt = conn.prepare("SELECT name, tenant_uuid FROM calllog_context")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?;
        let mut map = HashMap::new();
        for row in rows {
            let (name, tenant) = row?;
            if let Some(tenant) = parse_uuid(tenant) {
                map.insert(name, tenant);
            }
        }
        Ok(StoreContexts(StaticContexts(map)))
    }

    pub fn len(&self) -> usize {
        self.0 .0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0 .0.is_empty()
    }
}

impl ContextResolver for StoreContexts {
    fn tenant(&self, context: &str) -> Option<Uuid> {
        self.0.tenant(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        assert_eq!(identity("PJSIP/2001-0000000a").as_deref(), Some("pjsip/2001"));
        assert_eq!(
            identity("PJSIP/pstn-trunk-00000008").as_deref(),
            Some("pjsip/pstn-trunk")
        );
        assert_eq!(identity("SIP/Abc").as_deref(), Some("sip/abc"));
        assert_eq!(identity("Local/1001@caller-0000001d;1"), None);
        assert_eq!(identity(""), None);
        assert_eq!(identity("nonsense"), None);
        assert!(is_local("Local/x;1") && !is_local("PJSIP/x"));
    }

    #[test]
    fn store_lines_load_and_skip_bad_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../calllog/sql/002_line_identity.sql"))
            .unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(
            "INSERT INTO calllog_line VALUES ('pjsip/2001', 7, '9f1c2b3a-0000-4000-8000-000000002001', \
               '3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10', '[\"sales\"]', 'Alice', '2001', 'default');
             INSERT INTO calllog_line VALUES ('pjsip/bad', 8, 'not-a-uuid', \
               '3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10', NULL, NULL, NULL, NULL);
             INSERT INTO calllog_line VALUES ('PJSIP/2002', 9, '9f1c2b3a-0000-4000-8000-000000002002', \
               '3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10', 'not json', 'Bob', NULL, NULL);",
        )
        .unwrap();
        tx.commit().unwrap();
        let lines = StoreLines::load(&conn).unwrap();
        assert_eq!(lines.len(), 2);
        let alice = lines.resolve("pjsip/2001").unwrap();
        assert_eq!((alice.line_id, alice.tags.clone()), (7, vec!["sales".to_string()]));
        assert!(lines.resolve("pjsip/2002").unwrap().tags.is_empty());
        assert!(lines.resolve("pjsip/bad").is_none());
    }

    #[test]
    fn store_contexts_load_and_skip_bad_rows() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../calllog/sql/001_call_log.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../../calllog/sql/004_call_status.sql"))
            .unwrap();
        conn.execute_batch(
            "INSERT INTO calllog_context VALUES ('from-internal', '3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10');
             INSERT INTO calllog_context VALUES ('broken', 'not-a-uuid');
             INSERT INTO calllog_context VALUES ('none', NULL);",
        )
        .unwrap();
        let contexts = StoreContexts::load(&conn).unwrap();
        assert_eq!(contexts.len(), 1);
        assert_eq!(
            contexts.tenant("from-internal"),
            Uuid::parse_str("3d0f3a2c-6a5e-4d5b-9d1e-2f6c1b7a9e10").ok()
        );
        assert_eq!(contexts.tenant("broken"), None);
        assert_eq!(contexts.tenant("From-Internal"), None, "contexts are case-sensitive");
    }
}

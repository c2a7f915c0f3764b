//! A user's forwards, services (DND, incoming call filter) and fallbacks:
//! stored beside the user (`confd_user_feature`), edited through their own
//! routes. Forwards and services change often and the dialplan reads them
//! at call time from AstDB, so they are pushed there (no reload).

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::model::{check_destination, Forward, ForwardPatch, ServicesBody, FALLBACKS, FORWARDS, SERVICES};
use crate::api::error::ApiError;
use crate::bus::{escape_key, EventSpec};
use crate::confd::astdb::{user_family, AstDb};
use crate::confd::docstore::{self, Key, Row};
use crate::confd::ConfdService;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forwards {
    #[serde(default)]
    pub busy: Forward,
    #[serde(default)]
    pub noanswer: Forward,
    #[serde(default)]
    pub unconditional: Forward,
}

impl Forwards {
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Forward> {
        match name {
            "busy" => Some(&mut self.busy),
            "noanswer" => Some(&mut self.noanswer),
            "unconditional" => Some(&mut self.unconditional),
            _ => None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Forward> {
        match name {
            "busy" => Some(&self.busy),
            "noanswer" => Some(&self.noanswer),
            "unconditional" => Some(&self.unconditional),
            _ => None,
        }
    }

    /// Applies patches by forward name (names already checked).
    pub fn apply(&mut self, patches: Vec<(&'static str, ForwardPatch)>) -> Result<(), ApiError> {
        for (name, p) in patches {
            if let Some(f) = self.get_mut(name) {
                p.apply(name, f)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Services {
    #[serde(default)]
    pub dnd: Service,
    #[serde(default)]
    pub incallfilter: Service,
}

impl Services {
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Service> {
        match name {
            "dnd" => Some(&mut self.dnd),
            "incallfilter" => Some(&mut self.incallfilter),
            _ => None,
        }
    }

    pub fn apply(&mut self, body: ServicesBody) {
        if let Some(b) = body.dnd {
            self.dnd.enabled = b.enabled;
        }
        if let Some(b) = body.incallfilter {
            self.incallfilter.enabled = b.enabled;
        }
    }
}

/// Everything stored in `confd_user_feature` for one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    pub forwards: Forwards,
    pub services: Services,
    /// The four fallback keys, each a destination object or null.
    pub fallbacks: Map<String, Value>,
}

fn from_json<T: for<'de> Deserialize<'de> + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn fallbacks_object(stored: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in FALLBACKS {
        out.insert(k.into(), stored.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

pub fn load(c: &Connection, user_id: i64) -> rusqlite::Result<Features> {
    let row: Option<(String, String, String)> = c
        .query_row(
            "SELECT forwards, services, fallbacks FROM confd_user_feature WHERE user_id = ?1",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        Some((f, s, fb)) => Features {
            forwards: from_json(&f),
            services: from_json(&s),
            fallbacks: from_json(&fb),
        },
        None => Features::default(),
    })
}

pub fn save(tx: &Connection, user_id: i64, f: &Features) -> Result<(), ApiError> {
    let to = |v: Result<String, serde_json::Error>| v.map_err(|e| ApiError::Internal(e.to_string()));
    tx.execute(
        "INSERT INTO confd_user_feature (user_id, forwards, services, fallbacks) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(user_id) DO UPDATE SET forwards = excluded.forwards, services = excluded.services, \
         fallbacks = excluded.fallbacks",
        params![
            user_id,
            to(serde_json::to_string(&f.forwards))?,
            to(serde_json::to_string(&f.services))?,
            to(serde_json::to_string(&Value::Object(f.fallbacks.clone())))?,
        ],
    )?;
    Ok(())
}

/// Checks a fallbacks body (a PUT replaces all four: missing ones become
/// null) and the users and voicemails it names (same tenant).
pub fn check_fallbacks(tx: &Connection, tenant: Uuid, body: &Value) -> Result<Map<String, Value>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "_schema",
            "Invalid input type: expected an object",
        ));
    };
    if let Some(k) = obj.keys().find(|k| !FALLBACKS.contains(&k.as_str())) {
        return Err(ApiError::invalid_field(k, "Unknown field."));
    }
    let mut out = Map::new();
    for k in FALLBACKS {
        let v = obj.get(k).cloned().unwrap_or(Value::Null);
        if !v.is_null() {
            check_destination(k, &v)?;
            for (kind, table, id_key) in [
                ("user", super::TABLE, "user_id"),
                ("voicemail", crate::confd::voicemails::TABLE, "voicemail_id"),
            ] {
                if v.get("type").and_then(Value::as_str) == Some(kind) {
                    let id = v.get(id_key).and_then(Value::as_i64).unwrap_or_default();
                    let found = docstore::get(tx, table, Key::Id(id))?.is_some_and(|r| r.tenant_uuid == tenant);
                    if !found {
                        return Err(ApiError::invalid_field(
                            &format!("{k}.{id_key}"),
                            format!("{kind} was not found ('id': {id})"),
                        ));
                    }
                }
            }
        }
        out.insert(k.into(), v);
    }
    Ok(out)
}

/// Queues the AstDB keys of a user's forwards and services.
pub fn push(astdb: &AstDb, user_id: i64, f: &Features, forwards: &[&str], services: &[&str]) {
    for (family, key, value) in keys(user_id, f, forwards, services) {
        match value {
            Some(v) => astdb.put(&family, &key, v),
            None => astdb.del(&family, &key),
        }
    }
}

/// `(family, key, value)`; `None` = delete the key. The dialplan reads
/// `accent/users/<id>/{dnd,incallfilter,fwd_<name>,fwd_<name>_dest}`.
fn keys(user_id: i64, f: &Features, forwards: &[&str], services: &[&str]) -> Vec<(String, String, Option<String>)> {
    let family = user_family(user_id);
    let flag = |b: bool| Some(if b { "1" } else { "0" }.to_string());
    let mut out = Vec::new();
    for s in services {
        let enabled = match *s {
            "dnd" => f.services.dnd.enabled,
            _ => f.services.incallfilter.enabled,
        };
        out.push((family.clone(), (*s).to_string(), flag(enabled)));
    }
    for name in forwards {
        if let Some(fw) = f.forwards.get(name) {
            out.push((family.clone(), format!("fwd_{name}"), flag(fw.enabled)));
            out.push((family.clone(), format!("fwd_{name}_dest"), fw.destination.clone()));
        }
    }
    out
}

/// Every user's AstDB keys, for the first AMI session.
pub fn snapshot(c: &Connection) -> Result<Vec<(String, String, String)>, ApiError> {
    let mut stmt = c.prepare(&format!("SELECT id FROM {} ORDER BY id", super::TABLE))?;
    let ids: Vec<i64> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for id in ids {
        let f = load(c, id)?;
        for (family, key, value) in keys(id, &f, &FORWARDS, &SERVICES) {
            // A key without value is simply absent from a fresh AstDB.
            if let Some(v) = value {
                out.push((family, key, v));
            }
        }
    }
    Ok(out)
}

impl ConfdService {
    pub(super) async fn user_features(&self, row: &Row) -> Result<Features, ApiError> {
        let id = row.id;
        self.store.read(move |c| load(c, id).map_err(ApiError::from)).await
    }

    /// Loads, changes and stores a user's features in one write.
    pub(super) async fn edit_features<F>(&self, row: &Row, edit: F) -> Result<Features, ApiError>
    where
        F: FnOnce(&Connection, &mut Features) -> Result<(), ApiError> + Send + 'static,
    {
        let id = row.id;
        self.store
            .write(move |tx| {
                let mut f = load(tx, id)?;
                edit(tx, &mut f)?;
                save(tx, id, &f)?;
                Ok::<_, ApiError>(f)
            })
            .await
    }

    pub(super) fn forward_event(&self, row: &Row, name: &str, f: &Forward) {
        let uuid = row.uuid.to_string();
        self.bus.publish(
            EventSpec::new(
                format!("users_forwards_{name}_updated"),
                format!("config.users.{}.forwards.{name}.updated", escape_key(&uuid)),
                json!({
                    "user_id": row.id,
                    "user_uuid": uuid,
                    "tenant_uuid": row.tenant_uuid,
                    "enabled": f.enabled,
                    "destination": f.destination,
                }),
            )
            .tenant(row.tenant_uuid)
            .users(vec![row.uuid]),
        );
    }

    pub(super) fn service_event(&self, row: &Row, name: &str, enabled: bool) {
        let uuid = row.uuid.to_string();
        self.bus.publish(
            EventSpec::new(
                format!("users_services_{name}_updated"),
                format!("config.users.{}.services.{name}.updated", escape_key(&uuid)),
                json!({
                    "user_id": row.id,
                    "user_uuid": uuid,
                    "tenant_uuid": row.tenant_uuid,
                    "enabled": enabled,
                }),
            )
            .tenant(row.tenant_uuid)
            .users(vec![row.uuid]),
        );
    }

    pub(super) fn fallback_event(&self, row: &Row) {
        self.bus.publish(
            EventSpec::new(
                "user_fallback_edited",
                "config.users.fallbacks.edited",
                json!({ "id": row.id, "uuid": row.uuid, "tenant_uuid": row.tenant_uuid }),
            )
            .tenant(row.tenant_uuid)
            .users(vec![row.uuid]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn astdb_keys() {
        let mut f = Features::default();
        f.services.dnd.enabled = true;
        f.forwards.busy = Forward {
            enabled: true,
            destination: Some("1002".into()),
        };
        let k = keys(7, &f, &["busy"], &["dnd"]);
        assert_eq!(
            k,
            vec![
                ("accent/users/7".into(), "dnd".into(), Some("1".into())),
                ("accent/users/7".into(), "fwd_busy".into(), Some("1".into())),
                ("accent/users/7".into(), "fwd_busy_dest".into(), Some("1002".into())),
            ]
        );
    }
}

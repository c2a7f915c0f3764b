//! `/switchboards`: an operator console's switchboard (name, queue timeout,
//! the music of its queue and of its held calls), its operators
//! (`PUT /switchboards/{uuid}/members/users`, users of the same tenant) and its
//! no-answer fallback (`GET/PUT /switchboards/{uuid}/fallbacks`, a destination
//! like an incall's). Incalls reach one with the destination
//! `{type: switchboard, switchboard_uuid}`: the dialplan sends the call into
//! accentd's Stasis application, where calld queues it (`calld::switchboards`).
//!
//! Upstream's quirks kept: the create and delete ACLs are singular
//! (`confd.switchboard.create`, `confd.switchboard.{uuid}.delete`), and the
//! events carry the switchboard uuid in their routing keys.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::docstore::{self, Key, Row};
use super::error::respond;
use super::fields::{check_opt_text, check_text};
use super::incalls::{self, Destination};
use super::reload::Reload;
use super::resource::{self, item_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::{authenticated, Caller};
use crate::bus::EventSpec;

pub const TABLE: &str = "confd_switchboard";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switchboard {
    pub name: String,
    /// Seconds a call may wait in the queue before its no-answer fallback.
    #[serde(default)]
    pub timeout: Option<i64>,
    #[serde(default)]
    pub queue_music_on_hold: Option<String>,
    #[serde(default)]
    pub waiting_room_music_on_hold: Option<String>,
}

impl Switchboard {
    /// Checks without the database. Music on hold classes go to Asterisk as
    /// they are: no argument or list separators.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_text("name", &self.name, 1, 128, "")?;
        if self.timeout.is_some_and(|t| !(0..=86400).contains(&t)) {
            return Err(ApiError::invalid_field("timeout", "Must be between 0 and 86400."));
        }
        check_opt_text("queue_music_on_hold", self.queue_music_on_hold.as_deref(), 128, ",;|()")?;
        check_opt_text(
            "waiting_room_music_on_hold",
            self.waiting_room_music_on_hold.as_deref(),
            128,
            ",;|()",
        )
    }
}

/// The member users as upstream shows them: `{uuid, firstname, lastname}`, in order.
fn members(c: &Connection, switchboard_id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT u.uuid, json_extract(u.doc, '$.firstname'), json_extract(u.doc, '$.lastname') \
         FROM confd_switchboard_member_user m JOIN {} u ON u.id = m.user_id \
         WHERE m.switchboard_id = ?1 ORDER BY m.position",
        super::users::TABLE
    ))?;
    let rows = stmt.query_map([switchboard_id], |r| {
        let (uuid, first, last): (String, Option<String>, Option<String>) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(json!({ "uuid": uuid, "firstname": first, "lastname": last }))
    })?;
    rows.collect()
}

/// The no-answer fallback, `None` when unset.
pub fn noanswer_destination(c: &Connection, switchboard_id: i64) -> rusqlite::Result<Option<Destination>> {
    let text: Option<String> = c
        .query_row(
            "SELECT noanswer_destination FROM confd_switchboard_fallback WHERE switchboard_id = ?1",
            [switchboard_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    // A stored value that no longer parses reads as no fallback, not an error.
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// The incalls reaching the switchboard, with their DIDs.
fn incalls_of(c: &Connection, uuid: Uuid) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT id FROM {} WHERE destination_type = 'switchboard' \
         AND json_extract(doc, '$.destination.switchboard_uuid') = ?1 ORDER BY id",
        incalls::TABLE
    ))?;
    let ids = stmt
        .query_map([uuid.to_string()], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    ids.into_iter()
        .map(|id| {
            let extensions: Vec<Value> = incalls::incall_extensions(c, id)?
                .into_iter()
                .map(|(id, exten, context)| json!({ "id": id, "exten": exten, "context": context }))
                .collect();
            Ok(json!({ "id": id, "extensions": extensions }))
        })
        .collect()
}

/// What calld needs of a switchboard: its tenant, music classes and member users.
#[derive(Debug, Clone)]
pub struct SwitchboardInfo {
    pub uuid: Uuid,
    pub tenant: Uuid,
    pub name: String,
    /// Seconds a call may wait in the queue (0 or none: no limit).
    pub timeout: Option<i64>,
    pub queue_music_on_hold: Option<String>,
    pub waiting_room_music_on_hold: Option<String>,
    pub members: Vec<Uuid>,
}

/// A switchboard by uuid, whatever its tenant (calld checks visibility).
pub fn info(c: &Connection, uuid: Uuid) -> Result<Option<SwitchboardInfo>, ApiError> {
    let Some(row) = docstore::get(c, TABLE, Key::Uuid(uuid))? else {
        return Ok(None);
    };
    let sb: Switchboard = resource::from_map(row.doc.clone())?;
    let members = members(c, row.id)?
        .iter()
        .filter_map(|m| m["uuid"].as_str().and_then(|u| Uuid::parse_str(u).ok()))
        .collect();
    Ok(Some(SwitchboardInfo {
        uuid,
        tenant: row.tenant_uuid,
        name: sb.name,
        timeout: sb.timeout,
        queue_music_on_hold: sb.queue_music_on_hold,
        waiting_room_music_on_hold: sb.waiting_room_music_on_hold,
        members,
    }))
}

impl Resource for Switchboard {
    const DEF: Def = Def {
        path: &["switchboards"],
        acl: "switchboards",
        table: TABLE,
        kind: "Switchboard",
        by_uuid: true,
        show_id: false,
        show_uuid: true,
        orderable: &["name", "uuid"],
        filterable: &["name"],
        searchable: &["name"],
        default_order: "name",
        read_only: &["members", "fallbacks", "incalls"],
        created: EventDef {
            name: "switchboard_created",
            routing_key: "config.switchboards.{uuid}.created",
        },
        edited: EventDef {
            name: "switchboard_edited",
            routing_key: "config.switchboards.{uuid}.edited",
        },
        deleted: EventDef {
            name: "switchboard_deleted",
            routing_key: "config.switchboards.{uuid}.deleted",
        },
        // The dialplan of the incalls reaching it names the switchboard.
        reloads: &[Reload::Dialplan],
    };

    fn check(&self, _ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        obj.insert("members".into(), json!({ "users": members(c, row.id)? }));
        obj.insert(
            "fallbacks".into(),
            json!({ "noanswer_destination": noanswer_destination(c, row.id)? }),
        );
        obj.insert("incalls".into(), Value::Array(incalls_of(c, row.uuid)?));
        Ok(())
    }

    /// The incalls reaching it end nowhere; members and fallback go with it.
    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        incalls::destination_deleted(tx, "switchboard", "switchboard_uuid", &row.uuid.to_string())
    }

    /// `config.switchboards.<uuid>.<verb>`, with upstream's websocket ACL
    /// `switchboards.<uuid>.<verb>` (no `events.` prefix: the catalog's override).
    fn event(event: EventDef, obj: &Map<String, Value>) -> EventSpec {
        let uuid = obj.get("uuid").and_then(Value::as_str).unwrap_or_default();
        let routing_key = event.routing_key.replace("{uuid}", uuid);
        let acl = routing_key.trim_start_matches("config.").to_string();
        EventSpec::new(event.name, routing_key, Self::event_data(obj)).acl(acl)
    }

    /// Accent's singular `confd.switchboard.create` and `confd.switchboard.{uuid}.delete`.
    fn acl(action: &str, id: Option<&str>) -> String {
        let acl = match action {
            "create" | "delete" => "switchboard",
            _ => Self::DEF.acl,
        };
        match id {
            None => format!("confd.{acl}.{action}"),
            Some(id) => item_acl(acl, id, action),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRef {
    uuid: Uuid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersBody {
    users: Vec<UserRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FallbacksBody {
    #[serde(default)]
    noanswer_destination: Option<Destination>,
}

/// The most members one switchboard takes in one request.
const MAX_MEMBERS: usize = 1000;

impl ConfdService {
    /// `PUT /switchboards/{uuid}/members/users`: the whole list replaced.
    async fn switchboard_members(&self, caller: &Caller, id: &str, body: &[u8]) -> Result<(), ApiError> {
        let scope = caller.require(&item_acl("switchboards", id, "members.users.update"))?;
        let sb = self.find::<Switchboard>(&scope, id).await?;
        let body: MembersBody = body::parse_json_object(body)?;
        if body.users.len() > MAX_MEMBERS {
            return Err(ApiError::invalid_field(
                "users",
                format!("At most {MAX_MEMBERS} users."),
            ));
        }
        let wanted: Vec<Uuid> = body.users.iter().map(|u| u.uuid).collect();
        let (sb_id, tenant) = (sb.id, sb.tenant_uuid);
        let users = wanted.clone();
        self.store
            .write(move |tx| {
                let mut ids = Vec::new();
                for u in &users {
                    let found = docstore::get(tx, super::users::TABLE, Key::Uuid(*u))?.filter(|r| r.tenant_uuid == tenant);
                    let Some(row) = found else {
                        return Err(ApiError::not_found("User", u.to_string()));
                    };
                    if !ids.contains(&row.id) {
                        ids.push(row.id);
                    }
                }
                tx.execute(
                    "DELETE FROM confd_switchboard_member_user WHERE switchboard_id = ?1",
                    [sb_id],
                )?;
                for (position, user_id) in ids.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO confd_switchboard_member_user (switchboard_id, user_id, position) VALUES (?1, ?2, ?3)",
                        params![sb_id, user_id, position as i64],
                    )?;
                }
                Ok::<_, ApiError>(())
            })
            .await?;
        let mut seen = Vec::new();
        for u in wanted {
            if !seen.contains(&u) {
                seen.push(u);
            }
        }
        tracing::info!(switchboard = %sb.uuid, members = seen.len(), "switchboard members set");
        let key = format!("config.switchboards.{}.members.users.updated", sb.uuid);
        let acl = key.trim_start_matches("config.").to_string();
        let users: Vec<Value> = seen.iter().map(|u| json!({ "uuid": u })).collect();
        self.bus.publish(
            EventSpec::new(
                "switchboard_member_user_associated",
                key,
                json!({ "switchboard_uuid": sb.uuid, "users": users }),
            )
            .acl(acl)
            .tenant(tenant)
            .users(seen),
        );
        Ok(())
    }

    async fn switchboard_fallbacks(&self, caller: &Caller, id: &str) -> Result<Value, ApiError> {
        let scope = caller.require(&item_acl("switchboards", id, "fallbacks.read"))?;
        let sb = self.find::<Switchboard>(&scope, id).await?;
        let d = self
            .store
            .read(move |c| noanswer_destination(c, sb.id).map_err(ApiError::from))
            .await?;
        Ok(json!({ "noanswer_destination": d }))
    }

    /// `PUT /switchboards/{uuid}/fallbacks`: fields not given are removed (upstream's warning).
    async fn set_switchboard_fallbacks(&self, caller: &Caller, id: &str, body: &[u8]) -> Result<(), ApiError> {
        let scope = caller.require(&item_acl("switchboards", id, "fallbacks.update"))?;
        let sb = self.find::<Switchboard>(&scope, id).await?;
        let body: FallbacksBody = body::parse_json_object(body)?;
        let d = body.noanswer_destination;
        let (sb_id, tenant) = (sb.id, sb.tenant_uuid);
        let stored = d.clone();
        self.store
            .write(move |tx| {
                if let Some(d) = &stored {
                    incalls::check_destination(tx, tenant, "noanswer_destination", d)?;
                }
                let text = stored
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                tx.execute(
                    "INSERT INTO confd_switchboard_fallback (switchboard_id, noanswer_destination) VALUES (?1, ?2) \
                     ON CONFLICT(switchboard_id) DO UPDATE SET noanswer_destination = excluded.noanswer_destination",
                    params![sb_id, text],
                )?;
                Ok::<_, ApiError>(())
            })
            .await?;
        self.bus.publish(
            EventSpec::new(
                "switchboard_fallback_edited",
                "config.switchboards.fallbacks.edited",
                json!({ "switchboard_uuid": sb.uuid, "noanswer_destination": d }),
            )
            .acl("switchboards.fallbacks.edited")
            .tenant(tenant),
        );
        // The fallback is rendered after the incalls' Stasis step.
        self.reloader.request(&[Reload::Dialplan]);
        Ok(())
    }
}

/// CRUD, members and fallbacks.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let limit = svc.body_limit;
    let base = || warp::path("switchboards").and(warp::path::param::<String>());

    let s = svc.clone();
    let members = base()
        .and(warp::path("members"))
        .and(warp::path("users"))
        .and(warp::path::end())
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                svc.switchboard_members(&caller, &id, &b).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc.clone();
    let get_fallbacks = base()
        .and(warp::path("fallbacks"))
        .and(warp::path::end())
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(
                async move { Ok(warp::reply::json(&svc.switchboard_fallbacks(&caller, &id).await?).into_response()) },
            )
        });

    let s = svc.clone();
    let put_fallbacks = base()
        .and(warp::path("fallbacks"))
        .and(warp::path::end())
        .and(warp::put())
        .and(authed)
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                svc.set_switchboard_fallbacks(&caller, &id, &b).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    resource::routes::<Switchboard>(svc)
        .or(members)
        .unify()
        .or(get_fallbacks)
        .unify()
        .or(put_fallbacks)
        .unify()
        .boxed()
}

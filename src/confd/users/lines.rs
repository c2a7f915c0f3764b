//! User ↔ line (`confd_user_line`). A user's lines are ordered, the first is
//! the user's main line; a line may serve several users, the first one
//! associated stays its main user. `PUT /users/{id}/lines/{line_id}`
//! associates, `DELETE` dissociates, `PUT /users/{id}/lines` replaces the
//! whole ordered list; `GET /users/{uuid}/lines/{line_id|main}/associated/endpoints/sip`
//! reads the SIP endpoint of one of the user's lines.
//!
//! Upstream's rules: same tenant, the line has an endpoint, no two users
//! reachable through one extension shared by several lines; a line's main
//! user cannot leave while other users remain, nor anyone while the line is
//! on a device. The line's `calllog_line` row follows its main user.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::api::body::{self, raw_query};
use crate::api::error::ApiError;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller, Scope};
use crate::bus::{escape_key, EventSpec};
use crate::confd::docstore::{self, Key, Row};
use crate::confd::endpoints_sip::{self, EndpointSip};
use crate::confd::error::respond;
use crate::confd::lines::{self, Line};
use crate::confd::resource::{api_object, from_map, item_acl};
use crate::confd::ConfdService;

/// One association as its events tell it.
pub struct UserLine {
    pub line_id: i64,
    /// The line as the events carry it (`lines::line_event_summary`).
    pub line: Value,
    pub main_user: bool,
    pub main_line: bool,
}

/// A broken association rule: confd's 400 `Resource Error - ...`.
fn rule(message: impl Into<String>) -> ApiError {
    ApiError::conflict("User", "lines", message)
}

/// The user's line ids, main line first.
pub fn lines_of_user(c: &Connection, user_id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        c.prepare_cached("SELECT line_id FROM confd_user_line WHERE user_id = ?1 ORDER BY position, line_id")?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    rows.collect()
}

/// The user's `lines` relation: each line's id, name, endpoint and extensions.
pub fn relation(c: &Connection, user_id: i64) -> rusqlite::Result<Value> {
    let lines = lines_of_user(c, user_id)?
        .into_iter()
        .map(|id| lines::user_line_relation(c, id))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Value::Array(lines))
}

/// `main_user` of an existing association.
fn association(c: &Connection, user_id: i64, line_id: i64) -> rusqlite::Result<Option<bool>> {
    c.query_row(
        "SELECT main_user FROM confd_user_line WHERE user_id = ?1 AND line_id = ?2",
        [user_id, line_id],
        |r| r.get(0),
    )
    .optional()
}

/// Upstream's association rules for giving `line` to `user`.
fn check_association(tx: &Connection, user: &Row, line: &Row) -> Result<(), ApiError> {
    if user.tenant_uuid != line.tenant_uuid {
        return Err(rule("User and Line are not in the same tenant"));
    }
    if !lines::has_endpoint(tx, line.id)? {
        return Err(rule(format!(
            "Line must be associated with an endpoint ('line_id': {})",
            line.id
        )));
    }
    // No "group" behind one extension: when the line's main extension is
    // shared by several lines, they must all lead to the same user.
    let Some(extension_id) = lines::main_extension(tx, line.id)? else {
        return Ok(());
    };
    let sharing = lines::lines_of_extension(tx, extension_id)?;
    if sharing.len() <= 1 {
        return Ok(());
    }
    for other in sharing.into_iter().filter(|l| *l != line.id) {
        if let Some(owner) = lines::main_user_id(tx, other)? {
            if owner != user.id {
                return Err(rule(format!(
                    "Line is associated with an Extension shared with another user's Line \
                     ('line_id': {other}, 'extension_id': {extension_id})"
                )));
            }
        }
    }
    let current = lines::main_user_id(tx, line.id)?;
    if current.is_some_and(|u| u != user.id) {
        return Err(rule(format!(
            "Line is associated with an Extension shared with another Line ('extension_id': {extension_id})"
        )));
    }
    Ok(())
}

/// Upstream's dissociation rules.
fn check_dissociation(tx: &Connection, user: &Row, line_id: i64, main_user: bool) -> Result<(), ApiError> {
    if main_user {
        let others: i64 = tx.query_row(
            "SELECT COUNT(*) FROM confd_user_line WHERE line_id = ?1 AND user_id != ?2",
            [line_id, user.id],
            |r| r.get(0),
        )?;
        if others > 0 {
            return Err(rule(format!(
                "There are secondary users associated to the Line ('line_id': {line_id})"
            )));
        }
    }
    if lines::device_of_line(tx, line_id)?.is_some() {
        return Err(rule(format!(
            "Line is associated with a Device ('line_id': {line_id}): dissociate the device first"
        )));
    }
    Ok(())
}

/// The event view of an association (after the change for an association,
/// before it for a dissociation).
fn describe(tx: &Connection, user_id: i64, line: &Row, main_user: bool) -> Result<UserLine, ApiError> {
    let main_line = lines_of_user(tx, user_id)?.first() == Some(&line.id);
    Ok(UserLine {
        line_id: line.id,
        line: lines::line_event_summary(tx, line)?,
        main_user,
        main_line,
    })
}

/// Writes one association at `position` (the line's main user if it has none).
fn insert(tx: &Connection, user: &Row, line: &Row, position: i64) -> Result<bool, ApiError> {
    let main_user = lines::main_user_id(tx, line.id)?.is_none();
    tx.execute(
        "INSERT INTO confd_user_line (user_id, line_id, position, main_user) VALUES (?1, ?2, ?3, ?4)",
        params![user.id, line.id, position, main_user],
    )?;
    lines::sync_calllog_line(tx, line.id)?;
    Ok(main_user)
}

/// Gives `line` to `user` after the user's other lines; `None` when it
/// already was theirs (nothing changes, no event).
pub fn associate(tx: &Connection, user: &Row, line: &Row) -> Result<Option<UserLine>, ApiError> {
    if association(tx, user.id, line.id)?.is_some() {
        return Ok(None);
    }
    check_association(tx, user, line)?;
    let position: i64 = tx.query_row(
        "SELECT COALESCE(MAX(position) + 1, 0) FROM confd_user_line WHERE user_id = ?1",
        [user.id],
        |r| r.get(0),
    )?;
    let main_user = insert(tx, user, line, position)?;
    Ok(Some(describe(tx, user.id, line, main_user)?))
}

/// Takes `line` from `user`; `None` when it was not theirs.
pub fn dissociate(tx: &Connection, user: &Row, line: &Row) -> Result<Option<UserLine>, ApiError> {
    let Some(main_user) = association(tx, user.id, line.id)? else {
        return Ok(None);
    };
    check_dissociation(tx, user, line.id, main_user)?;
    let described = describe(tx, user.id, line, main_user)?;
    tx.execute(
        "DELETE FROM confd_user_line WHERE user_id = ?1 AND line_id = ?2",
        [user.id, line.id],
    )?;
    lines::sync_calllog_line(tx, line.id)?;
    Ok(Some(described))
}

/// Replaces the user's lines by `lines`, in that order (the first is the
/// main line): `(dissociated, associated)`; like upstream, every line of
/// the new list is announced as associated.
pub fn replace(tx: &Connection, user: &Row, lines: &[Row]) -> Result<(Vec<UserLine>, Vec<UserLine>), ApiError> {
    let ids: Vec<i64> = lines.iter().map(|l| l.id).collect();
    if (1..ids.len()).any(|i| ids[..i].contains(&ids[i])) {
        return Err(rule("Cannot associate same line more than once"));
    }
    let current = lines_of_user(tx, user.id)?;
    let mut removed = Vec::new();
    for line_id in current.iter().filter(|l| !ids.contains(l)) {
        let main_user = association(tx, user.id, *line_id)?.unwrap_or(false);
        check_dissociation(tx, user, *line_id, main_user)?;
        let row = docstore::get(tx, lines::TABLE, Key::Id(*line_id))?
            .ok_or_else(|| ApiError::Internal(format!("line {line_id} of user {} is gone", user.id)))?;
        removed.push(describe(tx, user.id, &row, main_user)?);
    }
    for line in lines.iter().filter(|l| !current.contains(&l.id)) {
        check_association(tx, user, line)?;
    }
    for gone in &removed {
        tx.execute(
            "DELETE FROM confd_user_line WHERE user_id = ?1 AND line_id = ?2",
            [user.id, gone.line_id],
        )?;
        lines::sync_calllog_line(tx, gone.line_id)?;
    }
    let mut added = Vec::new();
    for (position, line) in (0_i64..).zip(lines) {
        let main_user = if current.contains(&line.id) {
            tx.execute(
                "UPDATE confd_user_line SET position = ?3 WHERE user_id = ?1 AND line_id = ?2",
                params![user.id, line.id, position],
            )?;
            association(tx, user.id, line.id)?.unwrap_or(false)
        } else {
            insert(tx, user, line, position)?
        };
        added.push(main_user);
    }
    let mut associated = Vec::new();
    for (line, main_user) in lines.iter().zip(added) {
        associated.push(describe(tx, user.id, line, main_user)?);
    }
    Ok((removed, associated))
}

/// Removes every line of a user being deleted (no rule applies: the user
/// goes); the dissociations to announce.
pub fn remove_all(tx: &Connection, user: &Row) -> Result<Vec<UserLine>, ApiError> {
    let mut out = Vec::new();
    for line_id in lines_of_user(tx, user.id)? {
        let main_user = association(tx, user.id, line_id)?.unwrap_or(false);
        let Some(row) = docstore::get(tx, lines::TABLE, Key::Id(line_id))? else {
            continue;
        };
        out.push(describe(tx, user.id, &row, main_user)?);
    }
    tx.execute("DELETE FROM confd_user_line WHERE user_id = ?1", [user.id])?;
    // Another user may now be the only one left on a line: it becomes the
    // line's main user.
    for gone in &out {
        if gone.main_user {
            tx.execute(
                "UPDATE confd_user_line SET main_user = 1 WHERE line_id = ?1 AND user_id = \
                 (SELECT user_id FROM confd_user_line WHERE line_id = ?1 ORDER BY position, user_id LIMIT 1)",
                [gone.line_id],
            )?;
        }
        lines::sync_calllog_line(tx, gone.line_id)?;
    }
    Ok(out)
}

/// The user's lines changed name: their `calllog_line` rows follow.
pub fn user_renamed(tx: &Connection, user_id: i64) -> Result<(), ApiError> {
    for line_id in lines_of_user(tx, user_id)? {
        lines::sync_calllog_line(tx, line_id)?;
    }
    Ok(())
}

/// `PUT /users/{id}/lines`: `{"lines": [{"id": 1}, ...]}` (or the bare list).
#[derive(Deserialize)]
struct LinesBody {
    lines: Vec<LineId>,
}

/// Other keys of an item (a line object sent back after a GET) are ignored.
#[derive(Deserialize)]
struct LineId {
    id: i64,
}

fn parse_lines(bytes: &[u8]) -> Result<Vec<i64>, ApiError> {
    let map = match body::parse_json::<Value>(bytes)? {
        Value::Object(m) => m,
        list @ Value::Array(_) => serde_json::Map::from_iter([("lines".to_string(), list)]),
        _ => {
            return Err(ApiError::invalid_field(
                "_schema",
                "Invalid input type: expected an object",
            ))
        }
    };
    let b: LinesBody = from_map(map)?;
    Ok(b.lines.into_iter().map(|l| l.id).collect())
}

impl ConfdService {
    pub(crate) fn user_line_event(&self, user: &Row, ul: &UserLine, associated: bool) {
        let (name, verb) = if associated {
            ("user_line_associated", "updated")
        } else {
            ("user_line_dissociated", "deleted")
        };
        let uuid = user.uuid.to_string();
        self.bus.publish(
            EventSpec::new(
                name,
                format!("config.users.{}.lines.{}.{verb}", escape_key(&uuid), ul.line_id),
                json!({
                    "user": { "id": user.id, "uuid": uuid, "tenant_uuid": user.tenant_uuid },
                    "line": ul.line,
                    "main_user": ul.main_user,
                    "main_line": ul.main_line,
                    "tenant_uuid": user.tenant_uuid,
                }),
            )
            .tenant(user.tenant_uuid)
            .users(vec![user.uuid]),
        );
    }

    /// The events and reloads of committed user↔line changes.
    pub(crate) fn announce_user_lines(&self, user: &Row, dissociated: &[UserLine], associated: &[UserLine]) {
        for ul in dissociated {
            self.user_line_event(user, ul, false);
        }
        for ul in associated {
            self.user_line_event(user, ul, true);
        }
        if !(dissociated.is_empty() && associated.is_empty()) {
            self.reloader.request(lines::USER_LINE_RELOADS);
        }
    }

    async fn user_line(&self, scope: &Scope, id: &str, line_id: &str, associate_it: bool) -> Result<(), ApiError> {
        let user = self.user_row(scope, id).await?;
        let line = self.find::<Line>(scope, line_id).await?;
        let (u, l) = (user.clone(), line);
        let changed = self
            .store
            .write(move |tx| {
                if associate_it {
                    associate(tx, &u, &l)
                } else {
                    dissociate(tx, &u, &l)
                }
            })
            .await?;
        if let Some(ul) = changed {
            let (gone, added) = if associate_it {
                (vec![], vec![ul])
            } else {
                (vec![ul], vec![])
            };
            self.announce_user_lines(&user, &gone, &added);
        }
        Ok(())
    }

    async fn put_user_lines(&self, scope: &Scope, id: &str, bytes: &[u8]) -> Result<(), ApiError> {
        let ids = parse_lines(bytes)?;
        let user = self.user_row(scope, id).await?;
        let mut rows = Vec::with_capacity(ids.len());
        for line_id in ids {
            let row = self
                .find::<Line>(scope, &line_id.to_string())
                .await
                .map_err(|_| ApiError::invalid_field("lines", format!("Line was not found ('id': {line_id})")))?;
            rows.push(row);
        }
        let u = user.clone();
        let (gone, added) = self.store.write(move |tx| replace(tx, &u, &rows)).await?;
        self.announce_user_lines(&user, &gone, &added);
        Ok(())
    }

    /// The SIP endpoint of one of the user's lines (`main`: the main line).
    async fn user_line_sip(&self, scope: &Scope, id: &str, line: &str, query: &str) -> Result<Value, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ViewQuery {
            #[serde(default)]
            view: Option<String>,
        }
        let q: ViewQuery = body::parse_query(query)?;
        match q.view.as_deref() {
            None => {}
            Some("merged") => {
                return Err(ApiError::invalid_field(
                    "view",
                    "The merged view (templates applied) is not supported yet.",
                ))
            }
            Some(_) => return Err(ApiError::invalid_field("view", "Must be one of: merged.")),
        }
        let user = self.user_row(scope, id).await?;
        let wanted = match line {
            "main" => None,
            other => Some(other.parse::<i64>().map_err(|_| ApiError::not_found("Line", other))?),
        };
        let line = line.to_string();
        self.store
            .read(move |c| {
                let mine = lines_of_user(c, user.id)?;
                let line_id = match wanted {
                    None => mine.first().copied(),
                    Some(l) => mine.contains(&l).then_some(l),
                }
                .ok_or_else(|| ApiError::not_found("UserLine", line.clone()))?;
                let sip = match lines::sip_endpoint_of_line(c, line_id)? {
                    Some(sip_id) => docstore::get(c, endpoints_sip::TABLE, Key::Id(sip_id))?,
                    None => None,
                }
                .ok_or_else(|| ApiError::not_found("SIPEndpoint", line.clone()))?;
                Ok::<_, ApiError>(api_object::<EndpointSip>(c, &sip)?)
            })
            .await
    }
}

pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let limit = svc.body_limit;
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let item = warp::path!("users" / String / "lines" / String)
        .and(warp::put().map(|| true).or(warp::delete().map(|| false)).unify())
        .and(authed.clone())
        .then(move |id: String, line: String, associate_it: bool, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let action = if associate_it { "update" } else { "delete" };
                let acl = item_acl("users", &id, &format!("lines.{}.{action}", escape_param(&line)));
                let scope = caller.require(&acl)?;
                svc.user_line(&scope, &id, &line, associate_it).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc.clone();
    let list = warp::path!("users" / String / "lines")
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "lines.update"))?;
                svc.put_user_lines(&scope, &id, &b).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc;
    let sip = warp::path!("users" / String / "lines" / String / "associated" / "endpoints" / "sip")
        .and(warp::get())
        .and(authed)
        .and(raw_query())
        .then(move |id: String, line: String, caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let acl = item_acl(
                    "users",
                    &id,
                    &format!("lines.{}.associated.endpoints.sip.read", escape_param(&line)),
                );
                let scope = caller.require(&acl)?;
                Ok(warp::reply::json(&svc.user_line_sip(&scope, &id, &line, &q).await?).into_response())
            })
        });

    item.or(list).unify().or(sip).unify().boxed()
}

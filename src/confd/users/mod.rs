//! `/users`: confd users (by id or uuid), the nested POST the web UI sends
//! (`auth`, `voicemail`, `forwards`...), HEAD, forwards, services (also as
//! `/users/me/...`), fallbacks, outgoing caller ids, the user↔voicemail
//! association and the user↔line association (`lines.rs`).

pub mod create;
pub mod feature_codes;
pub mod features;
pub mod lines;
pub mod model;
pub mod voicemail;

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::features::{fallbacks_object, Features};
pub use self::model::User;
use self::model::{ForwardPatch, ForwardsBody, ServiceBody, ServicesBody, FORWARDS, SERVICES};
use super::docstore::Row;
use super::error::respond;
use super::reload::Reload;
use super::resource::{self, from_map, item_acl, Check, Def, EventDef, Resource};
use super::ConfdService;
use crate::api::body::{self, raw_query};
use crate::api::error::ApiError;
use crate::auth::caller::{authenticated, Caller, Scope};

pub const TABLE: &str = "confd_user";

/// Relations shown on a user and ignored in bodies (clients PUT back a GET).
const RELATIONS: &[&str] = &[
    "lines",
    "forwards",
    "services",
    "voicemail",
    "groups",
    "incalls",
    "fallbacks",
    "agent",
    "switchboards",
    "queues",
    "call_pickup_target_users",
    "created_at",
];

impl Resource for User {
    const DEF: Def = Def {
        path: &["users"],
        acl: "users",
        table: TABLE,
        kind: "User",
        by_uuid: false,
        show_id: true,
        show_uuid: true,
        orderable: &[
            "id",
            "uuid",
            "firstname",
            "lastname",
            "email",
            "username",
            "mobile_phone_number",
            "userfield",
            "description",
            "subscription_type",
        ],
        filterable: &[
            "id",
            "uuid",
            "firstname",
            "lastname",
            "email",
            "username",
            "mobile_phone_number",
            "userfield",
            "enabled",
            "subscription_type",
        ],
        searchable: &[
            "firstname",
            "lastname",
            "email",
            "username",
            "mobile_phone_number",
            "userfield",
            "description",
        ],
        default_order: "firstname",
        read_only: RELATIONS,
        created: EventDef {
            name: "user_created",
            routing_key: "config.user.created",
        },
        edited: EventDef {
            name: "user_edited",
            routing_key: "config.user.edited",
        },
        deleted: EventDef {
            name: "user_deleted",
            routing_key: "config.user.deleted",
        },
        reloads: &[Reload::Dialplan, Reload::Pjsip],
    };

    fn prepare(&mut self, _tenant: Uuid, _uuid: Uuid, creating: bool) {
        self.normalize();
        if creating && self.created_at.is_none() {
            self.created_at = Some(crate::time::utc_naive(crate::time::now_epoch()));
        }
    }

    fn merge(base: &mut Map<String, Value>, body: Map<String, Value>) {
        model::merge(base, body);
    }

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        self.validate()?;
        if let Some(username) = &self.username {
            let taken: Option<i64> = ctx
                .tx
                .query_row(
                    &format!("SELECT id FROM {TABLE} WHERE username = ?1 AND id IS NOT ?2"),
                    params![username, ctx.id],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(ApiError::conflict(
                    "User",
                    "username",
                    format!("User already exists ('username': '{username}')"),
                ));
            }
        }
        Ok(())
    }

    /// The names call-logd shows for the user's lines follow a rename.
    fn after_write(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        lines::user_renamed(tx, row.id)
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        let f = features::load(c, row.id)?;
        obj.insert("forwards".into(), json!(f.forwards));
        obj.insert("services".into(), json!(f.services));
        obj.insert("fallbacks".into(), fallbacks_object(&f.fallbacks));
        obj.insert("voicemail".into(), voicemail::relation(c, row.id)?);
        obj.insert("lines".into(), lines::relation(c, row.id)?);
        for many in [
            "groups",
            "incalls",
            "switchboards",
            "queues",
            "call_pickup_target_users",
        ] {
            obj.insert(many.into(), json!([]));
        }
        obj.insert("agent".into(), Value::Null);
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({
            "id": obj.get("id"),
            "uuid": obj.get("uuid"),
            "subscription_type": obj.get("subscription_type"),
            "created_at": obj.get("created_at"),
            "tenant_uuid": obj.get("tenant_uuid"),
        })
    }
}

/// Renames a validation error's fields under `prefix` (`voicemail.number`).
pub fn prefixed(prefix: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::InvalidData {
            details: Value::Object(m),
        } => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = if k == "_schema" {
                    prefix.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(key, v);
            }
            ApiError::InvalidData {
                details: Value::Object(out),
            }
        }
        other => other,
    }
}

/// A JSON object body parsed into `T`, errors naming the field.
fn parse_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match body::parse_json::<Value>(bytes)? {
        Value::Object(m) => from_map(m),
        _ => Err(ApiError::invalid_field(
            "_schema",
            "Invalid input type: expected an object",
        )),
    }
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    recursive: Option<String>,
}

impl ConfdService {
    /// The user a path names (`42`, a uuid, or `me` = the token's user).
    pub async fn user_row(&self, scope: &Scope, id: &str) -> Result<Row, ApiError> {
        self.find::<User>(scope, &scope.resolve_me(id)).await
    }

    async fn delete_user(&self, scope: &Scope, id: &str, query: &str) -> Result<(), ApiError> {
        let q: DeleteQuery = body::parse_query(query)?;
        let recursive = match q.recursive.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::invalid_field("recursive", "Not a valid boolean.")),
        };
        let row = self.user_row(scope, id).await?;
        let (uid, tenant) = (row.id, row.tenant_uuid);
        let user = row.clone();
        let (dissociated, gone_lines, removed) = self
            .store
            .write(move |tx| {
                let vm = voicemail::of_user(tx, uid)?;
                let has_lines = !lines::lines_of_user(tx, uid)?.is_empty();
                for (what, associated) in [("Voicemail", vm.is_some()), ("Line", has_lines)] {
                    if associated && !recursive {
                        return Err(ApiError::conflict(
                            "User",
                            &what.to_lowercase(),
                            format!(
                                "User is still associated ('{what}'): dissociate it first or delete with recursive=true"
                            ),
                        ));
                    }
                }
                tx.execute("DELETE FROM confd_user_voicemail WHERE user_id = ?1", [uid])?;
                super::incalls::destination_deleted(tx, "user", "user_id", &uid)?;
                let gone_lines = lines::remove_all(tx, &user)?;
                // Upstream's recursive delete takes the lines (and their
                // extensions) no other user keeps.
                let mut removed = Vec::new();
                for gone in &gone_lines {
                    if super::lines::line_users(tx, gone.line_id)?.is_empty() {
                        removed.push(super::lines::delete_line_tx(tx, gone.line_id)?);
                    }
                }
                super::docstore::delete(tx, TABLE, uid)?;
                Ok::<_, ApiError>((vm, gone_lines, removed))
            })
            .await?;
        tracing::info!(kind = "User", id = row.id, recursive, "deleted");
        if let Some(vm_id) = dissociated {
            self.user_voicemail_event(&row, vm_id, false);
        }
        self.announce_user_lines(&row, &gone_lines, &[]);
        for (line, extensions) in removed.into_iter().flatten() {
            self.publish::<super::lines::Line>(
                super::lines::Line::DEF.deleted,
                tenant,
                &resource::base_object::<super::lines::Line>(&line),
            );
            for ext in extensions {
                self.publish::<super::extensions::Extension>(
                    super::extensions::Extension::DEF.deleted,
                    tenant,
                    &resource::base_object::<super::extensions::Extension>(&ext),
                );
            }
        }
        self.publish::<User>(User::DEF.deleted, tenant, &resource::base_object::<User>(&row));
        self.astdb.del_tree(&super::astdb::user_family(row.id));
        self.reloader.request(User::DEF.reloads);
        if recursive {
            // The auth user of the same uuid goes too (upstream's recursive delete).
            match self.auth.delete_user(scope, &row.uuid.to_string()).await {
                Ok(()) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(error = %e, user = %row.uuid, "auth user not deleted"),
            }
        }
        Ok(())
    }

    async fn get_forwards(&self, scope: &Scope, id: &str, name: Option<&str>) -> Result<Value, ApiError> {
        let row = self.user_row(scope, id).await?;
        let f = self.user_features(&row).await?;
        Ok(match name {
            None => json!(f.forwards),
            Some(n) => json!(f.forwards.get(n)),
        })
    }

    async fn put_forwards(
        &self,
        scope: &Scope,
        id: &str,
        patches: Vec<(&'static str, ForwardPatch)>,
    ) -> Result<(), ApiError> {
        let row = self.user_row(scope, id).await?;
        self.apply_forwards(&row, patches).await
    }

    /// Changes a user's forwards: stored, pushed to AstDB, one event per change.
    pub(crate) async fn apply_forwards(
        &self,
        row: &Row,
        patches: Vec<(&'static str, ForwardPatch)>,
    ) -> Result<(), ApiError> {
        let names: Vec<&'static str> = patches.iter().map(|(n, _)| *n).collect();
        let before = self.user_features(row).await?;
        let f = self.edit_features(row, move |_, f| f.forwards.apply(patches)).await?;
        features::push(&self.astdb, row.id, &f, &names, &[]);
        for n in names {
            if let Some(fw) = f.forwards.get(n) {
                if before.forwards.get(n) != Some(fw) {
                    self.forward_event(row, n, fw);
                }
            }
        }
        Ok(())
    }

    async fn get_services(&self, scope: &Scope, id: &str, name: Option<&str>) -> Result<Value, ApiError> {
        let row = self.user_row(scope, id).await?;
        let mut f = self.user_features(&row).await?;
        Ok(match name {
            None => json!(f.services),
            Some(n) => json!(f.services.get_mut(n).map(|s| *s)),
        })
    }

    async fn put_services(&self, scope: &Scope, id: &str, body: ServicesBody) -> Result<(), ApiError> {
        let row = self.user_row(scope, id).await?;
        self.apply_services(&row, body).await
    }

    /// Changes a user's services: stored, pushed to AstDB, one event per change.
    pub(crate) async fn apply_services(&self, row: &Row, body: ServicesBody) -> Result<(), ApiError> {
        let mut names: Vec<&'static str> = Vec::new();
        if body.dnd.is_some() {
            names.push("dnd");
        }
        if body.incallfilter.is_some() {
            names.push("incallfilter");
        }
        let before = self.user_features(row).await?;
        let mut f = self
            .edit_features(row, move |_, f| {
                f.services.apply(body);
                Ok(())
            })
            .await?;
        features::push(&self.astdb, row.id, &f, &[], &names);
        let mut before = before;
        for n in names {
            let now = f.services.get_mut(n).map(|s| s.enabled);
            if before.services.get_mut(n).map(|s| s.enabled) != now {
                self.service_event(row, n, now.unwrap_or_default());
            }
        }
        Ok(())
    }

    async fn get_fallbacks(&self, scope: &Scope, id: &str) -> Result<Value, ApiError> {
        let row = self.user_row(scope, id).await?;
        let f = self.user_features(&row).await?;
        Ok(fallbacks_object(&f.fallbacks))
    }

    async fn put_fallbacks(&self, scope: &Scope, id: &str, bytes: Bytes) -> Result<(), ApiError> {
        let row = self.user_row(scope, id).await?;
        let body: Value = body::parse_json(&bytes)?;
        let tenant = row.tenant_uuid;
        self.edit_features(&row, move |tx, f| {
            f.fallbacks = features::check_fallbacks(tx, tenant, &body)?;
            Ok(())
        })
        .await?;
        self.fallback_event(&row);
        self.reloader.request(&[Reload::Dialplan]);
        Ok(())
    }

    /// The outgoing caller ids a user may choose: the tenant's incalls
    /// (none until incalls exist) and `anonymous`.
    async fn outgoing_callerids(&self, scope: &Scope, id: &str) -> Result<Value, ApiError> {
        self.user_row(scope, id).await?;
        Ok(json!({ "total": 1, "items": [{ "type": "anonymous" }] }))
    }
}

fn json_reply(v: &Value) -> Response {
    warp::reply::json(v).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A forward or service name from the path, else 404.
fn known(name: &str, names: &[&'static str], kind: &'static str) -> Result<&'static str, ApiError> {
    names
        .iter()
        .copied()
        .find(|n| *n == name)
        .ok_or_else(|| ApiError::not_found(kind, name))
}

/// Every user route: the extra ones first, then the generic list/get/put.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let limit = svc.body_limit;
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let create = warp::path!("users")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("confd.users.create")?;
                let obj = svc.create_user_nested(&scope, &b).await?;
                Ok(resource::created(&User::DEF, obj))
            })
        });

    let s = svc.clone();
    let head = warp::path!("users" / String)
        .and(warp::head())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "read"))?;
                svc.user_row(&scope, &id).await?;
                Ok(StatusCode::OK.into_response())
            })
        });

    // GET by id, uuid or `me` (the token's user).
    let s = svc.clone();
    let get =
        warp::path!("users" / String)
            .and(warp::get())
            .and(authed.clone())
            .then(move |id: String, caller: Caller| {
                let svc = s.clone();
                respond(async move {
                    let scope = caller.require(&item_acl("users", &id, "read"))?;
                    let row = svc.user_row(&scope, &id).await?;
                    let obj = svc
                        .store
                        .read(move |c| resource::api_object::<User>(c, &row).map_err(ApiError::from))
                        .await?;
                    Ok(json_reply(&obj))
                })
            });

    let s = svc.clone();
    let delete = warp::path!("users" / String)
        .and(warp::delete())
        .and(authed.clone())
        .and(raw_query())
        .then(move |id: String, caller: Caller, q: String| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "delete"))?;
                svc.delete_user(&scope, &id, &q).await?;
                Ok(no_content())
            })
        });

    let s = svc.clone();
    let get_forwards = warp::path!("users" / String / "forwards")
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "forwards.read"))?;
                Ok(json_reply(&svc.get_forwards(&scope, &id, None).await?))
            })
        });

    let s = svc.clone();
    let put_forwards = warp::path!("users" / String / "forwards")
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "forwards.update"))?;
                let body: ForwardsBody = parse_object(&b)?;
                svc.put_forwards(&scope, &id, body.into_list()).await?;
                Ok(no_content())
            })
        });

    let s = svc.clone();
    let get_forward = warp::path!("users" / String / "forwards" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, name: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let name = known(&name, &FORWARDS, "Forward")?;
                // Upstream's ACL says `forward` (singular) here.
                let scope = caller.require(&item_acl("users", &id, &format!("forward.{name}.read")))?;
                Ok(json_reply(&svc.get_forwards(&scope, &id, Some(name)).await?))
            })
        });

    let s = svc.clone();
    let put_forward = warp::path!("users" / String / "forwards" / String)
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, name: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let name = known(&name, &FORWARDS, "Forward")?;
                let scope = caller.require(&item_acl("users", &id, &format!("forwards.{name}.update")))?;
                let patch: ForwardPatch = parse_object(&b)?;
                svc.put_forwards(&scope, &id, vec![(name, patch)]).await?;
                Ok(no_content())
            })
        });

    let s = svc.clone();
    let get_services = warp::path!("users" / String / "services")
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "services.read"))?;
                Ok(json_reply(&svc.get_services(&scope, &id, None).await?))
            })
        });

    let s = svc.clone();
    let put_services = warp::path!("users" / String / "services")
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "services.update"))?;
                let body: ServicesBody = parse_object(&b)?;
                svc.put_services(&scope, &id, body).await?;
                Ok(no_content())
            })
        });

    let s = svc.clone();
    let get_service = warp::path!("users" / String / "services" / String)
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, name: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let name = known(&name, &SERVICES, "Service")?;
                let scope = caller.require(&item_acl("users", &id, &format!("services.{name}.read")))?;
                Ok(json_reply(&svc.get_services(&scope, &id, Some(name)).await?))
            })
        });

    let s = svc.clone();
    let put_service = warp::path!("users" / String / "services" / String)
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, name: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let name = known(&name, &SERVICES, "Service")?;
                let scope = caller.require(&item_acl("users", &id, &format!("services.{name}.update")))?;
                let one: ServiceBody = parse_object(&b)?;
                let body = ServicesBody {
                    dnd: (name == "dnd").then_some(one),
                    incallfilter: (name == "incallfilter").then_some(one),
                };
                svc.put_services(&scope, &id, body).await?;
                Ok(no_content())
            })
        });

    let s = svc.clone();
    let get_fallbacks = warp::path!("users" / String / "fallbacks")
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "fallbacks.read"))?;
                Ok(json_reply(&svc.get_fallbacks(&scope, &id).await?))
            })
        });

    let s = svc.clone();
    let put_fallbacks = warp::path!("users" / String / "fallbacks")
        .and(warp::put())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "fallbacks.update"))?;
                svc.put_fallbacks(&scope, &id, b).await?;
                Ok(no_content())
            })
        });

    let s = svc.clone();
    let callerids = warp::path!("users" / String / "callerids" / "outgoing")
        .and(warp::get())
        .and(authed)
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "callerids.outgoing.read"))?;
                Ok(json_reply(&svc.outgoing_callerids(&scope, &id).await?))
            })
        });

    // Grouped and boxed: a long chain of `or` makes one deeply nested type
    // that is slow to compile.
    let item = create.or(head).unify().or(get).unify().or(delete).unify().boxed();
    let forwards = get_forwards
        .or(put_forwards)
        .unify()
        .or(get_forward)
        .unify()
        .or(put_forward)
        .unify()
        .boxed();
    let services = get_services
        .or(put_services)
        .unify()
        .or(get_service)
        .unify()
        .or(put_service)
        .unify()
        .boxed();
    let others = get_fallbacks.or(put_fallbacks).unify().or(callerids).unify().boxed();
    item.or(forwards)
        .unify()
        .or(services)
        .unify()
        .or(others)
        .unify()
        .or(voicemail::routes(svc.clone()))
        .unify()
        .or(lines::routes(svc.clone()))
        .unify()
        .or(resource::routes::<User>(svc))
        .unify()
        .boxed()
}

/// A user's features after a nested POST, for the AstDB push.
pub(crate) fn push_all(svc: &ConfdService, user_id: i64, f: &Features) {
    features::push(&svc.astdb, user_id, f, &FORWARDS, &SERVICES);
}

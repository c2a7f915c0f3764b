//! User ↔ voicemail: one voicemail per user, both of the same tenant.
//! `PUT /users/{id}/voicemails/{vm}` associates, `POST /users/{id}/voicemails`
//! creates and associates, `GET` lists it, `DELETE` dissociates.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::acl::escape_param;
use crate::auth::caller::{authenticated, Caller, Scope};
use crate::bus::{escape_key, EventSpec};
use crate::confd::docstore::{self, Key, Row};
use crate::confd::error::respond;
use crate::confd::reload::Reload;
use crate::confd::resource::{self, api_object, base_object, insert_row, item_acl, Resource};
use crate::confd::voicemails::{self, Voicemail};
use crate::confd::ConfdService;

/// The voicemail id of a user, if any.
pub fn of_user(c: &Connection, user_id: i64) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT voicemail_id FROM confd_user_voicemail WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )
    .optional()
}

/// `{id, name}` of the user's voicemail, or null.
pub fn relation(c: &Connection, user_id: i64) -> rusqlite::Result<Value> {
    let Some(vm_id) = of_user(c, user_id)? else {
        return Ok(Value::Null);
    };
    Ok(match docstore::get(c, voicemails::TABLE, Key::Id(vm_id))? {
        Some(row) => json!({ "id": row.id, "name": row.str("name") }),
        None => Value::Null,
    })
}

/// Associates in the write transaction: same tenant, one voicemail per user
/// (associating the same one again is a no-op).
pub fn associate(tx: &Connection, user: &Row, vm: &Row) -> Result<bool, ApiError> {
    if vm.tenant_uuid != user.tenant_uuid {
        return Err(ApiError::conflict(
            "User",
            "voicemail",
            "User and Voicemail are not in the same tenant",
        ));
    }
    match of_user(tx, user.id)? {
        Some(id) if id == vm.id => Ok(false),
        Some(id) => Err(ApiError::conflict(
            "User",
            "voicemail",
            format!("User is already associated to a voicemail ('voicemail_id': {id})"),
        )),
        None => {
            tx.execute(
                "INSERT INTO confd_user_voicemail (user_id, voicemail_id) VALUES (?1, ?2)",
                params![user.id, vm.id],
            )?;
            Ok(true)
        }
    }
}

impl ConfdService {
    pub(crate) fn user_voicemail_event(&self, user: &Row, vm_id: i64, associated: bool) {
        let (name, verb) = if associated {
            ("user_voicemail_associated", "updated")
        } else {
            ("user_voicemail_dissociated", "deleted")
        };
        let uuid = user.uuid.to_string();
        self.bus.publish(
            EventSpec::new(
                name,
                format!("config.users.{}.voicemails.{verb}", escape_key(&uuid)),
                json!({ "user_uuid": uuid, "voicemail_id": vm_id }),
            )
            .tenant(user.tenant_uuid)
            .users(vec![user.uuid]),
        );
    }

    async fn user_voicemails(&self, scope: &Scope, id: &str) -> Result<Value, ApiError> {
        let user = self.user_row(scope, id).await?;
        self.store
            .read(move |c| {
                let mut items = Vec::new();
                if let Some(vm_id) = of_user(c, user.id)? {
                    if let Some(row) = docstore::get(c, voicemails::TABLE, Key::Id(vm_id))? {
                        items.push(api_object::<Voicemail>(c, &row)?);
                    }
                }
                Ok::<_, ApiError>(json!({ "total": items.len(), "items": items }))
            })
            .await
    }

    async fn associate_voicemail(&self, scope: &Scope, id: &str, vm_id: &str) -> Result<(), ApiError> {
        let user = self.user_row(scope, id).await?;
        let vm = self.find::<Voicemail>(scope, vm_id).await?;
        let (u, v) = (user.clone(), vm.clone());
        let changed = self.store.write(move |tx| associate(tx, &u, &v)).await?;
        if changed {
            self.user_voicemail_event(&user, vm.id, true);
            self.reloader
                .request(&[Reload::Voicemail, Reload::Dialplan, Reload::Pjsip]);
        }
        Ok(())
    }

    async fn dissociate_voicemail(&self, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let user = self.user_row(scope, id).await?;
        let uid = user.id;
        let vm_id = self
            .store
            .write(move |tx| {
                let vm = of_user(tx, uid)?;
                tx.execute("DELETE FROM confd_user_voicemail WHERE user_id = ?1", [uid])?;
                Ok::<_, ApiError>(vm)
            })
            .await?
            .ok_or_else(|| ApiError::not_found("UserVoicemail", user.id.to_string()))?;
        self.user_voicemail_event(&user, vm_id, false);
        self.reloader
            .request(&[Reload::Voicemail, Reload::Dialplan, Reload::Pjsip]);
        Ok(())
    }

    /// `POST /users/{id}/voicemails`: a new voicemail in the user's tenant,
    /// associated in the same transaction.
    async fn create_user_voicemail(&self, scope: &Scope, id: &str, bytes: &[u8]) -> Result<Value, ApiError> {
        let user = self.user_row(scope, id).await?;
        let mut vm: Voicemail = resource::parse_body(bytes, None)?;
        let tenant = user.tenant_uuid;
        let vm_uuid = uuid::Uuid::new_v4();
        vm.prepare(tenant, vm_uuid, true);
        let u = user.clone();
        let (row, obj) = self
            .store
            .write(move |tx| {
                if let Some(existing) = of_user(tx, u.id)? {
                    return Err(ApiError::conflict(
                        "User",
                        "voicemail",
                        format!("User is already associated to a voicemail ('voicemail_id': {existing})"),
                    ));
                }
                let row = insert_row(tx, tenant, vm_uuid, &vm)?;
                associate(tx, &u, &row)?;
                let obj = api_object::<Voicemail>(tx, &row)?;
                Ok::<_, ApiError>((row, obj))
            })
            .await?;
        self.publish::<Voicemail>(Voicemail::DEF.created, tenant, &base_object::<Voicemail>(&row));
        self.user_voicemail_event(&user, row.id, true);
        self.reloader.request(Voicemail::DEF.reloads);
        Ok(obj)
    }
}

pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let limit = svc.body_limit;
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let list = warp::path!("users" / String / "voicemails")
        .and(warp::get())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "voicemails.read"))?;
                Ok(warp::reply::json(&svc.user_voicemails(&scope, &id).await?).into_response())
            })
        });

    let s = svc.clone();
    let create = warp::path!("users" / String / "voicemails")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |id: String, caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "voicemails.create"))?;
                let obj = svc.create_user_voicemail(&scope, &id, &b).await?;
                Ok(resource::created(&Voicemail::DEF, obj))
            })
        });

    let s = svc.clone();
    let dissociate = warp::path!("users" / String / "voicemails")
        .and(warp::delete())
        .and(authed.clone())
        .then(move |id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require(&item_acl("users", &id, "voicemails.delete"))?;
                svc.dissociate_voicemail(&scope, &id).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let s = svc;
    let associate = warp::path!("users" / String / "voicemails" / String)
        .and(warp::put())
        .and(authed)
        .then(move |id: String, vm_id: String, caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let acl = item_acl("users", &id, &format!("voicemails.{}.update", escape_param(&vm_id)));
                let scope = caller.require(&acl)?;
                svc.associate_voicemail(&scope, &id, &vm_id).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    list.or(create)
        .unify()
        .or(dissociate)
        .unify()
        .or(associate)
        .unify()
        .boxed()
}

//! `POST /users` with the nested body the web UI sends: the user's fields
//! plus `auth` (the accent-auth user, same uuid and tenant, created
//! in-process), `voicemail` (a new one, or `{"id": n}` to associate an
//! existing one), `forwards`, `services` and `fallbacks`.
//!
//! Everything is validated before anything is written. The auth user is
//! created first (its username may be taken); the confd part then goes in
//! one transaction, and if that fails the auth user is deleted again, so a
//! failed POST leaves nothing behind.
//!
//! `lines` (and groups, incalls, switchboards, queues, agent) cannot be
//! created with a user yet: a non-empty list is refused with a 400 naming
//! the field, rather than silently dropped.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::features::{self, Features};
use super::model::{ForwardsBody, ServicesBody};
use super::voicemail::associate;
use super::{prefixed, push_all, User};
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::auth::users::model::UserBody;
use crate::confd::docstore::{self, Key};
use crate::confd::reload::Reload;
use crate::confd::resource::{api_object, base_object, from_map, insert_row, Resource};
use crate::confd::voicemails::{self, Voicemail};
use crate::confd::ConfdService;

enum VoicemailPart {
    Existing(i64),
    New(Box<Voicemail>),
}

fn object(field: &str, v: Value) -> Result<Map<String, Value>, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid_field(
            field,
            "Invalid input type: expected an object.",
        )),
    }
}

/// Present and not null.
fn take(fields: &mut Map<String, Value>, key: &str) -> Option<Value> {
    fields.remove(key).filter(|v| !v.is_null())
}

impl ConfdService {
    pub(super) async fn create_user_nested(&self, scope: &Scope, bytes: &[u8]) -> Result<Value, ApiError> {
        let mut fields = object("_schema", body::parse_json::<Value>(bytes)?)?;
        let auth = take(&mut fields, "auth");
        let voicemail = take(&mut fields, "voicemail");
        let forwards = take(&mut fields, "forwards");
        let services = take(&mut fields, "services");
        let fallbacks = take(&mut fields, "fallbacks");
        for key in [
            "lines",
            "groups",
            "incalls",
            "switchboards",
            "queues",
            "call_pickup_target_users",
        ] {
            match take(&mut fields, key) {
                None => {}
                Some(Value::Array(a)) if a.is_empty() => {}
                Some(_) => {
                    return Err(ApiError::invalid_field(
                        key,
                        format!("Creating {key} together with a user is not supported yet; create them separately."),
                    ))
                }
            }
        }
        if take(&mut fields, "agent").is_some() {
            return Err(ApiError::invalid_field("agent", "Agents are not supported yet."));
        }
        for ro in ["id", "tenant_uuid", "links", "created_at"] {
            fields.remove(ro);
        }
        let uuid = match take(&mut fields, "uuid") {
            None => Uuid::new_v4(),
            Some(Value::String(s)) => {
                Uuid::parse_str(&s).map_err(|_| ApiError::invalid_field("uuid", "Not a valid UUID."))?
            }
            Some(_) => return Err(ApiError::invalid_field("uuid", "Not a valid UUID.")),
        };
        let tenant = scope.tenant();
        let mut user: User = from_map(fields)?;
        user.prepare(tenant, uuid, true);
        user.validate()?;

        let vm_part = match voicemail {
            None => None,
            Some(v) => {
                let mut m = object("voicemail", v)?;
                match m.remove("id").filter(|v| !v.is_null()) {
                    Some(id) => {
                        Some(VoicemailPart::Existing(id.as_i64().ok_or_else(|| {
                            ApiError::invalid_field("voicemail.id", "Not a valid integer.")
                        })?))
                    }
                    None => {
                        m.remove("users");
                        let vm: Voicemail = from_map(m).map_err(|e| prefixed("voicemail", e))?;
                        vm.validate().map_err(|e| prefixed("voicemail", e))?;
                        Some(VoicemailPart::New(Box::new(vm)))
                    }
                }
            }
        };

        let mut feats = Features::default();
        if let Some(v) = forwards {
            let b: ForwardsBody = from_map(object("forwards", v)?).map_err(|e| prefixed("forwards", e))?;
            feats
                .forwards
                .apply(b.into_list())
                .map_err(|e| prefixed("forwards", e))?;
        }
        if let Some(v) = services {
            let b: ServicesBody = from_map(object("services", v)?).map_err(|e| prefixed("services", e))?;
            feats.services.apply(b);
        }

        let auth_body = match auth {
            None => None,
            Some(v) => {
                let mut m = object("auth", v)?;
                m.insert("uuid".into(), Value::String(uuid.to_string()));
                m.entry("firstname")
                    .or_insert_with(|| Value::String(user.firstname.clone()));
                if let Some(l) = &user.lastname {
                    m.entry("lastname").or_insert_with(|| Value::String(l.clone()));
                }
                if let Some(e) = user.email.as_ref().filter(|e| !e.is_empty()) {
                    m.entry("email_address").or_insert_with(|| Value::String(e.clone()));
                }
                // Validated now, so nothing is written for a bad auth block.
                let check: UserBody = from_map(m.clone()).map_err(|e| prefixed("auth", e))?;
                check.into_new().map_err(|e| prefixed("auth", e))?;
                Some(from_map::<UserBody>(m).map_err(|e| prefixed("auth", e))?)
            }
        };

        let auth_user = match auth_body {
            Some(b) => Some(self.auth.create_user(scope, b).await.map_err(|e| prefixed("auth", e))?),
            None => None,
        };

        let written = self
            .store
            .write(move |tx| {
                let row = insert_row(tx, tenant, uuid, &user)?;
                if let Some(v) = &fallbacks {
                    feats.fallbacks = features::check_fallbacks(tx, tenant, v).map_err(|e| prefixed("fallbacks", e))?;
                }
                features::save(tx, row.id, &feats)?;
                let vm = match vm_part {
                    None => None,
                    Some(VoicemailPart::Existing(id)) => {
                        let vm_row = docstore::get(tx, voicemails::TABLE, Key::Id(id))?
                            .filter(|r| r.tenant_uuid == tenant)
                            .ok_or_else(|| {
                                ApiError::invalid_field("voicemail.id", format!("Voicemail was not found ('id': {id})"))
                            })?;
                        associate(tx, &row, &vm_row)?;
                        Some((vm_row, false))
                    }
                    Some(VoicemailPart::New(mut vm)) => {
                        let vm_uuid = Uuid::new_v4();
                        vm.prepare(tenant, vm_uuid, true);
                        let vm_row =
                            insert_row(tx, tenant, vm_uuid, vm.as_ref()).map_err(|e| prefixed("voicemail", e))?;
                        associate(tx, &row, &vm_row)?;
                        Some((vm_row, true))
                    }
                };
                let obj = api_object::<User>(tx, &row)?;
                Ok::<_, ApiError>((row, obj, vm, feats))
            })
            .await;

        let (row, obj, vm, feats) = match written {
            Ok(w) => w,
            Err(e) => {
                if auth_user.is_some() {
                    let removed = self
                        .auth
                        .store
                        .write(move |tx| crate::auth::users::store::delete(tx, uuid))
                        .await;
                    if let Err(re) = removed {
                        tracing::error!(user = %uuid, error = %re, "auth user left behind after a failed POST /users");
                    }
                }
                return Err(e);
            }
        };

        tracing::info!(kind = "User", id = row.id, auth = auth_user.is_some(), "created");
        self.publish::<User>(User::DEF.created, tenant, &base_object::<User>(&row));
        let mut reloads = vec![Reload::Dialplan];
        if let Some((vm_row, created)) = &vm {
            if *created {
                self.publish::<Voicemail>(Voicemail::DEF.created, tenant, &base_object::<Voicemail>(vm_row));
            }
            self.user_voicemail_event(&row, vm_row.id, true);
            reloads.push(Reload::Voicemail);
        }
        self.reloader.request(&reloads);
        push_all(self, row.id, &feats);

        let mut obj = obj;
        if let (Value::Object(o), Some(a)) = (&mut obj, &auth_user) {
            o.insert("auth".into(), a.to_json());
        }
        Ok(obj)
    }
}

//! `POST /users` with the nested body the web UI sends: the user's fields
//! plus `auth` (the accent-auth user, same uuid and tenant, created
//! in-process), `voicemail` (a new one, or `{"id": n}` to associate an
//! existing one), `forwards`, `services` and `fallbacks`.
//!
//! Everything is validated before anything is written ([`plan_user`]); the
//! auth password is hashed outside the transaction; the auth user and the
//! confd part then go in one transaction ([`write_user`]), so a failed POST
//! leaves nothing behind. The CSV import reuses the same three steps.
//!
//! `lines` (see [`LinePart`]) are created with the user in the same
//! transaction, each with its endpoint and extensions, and given to the
//! user in order (the first is the main line); `{"id": n}` gives an
//! existing line instead. Groups, incalls, switchboards, queues and agent
//! cannot be created with a user yet: a non-empty list is refused with a
//! 400 naming the field, rather than silently dropped.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::features::{self, Features};
use super::lines::UserLine;
use super::model::{ForwardsBody, ServicesBody};
use super::voicemail::associate;
use super::{prefixed, push_all, User};
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::auth::users::model::{NewUser, User as AuthUser, UserBody};
use crate::auth::users::store as auth_store;
use crate::confd::docstore::{self, Key, Row};
use crate::confd::endpoints_custom::EndpointCustom;
use crate::confd::endpoints_sccp::EndpointSccp;
use crate::confd::endpoints_sip::EndpointSip;
use crate::confd::extensions::Extension;
use crate::confd::lines::{self, EndpointKind, Line};
use crate::confd::reload::Reload;
use crate::confd::resource::{api_object, base_object, from_map, insert_row, insert_tx, parse_fields, Resource};
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

/// A nested `POST /users` body (or a CSV row) checked and split into what it
/// creates. Nothing is written yet; [`write_user`] writes it in a
/// transaction, [`ConfdService::announce_user`] tells the world.
pub(crate) struct UserPlan {
    uuid: Uuid,
    tenant: Uuid,
    user: User,
    auth: Option<NewUser>,
    voicemail: Option<VoicemailPart>,
    feats: Features,
    fallbacks: Option<Value>,
    lines: Vec<LinePart>,
}

impl UserPlan {
    /// The auth password to hash before the transaction, if any.
    pub(crate) fn password(&self) -> Option<&str> {
        self.auth.as_ref().and_then(|a| a.password.as_deref())
    }
}

/// Checks a nested user body for `tenant`: every field of every part, so a
/// bad body writes nothing.
pub(crate) fn plan_user(tenant: Uuid, mut fields: Map<String, Value>) -> Result<UserPlan, ApiError> {
    let auth = take(&mut fields, "auth");
    let voicemail = take(&mut fields, "voicemail");
    let forwards = take(&mut fields, "forwards");
    let services = take(&mut fields, "services");
    let fallbacks = take(&mut fields, "fallbacks");
    let lines = match take(&mut fields, "lines") {
        None => Vec::new(),
        Some(v) => parse_lines(v)?,
    };
    for key in [
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
    let mut user: User = from_map(fields)?;
    user.prepare(tenant, uuid, true);
    user.validate()?;

    let voicemail = match voicemail {
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

    let auth = match auth {
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
            let body: UserBody = from_map(m).map_err(|e| prefixed("auth", e))?;
            Some(body.into_new().map_err(|e| prefixed("auth", e))?)
        }
    };

    Ok(UserPlan {
        uuid,
        tenant,
        user,
        auth,
        voicemail,
        feats,
        fallbacks,
        lines,
    })
}

/// An auth store error in confd's terms: a taken login or uuid names its
/// field (`auth.username`) and the value, instead of auth's bare "Conflict detected".
fn auth_error(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict { details, .. } => {
            let (field, message) = details
                .as_object()
                .and_then(|o| o.iter().next())
                .map(|(k, v)| (k.clone(), v["message"].as_str().unwrap_or("already used").to_owned()))
                .unwrap_or_else(|| ("username".into(), "already used".into()));
            ApiError::conflict("User", &format!("auth.{field}"), format!("auth.{field}: {message}"))
        }
        other => prefixed("auth", other),
    }
}

/// What [`write_user`] wrote, to announce once committed.
pub(crate) struct UserWrite {
    pub(crate) row: Row,
    obj: Value,
    /// The voicemail and whether it was created here.
    pub(crate) voicemail: Option<(Row, bool)>,
    feats: Features,
    lines: Vec<LineWrite>,
    auth: Option<AuthUser>,
}

impl UserWrite {
    /// The user's first line and that line's first extension and SIP endpoint uuid.
    pub(crate) fn main_line(&self) -> Option<(&Row, Option<&Row>, Option<Uuid>)> {
        self.lines.first().map(|w| {
            let sip = match &w.endpoint {
                Some((EndpointKind::Sip, row, _)) => Some(row.uuid),
                _ => None,
            };
            (&w.line, w.extensions.first().map(|(r, _)| r), sip)
        })
    }
}

/// Writes a planned user in `tx`: the auth user (`hash` is its password's,
/// computed before the transaction), the confd user, its voicemail,
/// features, fallbacks and lines. An error rolls everything back.
pub(crate) fn write_user(
    tx: &rusqlite::Connection,
    plan: UserPlan,
    hash: Option<String>,
) -> Result<UserWrite, ApiError> {
    let UserPlan {
        uuid,
        tenant,
        user,
        auth,
        voicemail,
        mut feats,
        fallbacks,
        lines: line_parts,
    } = plan;
    let auth = match auth {
        None => None,
        Some(new) => {
            auth_store::insert(tx, &new, hash.as_deref(), tenant).map_err(auth_error)?;
            Some(auth_store::get(tx, uuid)?.ok_or_else(|| ApiError::Internal("created auth user not found".into()))?)
        }
    };
    let row = insert_row(tx, tenant, uuid, &user)?;
    if let Some(v) = &fallbacks {
        feats.fallbacks = features::check_fallbacks(tx, tenant, v).map_err(|e| prefixed("fallbacks", e))?;
    }
    features::save(tx, row.id, &feats)?;
    let vm = match voicemail {
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
            let vm_row = insert_row(tx, tenant, vm_uuid, vm.as_ref()).map_err(|e| prefixed("voicemail", e))?;
            associate(tx, &row, &vm_row)?;
            Some((vm_row, true))
        }
    };
    let mut lines = Vec::with_capacity(line_parts.len());
    for (i, part) in line_parts.into_iter().enumerate() {
        lines.push(write_line(tx, &row, part).map_err(|e| prefixed(&format!("lines[{i}]"), e))?);
    }
    let obj = api_object::<User>(tx, &row)?;
    Ok(UserWrite {
        row,
        obj,
        voicemail: vm,
        feats,
        lines,
        auth,
    })
}

impl ConfdService {
    /// `POST /users`: plan, hash, write in one transaction (auth user
    /// included, so a failure leaves nothing), announce.
    pub(super) async fn create_user_nested(&self, scope: &Scope, bytes: &[u8]) -> Result<Value, ApiError> {
        let fields = object("_schema", body::parse_json::<Value>(bytes)?)?;
        let plan = plan_user(scope.tenant(), fields)?;
        let hash = match plan.password() {
            Some(p) => Some(
                self.auth
                    .hasher
                    .hash_async(p.to_owned())
                    .await
                    .map_err(ApiError::Internal)?,
            ),
            None => None,
        };
        let written = self.store.write(move |tx| write_user(tx, plan, hash)).await?;
        self.announce_user(written).await
    }

    /// The events, AstDB writes and reloads of a written user (reloads are
    /// debounced, so an import of many users still reloads once); its API
    /// object (with `auth` when one was created).
    pub(crate) async fn announce_user(&self, w: UserWrite) -> Result<Value, ApiError> {
        let UserWrite {
            row,
            mut obj,
            voicemail,
            feats,
            lines,
            auth,
        } = w;
        let tenant = row.tenant_uuid;
        if let Some(a) = &auth {
            tracing::info!(user = %a.uuid, tenant = %tenant, purpose = a.fields.purpose.as_str(), "user created");
        }
        tracing::info!(kind = "User", id = row.id, auth = auth.is_some(), "created");
        self.publish::<User>(User::DEF.created, tenant, &base_object::<User>(&row));
        let mut reloads = vec![Reload::Dialplan];
        if let Some((vm_row, created)) = &voicemail {
            if *created {
                self.publish::<Voicemail>(Voicemail::DEF.created, tenant, &base_object::<Voicemail>(vm_row));
            }
            self.user_voicemail_event(&row, vm_row.id, true);
            reloads.push(Reload::Voicemail);
        }
        self.reloader.request(&reloads);
        push_all(self, row.id, &feats);
        self.announce_nested_lines(&row, lines).await?;
        if let (Value::Object(o), Some(a)) = (&mut obj, &auth) {
            o.insert("auth".into(), a.to_json());
        }
        Ok(obj)
    }
}

/// One entry of a nested `lines`: an existing line of the tenant
/// (`{"id": n}`) or a new one, with at most one endpoint (new, or an
/// existing one named by `uuid` for SIP, `id` otherwise) and extensions (new,
/// or existing `{"id": n}`).
enum LinePart {
    Existing(i64),
    New(Box<NewLine>),
}

struct NewLine {
    line: Line,
    endpoint: Option<EndpointPart>,
    extensions: Vec<ExtensionPart>,
}

enum EndpointPart {
    Existing(EndpointKind, String),
    Sip(Box<EndpointSip>),
    Sccp(Box<EndpointSccp>),
    Custom(Box<EndpointCustom>),
}

enum ExtensionPart {
    Existing(i64),
    New(Extension),
}

/// What a nested line wrote, to announce after the commit.
struct LineWrite {
    line: Row,
    line_created: bool,
    /// Kind, row and whether it was created here.
    endpoint: Option<(EndpointKind, Row, bool)>,
    extensions: Vec<(Row, bool)>,
    user_line: Option<UserLine>,
}

fn list(field: &str, v: Value) -> Result<Vec<Value>, ApiError> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(ApiError::invalid_field(field, "Invalid input type: expected a list.")),
    }
}

/// `id` of an entry naming an existing resource, if it does.
fn existing_id(m: &mut Map<String, Value>, field: &str) -> Result<Option<i64>, ApiError> {
    match take(m, "id") {
        None => Ok(None),
        Some(id) => id
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field(field, "Not a valid integer.")),
    }
}

/// The nested `lines`, every field checked before anything is written
/// (errors name `lines[i].<field>`).
fn parse_lines(v: Value) -> Result<Vec<LinePart>, ApiError> {
    let mut parts = Vec::new();
    for (i, item) in list("lines", v)?.into_iter().enumerate() {
        let prefix = format!("lines[{i}]");
        let mut m = object(&prefix, item)?;
        if let Some(id) = existing_id(&mut m, &format!("{prefix}.id"))? {
            parts.push(LinePart::Existing(id));
            continue;
        }
        if take(&mut m, "device_id").is_some() {
            return Err(ApiError::invalid_field(
                &format!("{prefix}.device_id"),
                "Provisioning a device with a new user is not supported yet; use PUT /lines/{id}/devices/{device_id}.",
            ));
        }
        let mut endpoints = Vec::new();
        for kind in [EndpointKind::Sip, EndpointKind::Sccp, EndpointKind::Custom] {
            let key = kind.field();
            if let Some(ep) = take(&mut m, key) {
                endpoints.push(parse_endpoint(&format!("{prefix}.{key}"), kind, ep)?);
            }
        }
        if endpoints.len() > 1 {
            return Err(ApiError::invalid_field(
                &prefix,
                "A line has one endpoint: give only one of endpoint_sip, endpoint_sccp, endpoint_custom.",
            ));
        }
        let mut extensions = Vec::new();
        if let Some(exts) = take(&mut m, "extensions") {
            for (j, ext) in list(&format!("{prefix}.extensions"), exts)?.into_iter().enumerate() {
                let field = format!("{prefix}.extensions[{j}]");
                let mut em = object(&field, ext)?;
                extensions.push(match existing_id(&mut em, &format!("{field}.id"))? {
                    Some(id) => ExtensionPart::Existing(id),
                    None => ExtensionPart::New(parse_fields(em, None).map_err(|e| prefixed(&field, e))?),
                });
            }
        }
        // Validated when written (`insert_tx`), once the provisioning code is generated.
        let line: Line = parse_fields(m, None).map_err(|e| prefixed(&prefix, e))?;
        parts.push(LinePart::New(Box::new(NewLine {
            line,
            endpoint: endpoints.pop(),
            extensions,
        })));
    }
    Ok(parts)
}

fn parse_endpoint(field: &str, kind: EndpointKind, v: Value) -> Result<EndpointPart, ApiError> {
    let mut m = object(field, v)?;
    let key = if kind == EndpointKind::Sip { "uuid" } else { "id" };
    if let Some(existing) = take(&mut m, key) {
        let existing = match existing {
            Value::String(s) => s,
            other => other.to_string(),
        };
        return Ok(EndpointPart::Existing(kind, existing));
    }
    let named = |e| prefixed(field, e);
    Ok(match kind {
        EndpointKind::Sip => EndpointPart::Sip(Box::new(parse_fields(m, None).map_err(named)?)),
        EndpointKind::Sccp => EndpointPart::Sccp(Box::new(parse_fields(m, None).map_err(named)?)),
        EndpointKind::Custom => EndpointPart::Custom(Box::new(parse_fields(m, None).map_err(named)?)),
    })
}

/// A resource of `table` in the user's tenant named by a nested body, else a
/// 400 on `field`.
fn tenant_row(
    tx: &rusqlite::Connection,
    table: &str,
    key: &str,
    user: &Row,
    field: &str,
    kind: &str,
) -> Result<Row, ApiError> {
    Key::parse(key)
        .map(|k| docstore::get(tx, table, k))
        .transpose()?
        .flatten()
        .filter(|r| r.tenant_uuid == user.tenant_uuid)
        .ok_or_else(|| ApiError::invalid_field(field, format!("{kind} was not found ('id': '{key}')")))
}

/// Creates (or finds) one nested line, its endpoint and extensions, and
/// gives it to `user`, inside the user's transaction.
fn write_line(tx: &rusqlite::Connection, user: &Row, part: LinePart) -> Result<LineWrite, ApiError> {
    let tenant = user.tenant_uuid;
    let new = match part {
        LinePart::Existing(id) => {
            let line = tenant_row(tx, lines::TABLE, &id.to_string(), user, "id", "Line")?;
            let user_line = super::lines::associate(tx, user, &line)?;
            return Ok(LineWrite {
                line,
                line_created: false,
                endpoint: None,
                extensions: Vec::new(),
                user_line,
            });
        }
        LinePart::New(new) => *new,
    };
    let line = insert_tx(tx, tenant, new.line)?;
    let endpoint = match new.endpoint {
        None => None,
        Some(part) => {
            let (kind, row, created) = match part {
                EndpointPart::Existing(kind, key) => {
                    let field = format!(
                        "{}.{}",
                        kind.field(),
                        if kind == EndpointKind::Sip { "uuid" } else { "id" }
                    );
                    (
                        kind,
                        tenant_row(tx, kind.table(), &key, user, &field, "Endpoint")?,
                        false,
                    )
                }
                EndpointPart::Sip(ep) => (
                    EndpointKind::Sip,
                    insert_tx(tx, tenant, *ep).map_err(|e| prefixed("endpoint_sip", e))?,
                    true,
                ),
                EndpointPart::Sccp(ep) => (
                    EndpointKind::Sccp,
                    insert_tx(tx, tenant, *ep).map_err(|e| prefixed("endpoint_sccp", e))?,
                    true,
                ),
                EndpointPart::Custom(ep) => (
                    EndpointKind::Custom,
                    insert_tx(tx, tenant, *ep).map_err(|e| prefixed("endpoint_custom", e))?,
                    true,
                ),
            };
            lines::associate_endpoint_tx(tx, &line, kind, &row)?;
            Some((kind, row, created))
        }
    };
    let mut extensions = Vec::new();
    for (j, part) in new.extensions.into_iter().enumerate() {
        let field = format!("extensions[{j}]");
        let (row, created) = match part {
            ExtensionPart::Existing(id) => (
                tenant_row(
                    tx,
                    crate::confd::extensions::TABLE,
                    &id.to_string(),
                    user,
                    &format!("{field}.id"),
                    "Extension",
                )?,
                false,
            ),
            ExtensionPart::New(ext) => (insert_tx(tx, tenant, ext).map_err(|e| prefixed(&field, e))?, true),
        };
        lines::associate_extension_tx(tx, &line, &row)?;
        extensions.push((row, created));
    }
    let user_line = super::lines::associate(tx, user, &line)?;
    Ok(LineWrite {
        line,
        line_created: true,
        endpoint,
        extensions,
        user_line,
    })
}

impl ConfdService {
    /// The events and reloads of the nested lines, once committed.
    async fn announce_nested_lines(&self, user: &Row, writes: Vec<LineWrite>) -> Result<(), ApiError> {
        let mut associated = Vec::new();
        for w in writes {
            if w.line_created {
                self.announce_created::<Line>(&w.line);
            }
            if let Some((kind, ep, created)) = &w.endpoint {
                if *created {
                    match kind {
                        EndpointKind::Sip => self.announce_created::<EndpointSip>(ep),
                        EndpointKind::Sccp => self.announce_created::<EndpointSccp>(ep),
                        EndpointKind::Custom => self.announce_created::<EndpointCustom>(ep),
                    }
                }
                self.announce_line_endpoint(&w.line, *kind, ep, true).await?;
            }
            for (ext, created) in &w.extensions {
                if *created {
                    self.announce_created::<Extension>(ext);
                }
                self.announce_line_extension(&w.line, ext.id, true).await?;
            }
            associated.extend(w.user_line);
        }
        self.announce_user_lines(user, &[], &associated);
        Ok(())
    }
}

//! accent-confd: the provisioning REST API under `/api/confd/1.1`. Every
//! resource has the same layout (see `resource.rs`): a typed model with its
//! validation, the shared document store, the five REST operations, events
//! and the Asterisk reloads its changes need (`reload.rs`).

pub mod applications;
pub mod astdb;
pub mod asterisk_files;
pub mod conferences;
pub mod contexts;
pub mod devices;
pub mod docstore;
pub mod endpoints_custom;
pub mod endpoints_sccp;
pub mod endpoints_sip;
pub mod error;
pub mod extension_link;
pub mod extensions;
pub mod features;
pub mod fields;
pub mod incalls;
pub mod lines;
pub mod options;
pub mod outcalls;
pub mod parking_lots;
pub mod reload;
pub mod render;
pub mod resource;
pub mod sip_transports;
pub mod switchboards;
pub mod trunks;
pub mod user_import;
pub mod users;
pub mod voicemails;

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use self::error::respond;
use self::reload::Reloader;
use crate::api::body;
use crate::api::error::ApiError;
use crate::api::status::StatusRegistry;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::AuthService;
use crate::bus::{Bus, EventSpec};
use crate::store::Store;

/// The version `/infos` reports (both spellings clients read).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct ConfdService {
    pub store: Store,
    pub bus: Bus,
    pub auth: Arc<AuthService>,
    pub status: Arc<StatusRegistry>,
    pub reloader: Reloader,
    /// Live per-user settings pushed to Asterisk's database.
    pub astdb: astdb::AstDb,
    pub body_limit: u64,
    pub uuid: Uuid,
    pub config: crate::config::ConfdConfig,
    /// accentd's own Stasis application (config `ari.app`): the dialplan sends
    /// switchboard calls into it.
    pub stasis_app: String,
}

const LIVE_RELOAD_KEY: &str = "live_reload";

impl ConfdService {
    /// Reads the persisted live-reload switch (default on).
    pub async fn load_live_reload(store: &Store) -> Result<bool, ApiError> {
        store
            .read(|c| {
                let v: Option<String> = c
                    .query_row(
                        "SELECT value FROM confd_setting WHERE key = ?1",
                        [LIVE_RELOAD_KEY],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok::<_, ApiError>(v.map(|v| v != "false").unwrap_or(true))
            })
            .await
    }

    async fn set_live_reload(&self, enabled: bool) -> Result<(), ApiError> {
        self.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO confd_setting (key, value) VALUES (?1, ?2) \
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    rusqlite::params![LIVE_RELOAD_KEY, if enabled { "true" } else { "false" }],
                )?;
                Ok::<_, ApiError>(())
            })
            .await?;
        self.reloader.set_live_reload(enabled);
        self.bus.publish(EventSpec::new(
            "live_reload_edited",
            "config.live_reload.edited",
            json!({ "live_reload_enabled": enabled }),
        ));
        Ok(())
    }
}

impl ConfdService {
    /// Renders every Asterisk file (checked) and writes the changed ones into `dir`.
    pub async fn render_to(&self, dir: &std::path::Path) -> Result<Vec<String>, render::RenderError> {
        let templates = render::Templates::load(self.config.templates_dir.as_deref())?;
        let files = render::render_store_for(&self.store, &templates, &self.stasis_app).await?;
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || render::write_changed(&dir, &files))
            .await
            .map_err(|e| render::RenderError::Store(e.to_string()))?
    }

    /// The reload worker's first step: the files Asterisk will re-read.
    pub fn before_reload(self: &Arc<Self>) -> Option<reload::BeforeReload> {
        let dir = self.config.asterisk_config_dir.clone()?;
        let svc = self.clone();
        Some(Arc::new(move || {
            let (svc, dir) = (svc.clone(), dir.clone());
            Box::pin(async move {
                let changed = svc.render_to(&dir).await.map_err(|e| e.to_string())?;
                if !changed.is_empty() {
                    tracing::info!(?changed, dir = %dir.display(), "Asterisk configuration written");
                }
                Ok(())
            })
        }))
    }
}

/// What still uses the context `name`: `(what, count)` per kind of user.
pub fn context_users(c: &Connection, name: &str) -> Result<Vec<(&'static str, i64)>, ApiError> {
    let extensions: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM {} WHERE context = ?1", extensions::TABLE),
        [name],
        |r| r.get(0),
    )?;
    let lines: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM {} WHERE context = ?1", lines::TABLE),
        [name],
        |r| r.get(0),
    )?;
    let voicemails = voicemails::count_in_context(c, name)?;
    let trunks: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM {} WHERE context = ?1", trunks::TABLE),
        [name],
        |r| r.get(0),
    )?;
    Ok(vec![
        ("Extension", extensions),
        ("Line", lines),
        ("Voicemail", voicemails),
        ("Trunk", trunks),
    ])
}

/// Numeric extensions already defined in the context (sorted), for range availability.
pub fn taken_extens(c: &Connection, context: &str) -> Result<Vec<u128>, ApiError> {
    let mut stmt = c.prepare_cached(&format!("SELECT exten FROM {} WHERE context = ?1", extensions::TABLE))?;
    let rows = stmt.query_map([context], |r| r.get::<_, String>(0))?;
    let mut out: Vec<u128> = Vec::new();
    for r in rows {
        if let Ok(n) = r?.parse::<u128>() {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The read-only relations of an extension (`lines`, `incall`...). Resources
/// that own extensions add theirs here.
pub fn extension_relations(c: &Connection, id: i64, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
    let lines: Vec<Value> = lines::lines_of_extension(c, id)?
        .into_iter()
        .map(|line_id| json!({ "id": line_id }))
        .collect();
    obj.insert("lines".into(), Value::Array(lines));
    let incall = incalls::incall_of_extension(c, id)?.map(|i| json!({ "id": i }));
    obj.insert("incall".into(), incall.unwrap_or(Value::Null));
    let outcall = match outcalls::outcall_of_extension(c, id)? {
        Some(o) => docstore::get(c, outcalls::TABLE, docstore::Key::Id(o))?
            .map(|row| json!({ "id": row.id, "name": row.doc.get("name") })),
        None => None,
    };
    obj.insert("outcall".into(), outcall.unwrap_or(Value::Null));
    let conference = match conferences::conference_of_extension(c, id)? {
        Some(o) => docstore::get(c, conferences::TABLE, docstore::Key::Id(o))?
            .map(|row| json!({ "id": row.id, "name": row.doc.get("name") })),
        None => None,
    };
    obj.insert("conference".into(), conference.unwrap_or(Value::Null));
    let parking_lot = parking_lots::lot_of_extension(c, id)?.map(|p| json!({ "id": p }));
    obj.insert("parking_lot".into(), parking_lot.unwrap_or(Value::Null));
    for single in ["group", "queue"] {
        obj.insert(single.into(), Value::Null);
    }
    Ok(())
}

/// The kind of resource an extension is associated with, if any.
pub fn extension_owner(c: &Connection, id: i64) -> Result<Option<&'static str>, ApiError> {
    if !lines::lines_of_extension(c, id)?.is_empty() {
        return Ok(Some("Line"));
    }
    if incalls::incall_of_extension(c, id)?.is_some() {
        return Ok(Some("Incall"));
    }
    if outcalls::outcall_of_extension(c, id)?.is_some() {
        return Ok(Some("Outcall"));
    }
    if conferences::conference_of_extension(c, id)?.is_some() {
        return Ok(Some("Conference"));
    }
    if parking_lots::lot_of_extension(c, id)?.is_some() {
        return Ok(Some("ParkingLot"));
    }
    Ok(None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveReloadBody {
    enabled: bool,
}

/// Every confd route, under `/api/confd/1.1`.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());

    let s = svc.clone();
    let infos = warp::path!("infos")
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let svc = s.clone();
            respond(async move {
                caller.require("confd.infos.read")?;
                Ok(warp::reply::json(&json!({
                    "uuid": svc.uuid,
                    "accent_version": VERSION,
                    "wazo_version": VERSION,
                }))
                .into_response())
            })
        });

    let status = crate::api::status::route("confd.status.read", svc.auth.clone(), svc.status.clone());

    let s = svc.clone();
    let get_live = warp::path!("configuration" / "live_reload")
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let svc = s.clone();
            respond(async move {
                caller.require("confd.configuration.live_reload.read")?;
                Ok(warp::reply::json(&json!({ "enabled": svc.reloader.live_reload() })).into_response())
            })
        });

    let s = svc.clone();
    let put_live = warp::path!("configuration" / "live_reload")
        .and(warp::put())
        .and(authed)
        .and(body::limited_bytes(svc.body_limit))
        .then(move |caller: Caller, b: Bytes| {
            let svc = s.clone();
            respond(async move {
                caller.require("confd.configuration.live_reload.update")?;
                let b: LiveReloadBody = body::parse_json(&b)?;
                svc.set_live_reload(b.enabled).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    let api = contexts::routes(svc.clone())
        .or(features::routes(svc.clone()))
        .unify()
        .or(resource::routes::<extensions::Extension>(svc.clone()))
        .unify()
        .or(trunks::routes(svc.clone()))
        .unify()
        .or(incalls::routes(svc.clone()))
        .unify()
        .or(outcalls::routes(svc.clone()))
        .unify()
        .or(conferences::routes(svc.clone()))
        .unify()
        .or(parking_lots::routes(svc.clone()))
        .unify()
        .or(sip_transports::routes(svc.clone()))
        .unify()
        .or(endpoints_sip::routes(svc.clone()))
        .unify()
        .or(resource::routes::<endpoints_sccp::EndpointSccp>(svc.clone()))
        .unify()
        .or(resource::routes::<endpoints_custom::EndpointCustom>(svc.clone()))
        .unify()
        .or(lines::routes(svc.clone()))
        .unify()
        .or(resource::routes::<devices::Device>(svc.clone()))
        .unify()
        .or(user_import::routes(svc.clone()))
        .unify()
        .or(users::routes(svc.clone()))
        .unify()
        .or(resource::routes::<voicemails::Voicemail>(svc.clone()))
        .unify()
        .or(applications::routes(svc.clone()))
        .unify()
        .or(switchboards::routes(svc.clone()))
        .unify()
        .or(asterisk_files::routes(svc))
        .unify()
        .or(infos)
        .unify()
        .or(status)
        .unify()
        .or(get_live)
        .unify()
        .or(put_live)
        .unify();
    warp::path("api")
        .and(warp::path("confd"))
        .and(warp::path("1.1"))
        .and(api)
        .boxed()
}

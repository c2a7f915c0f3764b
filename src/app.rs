//! Wiring: builds every service from the config and runs the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::ami::AmiClient;
use crate::api::config::{DebugHook, RuntimeConfig};
use crate::api::status::{Health, StatusRegistry};
use crate::ari::{AriClient, AriEvents, AriEventsOptions};
use crate::auth::AuthService;
use crate::bus::Bus;
use crate::calllog::CallLogService;
use crate::confd::reload::{ReloadOptions, Reloader};
use crate::confd::ConfdService;
use crate::config::Config;
use crate::control::{FeedOptions, Links, LiveState};
use crate::store::Store;

/// Every long-lived part of the process; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub bus: Bus,
    pub auth: Arc<AuthService>,
    pub status: Arc<StatusRegistry>,
    pub runtime: Arc<RuntimeConfig>,
    pub uuid: Uuid,
    /// The AMI link, once [`start`] ran with `ami.addr` set; `None` without Asterisk.
    pub ami: Option<AmiClient>,
    /// The Asterisk REST client and events websocket; `None` when
    /// `ari.url` is empty (no Asterisk configured) or invalid.
    pub ari: Option<AriHandles>,
    /// The live PBX state (channels, bridges, calls, device states), fed from the AMI and ARI
    /// links once [`start`] ran; empty without Asterisk.
    pub live: LiveState,
    pub calllog: Arc<CallLogService>,
    pub confd: Arc<ConfdService>,
    pub calld: Arc<crate::calld::CalldService>,
    pub chat: Arc<crate::chat::ChatService>,
    pub websocketd: Arc<crate::websocketd::WebsocketService>,
    /// The reload worker's queue, taken by [`start`].
    confd_reload_rx: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<()>>>>,
}

/// The ARI side of the Asterisk link, as the rest of accentd uses it.
#[derive(Clone, Debug)]
pub struct AriHandles {
    pub client: AriClient,
    pub events: AriEvents,
}

impl App {
    /// Opens the store (migrating it), runs the first-start setup and loads
    /// the auth state.
    pub async fn init(config: Config, debug_hook: Option<DebugHook>) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let db_path = config.db_path();
        let store = tokio::task::spawn_blocking(move || Store::open(&db_path))
            .await
            .context("store task")?
            .context("cannot open the store")?;
        let uuid = crate::auth::bootstrap::installation_uuid(&store, config.uuid).await?;
        let bus = Bus::new(uuid);
        let hasher = crate::auth::password::Hasher::new(&config.auth.argon2).map_err(anyhow::Error::msg)?;
        crate::auth::bootstrap::run(&store, &config, &hasher).await?;
        let config = Arc::new(config);
        let auth = AuthService::start(config.clone(), store.clone(), bus.clone(), uuid).await?;
        let status = Arc::new(StatusRegistry::default());
        status.set("rest_api", Health::Ok, None);
        status.set("store", Health::Ok, None);
        status.set("master_tenant", Health::Ok, None);
        let runtime = Arc::new(RuntimeConfig::new(debug_hook));
        let calllog = CallLogService::new(
            store.clone(),
            bus.clone(),
            auth.clone(),
            status.clone(),
            config.call_logs.clone(),
            config.data_dir.join("exports"),
        );
        match calllog.fail_interrupted_exports().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                exports = n,
                "recording exports interrupted by the last stop marked as error"
            ),
            Err(e) => tracing::error!(error = %e, "cannot check interrupted recording exports"),
        }
        let live_reload = ConfdService::load_live_reload(&store)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read confd settings: {e}"))?;
        let (reloader, reload_rx) = Reloader::new(live_reload);
        let confd = Arc::new(ConfdService {
            store: store.clone(),
            bus: bus.clone(),
            auth: auth.clone(),
            status: status.clone(),
            reloader,
            astdb: crate::confd::astdb::AstDb::new(),
            body_limit: config.http.body_limit,
            uuid,
            config: config.confd.clone(),
            stasis_app: config.ari.app.clone(),
        });
        let live = LiveState::new();
        let calld = Arc::new(crate::calld::CalldService::new(
            auth.clone(),
            store.clone(),
            bus.clone(),
            live.clone(),
            config.call_logs.recordings_dir.clone(),
            config.http.body_limit,
            &config.calld,
        ));
        let chat = crate::chat::ChatService::new(
            store.clone(),
            bus.clone(),
            auth.clone(),
            live.clone(),
            uuid,
            config.http.body_limit,
        );
        let websocketd = crate::websocketd::WebsocketService::new(
            auth.clone(),
            bus.clone(),
            status.clone(),
            crate::websocketd::WebsocketConfig::default(),
        );
        Ok(App {
            confd,
            calld,
            chat,
            websocketd,
            confd_reload_rx: Arc::new(std::sync::Mutex::new(Some(reload_rx))),
            calllog,
            config,
            store,
            bus,
            auth,
            status,
            runtime,
            uuid,
            ari: None,
            ami: None,
            live,
        })
    }

    /// The whole route tree with the JSON error mapping on top.
    pub fn routes(&self) -> BoxedFilter<(Response,)> {
        let status = self.status.clone();
        // `/status` and `/api/auth/0.1/status`: HEAD answers 200 (upstream
        // auth), GET shows every component (rest_api, store, ari, ami...).
        let status_route = warp::path!("status")
            .and(warp::head().or(warp::get()).unify())
            .and(warp::method())
            .map(move |method: warp::http::Method| {
                if method == warp::http::Method::HEAD {
                    warp::http::StatusCode::OK.into_response()
                } else {
                    warp::reply::json(&status.snapshot()).into_response()
                }
            });
        let auth_extra = warp::path("api").and(warp::path("auth")).and(warp::path("0.1")).and(
            crate::api::config::routes("auth", self.auth.clone(), self.runtime.clone())
                .or(status_route.clone())
                .unify(),
        );
        // chatd's `/status` and `/config` (its rooms and presences are in `chat`).
        let chatd_extra = warp::path("api").and(warp::path("chatd")).and(warp::path("1.0")).and(
            crate::api::config::routes("chatd", self.auth.clone(), self.runtime.clone())
                .or(crate::api::status::route(
                    "chatd.status.read",
                    self.auth.clone(),
                    self.status.clone(),
                ))
                .unify(),
        );
        crate::auth::routes::routes(self.auth.clone())
            .or(auth_extra)
            .unify()
            .or(crate::calllog::routes(self.calllog.clone()))
            .unify()
            .or(crate::confd::routes(self.confd.clone()))
            .unify()
            .or(crate::calld::routes(self.calld.clone()))
            .unify()
            .or(crate::chat::routes(self.chat.clone()))
            .unify()
            .or(chatd_extra)
            .unify()
            .or(crate::websocketd::routes(self.websocketd.clone()))
            .unify()
            .or(status_route)
            .unify()
            .recover(crate::api::error::recover)
            .unify()
            .boxed()
    }
}

/// A started accentd: the bound address and a handle to stop it.
pub struct Running {
    pub app: App,
    pub addr: SocketAddr,
    pub tls: bool,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops background tasks.
    pub async fn stop(self) {
        self.shutdown.cancel();
        // Upgraded connections outlive the server's graceful shutdown: close them.
        self.app.websocketd.shutdown();
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(ami) = &self.app.ami {
            // Bounded: its Logoff has its own short timeouts.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), ami.stopped()).await;
        }
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until something cancels the shutdown token, then stops.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.stop().await;
    }
}

/// Binds the listener and starts the server and background tasks.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with(config, None).await
}

/// [`start`] with a hook that switches debug logging (from `main`).
pub async fn start_with(config: Config, debug_hook: Option<DebugHook>) -> anyhow::Result<Running> {
    let tls = crate::api::server::tls_from_config(&config)?;
    let listen = config.listen;
    let mut app = App::init(config, debug_hook).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    app.ami = start_ami(&app, &shutdown);
    let is_tls = tls.is_some();
    // ARI first, so the routes (built from `app`) see its handles.
    let mut app = app;
    let mut tasks = Vec::new();
    if let Some((handles, task)) = start_ari(&app, shutdown.clone()) {
        app.ari = Some(handles);
        tasks.push(task);
    }
    if let Some(ami) = &app.ami {
        let _ = app.calld.ami.set(ami.clone());
        crate::calld::voicemail::spawn_watcher(app.calld.clone(), ami.clone(), shutdown.clone());
        crate::calld::conferences::spawn_watcher(app.calld.clone(), ami.clone(), shutdown.clone());
        crate::calld::parking::spawn_watcher(app.calld.clone(), ami.clone(), shutdown.clone());
        crate::calld::faxes::spawn_watcher(app.calld.clone(), ami.clone(), shutdown.clone());
    }
    if let Some(ari) = &app.ari {
        let _ = app.calld.ari.set(ari.client.clone());
        app.calld.set_main_app(&app.config.ari.app);
        tasks.push(crate::calld::stasis::spawn(
            app.calld.clone(),
            &ari.events,
            shutdown.clone(),
        ));
    }
    tasks.push(crate::calld::applications::stasis::spawn(
        app.calld.clone(),
        shutdown.clone(),
    ));
    if app.ami.is_some() || app.ari.is_some() {
        tasks.push(crate::calld::events::spawn(app.calld.clone(), shutdown.clone()));
        let links = Links {
            ami: app.ami.clone(),
            ari: app.ari.as_ref().map(|h| (h.client.clone(), h.events.clone())),
        };
        tasks.push(crate::control::feed::spawn(
            app.live.clone(),
            links,
            FeedOptions::default(),
            shutdown.clone(),
        ));
    }
    if let Some(ami) = &app.ami {
        tasks.push(crate::confd::users::feature_codes::spawn(
            app.confd.clone(),
            ami,
            shutdown.clone(),
        ));
        tasks.push(crate::calllog::live::spawn(
            app.calllog.clone(),
            ami,
            crate::calllog::live::LiveOptions::default(),
            shutdown.clone(),
        ));
    }
    let reload_rx = app.confd_reload_rx.lock().ok().and_then(|mut rx| rx.take());
    if let Some(rx) = reload_rx {
        tasks.push(app.confd.reloader.spawn(
            rx,
            app.ami.clone(),
            app.status.clone(),
            app.confd.before_reload(),
            ReloadOptions::default(),
            shutdown.clone(),
        ));
    }
    tasks.push(app.confd.astdb.spawn(
        app.ami.clone(),
        Some((app.store.clone(), crate::confd::users::features::snapshot)),
        shutdown.clone(),
    ));
    tasks.extend(crate::calllog::batch::spawn_daily(
        app.calllog.clone(),
        shutdown.clone(),
    ));
    tasks.push(tokio::spawn(crate::api::server::serve(
        listener,
        app.routes(),
        tls,
        shutdown.clone(),
    )));
    tasks.push(app.auth.spawn_cleanup(shutdown.clone()));
    // Without Asterisk too: sessions, DND and `PUT`s change presences.
    tasks.push(crate::chat::presences::events::spawn(
        app.chat.clone(),
        shutdown.clone(),
    ));
    // Off unless `amqp.url` is set: then every bus event also goes to RabbitMQ.
    tasks.extend(crate::bus::amqp::spawn(
        &app.bus,
        &app.config.amqp,
        app.status.clone(),
        crate::bus::amqp::AmqpOptions::default(),
        shutdown.clone(),
    ));
    tracing::info!(%addr, tls = is_tls, uuid = %app.uuid, "accentd listening");
    Ok(Running {
        app,
        addr,
        tls: is_tls,
        shutdown,
        tasks,
    })
}

/// Starts the ARI client and events websocket when `ari.url` is set. Without
/// it (or with a URL that cannot make a client) the `ari` status says why and
/// accentd serves its API without Asterisk.
fn start_ari(app: &App, shutdown: CancellationToken) -> Option<(AriHandles, tokio::task::JoinHandle<()>)> {
    let config = &app.config.ari;
    if config.url.trim().is_empty() {
        app.status.set(
            crate::ari::ws::STATUS_COMPONENT,
            Health::Fail,
            Some("not configured".into()),
        );
        return None;
    }
    let client = match AriClient::new(config) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "ARI client not started");
            app.status
                .set(crate::ari::ws::STATUS_COMPONENT, Health::Fail, Some(e.to_string()));
            return None;
        }
    };
    let (events, task) = AriEvents::start_with_client(
        client.clone(),
        &config.app,
        app.status.clone(),
        shutdown,
        AriEventsOptions::default(),
    );
    Some((AriHandles { client, events }, task))
}

/// Starts the AMI link when configured. Without it the status says why `ami` fails, and
/// everything that does not need Asterisk keeps working.
fn start_ami(app: &App, shutdown: &CancellationToken) -> Option<AmiClient> {
    if app.config.ami.addr.is_empty() {
        app.status.set(
            crate::ami::STATUS_COMPONENT,
            Health::Fail,
            Some("not configured".into()),
        );
        return None;
    }
    Some(AmiClient::spawn(
        app.config.ami.clone(),
        app.status.clone(),
        shutdown.clone(),
    ))
}

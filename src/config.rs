//! Configuration: one TOML file (optional), every key with a default, every key
//! overridable from the environment.
//!
//! Precedence is defaults < file < environment, because an operator's unit file
//! or container environment must be able to override a packaged config file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Errors a bad configuration produces. They name the key (and, for the file,
/// the line) so the operator can fix it without reading code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
    #[error("setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the one HTTP(S) port that serves every API.
    pub listen: SocketAddr,
    /// Where the SQLite store, the generated admin password and TLS files live.
    pub data_dir: PathBuf,
    /// UUID of this PBX installation (`accent_uuid` in tokens, `origin_uuid`
    /// in events). Generated and stored in the data dir when absent.
    pub uuid: Option<Uuid>,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub ari: AriConfig,
    pub ami: AmiConfig,
    pub call_logs: CallLogsConfig,
    pub confd: ConfdConfig,
    pub calld: CalldConfig,
    pub smtp: SmtpConfig,
    pub amqp: AmqpConfig,
}

/// The optional RabbitMQ publisher: every bus event also goes to a headers exchange, for
/// systems outside this process. An empty `url` turns it off (the default).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:5672/%2f` (or `amqps://`); the password never reaches logs,
    /// `Debug`, `/status` or `check-config`.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    /// The headers exchange events are published to, declared durable when missing.
    pub exchange: String,
    /// Events kept while the broker is down; beyond it the oldest are dropped (and counted
    /// in `/status`).
    pub buffer: usize,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: String::new(),
            exchange: "accent-headers".into(),
            buffer: 10_000,
        }
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &redact_url(&self.url))
            .field("exchange", &self.exchange)
            .field("buffer", &self.buffer)
            .finish()
    }
}

/// A URL with its password replaced, for display: a broker URL carries the credentials.
/// A URL that does not parse is hidden whole, since where its password sits is unknown.
pub fn redact_url(url: &str) -> String {
    if url.is_empty() {
        return String::new();
    }
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() && u.set_password(Some("redacted")).is_err() {
                return "<redacted>".into();
            }
            u.to_string()
        }
        Err(_) => "<redacted>".into(),
    }
}

fn serialize_redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// calld: where Asterisk keeps what calld reads and changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalldConfig {
    /// Asterisk's voicemail spool (`voicemail.conf` and Asterisk's `astspooldir` decide it).
    pub voicemail_dir: PathBuf,
    /// Where outgoing faxes are written for Asterisk's `SendFAX` (readable by Asterisk).
    pub fax_dir: PathBuf,
    /// Ghostscript, which turns a PDF into the TIFF `SendFAX` sends.
    pub fax_ghostscript: PathBuf,
    /// The largest fax document accepted, in bytes (documents are larger than API bodies).
    pub fax_max_bytes: u64,
}

impl Default for CalldConfig {
    fn default() -> Self {
        CalldConfig {
            voicemail_dir: PathBuf::from("/var/spool/asterisk/voicemail"),
            fax_dir: PathBuf::from("/var/spool/asterisk/fax"),
            fax_ghostscript: PathBuf::from("/usr/bin/gs"),
            fax_max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Outgoing mail. An empty host turns mail off.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Empty: no authentication.
    pub username: String,
    #[serde(skip_serializing)]
    pub password: String,
    /// The sender, `name <address>` or a bare address.
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the box or the local network).
    None,
    /// STARTTLS required.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 25,
            security: SmtpSecurity::None,
            username: String::new(),
            password: String::new(),
            from: "accentd <noreply@localhost>".into(),
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .finish()
    }
}

/// confd: where the rendered Asterisk configuration goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfdConfig {
    /// Asterisk's configuration directory (e.g. `/etc/asterisk`); the rendered files are
    /// written there before each reload. Empty: files are not written (no Asterisk here).
    pub asterisk_config_dir: Option<PathBuf>,
    /// A copy of `asterisk-conf-templates/` to render from; files missing there fall
    /// back to the templates built into accentd.
    pub templates_dir: Option<PathBuf>,
}

/// call-logd: the nightly catch-up and the retention of call logs and CELs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallLogsConfig {
    /// Local time of day (`HH:MM`) of the daily generation for what the live path missed
    /// (upstream's cron runs at 04:25).
    pub generate_at: String,
    /// How many days of CELs the daily generation goes back.
    pub generate_days: u32,
    /// Call logs and CELs older than this many days are purged daily; 0 keeps them forever.
    /// The default of tenants without their own `cdr_days` (`PUT /retention`).
    pub retention_days: u32,
    /// Default of `recording_days`: recording files of calls older than this are deleted
    /// daily (the recordings stay listed, marked deleted); 0 keeps them.
    pub recording_retention_days: u32,
    /// Default of `export_days`: recording exports (ZIP files) older than this are deleted
    /// daily; 0 keeps them.
    pub export_retention_days: u32,
    /// The only directory recording files are served from and deleted in (Asterisk's monitor
    /// files, `<dir>/<tenant>/monitor/<uuid>.wav`); a stored path outside it is never opened.
    pub recordings_dir: PathBuf,
}

impl Default for CallLogsConfig {
    fn default() -> Self {
        CallLogsConfig {
            generate_at: "04:25".into(),
            generate_days: 1,
            retention_days: 0,
            recording_retention_days: 0,
            export_retention_days: 2,
            recordings_dir: PathBuf::from("/var/lib/accent/sounds/tenants"),
        }
    }
}

impl CallLogsConfig {
    /// `generate_at` as (hour, minute); `None` when malformed (refused by validation).
    pub fn generate_time(&self) -> Option<(u8, u8)> {
        let (h, m) = self.generate_at.trim().split_once(':')?;
        let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
        (h < 24 && m < 60).then_some((h, m))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info` or `accentd=debug,warp=info`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Login of the bootstrap admin created on first start with an empty store.
    pub user: Option<String>,
    /// Its password; when absent a strong one is generated into the data dir.
    #[serde(skip_serializing)]
    pub password: Option<String>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes.
    pub body_limit: u64,
    /// The base URL clients reach this server at (`https://pbx.example.com`), for links
    /// sent by mail; empty: built from `listen` and whether TLS is on.
    pub public_url: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key`, the port speaks HTTPS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Generate a self-signed certificate into the data dir on first start
    /// (and reuse it afterwards) when no cert/key is given.
    pub self_signed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of a token when POST /token gives no `expiration`, seconds.
    pub default_token_lifetime: u64,
    /// Upper bound for a requested `expiration`, seconds.
    pub max_token_lifetime: u64,
    /// Concurrent sessions allowed per user (purposes `user`/`external_api`).
    pub max_user_concurrent_sessions: u32,
    /// How often expired tokens and sessions are purged, seconds.
    pub token_cleanup_interval: u64,
    /// Seconds before expiry at which `auth_session_expire_soon` is published.
    pub session_expire_soon_delay: u64,
    pub argon2: Argon2Config,
    pub throttle: ThrottleConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    /// Memory cost in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed logins allowed per login name within `window` before lockout.
    pub max_failures_per_login: u32,
    /// Failed logins allowed per source address within `window`.
    pub max_failures_per_address: u32,
    /// Sliding window and lockout duration, seconds.
    pub window: u64,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AriConfig {
    /// Base URL of Asterisk's HTTP server, e.g. `http://127.0.0.1:5039`;
    /// empty means "no Asterisk configured".
    pub url: String,
    pub user: String,
    #[serde(skip_serializing)]
    pub password: String,
    /// Stasis application name registered on the event websocket.
    pub app: String,
}

impl std::fmt::Debug for AriConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AriConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("app", &self.app)
            .finish()
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmiConfig {
    /// `host:port` of the AMI TCP listener; empty means "no Asterisk".
    pub addr: String,
    pub user: String,
    #[serde(skip_serializing)]
    pub password: String,
}

impl std::fmt::Debug for AmiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmiConfig")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9497)),
            data_dir: PathBuf::from("./data"),
            uuid: None,
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            ari: AriConfig::default(),
            ami: AmiConfig::default(),
            call_logs: CallLogsConfig::default(),
            confd: ConfdConfig::default(),
            calld: CalldConfig::default(),
            smtp: SmtpConfig::default(),
            amqp: AmqpConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 1024 * 1024,
            public_url: String::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            default_token_lifetime: 7200,
            max_token_lifetime: 10 * 365 * 24 * 3600,
            max_user_concurrent_sessions: 100,
            token_cleanup_interval: 60,
            session_expire_soon_delay: 60,
            argon2: Argon2Config::default(),
            throttle: ThrottleConfig::default(),
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        // OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane).
        Argon2Config {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures_per_login: 5,
            max_failures_per_address: 20,
            window: 60,
        }
    }
}

impl Default for AriConfig {
    fn default() -> Self {
        AriConfig {
            url: String::new(),
            user: String::new(),
            password: String::new(),
            app: "accentd".into(),
        }
    }
}

/// Every environment variable accentd reads, with the setting it overrides.
/// `accentd serve --help` prints this table, so keep the descriptions short.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("ACCENTD_LISTEN", "listen address (default 127.0.0.1:9497)"),
    (
        "ACCENTD_DATA_DIR",
        "data directory: SQLite store, secrets (default ./data)",
    ),
    ("ACCENTD_UUID", "installation UUID (generated when unset)"),
    ("ACCENTD_LOG_LEVEL", "tracing filter (default info)"),
    ("ACCENTD_LOG_FORMAT", "text or json"),
    ("ACCENTD_ADMIN_USER", "bootstrap admin login"),
    ("ACCENTD_ADMIN_PASSWORD", "bootstrap admin password"),
    (
        "ACCENTD_HTTP_BODY_LIMIT",
        "largest request body in bytes (default 1048576)",
    ),
    ("ACCENTD_TLS_CERT", "PEM certificate chain for HTTPS"),
    ("ACCENTD_TLS_KEY", "PEM private key for HTTPS"),
    (
        "ACCENTD_TLS_SELF_SIGNED",
        "true: generate a self-signed cert into the data dir",
    ),
    ("ACCENTD_AUTH_DEFAULT_TOKEN_LIFETIME", "seconds (default 7200)"),
    ("ACCENTD_AUTH_MAX_TOKEN_LIFETIME", "seconds (default 10 years)"),
    ("ACCENTD_AUTH_MAX_USER_CONCURRENT_SESSIONS", "per user (default 100)"),
    ("ACCENTD_AUTH_TOKEN_CLEANUP_INTERVAL", "seconds (default 60)"),
    ("ACCENTD_AUTH_SESSION_EXPIRE_SOON_DELAY", "seconds (default 60)"),
    ("ACCENTD_AUTH_ARGON2_M_COST", "argon2id memory KiB (default 19456)"),
    ("ACCENTD_AUTH_ARGON2_T_COST", "argon2id iterations (default 2)"),
    ("ACCENTD_AUTH_ARGON2_P_COST", "argon2id lanes (default 1)"),
    ("ACCENTD_AUTH_THROTTLE_MAX_FAILURES_PER_LOGIN", "default 5"),
    ("ACCENTD_AUTH_THROTTLE_MAX_FAILURES_PER_ADDRESS", "default 20"),
    ("ACCENTD_AUTH_THROTTLE_WINDOW", "seconds (default 60)"),
    ("ACCENTD_ARI_URL", "Asterisk HTTP base URL, e.g. http://127.0.0.1:5039"),
    ("ACCENTD_ARI_USER", "ARI user"),
    ("ACCENTD_ARI_PASSWORD", "ARI password"),
    ("ACCENTD_ARI_APP", "Stasis application name (default accentd)"),
    ("ACCENTD_AMI_ADDR", "AMI host:port, e.g. 127.0.0.1:5038"),
    ("ACCENTD_AMI_USER", "AMI user"),
    ("ACCENTD_AMI_PASSWORD", "AMI secret"),
    (
        "ACCENTD_CALL_LOGS_GENERATE_AT",
        "HH:MM of the daily call-log catch-up (default 04:25)",
    ),
    (
        "ACCENTD_CALL_LOGS_GENERATE_DAYS",
        "days of CELs it goes back (default 1)",
    ),
    (
        "ACCENTD_CALL_LOGS_RETENTION_DAYS",
        "purge call logs and CELs older than this (default 0: keep)",
    ),
    (
        "ACCENTD_CALL_LOGS_RECORDING_RETENTION_DAYS",
        "delete recording files of calls older than this (default 0: keep)",
    ),
    (
        "ACCENTD_CALL_LOGS_EXPORT_RETENTION_DAYS",
        "delete recording exports older than this (default 2, 0: keep)",
    ),
    (
        "ACCENTD_CALL_LOGS_RECORDINGS_DIR",
        "the only directory recordings are read from (default /var/lib/accent/sounds/tenants)",
    ),
    (
        "ACCENTD_CALLD_VOICEMAIL_DIR",
        "Asterisk's voicemail spool (default /var/spool/asterisk/voicemail)",
    ),
    (
        "ACCENTD_CALLD_FAX_DIR",
        "where outgoing faxes are written for Asterisk (default /var/spool/asterisk/fax)",
    ),
    (
        "ACCENTD_CALLD_FAX_GHOSTSCRIPT",
        "ghostscript, to turn PDF faxes into TIFF (default /usr/bin/gs)",
    ),
    (
        "ACCENTD_CALLD_FAX_MAX_BYTES",
        "the largest fax document accepted (default 16777216)",
    ),
    (
        "ACCENTD_CONFD_ASTERISK_CONFIG_DIR",
        "where rendered Asterisk files go, e.g. /etc/asterisk (default: not written)",
    ),
    (
        "ACCENTD_CONFD_TEMPLATES_DIR",
        "editable copy of asterisk-conf-templates/ (default: built-in templates)",
    ),
    (
        "ACCENTD_HTTP_PUBLIC_URL",
        "base URL of links sent by mail (default from listen)",
    ),
    ("ACCENTD_SMTP_HOST", "SMTP relay for outgoing mail (default: no mail)"),
    ("ACCENTD_SMTP_PORT", "SMTP port (default 25)"),
    ("ACCENTD_SMTP_SECURITY", "none, starttls or tls (default none)"),
    ("ACCENTD_SMTP_USERNAME", "SMTP login (default: none)"),
    ("ACCENTD_SMTP_PASSWORD", "SMTP password"),
    ("ACCENTD_SMTP_FROM", "sender of outgoing mail"),
    (
        "ACCENTD_AMQP_URL",
        "RabbitMQ URL, e.g. amqp://user:pw@127.0.0.1:5672/%2f: publish every event (default: off)",
    ),
    (
        "ACCENTD_AMQP_EXCHANGE",
        "headers exchange events are published to (default accent-headers)",
    ),
    (
        "ACCENTD_AMQP_BUFFER",
        "events kept while the broker is down, oldest dropped first (default 10000)",
    ),
];

impl Config {
    /// Loads defaults, then the file (if any), then the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], with an injectable environment so tests don't
    /// race on the process-wide one.
    pub fn load_with_env(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text. The error message carries toml's line/column and the
    /// offending key (e.g. "unknown field `lsiten`").
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str::<Config>(text).map_err(|e| {
            let line = e.span().map(|span| {
                text.as_bytes()[..span.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            });
            match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            }
        })
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.trim().parse::<T>().map_err(|e| ConfigError::Env {
                name,
                message: format!("{e} (got {value:?})"),
            })
        }
        fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
            match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                _ => Err(ConfigError::Env {
                    name,
                    message: format!("expected true or false (got {value:?})"),
                }),
            }
        }
        macro_rules! set {
            ($name:literal, $target:expr, str) => {
                if let Some(v) = env($name) {
                    $target = v;
                }
            };
            ($name:literal, $target:expr, opt_str) => {
                if let Some(v) = env($name) {
                    $target = if v.is_empty() { None } else { Some(v.into()) };
                }
            };
            ($name:literal, $target:expr, bool) => {
                if let Some(v) = env($name) {
                    $target = parse_bool($name, &v)?;
                }
            };
            ($name:literal, $target:expr, parse) => {
                if let Some(v) = env($name) {
                    $target = parse($name, &v)?;
                }
            };
        }
        set!("ACCENTD_LISTEN", self.listen, parse);
        set!("ACCENTD_DATA_DIR", self.data_dir, parse);
        if let Some(v) = env("ACCENTD_UUID") {
            self.uuid = if v.is_empty() {
                None
            } else {
                Some(parse("ACCENTD_UUID", &v)?)
            };
        }
        set!("ACCENTD_LOG_LEVEL", self.log.level, str);
        if let Some(v) = env("ACCENTD_LOG_FORMAT") {
            self.log.format = match v.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "ACCENTD_LOG_FORMAT",
                        message: format!("expected text or json (got {v:?})"),
                    })
                }
            };
        }
        set!("ACCENTD_ADMIN_USER", self.admin.user, opt_str);
        set!("ACCENTD_ADMIN_PASSWORD", self.admin.password, opt_str);
        set!("ACCENTD_HTTP_BODY_LIMIT", self.http.body_limit, parse);
        set!("ACCENTD_TLS_CERT", self.tls.cert, opt_str);
        set!("ACCENTD_TLS_KEY", self.tls.key, opt_str);
        set!("ACCENTD_TLS_SELF_SIGNED", self.tls.self_signed, bool);
        let a = &mut self.auth;
        set!("ACCENTD_AUTH_DEFAULT_TOKEN_LIFETIME", a.default_token_lifetime, parse);
        set!("ACCENTD_AUTH_MAX_TOKEN_LIFETIME", a.max_token_lifetime, parse);
        set!(
            "ACCENTD_AUTH_MAX_USER_CONCURRENT_SESSIONS",
            a.max_user_concurrent_sessions,
            parse
        );
        set!("ACCENTD_AUTH_TOKEN_CLEANUP_INTERVAL", a.token_cleanup_interval, parse);
        set!(
            "ACCENTD_AUTH_SESSION_EXPIRE_SOON_DELAY",
            a.session_expire_soon_delay,
            parse
        );
        set!("ACCENTD_AUTH_ARGON2_M_COST", a.argon2.m_cost, parse);
        set!("ACCENTD_AUTH_ARGON2_T_COST", a.argon2.t_cost, parse);
        set!("ACCENTD_AUTH_ARGON2_P_COST", a.argon2.p_cost, parse);
        set!(
            "ACCENTD_AUTH_THROTTLE_MAX_FAILURES_PER_LOGIN",
            a.throttle.max_failures_per_login,
            parse
        );
        set!(
            "ACCENTD_AUTH_THROTTLE_MAX_FAILURES_PER_ADDRESS",
            a.throttle.max_failures_per_address,
            parse
        );
        set!("ACCENTD_AUTH_THROTTLE_WINDOW", a.throttle.window, parse);
        set!("ACCENTD_ARI_URL", self.ari.url, str);
        set!("ACCENTD_ARI_USER", self.ari.user, str);
        set!("ACCENTD_ARI_PASSWORD", self.ari.password, str);
        set!("ACCENTD_ARI_APP", self.ari.app, str);
        set!("ACCENTD_AMI_ADDR", self.ami.addr, str);
        set!("ACCENTD_AMI_USER", self.ami.user, str);
        set!("ACCENTD_AMI_PASSWORD", self.ami.password, str);
        set!("ACCENTD_CALL_LOGS_GENERATE_AT", self.call_logs.generate_at, str);
        set!("ACCENTD_CALL_LOGS_GENERATE_DAYS", self.call_logs.generate_days, parse);
        set!("ACCENTD_CALL_LOGS_RETENTION_DAYS", self.call_logs.retention_days, parse);
        set!(
            "ACCENTD_CALL_LOGS_RECORDING_RETENTION_DAYS",
            self.call_logs.recording_retention_days,
            parse
        );
        set!(
            "ACCENTD_CALL_LOGS_EXPORT_RETENTION_DAYS",
            self.call_logs.export_retention_days,
            parse
        );
        set!("ACCENTD_CALL_LOGS_RECORDINGS_DIR", self.call_logs.recordings_dir, parse);
        set!("ACCENTD_CALLD_VOICEMAIL_DIR", self.calld.voicemail_dir, parse);
        set!("ACCENTD_CALLD_FAX_DIR", self.calld.fax_dir, parse);
        set!("ACCENTD_CALLD_FAX_GHOSTSCRIPT", self.calld.fax_ghostscript, parse);
        set!("ACCENTD_CALLD_FAX_MAX_BYTES", self.calld.fax_max_bytes, parse);
        set!(
            "ACCENTD_CONFD_ASTERISK_CONFIG_DIR",
            self.confd.asterisk_config_dir,
            opt_str
        );
        set!("ACCENTD_CONFD_TEMPLATES_DIR", self.confd.templates_dir, opt_str);
        set!("ACCENTD_HTTP_PUBLIC_URL", self.http.public_url, str);
        set!("ACCENTD_SMTP_HOST", self.smtp.host, str);
        set!("ACCENTD_SMTP_PORT", self.smtp.port, parse);
        if let Some(v) = env("ACCENTD_SMTP_SECURITY") {
            self.smtp.security = match v.as_str() {
                "none" => SmtpSecurity::None,
                "starttls" => SmtpSecurity::Starttls,
                "tls" => SmtpSecurity::Tls,
                _ => {
                    return Err(ConfigError::Env {
                        name: "ACCENTD_SMTP_SECURITY",
                        message: format!("expected none, starttls or tls (got {v:?})"),
                    })
                }
            };
        }
        set!("ACCENTD_SMTP_USERNAME", self.smtp.username, str);
        set!("ACCENTD_SMTP_PASSWORD", self.smtp.password, str);
        set!("ACCENTD_SMTP_FROM", self.smtp.from, str);
        set!("ACCENTD_AMQP_URL", self.amqp.url, str);
        set!("ACCENTD_AMQP_EXCHANGE", self.amqp.exchange, str);
        set!("ACCENTD_AMQP_BUFFER", self.amqp.buffer, parse);
        Ok(())
    }

    /// Checks the values that parse but make no sense, so a typo fails at start
    /// instead of at the first call.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                message: message.into(),
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.http.body_limit < 1024 {
            return Err(invalid("http.body_limit", "must be at least 1024 bytes"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid("tls.cert", "tls.cert and tls.key must be given together"));
        }
        let a = &self.auth;
        if a.default_token_lifetime == 0 || a.default_token_lifetime > a.max_token_lifetime {
            return Err(invalid(
                "auth.default_token_lifetime",
                "must be between 1 and auth.max_token_lifetime",
            ));
        }
        if a.token_cleanup_interval == 0 {
            return Err(invalid("auth.token_cleanup_interval", "must be at least 1"));
        }
        if a.max_user_concurrent_sessions == 0 {
            return Err(invalid("auth.max_user_concurrent_sessions", "must be at least 1"));
        }
        if argon2::Params::new(a.argon2.m_cost, a.argon2.t_cost, a.argon2.p_cost, None).is_err() {
            return Err(invalid(
                "auth.argon2",
                "invalid argon2 parameters (m_cost >= 8*p_cost KiB, t_cost >= 1, p_cost >= 1)",
            ));
        }
        if self.call_logs.generate_time().is_none() {
            return Err(invalid(
                "call_logs.generate_at",
                format!("expected HH:MM (got {:?})", self.call_logs.generate_at),
            ));
        }
        if !self.call_logs.recordings_dir.is_absolute() {
            return Err(invalid("call_logs.recordings_dir", "must be an absolute path"));
        }
        if !self.calld.voicemail_dir.is_absolute() {
            return Err(invalid("calld.voicemail_dir", "must be an absolute path"));
        }
        if !self.calld.fax_dir.is_absolute() {
            return Err(invalid("calld.fax_dir", "must be an absolute path"));
        }
        // The name is written into the rendered dialplan (`Stasis(<app>,...)`):
        // anything beyond a plain word could break or inject dialplan.
        let app = &self.ari.app;
        if app.is_empty() || app.len() > 80 || !app.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid("ari.app", "must be 1 to 80 letters, digits, '_' or '-'"));
        }
        if self.calld.fax_max_bytes == 0 {
            return Err(invalid("calld.fax_max_bytes", "must be at least 1"));
        }
        if a.throttle.window == 0 {
            return Err(invalid("auth.throttle.window", "must be at least 1"));
        }
        if let Some(user) = &self.admin.user {
            if user.is_empty() || user.len() > 256 {
                return Err(invalid("admin.user", "must be 1 to 256 characters"));
            }
        }
        if !self.http.public_url.is_empty() {
            let url = &self.http.public_url;
            let ok = (url.starts_with("http://") || url.starts_with("https://")) && reqwest::Url::parse(url).is_ok();
            if !ok {
                return Err(invalid("http.public_url", format!("not an http(s) URL: {url:?}")));
            }
        }
        if !self.smtp.host.is_empty() && self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "smtp.from",
                format!("not a mail address: {:?}", self.smtp.from),
            ));
        }
        if !self.ari.url.is_empty() {
            let ok = (self.ari.url.starts_with("http://") || self.ari.url.starts_with("https://"))
                && reqwest::Url::parse(&self.ari.url).is_ok();
            if !ok {
                return Err(invalid("ari.url", format!("not an http(s) URL: {:?}", self.ari.url)));
            }
        }
        if !self.ami.addr.is_empty() {
            let ok = self
                .ami
                .addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(invalid(
                    "ami.addr",
                    format!("expected host:port (got {:?})", self.ami.addr),
                ));
            }
        }
        // The message never echoes the URL: it may hold the broker password.
        if !self.amqp.url.is_empty() && self.amqp.url.parse::<lapin::uri::AMQPUri>().is_err() {
            return Err(invalid(
                "amqp.url",
                "expected amqp://user:password@host:port/vhost (or amqps://)",
            ));
        }
        // AMQP names are short strings: at most 255 bytes.
        if self.amqp.exchange.is_empty() || self.amqp.exchange.len() > 255 {
            return Err(invalid("amqp.exchange", "must be 1 to 255 bytes"));
        }
        if self.amqp.buffer == 0 {
            return Err(invalid("amqp.buffer", "must be at least 1"));
        }
        Ok(())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("accentd.sqlite")
    }

    /// The base of links given to people (mail), without a trailing `/`.
    pub fn public_url(&self) -> String {
        if !self.http.public_url.is_empty() {
            return self.http.public_url.trim_end_matches('/').to_owned();
        }
        let tls = self.tls.cert.is_some() || self.tls.self_signed;
        format!("{}://{}", if tls { "https" } else { "http" }, self.listen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load_with_env(None, env_of(&[])).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9497");
        assert_eq!(c.auth.default_token_lifetime, 7200);
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1000\"\n[ami]\naddr = \"h:5038\"\n").expect("write");
        let c = Config::load_with_env(
            Some(&path),
            env_of(&[("ACCENTD_LISTEN", "0.0.0.0:2000"), ("ACCENTD_AMI_USER", "u")]),
        )
        .expect("load");
        assert_eq!(c.listen.to_string(), "0.0.0.0:2000");
        assert_eq!(c.ami.addr, "h:5038");
        assert_eq!(c.ami.user, "u");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::from_toml("listen = \"127.0.0.1:1\"\n\n[auth]\ndefault_token_lifetim = 3\n")
            .expect_err("must fail");
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("default_token_lifetim"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let err = Config::from_toml("[http]\nbody_limit = \"big\"\n").expect_err("must fail");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        for (name, value) in [
            ("ACCENTD_LISTEN", "nowhere"),
            ("ACCENTD_TLS_SELF_SIGNED", "maybe"),
            ("ACCENTD_AUTH_ARGON2_T_COST", "-1"),
            ("ACCENTD_LOG_FORMAT", "xml"),
            ("ACCENTD_CALL_LOGS_RETENTION_DAYS", "-3"),
        ] {
            let err = Config::load_with_env(None, env_of(&[(name, value)])).expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        for (name, value, key) in [
            ("ACCENTD_ARI_URL", "ftp://x", "ari.url"),
            ("ACCENTD_AMI_ADDR", "localhost", "ami.addr"),
            ("ACCENTD_ARI_APP", "accentd,x", "ari.app"),
            ("ACCENTD_ARI_APP", "", "ari.app"),
            (
                "ACCENTD_AUTH_DEFAULT_TOKEN_LIFETIME",
                "0",
                "auth.default_token_lifetime",
            ),
            ("ACCENTD_TLS_CERT", "/tmp/c.pem", "tls.cert"),
            ("ACCENTD_AUTH_ARGON2_T_COST", "0", "auth.argon2"),
            ("ACCENTD_CALL_LOGS_GENERATE_AT", "4h25", "call_logs.generate_at"),
            ("ACCENTD_CALL_LOGS_GENERATE_AT", "24:00", "call_logs.generate_at"),
            (
                "ACCENTD_CALL_LOGS_RECORDINGS_DIR",
                "rel/dir",
                "call_logs.recordings_dir",
            ),
            ("ACCENTD_AMQP_URL", "http://u:s3cr3t@h/", "amqp.url"),
            ("ACCENTD_AMQP_URL", "not a url s3cr3t", "amqp.url"),
            ("ACCENTD_AMQP_EXCHANGE", "", "amqp.exchange"),
            ("ACCENTD_AMQP_BUFFER", "0", "amqp.buffer"),
        ] {
            let err = Config::load_with_env(None, env_of(&[(name, value)])).expect_err(name);
            assert!(err.to_string().contains(key), "{err}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn amqp_is_off_by_default_and_set_from_the_environment() {
        let c = Config::load_with_env(None, env_of(&[])).expect("defaults");
        assert_eq!((c.amqp.url.as_str(), c.amqp.exchange.as_str()), ("", "accent-headers"));
        assert_eq!(c.amqp.buffer, 10_000);
        let c = Config::load_with_env(
            None,
            env_of(&[
                ("ACCENTD_AMQP_URL", "amqp://u:pw@127.0.0.1:5672/%2f"),
                ("ACCENTD_AMQP_EXCHANGE", "xivo-headers"),
                ("ACCENTD_AMQP_BUFFER", "50"),
            ]),
        )
        .expect("load");
        assert_eq!(c.amqp.buffer, 50);
        assert_eq!(c.amqp.url, "amqp://u:pw@127.0.0.1:5672/%2f");
        assert_eq!(c.amqp.exchange, "xivo-headers");
        let c = Config::from_toml("[amqp]\nurl = \"amqps://h/v\"\nexchange = \"e\"\n").expect("toml");
        assert_eq!((c.amqp.url.as_str(), c.amqp.exchange.as_str()), ("amqps://h/v", "e"));
    }

    #[test]
    fn call_logs_schedule_and_retention() {
        let c = Config::load_with_env(None, env_of(&[])).expect("defaults");
        assert_eq!(c.call_logs.generate_time(), Some((4, 25)));
        assert_eq!(c.call_logs.retention_days, 0);
        assert_eq!(
            (c.call_logs.recording_retention_days, c.call_logs.export_retention_days),
            (0, 2)
        );
        assert_eq!(
            c.call_logs.recordings_dir,
            PathBuf::from("/var/lib/accent/sounds/tenants")
        );
        let c = Config::load_with_env(
            None,
            env_of(&[
                ("ACCENTD_CALL_LOGS_GENERATE_AT", "23:05"),
                ("ACCENTD_CALL_LOGS_RETENTION_DAYS", "365"),
                ("ACCENTD_CALL_LOGS_RECORDING_RETENTION_DAYS", "90"),
                ("ACCENTD_CALL_LOGS_EXPORT_RETENTION_DAYS", "7"),
                ("ACCENTD_CALL_LOGS_RECORDINGS_DIR", "/srv/recordings"),
            ]),
        )
        .expect("load");
        assert_eq!(
            (c.call_logs.recording_retention_days, c.call_logs.export_retention_days),
            (90, 7)
        );
        assert_eq!(c.call_logs.recordings_dir, PathBuf::from("/srv/recordings"));
        assert_eq!(c.call_logs.generate_time(), Some((23, 5)));
        assert_eq!(c.call_logs.retention_days, 365);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config::load_with_env(
            None,
            env_of(&[
                ("ACCENTD_ADMIN_PASSWORD", "s3cr3t-admin"),
                ("ACCENTD_ARI_PASSWORD", "s3cr3t-ari"),
                ("ACCENTD_AMI_PASSWORD", "s3cr3t-ami"),
                ("ACCENTD_AMQP_URL", "amqp://accentd:s3cr3t-amqp@rabbit:5672/%2f"),
            ]),
        )
        .expect("load");
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        let toml = toml::to_string(&c).expect("ser");
        assert!(!toml.contains("s3cr3t"), "{toml}");
        // The broker stays visible, only its password goes.
        assert!(debug.contains("accentd:redacted@rabbit:5672"), "{debug}");
        assert!(toml.contains("accentd:redacted@rabbit:5672"), "{toml}");
    }
}

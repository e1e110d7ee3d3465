//! Benchmarks: `bench [ceilings|chat|live|broker|meetings|scheduler|wages|all]` runs the hot
//! paths on the embedded default (SQLite) and on MariaDB and prints one Markdown table.
//! These are measurements, not tests: nothing here passes or fails.
//!
//! How the figures are made, so that they can be trusted:
//! - a release build (`scripts/bench.sh`);
//! - HTTP load comes from another process: `wrk` (closed loop: so many connections, as
//!   fast as they go) or `oha` (open loop: a fixed request rate, latencies corrected for
//!   coordinated omission), never from this program's own runtime;
//! - every figure has a warm-up of its own, then runs `SB_BENCH_SECS` (15) seconds;
//! - the ceilings are measured in the same run on the same machine and database — an
//!   axum handler that does nothing, and the database's own single-row insert rate at the
//!   same concurrency — and each figure is printed with its ratio to its ceiling.

use app::platform::settings::{Settings, StoreSettings};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use server::{Application, Options};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BENCH_KEY: &str = "bench-signing-key";
const WARMUP: Duration = Duration::from_secs(5);

fn measure_for() -> Duration {
    Duration::from_secs(std::env::var("SB_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(15))
}

struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    database: String,
    /// The ceiling this figure is judged against: (its value, what it is).
    ceiling: Option<(f64, String)>,
}

impl Row {
    fn new(figure: impl Into<String>, value: f64, unit: &'static str, database: &str) -> Self {
        Self { figure: figure.into(), value, unit, database: database.to_owned(), ceiling: None }
    }

    fn against(mut self, ceiling: f64, what: impl Into<String>) -> Self {
        self.ceiling = Some((ceiling, what.into()));
        self
    }
}

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    MariaDb,
}

impl Db {
    fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::MariaDb => "MariaDB",
        }
    }
}

// ---- load generators (other processes) -------------------------------------------------

/// What a load run measured.
#[derive(Debug, Default, Clone, Copy)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Requests that failed or answered other than 2xx/3xx.
    failed: u64,
}

/// The request script wrk runs: one request per call, built from environment variables
/// (method, path and body with `{n}` (a number spread over `BENCH_SPREAD`), `{start}`
/// and `{end}` (an hour-long slot n hours after 2031-01-01), a bearer token), or taken
/// line by line from a file of `signature<TAB>body` (signed webhooks, each sent once).
const WRK_SCRIPT: &str = r#"
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
local token = os.getenv("BENCH_TOKEN")
local spread = tonumber(os.getenv("BENCH_SPREAD") or "1000000000")
local lines_file = os.getenv("BENCH_LINES")
local threads = 2
local counter = 0
local lines = {}
local index = 0

function setup(thread)
  thread:set("index", index)
  index = index + 1
end

function init(args)
  if lines_file then
    local n = 0
    for line in io.lines(lines_file) do
      if n % threads == index then table.insert(lines, line) end
      n = n + 1
    end
  end
end

local function slot(k)
  local start = 1924992000 + k * 3600
  return os.date("!%Y-%m-%dT%H:%M:%SZ", start), os.date("!%Y-%m-%dT%H:%M:%SZ", start + 1800)
end

request = function()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json"}
  if token then headers["Authorization"] = "Bearer " .. token end
  if lines_file then
    local line = lines[((counter - 1) % #lines) + 1]
    local sig, b = line:match("^([^\t]*)\t(.*)$")
    headers["Calendly-Webhook-Signature"] = sig
    return wrk.format(method, path, headers, b)
  end
  local k = (counter * threads + index) % spread
  local p = path:gsub("{n}", tostring(k))
  local b = nil
  if body then
    local s, e = slot(k)
    b = body:gsub("{n}", tostring(k)):gsub("{start}", s):gsub("{end}", e)
  end
  return wrk.format(method, p, headers, b)
end
"#;

/// A request shape for wrk (see [`WRK_SCRIPT`]).
#[derive(Default, Clone)]
struct Shape {
    method: &'static str,
    path: String,
    body: Option<String>,
    token: Option<String>,
    spread: Option<usize>,
    lines: Option<PathBuf>,
}

impl Shape {
    fn get(path: impl Into<String>, token: &str) -> Self {
        Self { method: "GET", path: path.into(), token: Some(token.to_owned()), ..Default::default() }
    }

    fn post(path: impl Into<String>, token: Option<&str>, body: impl Into<String>) -> Self {
        Self { method: "POST", path: path.into(), body: Some(body.into()), token: token.map(str::to_owned), ..Default::default() }
    }

    fn spread(mut self, n: usize) -> Self {
        self.spread = Some(n);
        self
    }
}

fn script_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("sb-bench-{}.lua", std::process::id()));
    if !path.exists() {
        std::fs::write(&path, WRK_SCRIPT).expect("wrk script");
    }
    path
}

/// Runs wrk (2 threads, `connections` connections) against `base` for `duration`.
fn wrk_once(base: &str, shape: &Shape, connections: usize, duration: Duration) -> Load {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{}s", duration.as_secs()), "--latency", "--timeout", "10s", "-s"])
        .arg(script_file())
        .arg(base)
        .env("BENCH_METHOD", shape.method)
        .env("BENCH_PATH", &shape.path);
    for (key, value) in [("BENCH_BODY", shape.body.clone()), ("BENCH_TOKEN", shape.token.clone()), ("BENCH_SPREAD", shape.spread.map(|n| n.to_string()))] {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    match &shape.lines {
        Some(f) => cmd.env("BENCH_LINES", f),
        None => cmd.env_remove("BENCH_LINES"),
    };
    let out = cmd.output().expect("wrk runs (scripts/bench.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        panic!("wrk failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text)
}

/// A warm-up run, then the measured one.
fn wrk(base: &str, shape: &Shape, connections: usize) -> Load {
    wrk_once(base, shape, connections, WARMUP);
    let load = wrk_once(base, shape, connections, measure_for());
    if load.failed > 0 {
        eprintln!("  warning: {} of the requests to {} failed or were not 2xx", load.failed, shape.path);
    }
    load
}

fn parse_wrk(text: &str) -> Load {
    let ms = |v: &str| -> f64 {
        let v = v.trim();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => f64::NAN,
        }
    };
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            load.rps = v.trim().parse().unwrap_or(f64::NAN);
        } else if let Some(v) = line.strip_prefix("50%") {
            load.p50_ms = ms(v);
        } else if let Some(v) = line.strip_prefix("99%") {
            load.p99_ms = ms(v);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.failed += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            load.failed += v.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
        }
    }
    load
}

fn oha_binary() -> PathBuf {
    std::env::var_os("SB_BENCH_OHA").map(PathBuf::from).unwrap_or_else(|| "oha".into())
}

/// Open loop: `rate` requests a second over `connections` connections for the figure's
/// duration (after a warm-up), latencies measured from when each request was due. Each
/// request goes to one of `urls`.
fn oha(urls: &[String], token: &str, rate: u32, connections: usize) -> Load {
    let list = std::env::temp_dir().join(format!("sb-bench-urls-{}-{}.txt", std::process::id(), rand::random::<u32>()));
    std::fs::write(&list, urls.join("\n")).expect("URL list");
    let run = |duration: Duration| -> Load {
        let out = std::process::Command::new(oha_binary())
            .args(["--no-tui", "--output-format", "json", "--latency-correction"])
            .args(["-z", &format!("{}s", duration.as_secs()), "-q", &rate.to_string(), "-c", &connections.to_string()])
            .args(["-H", &format!("Authorization: Bearer {token}"), "--urls-from-file"])
            .arg(&list)
            .output()
            .expect("oha runs (scripts/bench.sh installs it)");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("oha's report: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
        let codes = report["statusCodeDistribution"].as_object().cloned().unwrap_or_default();
        let ok: u64 = codes.iter().filter(|(c, _)| c.starts_with('2')).filter_map(|(_, n)| n.as_u64()).sum();
        let all: u64 = codes.values().filter_map(Value::as_u64).sum();
        // Requests still in flight when the run ends are cut off: not failures.
        let errors: u64 = report["errorDistribution"]
            .as_object()
            .map(|e| e.iter().filter(|(what, _)| !what.contains("deadline")).filter_map(|(_, n)| n.as_u64()).sum())
            .unwrap_or(0);
        Load {
            rps: report["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
            p50_ms: report["latencyPercentiles"]["p50"].as_f64().unwrap_or(f64::NAN) * 1000.0,
            p99_ms: report["latencyPercentiles"]["p99"].as_f64().unwrap_or(f64::NAN) * 1000.0,
            failed: all - ok + errors,
        }
    };
    run(WARMUP);
    let load = run(measure_for());
    let _ = std::fs::remove_file(&list);
    if load.failed > 0 {
        eprintln!("  warning: {} of the requests to {} … failed or were not 2xx", load.failed, urls.first().map(String::as_str).unwrap_or(""));
    }
    load
}

/// `n` URLs `{base}{prefix}{k}` with k drawn uniformly from `range`.
fn random_urls(base: &str, prefix: &str, range: std::ops::Range<usize>, n: usize) -> Vec<String> {
    (0..n).map(|_| format!("{base}{prefix}{}", range.start + rand::random::<usize>() % (range.end - range.start))).collect()
}

/// The closed-loop rows of a wrk run: rate (with its ratio to `ceiling`), p50, p99.
fn load_rows(rows: &mut Vec<Row>, figure: &str, load: Load, database: &str, ceiling: Option<(f64, String)>) {
    let mut rate = Row::new(format!("{figure}: rate"), load.rps, "req/s", database);
    rate.ceiling = ceiling;
    rows.push(rate);
    rows.push(Row::new(format!("{figure}: p50"), load.p50_ms, "ms", database));
    rows.push(Row::new(format!("{figure}: p99"), load.p99_ms, "ms", database));
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

// ---- the app under test ----------------------------------------------------------------

/// A running app on a fresh database and object folder.
struct Bench {
    base: String,
    client: reqwest::Client,
    token: String,
    state: app::platform::state::AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    database_url: String,
    _dir: tempfile::TempDir,
}

async fn fresh_database(db: Db, dir: &Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
        Db::MariaDb => {
            use sea_orm::ConnectionTrait;
            let base = std::env::var("SB_BENCH_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
            let name = format!("sb_bench_{:08x}", rand::random::<u32>());
            let admin = sea_orm::Database::connect(format!("{base}/")).await.expect("MariaDB reachable");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
            format!("{base}/{name}")
        }
    }
}

fn bench_settings(database_url: String, dir: &Path) -> Settings {
    let mut s = server::compose::settings_from_env();
    s.database_url = database_url;
    s.listen = "127.0.0.1:0".into();
    s.store = StoreSettings::Folder(dir.join("objects").display().to_string());
    s.demo_data = false;
    s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()];
    s.part_mut::<app::broker::settings::BrokerSettings>().concurrency = 64;
    s.part_mut::<app::meetings::settings::MeetingsSettings>().signing_key = Some(BENCH_KEY.into());
    s.http.webhook_rate_per_min = u32::MAX; // one client posts everything here
    s.part_mut::<app::accounts::settings::AuthSettings>().signup_per_ip_per_hour = u32::MAX;
    s.part_mut::<app::accounts::settings::AuthSettings>().login_per_ip_per_min = u32::MAX;
    s.part_mut::<app::accounts::settings::AuthSettings>().login_per_user_per_min = u32::MAX;
    s.part_mut::<app::accounts::settings::AuthSettings>().first_signup_admin = true;
    s.secret_key = Some(BENCH_SECRET_KEY.into());
    s
}

/// Benchmark data only (every process of one run shares it).
const BENCH_SECRET_KEY: &str = "YmVuY2htYXJrLW9ubHktc2VjcmV0LWtleS0zMmJ5dGU=";

async fn serve(settings: Settings) -> (String, app::platform::state::AppState, tokio::sync::oneshot::Sender<()>) {
    let app = Application::build(Options { settings, run_jobs: true }).await.expect("app starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (base, state, stop)
}

impl Bench {
    async fn start(db: Db, tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(db, dir.path()).await;
        let mut s = bench_settings(database_url.clone(), dir.path());
        tweak(&mut s);
        let (base, state, stop) = serve(s).await;
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let creds = json!({"username": "bench", "password": "correct horse battery staple"});
        client.post(format!("{base}/api/v1/auth/signup")).json(&creds).send().await.unwrap();
        let token: Value = client.post(format!("{base}/api/v1/auth/tokens")).json(&creds).send().await.unwrap().json().await.unwrap();
        Self { base, client, token: token["token"].as_str().unwrap().to_owned(), state, stop, database_url, _dir: dir }
    }

    /// A second app on the same database, as another process would be.
    async fn another_instance(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = bench_settings(self.database_url.clone(), dir.path());
        s.migrate_on_start = false;
        let (base, _, stop) = serve(s).await;
        std::mem::forget(dir); // its folder outlives this call; the OS cleans /tmp
        (base, stop)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let res = self.client.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---- ceilings --------------------------------------------------------------------------

/// What the machine can do at all, measured in this run.
#[derive(Default)]
struct Ceilings {
    /// Requests/s of an axum handler that does nothing, by connections.
    hello: HashMap<usize, f64>,
    /// The database's own single-row insert rate (autocommit), by concurrent clients.
    inserts: HashMap<usize, f64>,
    /// Back-to-back signed POSTs to a webhook receiver that answers at once, by requests
    /// in flight: what delivering could reach with no bookkeeping at all.
    receiver: HashMap<usize, f64>,
}

impl Ceilings {
    fn hello(&self, connections: usize) -> Option<(f64, String)> {
        self.hello.get(&connections).map(|v| (*v, format!("axum handler that does nothing, {connections} connections")))
    }

    fn insert(&self, clients: usize) -> Option<(f64, String)> {
        self.inserts.get(&clients).map(|v| (*v, format!("the database's single-row INSERT, {clients} clients")))
    }

    fn receiver(&self, in_flight: usize) -> Option<(f64, String)> {
        self.receiver.get(&in_flight).map(|v| (*v, format!("bare POSTs to the receiver, {in_flight} in flight")))
    }
}

async fn measure_hello(ceilings: &mut Ceilings, rows: &mut Vec<Row>) {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    for connections in [16, 32, 64] {
        let base = base.clone();
        let load = tokio::task::spawn_blocking(move || wrk(&base, &Shape { method: "GET", path: "/".into(), ..Default::default() }, connections)).await.unwrap();
        ceilings.hello.insert(connections, load.rps);
        rows.push(Row::new(format!("ceiling: axum handler that does nothing, {connections} connections (wrk)"), load.rps, "req/s", "none"));
    }
}

/// Runs `work` from `clients` tasks for the figure's duration after a warm-up; returns
/// operations per second.
async fn steady<F, Fut>(clients: usize, work: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients as u64 {
        let (work, count, stop) = (work.clone(), count.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                work(i).await;
                i += clients as u64;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(WARMUP).await;
    let (start_count, started) = (count.load(std::sync::atomic::Ordering::Relaxed), Instant::now());
    tokio::time::sleep(measure_for()).await;
    let done = count.load(std::sync::atomic::Ordering::Relaxed) - start_count;
    let rate = done as f64 / started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    rate
}

/// The database's own limit for what most writes here come down to: one small row in
/// its own transaction, `clients` at a time.
async fn measure_inserts(db: Db, ceilings: &mut Ceilings, rows: &mut Vec<Row>) {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let pool = app::platform::db::PoolSettings { max_connections: Some(64) };
    let database = app::platform::db::Db::connect_with(&fresh_database(db, dir.path()).await, pool).await.expect("database");
    let conn = Arc::new(database.conn.clone());
    let key = match db {
        Db::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Db::MariaDb => "BIGINT PRIMARY KEY AUTO_INCREMENT",
    };
    conn.execute_unprepared(&format!("CREATE TABLE ceiling (id {key}, v BIGINT NOT NULL)")).await.unwrap();
    for clients in [1usize, 16, 32, 64] {
        let c = conn.clone();
        let rate = steady(clients, move |i| {
            let c = c.clone();
            async move {
                let stmt = Statement::from_sql_and_values(c.get_database_backend(), "INSERT INTO ceiling (v) VALUES (?)", [(i as i64).into()]);
                c.execute_raw(stmt).await.unwrap();
            }
        })
        .await;
        ceilings.inserts.insert(clients, rate);
        rows.push(Row::new(format!("ceiling: the database's single-row INSERT, autocommit, {clients} client{}", if clients == 1 { "" } else { "s" }), rate, "rows/s", db.name()));
    }
    // What one commit takes, one at a time: the floor under any latency that waits for
    // a few commits in a row (publish → sequence → claim → record).
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut i = 0i64;
    while started.elapsed() < WARMUP + measure_for() {
        let sent = Instant::now();
        let stmt = Statement::from_sql_and_values(conn.get_database_backend(), "INSERT INTO ceiling (v) VALUES (?)", [i.into()]);
        conn.execute_raw(stmt).await.unwrap();
        if started.elapsed() >= WARMUP {
            latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        i += 1;
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    for p in [50.0, 99.0, 99.9] {
        rows.push(Row::new(format!("ceiling: one single-row INSERT commit, 1 client: p{p}"), percentile(&latencies, p), "ms", db.name()));
    }
    database.conn.close().await.ok();
}

/// A webhook receiver that answers 200 at once and records each delivery's arrival.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<(String, String, Instant)>>>, Arc<tokio::sync::Notify>);

async fn receive(State(arrivals): State<Arrivals>, uri: axum::http::Uri, headers: HeaderMap, _body: Bytes) -> &'static str {
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    arrivals.0.lock().unwrap().push((uri.path().to_owned(), id, Instant::now()));
    arrivals.1.notify_waiters();
    "ok"
}

async fn start_receiver() -> (String, Arrivals) {
    let arrivals = Arrivals::default();
    let app = axum::Router::new().fallback(receive).with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, arrivals)
}

/// Signed POSTs to the receiver as fast as `in_flight` loops can send them: the
/// dispatcher's ceiling, with the same client library and signature.
async fn measure_receiver(ceilings: &mut Ceilings, rows: &mut Vec<Row>) {
    let (base, arrivals) = start_receiver().await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    for in_flight in [1usize, 64] {
        let (client, base) = (client.clone(), base.clone());
        let rate = steady(in_flight, move |i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let body = format!(r#"{{"type":"bench:ceiling","timestamp":"2026-12-01T00:00:00Z","data":{{"i":{i}}}}}"#);
                let sig = app::broker::signature::signature_header(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], &format!("msg_{i}"), 1_764_547_200, body.as_bytes()).expect("a valid secret");
                let res = client.post(format!("{base}/ceiling")).header("webhook-id", format!("msg_{i}")).header("webhook-signature", sig).body(body).send().await.unwrap();
                let _ = res.bytes().await;
            }
        })
        .await;
        ceilings.receiver.insert(in_flight, rate);
        rows.push(Row::new(format!("ceiling: bare signed POSTs to a webhook receiver, {in_flight} in flight"), rate, "req/s", "none"));
    }
    arrivals.0.lock().unwrap().clear();
}

// ---- chat ------------------------------------------------------------------------------

/// Seeds `total` messages straight into the hot table: `expired` of them (the first ids)
/// already expired, the rest spread over `users` inboxes.
async fn seed_chat(bench: &Bench, total: usize, expired: usize, users: usize) {
    use app::chat::store::message;
    use sea_orm::{EntityTrait, Set};
    let now = app::platform::time::now_ms();
    let started = Instant::now();
    for chunk_start in (0..total).step_by(2000) {
        let rows = (chunk_start..(chunk_start + 2000).min(total)).map(|n| message::ActiveModel {
            username: Set(format!("user{}", n % users)),
            sender_id: Set(None),
            sender: Set(Some("seed".into())),
            text: Set(format!("seeded message number {n}, a sentence of ordinary length")),
            created_at: Set(now - 10_000),
            expiration_date: Set(if n < expired { now - 5_000 } else { now + 86_400_000 }),
            ..Default::default()
        });
        message::Entity::insert_many(rows).exec_without_returning(&bench.state.db.conn).await.unwrap();
    }
    eprintln!("  seeded {total} messages in {:.1} s", started.elapsed().as_secs_f64());
}

async fn bench_chat(db: Db, ceilings: &Ceilings, rows: &mut Vec<Row>) {
    let bench = Bench::start(db, |s| s.part_mut::<app::chat::settings::ChatSettings>().archive_every = Duration::from_secs(86_400)).await;
    let database = db.name();
    let total: usize = std::env::var("SB_BENCH_CHAT_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let (expired, users) = (total / 5, (total / 10).max(1));
    seed_chat(&bench, total, expired, users).await;

    let body = r#"{"username":"user{n}","text":"benchmark message","timeout":3600}"#;
    let post = Shape::post("/chat", Some(&bench.token), body).spread(users);
    let load = run_wrk(&bench.base, &post, 64).await;
    load_rows(rows, &format!("chat POST /chat, 64 connections, {total} stored"), load, database, ceilings.insert(64));

    let read = random_urls(&bench.base, "/chats/user", 0..users, 100_000);
    let load = run_oha(read, &bench.token, 1000, 64).await;
    rows.push(Row::new(format!("chat GET /chats/{{u}}, open loop 1,000 req/s, {total} stored: p50"), load.p50_ms, "ms", database));
    rows.push(Row::new(format!("chat GET /chats/{{u}}, open loop 1,000 req/s ({:.0} answered/s): p99", load.rps), load.p99_ms, "ms", database));
    let load = run_wrk(&bench.base, &Shape::get("/chats/user{n}", &bench.token).spread(users), 64).await;
    load_rows(rows, "chat GET /chats/{u}, 64 connections", load, database, ceilings.insert(64));

    // The archiver as its job runs it (the configured batch size).
    let batch = bench.state.settings.part::<app::chat::settings::ChatSettings>().archive_batch;
    let started = Instant::now();
    let archived = app::chat::service::archive_expired(&bench.state, batch).await.unwrap().messages;
    rows.push(Row::new(format!("chat archive hot → cold ({archived} messages, {batch} a batch)"), archived as f64 / started.elapsed().as_secs_f64(), "messages/s", database));

    let cold = random_urls(&bench.base, "/chat/", 1..expired + 1, 100_000);
    let load = run_oha(cold, &bench.token, 500, 32).await;
    rows.push(Row::new("chat cold read GET /chat/{id}, open loop 500 req/s: p50", load.p50_ms, "ms", database));
    rows.push(Row::new("chat cold read GET /chat/{id}, open loop 500 req/s: p99", load.p99_ms, "ms", database));
    bench.stop().await;
}

/// wrk from a blocking thread, so this runtime keeps serving the app meanwhile.
async fn run_wrk(base: &str, shape: &Shape, connections: usize) -> Load {
    let (base, shape) = (base.to_owned(), shape.clone());
    tokio::task::spawn_blocking(move || wrk(&base, &shape, connections)).await.unwrap()
}

async fn run_oha(urls: Vec<String>, token: &str, rate: u32, connections: usize) -> Load {
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || oha(&urls, &token, rate, connections)).await.unwrap()
}

// ---- broker ----------------------------------------------------------------------------

/// A subscriber on `topic` pointing at the receiver (paused when asked); returns the
/// subscription id.
async fn subscribe(b: &Bench, receiver: &str, name: &str, topic: &str, paused: bool) -> i64 {
    let url = format!("{receiver}/{name}");
    let sub = b.post("/api/v1/subscribers", json!({"name": name, "url": url})).await;
    let subscription = b.post(&format!("/api/v1/subscribers/{}/subscriptions", sub["id"]), json!({"topic": topic})).await;
    let id = subscription["id"].as_i64().unwrap();
    if paused {
        b.post(&format!("/api/v1/subscriptions/{id}/pause"), json!({})).await;
    }
    id
}

/// Waits until the outbox is empty (everything published is sequenced).
async fn sequenced(b: &Bench) {
    use app::broker::store::outbox;
    use sea_orm::{EntityTrait, PaginatorTrait};
    while outbox::Entity::find().count(&b.state.db.conn).await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many messages a topic holds.
async fn messages_on(b: &Bench, topic: &str) -> usize {
    use app::broker::store::{message, topic as topics};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let t = topics::Entity::find().filter(topics::Column::Name.eq(topic)).one(&b.state.db.conn).await.unwrap().expect("the topic");
    message::Entity::find().filter(message::Column::TopicId.eq(t.id)).count(&b.state.db.conn).await.unwrap() as usize
}

/// Each message's place in its topic's order.
async fn sequence_numbers(b: &Bench) -> HashMap<i64, i64> {
    use app::broker::store::message;
    use sea_orm::{EntityTrait, QuerySelect};
    message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .column(message::Column::Seq)
        .into_tuple::<(i64, i64)>()
        .all(&b.state.db.conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Resumes the subscriptions and measures deliveries per second over the figure's
/// duration (or until the backlog is done), checking that every endpoint got its
/// messages in the topic's order. Returns (deliveries/s, in order).
async fn deliver_backlog(b: &Bench, arrivals: &Arrivals, subscriptions: &[i64], expected: usize) -> (f64, f64, bool) {
    arrivals.0.lock().unwrap().clear();
    for id in subscriptions {
        b.post(&format!("/api/v1/subscriptions/{id}/resume"), json!({})).await;
    }
    // The first second warms up (lanes are claimed, connections opened); the rate is
    // taken from then until the backlog is done or SB_BENCH_SECS have passed. (Without
    // the warm-up excluded from the count, a backlog that drains fast reads as nothing.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (t0, n0) = (Instant::now(), arrivals.0.lock().unwrap().len());
    while arrivals.0.lock().unwrap().len() < expected && t0.elapsed() < measure_for() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let window = t0.elapsed().as_secs_f64();
    let rate = (arrivals.0.lock().unwrap().len() - n0) as f64 / window;
    // Let the backlog finish, then check the order of first arrivals per endpoint.
    let finish_by = Instant::now() + Duration::from_secs(600);
    while arrivals.0.lock().unwrap().len() < expected && Instant::now() < finish_by {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seqs = sequence_numbers(b).await;
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut in_order = true;
    for (path, id, _) in arrivals.0.lock().unwrap().iter() {
        if !seen.insert((path.clone(), id.clone())) {
            continue; // a redelivery: only first arrivals carry the order
        }
        let seq = seqs.get(&id.trim_start_matches("msg_").parse::<i64>().unwrap_or(-1)).copied().unwrap_or(-1);
        let prev = last.insert(path.clone(), seq).unwrap_or(0);
        in_order &= seq > prev;
    }
    if !in_order {
        eprintln!("  WARNING: deliveries arrived out of the topic's order");
    }
    (rate, window, in_order)
}

async fn bench_broker(db: Db, ceilings: &Ceilings, rows: &mut Vec<Row>) {
    let b = Bench::start(db, |_| {}).await;
    let database = db.name();
    let (receiver, arrivals) = start_receiver().await;

    // First on a quiet database, and again after the backlogs below, which leave the
    // database writing out hundreds of thousands of rows for a while.
    idle_publish_to_delivery(&b, &receiver, &arrivals, database, rows, "quiet database").await;

    // Publish: one (paused) subscription, so every message is kept and sequenced.
    b.post("/api/v1/topics", json!({"name": "bench:one"})).await;
    let one = subscribe(&b, &receiver, "one", "bench:one", true).await;
    let publish = Shape::post("/api/v1/topics/bench:one/messages", Some(&b.token), r#"{"payload":{"i":{n}}}"#);
    let load = run_wrk(&b.base, &publish, 16).await;
    load_rows(rows, "broker publish, 16 connections", load, database, ceilings.insert(16));
    sequenced(&b).await;

    // Deliveries to one subscription (one lane, strictly in order): the backlog just published.
    let backlog = messages_on(&b, "bench:one").await;
    let (rate, window, in_order) = deliver_backlog(&b, &arrivals, &[one], backlog).await;
    let order = if in_order { "in order" } else { "OUT OF ORDER" };
    rows.push(Row::new(format!("broker deliveries, 1 subscription ({backlog} messages, {order}; over {window:.1} s)"), rate, "deliveries/s", database).against(
        ceilings.receiver.get(&1).copied().unwrap_or(f64::NAN),
        "bare POSTs to the receiver, 1 in flight",
    ));

    // Deliveries to 100 subscriptions of one topic.
    b.post("/api/v1/topics", json!({"name": "bench:hundred"})).await;
    let mut hundred = Vec::new();
    for s in 0..100 {
        hundred.push(subscribe(&b, &receiver, &format!("h{s}"), "bench:hundred", true).await);
    }
    // Enough for 15 s at well over 10,000 deliveries/s.
    let messages = 3000;
    let client = b.client.clone();
    for chunk in (0..messages).collect::<Vec<_>>().chunks(16) {
        futures::future::join_all(chunk.iter().map(|i| {
            let req = client.post(format!("{}/api/v1/topics/bench:hundred/messages", b.base)).bearer_auth(&b.token).json(&json!({"payload": {"i": i}}));
            async move { assert!(req.send().await.unwrap().status().is_success()) }
        }))
        .await;
    }
    sequenced(&b).await;
    let (rate, window, in_order) = deliver_backlog(&b, &arrivals, &hundred, messages * 100).await;
    let order = if in_order { "each in order" } else { "OUT OF ORDER" };
    let mut row = Row::new(format!("broker deliveries, 100 subscriptions ({} deliveries, {order}; over {window:.1} s)", messages * 100), rate, "deliveries/s", database);
    row.ceiling = ceilings.receiver(64);
    rows.push(row);

    // The same again right after that backlog, with the database still writing it out:
    // the runs of 12-01 and 12-02 measured only this one (p99 ~450 ms on MariaDB).
    idle_publish_to_delivery(&b, &receiver, &arrivals, database, rows, "right after that backlog").await;

    b.stop().await;
}

/// Idle publish → delivery: one message at a time through an active subscription, the
/// next a moment after the last arrived. Beside it, what the publish's own answer took,
/// and what one bare commit took meanwhile (a probe committing at the same pace), so an
/// outlier can be put on the database or on the app.
async fn idle_publish_to_delivery(b: &Bench, receiver: &str, arrivals: &Arrivals, database: &'static str, rows: &mut Vec<Row>, when: &str) {
    use sea_orm::{ConnectionTrait, Statement};
    let topic = format!("bench:idle{}", rows.len());
    b.post("/api/v1/topics", json!({"name": topic})).await;
    subscribe(b, receiver, &topic, &topic, false).await;
    let endpoint = format!("/{topic}");
    let db = b.state.db.clone();
    let conn = db.conn.clone();
    let key = if database == "SQLite" { "INTEGER PRIMARY KEY AUTOINCREMENT" } else { "BIGINT PRIMARY KEY AUTO_INCREMENT" };
    conn.execute_unprepared(&format!("CREATE TABLE IF NOT EXISTS bench_probe (id {key}, v BIGINT NOT NULL)")).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut commits = Vec::new();
            let started = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = Instant::now();
                // Through the write gate on SQLite, like every write of the app's.
                let txn = db.write_txn().await.unwrap();
                let insert = Statement::from_sql_and_values(db.backend(), "INSERT INTO bench_probe (v) VALUES (?)", [(commits.len() as i64).into()]);
                txn.execute_raw(insert).await.unwrap();
                txn.commit().await.unwrap();
                if started.elapsed() >= WARMUP {
                    commits.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            commits
        })
    };
    let (mut latencies, mut answers) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < WARMUP + measure_for() {
        let before = arrivals.0.lock().unwrap().len();
        let sent = Instant::now();
        b.post(&format!("/api/v1/topics/{topic}/messages"), json!({"payload": {"n": n}})).await;
        let answered = sent.elapsed();
        let arrived_at = loop {
            // Armed before looking, so an arrival in between still wakes it.
            let arrived = arrivals.1.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            // This topic's endpoint only: a straggler of an earlier figure is not it.
            let found = arrivals.0.lock().unwrap().iter().skip(before).find(|(path, _, _)| *path == endpoint).map(|(_, _, at)| *at);
            if let Some(at) = found {
                break at;
            }
            tokio::time::timeout(Duration::from_secs(5), arrived).await.expect("a delivery within 5 s");
        };
        if started.elapsed() >= WARMUP {
            latencies.push((arrived_at - sent).as_secs_f64() * 1000.0);
            answers.push(answered.as_secs_f64() * 1000.0);
        }
        n += 1;
        // An idle system: the next publish comes a moment later.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut commits = probe.await.unwrap();
    for figures in [&mut latencies, &mut answers, &mut commits] {
        figures.sort_by(|a, b| a.total_cmp(b));
    }
    let figure = format!("broker idle publish → delivery, {when}");
    rows.push(Row::new(format!("{figure} ({} messages): p50", latencies.len()), percentile(&latencies, 50.0), "ms", database));
    rows.push(Row::new(format!("{figure}: p99"), percentile(&latencies, 99.0), "ms", database));
    rows.push(Row::new(format!("{figure}: of which the publish's answer, p99"), percentile(&answers, 99.0), "ms", database));
    rows.push(Row::new(format!("{figure}: one bare commit meanwhile ({} probes), p99", commits.len()), percentile(&commits, 99.0), "ms", database));
}

// ---- meetings --------------------------------------------------------------------------

fn calendly_delivery(n: usize, event: &str) -> Vec<u8> {
    let api = "https://api.calendly.com";
    serde_json::to_vec(&json!({
        "created_at": "2026-11-20T09:00:01Z", "created_by": format!("{api}/users/HOST"), "event": event,
        "payload": {
            "uri": format!("{api}/scheduled_events/EV{n}/invitees/IN{n}"), "email": "grace@example.com",
            "name": "Grace Hopper", "status": "active", "timezone": "UTC", "rescheduled": false,
            "scheduled_event": {
                "uri": format!("{api}/scheduled_events/EV{n}"), "name": "Intro call",
                "start_time": "2031-01-01T10:00:00Z", "end_time": "2031-01-01T10:30:00Z",
                "location": {"type": "zoom", "location": "https://zoom.example/j/1"},
                "event_memberships": [{"user_email": "host@example.com"}]
            }
        }
    }))
    .unwrap()
}

fn calendly_signature(body: &[u8]) -> String {
    let t = app::platform::time::now_ms() / 1000;
    format!("t={t},v1={}", app::meetings::calendly::sign(BENCH_KEY, t, body))
}

/// A file of `signature<TAB>body` lines, deliveries `from..from+n` (each one distinct,
/// so none is a duplicate), signed now.
fn signed_deliveries(dir: &Path, name: &str, from: usize, n: usize) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in from..from + n {
        let body = calendly_delivery(i, "invitee.created");
        writeln!(out, "{}\t{}", calendly_signature(&body), String::from_utf8(body).unwrap()).unwrap();
    }
    out.flush().unwrap();
    path
}

async fn post_webhook(client: &reqwest::Client, base: &str, body: Vec<u8>) {
    let res = client
        .post(format!("{base}/webhooks/calendly"))
        .header("content-type", "application/json")
        .header("calendly-webhook-signature", calendly_signature(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "webhook: {}", res.status());
}

async fn bench_meetings(db: Db, ceilings: &Ceilings, rows: &mut Vec<Row>) {
    let b = Bench::start(db, |_| {}).await;
    let database = db.name();
    let files = tempfile::tempdir().unwrap();
    // Enough distinct deliveries for the warm-up and the run at well over 10,000/s.
    let per_second = 12_000;
    let warm = signed_deliveries(files.path(), "warm.tsv", 0, per_second * WARMUP.as_secs() as usize);
    let run = signed_deliveries(files.path(), "run.tsv", 1_000_000, per_second * measure_for().as_secs() as usize);
    let shape = |lines: PathBuf| Shape { method: "POST", path: "/webhooks/calendly".into(), lines: Some(lines), ..Default::default() };
    let base = b.base.clone();
    let (warm_shape, run_shape) = (shape(warm), shape(run));
    let load = tokio::task::spawn_blocking(move || {
        wrk_once(&base, &warm_shape, 32, WARMUP);
        wrk_once(&base, &run_shape, 32, measure_for())
    })
    .await
    .unwrap();
    if load.failed > 0 {
        eprintln!("  warning: {} webhook requests failed", load.failed);
    }
    load_rows(rows, "meetings POST /webhooks/calendly, 32 connections", load, database, ceilings.insert(32));

    // What the intake accepted is folded right after, in the background: how fast that
    // backlog drains (the open-page figure below is taken once it has).
    let unfolded = || async {
        use app::meetings::store::inbox;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        inbox::Entity::find().filter(inbox::Column::ProcessedAt.is_null()).count(&b.state.db.conn).await.unwrap()
    };
    let (backlog, started) = (unfolded().await, Instant::now());
    while unfolded().await > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if backlog > 0 {
        rows.push(Row::new(format!("meetings folding the accepted backlog ({backlog} deliveries)"), backlog as f64 / started.elapsed().as_secs_f64(), "deliveries/s", database));
    }

    // Webhook → an open page served by another instance on the same database.
    use futures::StreamExt;
    let (other, stop_other) = b.another_instance().await;
    let res = b.client.get(format!("{other}/api/v1/meetings/events")).bearer_auth(&b.token).send().await.unwrap();
    let mut stream = res.bytes_stream();
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < WARMUP + measure_for() {
        let marker = format!("/scheduled_events/EV{}\"", 5_000_000 + n);
        let sent = Instant::now();
        post_webhook(&b.client, &b.base, calendly_delivery(5_000_000 + n, "invitee.canceled")).await;
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("event in time").unwrap().unwrap();
            if String::from_utf8_lossy(&chunk).contains(&marker) {
                break;
            }
        }
        if started.elapsed() >= WARMUP {
            latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    rows.push(Row::new(format!("meetings webhook → open page on another instance ({} webhooks): p50", latencies.len()), percentile(&latencies, 50.0), "ms", database));
    rows.push(Row::new("meetings webhook → open page on another instance: p99", percentile(&latencies, 99.0), "ms", database));
    let _ = stop_other.send(());
    b.stop().await;
}

// ---- scheduler -------------------------------------------------------------------------

async fn bench_scheduler(db: Db, ceilings: &Ceilings, rows: &mut Vec<Row>) {
    let b = Bench::start(db, |_| {}).await;
    let database = db.name();
    // One event per hour slot, so every insert also runs the overlap query.
    let create = Shape::post("/api/v1/users/bench/events", Some(&b.token), r#"{"title":"event {n}","start":"{start}","end":"{end}"}"#);
    let load = run_wrk(&b.base, &create, 16).await;
    load_rows(rows, "scheduler create event (published to the broker), 16 connections", load, database, ceilings.insert(16));
    let month = Shape::get("/api/v1/users/bench/events?from=2031-01-01T00:00:00Z&to=2031-02-01T00:00:00Z", &b.token);
    let load = run_wrk(&b.base, &month, 16).await;
    load_rows(rows, "scheduler list a month of events, 16 connections", load, database, ceilings.hello(16));
    b.stop().await;
}

// ---- live pages ------------------------------------------------------------------------

/// Open live pages in the figure, each an inbox following its own change channel.
const LIVE_PAGES: usize = 1000;
/// Changes per second spread over them (one a second per page).
const LIVE_CHANGES_PER_SEC: u64 = 1000;

/// `bench live-client BASE TOKENS SECS`: the browsers of the live-pages figure, in their
/// own process. Opens one `/api/v1/me/chat/events` stream per token (one per line),
/// prints `connected` once all are open, then `<message id>\t<unix µs received>` for each
/// message announced, until SECS have passed.
async fn live_client(base: String, tokens: PathBuf, secs: u64) {
    use futures::StreamExt;
    use std::io::Write;
    let tokens: Vec<String> = std::fs::read_to_string(tokens).unwrap().lines().map(str::to_owned).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut opened = Vec::new();
    for token in tokens {
        let res = client.get(format!("{base}/api/v1/me/chat/events")).bearer_auth(token).send().await.expect("stream opens");
        assert!(res.status().is_success(), "live stream: {}", res.status());
        opened.push(res);
    }
    println!("connected");
    std::io::stdout().flush().unwrap();
    for res in opened {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stream = res.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    for data in event.lines().filter_map(|l| l.strip_prefix("data:")) {
                        if let Some(id) = serde_json::from_str::<Value>(data.trim()).ok().and_then(|v| v["posted"].as_i64()) {
                            let _ = tx.send(format!("{id}\t{now}"));
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut out = std::io::BufWriter::new(std::io::stdout());
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    std::process::exit(0);
}

/// The CPU time this process (the server, and the producer posting through its service
/// layer) has used so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ
}

/// Accounts `live0…` with an API token each, written straight to the tables (a sign-up
/// per page would spend minutes hashing passwords); returns the tokens.
async fn live_accounts(b: &Bench, n: usize) -> Vec<String> {
    use app::accounts::store::{api_token, user};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
    let now = app::platform::time::now_ms();
    let users = (0..n).map(|i| user::ActiveModel {
        username: Set(format!("live{i}")),
        display_name: Set(format!("live{i}")),
        password_hash: Set("!".into()), // no password logs in
        role: Set(app::accounts::Role::Member),
        time_zone: Set("UTC".into()),
        created_at: Set(now),
        calendar_shared: Set(false),
        ..Default::default()
    });
    user::Entity::insert_many(users).exec_without_returning(&b.state.db.conn).await.unwrap();
    let ids = user::Entity::find().filter(user::Column::Username.starts_with("live")).all(&b.state.db.conn).await.unwrap();
    let tokens: Vec<(i64, String)> = ids.iter().map(|u| (u.id, format!("sbt_live_{}_{:016x}", u.id, rand::random::<u64>()))).collect();
    let rows = tokens.iter().map(|(user_id, token)| api_token::ActiveModel {
        user_id: Set(*user_id),
        name: Set("live page".into()),
        token_hash: Set(app::platform::secrets::sha256_hex(token)),
        scopes: Set(String::new()),
        created_at: Set(now),
        last_used_at: Set(Some(now)),
        expires_at: Set(None),
        ..Default::default()
    });
    api_token::Entity::insert_many(rows).exec_without_returning(&b.state.db.conn).await.unwrap();
    tokens.into_iter().map(|(_, t)| t).collect()
}

async fn bench_live_pages(db: Db, rows: &mut Vec<Row>) {
    let b = Bench::start(db, |s| s.part_mut::<app::chat::settings::ChatSettings>().archive_every = Duration::from_secs(86_400)).await;
    let database = db.name();
    let files = tempfile::tempdir().unwrap();
    let tokens_file = files.path().join("tokens");
    std::fs::write(&tokens_file, live_accounts(&b, LIVE_PAGES).await.join("\n")).unwrap();
    let total = WARMUP + measure_for() + Duration::from_secs(5);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["live-client", &b.base, &tokens_file.display().to_string(), &total.as_secs().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the live client starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let connected = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        (line, stdout)
    });
    let (line, stdout) = connected.await.unwrap();
    assert_eq!(line.trim(), "connected", "the live client did not connect");
    let received = tokio::task::spawn_blocking(move || std::io::BufRead::lines(stdout).map_while(Result::ok).collect::<Vec<String>>());

    // The producer: chat posts through the service layer at a fixed rate, each to the
    // next page's inbox, each timed from just before its call.
    let poster = app::accounts::service::caller_for_bearer(&b.state, &b.token).await.unwrap().expect("bench caller");
    let sent: Arc<Mutex<Vec<(i64, u128, bool)>>> = Arc::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / LIVE_CHANGES_PER_SEC));
    let mut cpu_at = None;
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0usize;
    while started.elapsed() < WARMUP + measure_for() {
        tick.tick().await;
        let measured = started.elapsed() >= WARMUP;
        if measured && cpu_at.is_none() {
            cpu_at = Some((cpu_seconds(), Instant::now()));
        }
        let (state, poster, sent) = (b.state.clone(), poster.clone(), sent.clone());
        let to = format!("live{}", n % LIVE_PAGES);
        tasks.spawn(async move {
            let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
            if let Ok(id) = app::chat::service::post_message(&state, &poster, &to, "a live change", Some(3600)).await {
                sent.lock().unwrap().push((id, at, measured));
            }
        });
        n += 1;
        while tasks.try_join_next().is_some() {}
    }
    let (cpu_start, wall_start) = cpu_at.expect("the run had a measured part");
    let cpu = (cpu_seconds() - cpu_start) / wall_start.elapsed().as_secs_f64();
    while tasks.join_next().await.is_some() {}
    let arrived: HashMap<i64, u128> = received
        .await
        .unwrap()
        .iter()
        .filter_map(|l| l.split_once('\t').and_then(|(id, at)| Some((id.parse().ok()?, at.parse().ok()?))))
        .collect();
    let _ = child.wait();
    let sent = sent.lock().unwrap().clone();
    let measured: Vec<&(i64, u128, bool)> = sent.iter().filter(|s| s.2).collect();
    let mut latencies: Vec<f64> = measured.iter().filter_map(|(id, at, _)| arrived.get(id).map(|got| got.saturating_sub(*at) as f64 / 1000.0)).collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let rate = measured.len() as f64 / measure_for().as_secs_f64();
    rows.push(Row::new(format!("{LIVE_PAGES} open live pages, {rate:.0} changes/s: changes that reached their page"), 100.0 * latencies.len() as f64 / measured.len().max(1) as f64, "%", database));
    rows.push(Row::new(format!("{LIVE_PAGES} open live pages: change → page p50"), percentile(&latencies, 50.0), "ms", database));
    rows.push(Row::new(format!("{LIVE_PAGES} open live pages: change → page p99"), percentile(&latencies, 99.0), "ms", database));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    rows.push(Row::new(format!("{LIVE_PAGES} open live pages: server CPU (of all {cores:.0} cores, producer included)"), 100.0 * cpu / cores, "%", database));
    b.stop().await;
}

// ---- database settings -----------------------------------------------------------------

/// How the database was configured for the run (durability matters most).
async fn database_settings(db: Db) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let conn = app::platform::db::Db::connect_with(&fresh_database(db, dir.path()).await, app::platform::db::PoolSettings { max_connections: Some(2) }).await.unwrap();
    let sql = match db {
        Db::MariaDb => "SELECT CONCAT('MariaDB ', @@version, ': innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit, \
                        ', sync_binlog=', @@sync_binlog, ', log_bin=', @@log_bin, ', innodb_buffer_pool_size=', @@innodb_buffer_pool_size DIV 1048576, \
                        ' MiB, transaction isolation READ COMMITTED (set per connection by the app)') AS s",
        Db::Sqlite => "SELECT 'SQLite ' || sqlite_version() || ': journal_mode=WAL, synchronous=NORMAL, one writer at a time' AS s",
    };
    let row = conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql.to_owned())).await.unwrap().unwrap();
    row.try_get::<String>("", "s").unwrap()
}

// ---- wages ---------------------------------------------------------------------------

/// One synthetic filing of the benchmark's data set (deterministic in `i`), as the DOL's
/// FY2020+ layout spells it: the columns the portal reads and some it ignores.
const BENCH_HEADER: [&str; 20] = [
    "CASE_NUMBER", "CASE_STATUS", "RECEIVED_DATE", "DECISION_DATE", "VISA_CLASS", "JOB_TITLE", "SOC_CODE", "SOC_TITLE",
    "FULL_TIME_POSITION", "EMPLOYER_NAME", "EMPLOYER_CITY", "WORKSITE_CITY", "WORKSITE_STATE", "WAGE_RATE_OF_PAY_FROM",
    "WAGE_RATE_OF_PAY_TO", "WAGE_UNIT_OF_PAY", "PREVAILING_WAGE", "PW_UNIT_OF_PAY", "PW_WAGE_LEVEL", "TOTAL_WORKER_POSITIONS",
];

fn bench_filing(prefix: &str, i: usize) -> [String; 20] {
    const STATES: [&str; 10] = ["WA", "CA", "TX", "NY", "MA", "IL", "GA", "CO", "NC", "NJ"];
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    // Independent draws per attribute: derived from one number by `%` and `/`, the state
    // and the year were correlated (no WA filing after 2022), and a filter on both
    // selected nothing.
    let draw = |salt: u64| {
        // splitmix64's finaliser over (x, salt): every output bit depends on every input bit.
        let mut z = x.wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 1) as usize
    };
    let r = draw(0);
    let (year, state, employer) = (2020 + draw(1) % 6, STATES[draw(2) % 10], draw(3) % 20_000);
    let (hourly, status) = (r % 5 == 0, if r % 17 == 0 { "Denied" } else { "Certified" });
    let wage = 60_000 + (r % 150_000);
    let wage = if hourly { format!("{:.2}", wage as f64 / 2080.0) } else { wage.to_string() };
    [
        format!("{prefix}-{i}"), status.into(), String::new(), format!("{year}-0{}-15", 1 + r % 9), "H-1B".into(),
        format!("TITLE {}", draw(5) % 3000), format!("15-{:04}", 1000 + draw(6) % 300), "Occupation".into(), "Y".into(),
        format!("EMPLOYER {employer}"), "Somewhere".into(), format!("CITY {}", draw(4) % 2000), state.into(),
        wage, String::new(), if hourly { "Hour" } else { "Year" }.into(), "90000".into(), "Year".into(), "II".into(), "1".into(),
    ]
}

/// The data set as a CSV file.
fn lca_csv(n: usize, path: &std::path::Path) {
    let mut out = csv::Writer::from_path(path).unwrap();
    out.write_record(BENCH_HEADER).unwrap();
    for i in 0..n {
        out.write_record(bench_filing("B", i)).unwrap();
    }
    out.flush().unwrap();
}

/// The same data set (other case numbers) as an Excel workbook, written row by row.
fn lca_xlsx(n: usize, path: &std::path::Path) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory().expect("a worksheet");
    for (c, h) in BENCH_HEADER.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for i in 0..n {
        for (c, v) in bench_filing("X", i).iter().enumerate() {
            match v.parse::<f64>() {
                Ok(num) if c == 13 => drop(sheet.write_number(i as u32 + 1, c as u16, num).unwrap()),
                _ => drop(sheet.write_string(i as u32 + 1, c as u16, v).unwrap()),
            }
        }
    }
    book.save(path).unwrap();
}

/// Latencies of `query` run again and again for the figure's duration (after a warm-up).
async fn timed<F, Fut>(mut query: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..3 {
        query().await;
    }
    let budget = Duration::from_secs(std::env::var("SB_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(15));
    let started = Instant::now();
    let mut times = Vec::new();
    while started.elapsed() < budget || times.len() < 20 {
        let t = Instant::now();
        query().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times
}

async fn bench_wages(db: Db, rows: &mut Vec<Row>) {
    use app::wages::domain::WageFilter;
    let n: usize = std::env::var("SB_BENCH_WAGE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let b = Bench::start(db, |_| {}).await;
    let row = |figure: String, value: f64, unit: &'static str| Row::new(figure, value, unit, db.name());
    let file = b._dir.path().join("lca.csv");
    lca_csv(n, &file);
    let started = Instant::now();
    let report = app::wages::service::import_lca(&b.state.db, &file, None, &|_| {}).await.expect("import");
    let took = started.elapsed().as_secs_f64();
    assert_eq!(report.rows_new as usize + report.rows_bad as usize, n);
    rows.push(row(format!("wages import, CSV ({n} rows, DOL layout)"), n as f64 / took, "rows/s"));

    let operator = app::accounts::Caller::operator();
    let started = Instant::now();
    let copy = b.state.part::<app::wages::analytics::WageCopy>().current(&b.state.db).await.expect("copy");
    rows.push(row(format!("wages copy build ({} records)", copy.len()), started.elapsed().as_secs_f64() * 1000.0, "ms"));
    rows.push(row("wages copy memory".into(), copy.memory_bytes() as f64 / copy.len().max(1) as f64, "bytes/record"));
    let filters = [
        ("no filter", WageFilter::default()),
        ("state=WA, 2023+, employer EMPLOYER 1…", WageFilter { state: Some("WA".into()), year_from: Some(2023), employer: Some("employer 1".into()), ..Default::default() }),
    ];
    for (label, filter) in &filters {
        for (group_by, _) in app::wages::domain::GROUP_BY {
            let times = timed(|| async {
                app::wages::service::stats_with_market(&b.state, &operator, filter, group_by).await.expect("stats");
            })
            .await;
            // The reference: the same statistics by a plain sort of the same values.
            let selection = copy.select(filter).unwrap();
            let pairs = copy.keyed_wages(&selection, group_by).unwrap();
            let reference = timed(|| {
                let pairs = pairs.clone();
                async move {
                    let mut groups: HashMap<u32, Vec<f64>> = HashMap::new();
                    for (k, w) in pairs {
                        groups.entry(k).or_default().push(w);
                    }
                    let mut largest: Vec<(usize, u32)> = groups.iter().map(|(k, v)| (v.len(), *k)).collect();
                    largest.sort_unstable_by(|a, b| b.cmp(a));
                    for (_, k) in largest.into_iter().take(25) {
                        std::hint::black_box(app::wages::stats::summarize(groups.remove(&k).unwrap()));
                    }
                }
            })
            .await;
            let (p50, p99, r50) = (percentile(&times, 50.0), percentile(&times, 99.0), percentile(&reference, 50.0));
            rows.push(row(format!("wages stats over {n}, {label}, group_by={group_by}: p50"), p50, "ms"));
            rows.push(row(format!("wages stats over {n}, {label}, group_by={group_by}: p99"), p99, "ms"));
            rows.push(row(format!("wages stats over {n}, {label}, group_by={group_by}: plain-sort reference p50 (ratio {:.2})", p50 / r50.max(1e-9)), r50, "ms"));
        }
    }
    let _ = b.stop.send(());

    // The same data as the DOL's workbook, into a fresh database.
    let b = Bench::start(db, |_| {}).await;
    let file = b._dir.path().join("lca.xlsx");
    lca_xlsx(n, &file);
    let started = Instant::now();
    let report = app::wages::service::import_lca(&b.state.db, &file, None, &|_| {}).await.expect("import");
    let took = started.elapsed().as_secs_f64();
    assert_eq!(report.rows_new as usize + report.rows_bad as usize, n, "{:?}", report.errors.first());
    rows.push(row(format!("wages import, XLSX ({n} rows, {} MB)", std::fs::metadata(&file).map(|m| m.len() >> 20).unwrap_or(0)), n as f64 / took, "rows/s"));
    let _ = b.stop.send(());
}


// ---- the table -------------------------------------------------------------------------

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores ({cpu})")
}

#[tokio::main]
async fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if what == "live-client" {
        let args: Vec<String> = std::env::args().skip(2).collect();
        return live_client(args[0].clone(), args[1].clone().into(), args[2].parse().unwrap()).await;
    }
    if std::env::var_os("SB_BENCH_TRACE").is_some() {
        // Where a figure's time goes: every span's busy and idle time as it closes (filter
        // with RUST_LOG), to stderr.
        use tracing_subscriber::{fmt, fmt::format::FmtSpan, prelude::*, EnvFilter};
        let layer = fmt::layer().compact().with_ansi(false).with_span_events(FmtSpan::CLOSE).with_writer(std::io::stderr);
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,app=info"));
        tracing_subscriber::registry().with(filter).with(layer).init();
    }
    let databases: Vec<Db> = match std::env::var("SB_BENCH_DATABASES").as_deref() {
        Ok("sqlite") => vec![Db::Sqlite],
        Ok("mariadb") => vec![Db::MariaDb],
        _ => vec![Db::Sqlite, Db::MariaDb],
    };
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; figures are only meaningful with --release");
    }
    let wants = |part: &str| what == "all" || what.split(',').any(|w| w == part);
    let mut rows = Vec::new();
    let mut ceilings = Ceilings::default();
    let mut settings = Vec::new();
    eprintln!("measuring the HTTP and receiver ceilings…");
    measure_hello(&mut ceilings, &mut rows).await;
    measure_receiver(&mut ceilings, &mut rows).await;
    for db in databases {
        settings.push(database_settings(db).await);
        eprintln!("measuring the insert ceiling on {}…", db.name());
        measure_inserts(db, &mut ceilings, &mut rows).await;
        if wants("chat") {
            eprintln!("benchmarking chat on {}…", db.name());
            bench_chat(db, &ceilings, &mut rows).await;
        }
        if wants("live") {
            eprintln!("benchmarking {LIVE_PAGES} live pages on {}…", db.name());
            bench_live_pages(db, &mut rows).await;
        }
        if wants("broker") {
            eprintln!("benchmarking the broker on {}…", db.name());
            bench_broker(db, &ceilings, &mut rows).await;
        }
        if wants("meetings") {
            eprintln!("benchmarking meetings on {}…", db.name());
            bench_meetings(db, &ceilings, &mut rows).await;
        }
        if wants("scheduler") {
            eprintln!("benchmarking the scheduler on {}…", db.name());
            bench_scheduler(db, &ceilings, &mut rows).await;
        }
        if wants("wages") {
            eprintln!("benchmarking the wage portal on {}…", db.name());
            bench_wages(db, &mut rows).await;
        }
    }
    println!("Run of {} on {}; each figure {} s after a {} s warm-up.", chrono::Utc::now().format("%Y-%m-%d"), machine(), measure_for().as_secs(), WARMUP.as_secs());
    for s in settings {
        println!("- {s}");
    }
    println!();
    println!("| figure | value | unit | database | ratio to its ceiling |");
    println!("|---|---:|---|---|---|");
    for r in rows {
        let ratio = match &r.ceiling {
            Some((c, what)) if c.is_finite() && *c > 0.0 => format!("{:.0} % of {what} ({c:.0})", 100.0 * r.value / c),
            _ => String::new(),
        };
        println!("| {} | {:.1} | {} | {} | {ratio} |", r.figure, r.value, r.unit, r.database);
    }
}

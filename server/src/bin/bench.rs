//! Benchmarks: `bench [ceilings|broker|meetings|chat|scheduler|wages|all]` runs the hot paths against the embedded default
//! (SQLite) and MariaDB and prints a Markdown table (figure, value, unit, database).
//! Build with `--release`; see `scripts/bench.sh`. These are measurements, not tests:
//! nothing here passes or fails.

use app::platform::settings::{Settings, StoreSettings};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use server::{Application, Options};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BENCH_KEY: &str = "bench-signing-key";

struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    database: String,
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

/// A running app on a fresh database and object folder.
struct Bench {
    base: String,
    client: reqwest::Client,
    token: String,
    state: app::platform::state::AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn fresh_database(db: Db, dir: &std::path::Path) -> String {
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

impl Bench {
    async fn start(db: Db, tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::from_env();
        s.database_url = fresh_database(db, dir.path()).await;
        s.listen = "127.0.0.1:0".into();
        s.store = StoreSettings::Folder(dir.path().join("objects").display().to_string());
        s.demo_data = false;
        s.broker.allowed_targets = vec!["127.0.0.1".into()];
        s.broker.concurrency = 64;
        s.meetings.signing_key = Some(BENCH_KEY.into());
        s.http.webhook_rate_per_min = u32::MAX; // one client posts everything here
        s.auth.signup_per_ip_per_hour = u32::MAX;
        s.auth.login_per_ip_per_min = u32::MAX;
        s.auth.login_per_user_per_min = u32::MAX;
        s.secret_key = Some(app::platform::crypto::generate_key());
        tweak(&mut s);
        let app = Application::build(Options { settings: s, run_jobs: true }).await.expect("app starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        let creds = json!({"username": "bench", "password": "correct horse battery staple"});
        client.post(format!("{base}/api/v1/auth/signup")).json(&creds).send().await.unwrap();
        let token: Value = client.post(format!("{base}/api/v1/auth/tokens")).json(&creds).send().await.unwrap().json().await.unwrap();
        Self { base, client, token: token["token"].as_str().unwrap().to_owned(), state, stop, _dir: dir }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let res = self.client.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs `total` calls of `call(i)` over `connections` concurrent workers; returns the
/// wall time and each call's latency in ms, sorted.
async fn load<F, Fut>(total: usize, connections: usize, call: F) -> (Duration, Vec<f64>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (call, next) = (call.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return lat;
                }
                let t = Instant::now();
                call(i).await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (started.elapsed(), all)
}

// ---- broker ----------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<String, Vec<Instant>>>>);

async fn receive(State(arrivals): State<Arrivals>, headers: HeaderMap, _body: Bytes) -> &'static str {
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    arrivals.0.lock().unwrap().entry(id).or_default().push(Instant::now());
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

async fn bench_broker(db: Db, rows: &mut Vec<Row>) {
    let bench = Arc::new(Bench::start(db, |_| {}).await);
    let database = db.name().to_owned();
    let (receiver, arrivals) = start_receiver().await;

    // Publish rate with no subscribers: the cost of accepting a message.
    bench.post("/api/v1/topics", json!({"name": "bench:publish"})).await;
    let b = bench.clone();
    let (wall, lat) = load(2000, 16, move |i| {
        let b = b.clone();
        async move {
            b.post("/api/v1/topics/bench:publish/messages", json!({"payload": {"i": i}})).await;
        }
    })
    .await;
    rows.push(Row { figure: "broker publish (16 connections)".into(), value: 2000.0 / wall.as_secs_f64(), unit: "req/s", database: database.clone() });
    rows.push(Row { figure: "broker publish latency p50".into(), value: percentile(&lat, 50.0), unit: "ms", database: database.clone() });
    rows.push(Row { figure: "broker publish latency p99".into(), value: percentile(&lat, 99.0), unit: "ms", database: database.clone() });

    for (subs, messages) in [(1usize, 2000usize), (10, 400), (100, 40)] {
        let topic = format!("bench:fanout{subs}");
        bench.post("/api/v1/topics", json!({"name": topic})).await;
        for s in 0..subs {
            let url = format!("{receiver}/s{subs}/{s}");
            let sub = bench.post("/api/v1/subscribers", json!({"name": url, "url": url})).await;
            bench.post(&format!("/api/v1/subscribers/{}/subscriptions", sub["id"]), json!({"topic": topic})).await;
        }
        arrivals.0.lock().unwrap().clear();
        let published: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
        let (b, p, t) = (bench.clone(), published.clone(), topic.clone());
        let started = Instant::now();
        load(messages, 8, move |i| {
            let (b, p, t) = (b.clone(), p.clone(), t.clone());
            async move {
                let at = Instant::now();
                let res = b.post(&format!("/api/v1/topics/{t}/messages"), json!({"payload": {"i": i}})).await;
                p.lock().unwrap().insert(format!("msg_{}", res["id"]), at);
            }
        })
        .await;
        let expected = subs * messages;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let n: usize = arrivals.0.lock().unwrap().values().map(Vec::len).sum();
            if n >= expected || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed();
        let arrivals = arrivals.0.lock().unwrap().clone();
        let published = published.lock().unwrap();
        let mut latencies: Vec<f64> = arrivals
            .iter()
            .flat_map(|(id, ts)| published.get(id).map(|p| ts.iter().map(move |t| (*t - *p).as_secs_f64() * 1000.0)))
            .flatten()
            .collect();
        latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let delivered = latencies.len();
        rows.push(Row {
            figure: format!("broker deliveries, {subs} subscription(s)"),
            value: delivered as f64 / elapsed.as_secs_f64(),
            unit: "deliveries/s",
            database: database.clone(),
        });
        rows.push(Row { figure: format!("broker publish→delivery p50, {subs} subscription(s)"), value: percentile(&latencies, 50.0), unit: "ms", database: database.clone() });
        rows.push(Row { figure: format!("broker publish→delivery p99, {subs} subscription(s)"), value: percentile(&latencies, 99.0), unit: "ms", database: database.clone() });
        if delivered < expected {
            eprintln!("warning: {subs} subscription(s) on {database}: {delivered} of {expected} delivered before the deadline");
        }
    }
    if let Ok(bench) = Arc::try_unwrap(bench) {
        let _ = bench.stop.send(());
    }
}

// ---- chat ------------------------------------------------------------------------------

/// Seeds `total` messages straight into the hot table: `expired` of them already expired,
/// the rest spread over `users` inboxes.
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

async fn bench_chat(db: Db, rows: &mut Vec<Row>) {
    let bench = Arc::new(Bench::start(db, |s| s.chat.archive_every = Duration::from_secs(86_400)).await);
    let database = db.name().to_owned();
    let (total, expired, users) = (1_000_000usize, 200_000usize, 100_000usize);
    seed_chat(&bench, total, expired, users).await;
    let row = |figure: &str, value: f64, unit: &'static str| Row { figure: figure.into(), value, unit, database: database.clone() };

    let b = bench.clone();
    let (wall, lat) = load(5000, 64, move |i| {
        let b = b.clone();
        async move {
            b.post("/chat", json!({"username": format!("user{}", (i * 7919) % users), "text": "benchmark message", "timeout": 3600})).await;
        }
    })
    .await;
    rows.push(row("chat POST /chat (64 connections, 1 M stored)", 5000.0 / wall.as_secs_f64(), "req/s"));
    rows.push(row("chat POST /chat latency p50", percentile(&lat, 50.0), "ms"));
    rows.push(row("chat POST /chat latency p99", percentile(&lat, 99.0), "ms"));

    let b = bench.clone();
    let (wall, lat) = load(5000, 64, move |i| {
        let b = b.clone();
        async move {
            let url = format!("{}/chats/user{}", b.base, (i * 104_729) % users);
            let res = b.client.get(url).bearer_auth(&b.token).send().await.unwrap();
            assert!(res.status().is_success());
            let _ = res.bytes().await;
        }
    })
    .await;
    rows.push(row("chat GET /chats/{u} (64 connections, 1 M stored)", 5000.0 / wall.as_secs_f64(), "req/s"));
    rows.push(row("chat GET /chats/{u} latency p50", percentile(&lat, 50.0), "ms"));
    rows.push(row("chat GET /chats/{u} latency p99", percentile(&lat, 99.0), "ms"));

    let started = Instant::now();
    let report = app::chat::service::archive_expired(&bench.state, 1000).await.unwrap();
    rows.push(row("chat archive to cold storage", report.messages as f64 / started.elapsed().as_secs_f64(), "messages/s"));

    let b = bench.clone();
    let (_, lat) = load(2000, 16, move |i| {
        let b = b.clone();
        async move {
            let id = 1 + (i * 7_919) % expired;
            let res = b.client.get(format!("{}/chat/{id}", b.base)).bearer_auth(&b.token).send().await.unwrap();
            assert!(res.status().is_success(), "cold read of {id}: {}", res.status());
            let _ = res.bytes().await;
        }
    })
    .await;
    rows.push(row("chat cold read GET /chat/{id} p50", percentile(&lat, 50.0), "ms"));
    rows.push(row("chat cold read GET /chat/{id} p99", percentile(&lat, 99.0), "ms"));
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

async fn post_webhook(b: &Bench, body: Vec<u8>) {
    let t = app::platform::time::now_ms() / 1000;
    let sig = format!("t={t},v1={}", app::meetings::calendly::sign(BENCH_KEY, t, &body));
    let res = b
        .client
        .post(format!("{}/webhooks/calendly", b.base))
        .header("content-type", "application/json")
        .header("calendly-webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "webhook: {}", res.status());
}

async fn bench_meetings(db: Db, rows: &mut Vec<Row>) {
    let bench = Arc::new(Bench::start(db, |_| {}).await);
    let database = db.name().to_owned();
    let row = |figure: &str, value: f64, unit: &'static str| Row { figure: figure.into(), value, unit, database: database.clone() };

    let b = bench.clone();
    let (wall, lat) = load(3000, 32, move |i| {
        let b = b.clone();
        async move { post_webhook(&b, calendly_delivery(i, "invitee.created")).await }
    })
    .await;
    rows.push(row("meetings webhook intake (32 connections)", 3000.0 / wall.as_secs_f64(), "req/s"));
    rows.push(row("meetings webhook intake latency p50", percentile(&lat, 50.0), "ms"));
    rows.push(row("meetings webhook intake latency p99", percentile(&lat, 99.0), "ms"));

    // Webhook → browser: the time from sending a delivery to its change event arriving on
    // an open SSE stream (what a page sees), one delivery at a time.
    use futures::StreamExt;
    let res = bench.client.get(format!("{}/api/v1/meetings/events", bench.base)).bearer_auth(&bench.token).send().await.unwrap();
    let mut stream = res.bytes_stream();
    let mut latencies = Vec::new();
    for n in 0..100 {
        // Wait for this delivery's own change (the stream may still carry older ones).
        let marker = format!("/scheduled_events/EV{}\"", 100_000 + n);
        let sent = Instant::now();
        post_webhook(&bench, calendly_delivery(100_000 + n, "invitee.canceled")).await;
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("event in time").unwrap().unwrap();
            if String::from_utf8_lossy(&chunk).contains(&marker) {
                break;
            }
        }
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rows.push(row("meetings webhook→browser (SSE) p50", percentile(&latencies, 50.0), "ms"));
    rows.push(row("meetings webhook→browser (SSE) p99", percentile(&latencies, 99.0), "ms"));
}

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
    let row = |figure: String, value: f64, unit: &'static str| Row { figure, value, unit, database: db.name().into() };
    let file = b._dir.path().join("lca.csv");
    lca_csv(n, &file);
    let started = Instant::now();
    let report = app::wages::service::import_lca(&b.state.db, &file, None, &|_| {}).await.expect("import");
    let took = started.elapsed().as_secs_f64();
    assert_eq!(report.rows_new as usize + report.rows_bad as usize, n);
    rows.push(row(format!("wages import, CSV ({n} rows, DOL layout)"), n as f64 / took, "rows/s"));

    let operator = app::accounts::Caller::operator();
    let started = Instant::now();
    let copy = b.state.wage_copy.current(&b.state.db).await.expect("copy");
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

// ---- scheduler -------------------------------------------------------------------------

async fn bench_scheduler(db: Db, rows: &mut Vec<Row>) {
    let bench = Arc::new(Bench::start(db, |_| {}).await);
    let row = |figure: &str, value: f64, unit: &'static str| Row { figure: figure.into(), value, unit, database: db.name().into() };
    let b = bench.clone();
    let (wall, lat) = load(2000, 16, move |i| {
        let b = b.clone();
        async move {
            // One event per hour slot, so every insert also runs the overlap query.
            let start = 1_924_992_000 + i as i64 * 3600;
            let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
            b.post("/api/v1/users/bench/events", json!({"title": format!("event {i}"), "start": at(start), "end": at(start + 1800)})).await;
        }
    })
    .await;
    rows.push(row("scheduler create event, published to the broker (16 connections)", 2000.0 / wall.as_secs_f64(), "req/s"));
    rows.push(row("scheduler create event latency p50", percentile(&lat, 50.0), "ms"));
    let b = bench.clone();
    let (wall, _) = load(2000, 16, move |i| {
        let b = b.clone();
        async move {
            let url = format!("{}/api/v1/users/bench/events?from=2031-01-{:02}T00:00:00Z&to=2031-02-01T00:00:00Z", b.base, 1 + i % 28);
            let res = b.client.get(url).bearer_auth(&b.token).send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.status());
            let _ = res.bytes().await;
        }
    })
    .await;
    rows.push(row("scheduler list a month of events (16 connections)", 2000.0 / wall.as_secs_f64(), "req/s"));
    if let Ok(bench) = Arc::try_unwrap(bench) {
        let _ = bench.stop.send(());
    }
}

// ---- ceilings --------------------------------------------------------------------------

/// What this machine can do at all: an axum handler that does nothing, over the same
/// client and connection counts as the figures above. Every req/s figure is a fraction
/// of this.
async fn bench_hello(rows: &mut Vec<Row>) {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    for connections in [16, 64] {
        let (client, base) = (client.clone(), base.clone());
        let (wall, _) = load(20_000, connections, move |_| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let res = client.get(&base).send().await.unwrap();
                let _ = res.bytes().await;
            }
        })
        .await;
        rows.push(Row { figure: format!("ceiling: axum hello ({connections} connections)"), value: 20_000.0 / wall.as_secs_f64(), unit: "req/s", database: "none".into() });
    }
}

/// The database's own limit for what most writes here are: one small row in its own
/// transaction (autocommit), through the same pool the app uses.
async fn bench_insert(db: Db, rows: &mut Vec<Row>) {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let database = app::platform::db::Db::connect(&fresh_database(db, dir.path()).await).await.expect("database");
    let conn = Arc::new(database.conn.clone());
    let key = match db {
        Db::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Db::MariaDb => "BIGINT PRIMARY KEY AUTO_INCREMENT",
    };
    conn.execute_unprepared(&format!("CREATE TABLE ceiling (id {key}, v BIGINT NOT NULL)")).await.unwrap();
    for connections in [1usize, 16] {
        let c = conn.clone();
        let total = 4000;
        let (wall, _) = load(total, connections, move |i| {
            let c = c.clone();
            async move {
                let stmt = Statement::from_sql_and_values(c.get_database_backend(), "INSERT INTO ceiling (v) VALUES (?)", [(i as i64).into()]);
                c.execute_raw(stmt).await.unwrap();
            }
        })
        .await;
        rows.push(Row { figure: format!("ceiling: single-row INSERT, autocommit ({connections} at once)"), value: total as f64 / wall.as_secs_f64(), unit: "rows/s", database: db.name().into() });
    }
}

#[tokio::main]
async fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let databases: Vec<Db> = match std::env::var("SB_BENCH_DATABASES").as_deref() {
        Ok("sqlite") => vec![Db::Sqlite],
        Ok("mariadb") => vec![Db::MariaDb],
        _ => vec![Db::Sqlite, Db::MariaDb],
    };
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; figures are only meaningful with --release");
    }
    let mut rows = Vec::new();
    if matches!(what.as_str(), "ceilings" | "all") {
        eprintln!("measuring the axum ceiling…");
        bench_hello(&mut rows).await;
    }
    for db in databases {
        if matches!(what.as_str(), "ceilings" | "all") {
            eprintln!("measuring the insert ceiling on {}…", db.name());
            bench_insert(db, &mut rows).await;
        }
        if matches!(what.as_str(), "scheduler" | "all") {
            eprintln!("benchmarking the scheduler on {}…", db.name());
            bench_scheduler(db, &mut rows).await;
        }
        if matches!(what.as_str(), "broker" | "all") {
            eprintln!("benchmarking the broker on {}…", db.name());
            bench_broker(db, &mut rows).await;
        }
        if matches!(what.as_str(), "meetings" | "all") {
            eprintln!("benchmarking meetings on {}…", db.name());
            bench_meetings(db, &mut rows).await;
        }
        if matches!(what.as_str(), "chat" | "all") {
            eprintln!("benchmarking chat on {}…", db.name());
            bench_chat(db, &mut rows).await;
        }
        if matches!(what.as_str(), "wages" | "all") {
            eprintln!("benchmarking the wage portal on {}…", db.name());
            bench_wages(db, &mut rows).await;
        }
    }
    println!("| figure | value | unit | database |");
    println!("|---|---:|---|---|");
    for r in rows {
        println!("| {} | {:.1} | {} | {} |", r.figure, r.value, r.unit, r.database);
    }
}

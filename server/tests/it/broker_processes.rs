//! The broker's promises under crashes and with several processes: real `server`
//! processes, SIGKILL, one MariaDB database.

use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, new_user_token, Backend, ServerProcess, TestDb};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

fn env_for(db: &TestDb, data: &std::path::Path) -> Vec<(&'static str, String)> {
    env_with(db, data, 16)
}

fn env_with(db: &TestDb, data: &std::path::Path, concurrency: usize) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("SB_DATA_DIR", data.display().to_string()),
        ("BROKER_ALLOWED_TARGETS", "127.0.0.1".into()),
        ("BROKER_RETRY_BASE_MS", "20".into()),
        ("BROKER_RETRY_MAX_MS", "200".into()),
        // A short timeout keeps the lease of a killed process (timeout + 5 s) short.
        ("BROKER_TIMEOUT_MS", "2000".into()),
        ("BROKER_CONCURRENCY", concurrency.to_string()),
    ]
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn admin(base: &str) -> Self {
        let client = reqwest::Client::new();
        let token = new_user_token(&client, base, "root").await;
        Self { client, base: base.to_owned(), token }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let res = self.client.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn subscribe(&self, url: String, topic: &str) {
        let s = self.post("/api/v1/subscribers", json!({"name": url, "url": url})).await;
        self.post(&format!("/api/v1/subscribers/{}/subscriptions", s["id"]), json!({"topic": topic})).await;
    }
}

const TOPICS: [&str; 3] = ["fin:purchase", "fin:refund", "user:online"];

/// (endpoint path, pattern) of the subscribers every scenario uses.
const SUBSCRIBERS: [(&str, &str); 3] = [("/a", "fin:*"), ("/b", "fin:purchase"), ("/c", "*")];

fn matches(pattern: &str, topic: &str) -> bool {
    pattern == "*" || pattern == topic || pattern.strip_suffix('*').is_some_and(|p| topic.starts_with(p))
}

/// Publishes `n` messages over several connections; returns (message id, topic) of each.
async fn publish_many(api: &Api, n: usize) -> Vec<(i64, &'static str)> {
    let api = std::sync::Arc::new(Api { client: api.client.clone(), base: api.base.clone(), token: api.token.clone() });
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (worker..n).step_by(8) {
                let topic = TOPICS[i % 3];
                let res = api.post(&format!("/api/v1/topics/{topic}/messages"), json!({"payload": {"i": i}})).await;
                out.push((res["id"].as_i64().unwrap(), topic));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// Every message reached every matching subscriber at least once, and per (subscriber,
/// topic) the first successful deliveries came in publish (message id) order.
fn assert_complete_and_ordered(receiver: &Receiver, published: &[(i64, &str)]) {
    for (path, pattern) in SUBSCRIBERS {
        let firsts = receiver.first_successes(path);
        let got: HashSet<i64> = firsts.iter().map(|h| h.message_id()).collect();
        let want: HashSet<i64> = published.iter().filter(|(_, t)| matches(pattern, t)).map(|(id, _)| *id).collect();
        assert_eq!(got.len(), want.len(), "{path}: delivered {} of {}", got.len(), want.len());
        assert_eq!(got, want, "{path}: every message delivered");
        let mut per_topic: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for h in &firsts {
            per_topic.entry(h.json()["type"].as_str().unwrap().to_owned()).or_default().push(h.message_id());
        }
        for (topic, ids) in per_topic {
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{path} {topic}: first successes out of publish order");
        }
    }
}

async fn setup(api: &Api, receiver: &Receiver) {
    for t in TOPICS {
        api.post("/api/v1/topics", json!({"name": t})).await;
    }
    for (path, pattern) in SUBSCRIBERS {
        api.subscribe(receiver.url(path), pattern).await;
    }
}

fn expected_deliveries(published: &[(i64, &str)]) -> usize {
    SUBSCRIBERS.iter().map(|(_, p)| published.iter().filter(|(_, t)| matches(p, t)).count()).sum()
}

fn delivered(receiver: &Receiver) -> usize {
    SUBSCRIBERS.iter().map(|(p, _)| receiver.first_successes(p).len()).sum()
}

/// SIGKILL the server while it delivers 1,200 messages to three subscribers; a restarted
/// server finishes the job: nothing lost, order never violated.
async fn sigkill_mid_delivery_loses_nothing_and_keeps_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    receiver.set_plan(|hit| {
        let flaky = (hit.message_id() * 7 + hit.attempt as i64) % 17 == 0;
        Reply { status: if flaky { 500 } else { 200 }, header: None, delay: Duration::from_millis(1) }
    });

    let mut first = ServerProcess::start(&env_for(&db, data.path())).await;
    let api = Api::admin(&first.base).await;
    setup(&api, &receiver).await;
    let published = publish_many(&api, 1200).await;
    let total = expected_deliveries(&published);
    assert_eq!(total, 800 + 400 + 1200, "a: fin:* (800), b: fin:purchase (400), c: * (1200)");

    eventually(Duration::from_secs(120), "a third of the deliveries", || {
        let n = delivered(&receiver);
        async move { (n >= total / 3).then_some(()) }
    })
    .await;
    first.kill();
    let at_kill = delivered(&receiver);
    assert!(at_kill < total, "killed mid-delivery ({at_kill} of {total} done)");

    let _second = ServerProcess::start(&env_for(&db, data.path())).await;
    eventually(Duration::from_secs(180), "every delivery after the restart", || {
        let n = delivered(&receiver);
        async move { (n == total).then_some(()) }
    })
    .await;
    assert_complete_and_ordered(&receiver, &published);
}

both_backends!(sigkill_mid_delivery_loses_nothing_and_keeps_order);

/// Two server processes on one MariaDB database deliver the same backlog: no lane ever
/// has two requests in flight, order holds, and both processes do work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_a_backlog_without_concurrent_duplicates() {
    let db = TestDb::new(Backend::MariaDb).await;
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = Receiver::start().await;
    // Slow answers make overlap between the processes likely if the claim were unsafe.
    receiver.set_plan(|_| Reply { status: 200, header: None, delay: Duration::from_millis(3) });

    // Two lanes at a time per process for six lanes: neither process can hold them all.
    let a = ServerProcess::start(&env_with(&db, data_a.path(), 2)).await;
    let api = Api::admin(&a.base).await;
    setup(&api, &receiver).await;
    // Pause delivery while the backlog builds, so both processes find it waiting.
    let subscribers: Value = api.client.get(format!("{}/api/v1/subscribers", a.base)).bearer_auth(&api.token).send().await.unwrap().json().await.unwrap();
    let mut subscription_ids = Vec::new();
    for s in subscribers.as_array().unwrap() {
        let subs: Value = api.client.get(format!("{}/api/v1/subscribers/{}/subscriptions", a.base, s["id"])).bearer_auth(&api.token).send().await.unwrap().json().await.unwrap();
        let id = subs[0]["id"].as_i64().unwrap();
        api.post(&format!("/api/v1/subscriptions/{id}/pause"), json!({})).await;
        subscription_ids.push(id);
    }
    let published = publish_many(&api, 600).await;
    let b = ServerProcess::start(&env_with(&db, data_b.path(), 2)).await;
    for id in subscription_ids {
        api.post(&format!("/api/v1/subscriptions/{id}/resume"), json!({})).await;
    }
    let total = expected_deliveries(&published);
    eventually(Duration::from_secs(180), "the whole backlog", || {
        let n = delivered(&receiver);
        async move { (n == total).then_some(()) }
    })
    .await;
    assert_complete_and_ordered(&receiver, &published);
    assert_eq!(receiver.max_in_flight_per_lane(), 1, "never two requests in flight for one (topic, subscriber)");
    let duplicates = receiver.hits().len() - total;
    assert_eq!(duplicates, 0, "no message was sent twice while both processes were up");

    // Both processes delivered (the attempt log records the worker).
    use sea_orm::{ConnectionTrait, Database, Statement};
    let conn = Database::connect(db.url.clone()).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), "SELECT DISTINCT worker FROM broker_attempts".to_owned()))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "both processes took part");
    drop((a, b));
}

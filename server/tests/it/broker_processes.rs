//! The broker's promises under crashes and with several processes: real `server`
//! processes, SIGKILL, one MariaDB database.

use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, new_user_token, Backend, ServerProcess, TestDb};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// A published message: its id, its topic, and which of the publishers sent it.
type Sent = (i64, &'static str, usize);

/// Publishes `n` messages from eight concurrent publishers, each one message after the
/// other; returns every message in its publisher's order.
async fn publish_many(api: &Api, n: usize) -> Vec<Sent> {
    let api = std::sync::Arc::new(Api { client: api.client.clone(), base: api.base.clone(), token: api.token.clone() });
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (worker..n).step_by(8) {
                let topic = TOPICS[i % 3];
                let res = api.post(&format!("/api/v1/topics/{topic}/messages"), json!({"payload": {"i": i}})).await;
                out.push((res["id"].as_i64().unwrap(), topic, worker));
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

/// Each message's place in its topic's order, as the broker numbered it.
async fn sequence_numbers(db: &TestDb) -> HashMap<i64, i64> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let conn = Database::connect(db.url.clone()).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), "SELECT id, seq FROM broker_messages".to_owned()))
        .await
        .unwrap();
    rows.iter().map(|r| (r.try_get::<i64>("", "id").unwrap(), r.try_get::<i64>("", "seq").unwrap())).collect()
}

/// Every message reached every matching subscriber at least once, and per (subscriber,
/// topic) the first successful deliveries came in the topic's order — which puts each
/// publisher's messages in the order it published them (a message published after
/// another's publish returned comes after it).
fn assert_complete_and_ordered(receiver: &Receiver, published: &[Sent], seqs: &HashMap<i64, i64>) {
    for (path, pattern) in SUBSCRIBERS {
        let firsts = receiver.first_successes(path);
        let got: HashSet<i64> = firsts.iter().map(|h| h.message_id()).collect();
        let want: HashSet<i64> = published.iter().filter(|(_, t, _)| matches(pattern, t)).map(|(id, _, _)| *id).collect();
        assert_eq!(got.len(), want.len(), "{path}: delivered {} of {}", got.len(), want.len());
        assert_eq!(got, want, "{path}: every message delivered");
        let mut per_topic: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for h in &firsts {
            per_topic.entry(h.json()["type"].as_str().unwrap().to_owned()).or_default().push(h.message_id());
        }
        for (topic, ids) in per_topic {
            let order: Vec<i64> = ids.iter().map(|id| seqs[id]).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{path} {topic}: first successes out of the topic's order");
            let position: HashMap<i64, usize> = ids.iter().enumerate().map(|(n, id)| (*id, n)).collect();
            for worker in 0..8 {
                let sent: Vec<usize> = published.iter().filter(|(_, t, w)| *t == topic && *w == worker).map(|(id, _, _)| position[id]).collect();
                assert!(sent.windows(2).all(|w| w[0] < w[1]), "{path} {topic}: publisher {worker}'s messages out of its publish order");
            }
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

fn expected_deliveries(published: &[Sent]) -> usize {
    SUBSCRIBERS.iter().map(|(_, p)| published.iter().filter(|(_, t, _)| matches(p, t)).count()).sum()
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
    assert_complete_and_ordered(&receiver, &published, &sequence_numbers(&db).await);
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
    assert_complete_and_ordered(&receiver, &published, &sequence_numbers(&db).await);
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

// ---------------------------------------------------------------------------------------
// The sequencer

/// A topic with its three subscriptions paused (deliveries queue up, nothing is sent),
/// and `n` messages waiting in its outbox as producers would have left them; returns
/// the topic's id.
async fn outbox_backlog(api: &Api, db: &TestDb, receiver: &Receiver, n: usize) -> i64 {
    use app::broker::store::outbox;
    use sea_orm::{ActiveValue::Set, Database, EntityTrait, TransactionTrait};
    api.post("/api/v1/topics", json!({"name": "fin:purchase"})).await;
    for (path, pattern) in SUBSCRIBERS {
        let s = api.post("/api/v1/subscribers", json!({"name": path, "url": receiver.url(path)})).await;
        let sub = api.post(&format!("/api/v1/subscribers/{}/subscriptions", s["id"]), json!({"topic": pattern})).await;
        api.post(&format!("/api/v1/subscriptions/{}/pause", sub["id"]), json!({})).await;
    }
    let topic: Value = api.client.get(format!("{}/api/v1/topics/fin:purchase", api.base)).bearer_auth(&api.token).send().await.unwrap().json().await.unwrap();
    let topic_id = topic["id"].as_i64().unwrap();
    // One transaction: the whole backlog becomes visible at once.
    let conn = Database::connect(db.url.clone()).await.unwrap();
    let txn = conn.begin().await.unwrap();
    for start in (0..n).step_by(500) {
        let rows = (start..(start + 500).min(n)).map(|i| outbox::ActiveModel {
            topic_id: Set(topic_id),
            payload: Set(json!({"i": i}).to_string()),
            idempotency_key: Set(None),
            published_by: Set(None),
            created_at: Set(app::platform::time::now_ms()),
            ..Default::default()
        });
        outbox::Entity::insert_many(rows).exec_without_returning(&txn).await.unwrap();
    }
    txn.commit().await.unwrap();
    topic_id
}

/// (messages sequenced, rows still in the outbox) of a topic.
async fn sequencing_progress(db: &TestDb, topic_id: i64) -> (u64, u64) {
    use app::broker::store::{message, outbox};
    use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
    let conn = Database::connect(db.url.clone()).await.unwrap();
    let sequenced = message::Entity::find().filter(message::Column::TopicId.eq(topic_id)).count(&conn).await.unwrap();
    let waiting = outbox::Entity::find().filter(outbox::Column::TopicId.eq(topic_id)).count(&conn).await.unwrap();
    (sequenced, waiting)
}

/// Every one of the `n` outbox rows became exactly one message, numbered 1..=n with no
/// gap or repeat, in id order; each lane holds exactly one delivery per message, in
/// sequence order.
async fn assert_sequenced_exactly_once(db: &TestDb, topic_id: i64, n: usize) {
    use app::broker::store::{delivery, lane, message};
    use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
    let conn = Database::connect(db.url.clone()).await.unwrap();
    let messages = message::Entity::find().filter(message::Column::TopicId.eq(topic_id)).order_by_asc(message::Column::Seq).all(&conn).await.unwrap();
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>(), "sequence numbers 1..=n, each once");
    assert!(messages.windows(2).all(|w| w[0].id < w[1].id), "numbered in id order");
    let topic = app::broker::store::topic::Entity::find_by_id(topic_id).one(&conn).await.unwrap().unwrap();
    assert_eq!(topic.last_seq, n as i64);
    let seq_of: HashMap<i64, i64> = messages.iter().map(|m| (m.id, m.seq)).collect();
    let lanes = lane::Entity::find().filter(lane::Column::TopicId.eq(topic_id)).all(&conn).await.unwrap();
    assert_eq!(lanes.len(), SUBSCRIBERS.len());
    for l in lanes {
        let on_lane = delivery::Entity::find().filter(delivery::Column::LaneId.eq(l.id)).order_by_asc(delivery::Column::Id).all(&conn).await.unwrap();
        let order: Vec<i64> = on_lane.iter().map(|d| seq_of[&d.message_id]).collect();
        assert_eq!(order, (1..=n as i64).collect::<Vec<_>>(), "lane {}: one delivery per message, in sequence order", l.id);
        assert_eq!(l.pending, n as i64, "lane {} counts its pending deliveries", l.id);
    }
}

/// SIGKILL the server while its sequencer works through a backlog: the batch in flight
/// rolls back, nothing is lost, numbered twice or reordered, and a restarted server
/// finishes the job.
async fn sigkill_mid_sequencing_loses_and_reorders_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let mut first = ServerProcess::start(&env_for(&db, data.path())).await;
    let api = Api::admin(&first.base).await;
    let n = 20_000;
    let topic_id = outbox_backlog(&api, &db, &receiver, n).await;
    eventually(Duration::from_secs(120), "the sequencer to be under way", || async {
        let (sequenced, waiting) = sequencing_progress(&db, topic_id).await;
        (sequenced > 0 && waiting > 0).then_some(())
    })
    .await;
    first.kill();
    let (sequenced, waiting) = sequencing_progress(&db, topic_id).await;
    assert_eq!((sequenced + waiting) as usize, n, "killed mid-way: every message is sequenced or still waiting");
    assert!(waiting > 0, "killed before the end ({sequenced} of {n} sequenced)");

    let _second = ServerProcess::start(&env_for(&db, data.path())).await;
    eventually(Duration::from_secs(180), "the rest of the backlog to be sequenced", || async {
        (sequencing_progress(&db, topic_id).await.1 == 0).then_some(())
    })
    .await;
    assert_sequenced_exactly_once(&db, topic_id, n).await;
}

both_backends!(sigkill_mid_sequencing_loses_and_reorders_nothing);

/// Two processes on one MariaDB database find the same backlog on one topic: their
/// sequencers never both number it (each message gets one number, no number is given
/// twice, every lane gets each message once and in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_never_both_sequence_a_topic() {
    let db = TestDb::new(Backend::MariaDb).await;
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = Receiver::start().await;
    let a = ServerProcess::start(&env_for(&db, data_a.path())).await;
    let b = ServerProcess::start(&env_for(&db, data_b.path())).await;
    let api = Api::admin(&a.base).await;
    let n = 20_000;
    let topic_id = outbox_backlog(&api, &db, &receiver, n).await;
    eventually(Duration::from_secs(180), "the backlog to be sequenced", || async {
        (sequencing_progress(&db, topic_id).await.1 == 0).then_some(())
    })
    .await;
    assert_sequenced_exactly_once(&db, topic_id, n).await;
    drop((a, b));
}

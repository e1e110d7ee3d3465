//! Every capability at once through two real server processes on one MariaDB database
//! and one S3 bucket: webhooks into A appear live on B, chat posted on A is read live on
//! B and archived by whichever runner gets there (once), broker messages published to
//! both are delivered in order, every capability's changes reach the broker, and a wage
//! import is run by exactly one process.

use crate::changes::SseReader;
use crate::meetings::{deliver, invitee_event, KEY};
use crate::receiver::Receiver;
use crate::support::{eventually, new_user_token, Backend, ServerProcess, TestDb};
use crate::wages::{filing, HEADER};
use app::platform::object_store::ObjectStore;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

struct Caller {
    client: reqwest::Client,
    token: String,
}

impl Caller {
    async fn sign_up(base: &str, username: &str) -> Self {
        let client = reqwest::Client::new();
        let token = new_user_token(&client, base, username).await;
        Self { client, token }
    }

    async fn call(&self, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
        let mut req = self.client.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{method} {url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn post(&self, url: String, body: Value) -> Value {
        self.call(reqwest::Method::POST, url, Some(body)).await
    }

    async fn get(&self, url: String) -> Value {
        self.call(reqwest::Method::GET, url, None).await
    }

    async fn stream(&self, url: String) -> SseReader {
        let res = self.client.get(url).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        SseReader::new(res)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_run_every_capability_on_one_database_and_bucket() {
    let db = TestDb::new(Backend::MariaDb).await;
    let (store, s3) = crate::object_store::s3_store().await;
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = |data: &tempfile::TempDir| {
        vec![
            ("DATABASE_URL", db.url.clone()),
            ("SB_DATA_DIR", data.path().display().to_string()),
            ("S3_ENDPOINT", s3.endpoint.clone().unwrap()),
            ("S3_BUCKET", s3.bucket.clone()),
            ("S3_ACCESS_KEY_ID", "test".into()),
            ("S3_SECRET_ACCESS_KEY", "test".into()),
            ("CALENDLY_WEBHOOK_SIGNING_KEY", KEY.into()),
            ("BROKER_ALLOWED_TARGETS", "127.0.0.1".into()),
            ("BROKER_RETRY_BASE_MS", "20".into()),
            ("BROKER_RETRY_MAX_MS", "200".into()),
            ("SB_CHAT_ARCHIVE_EVERY_SECS", "1".into()),
            ("SB_JOB_POLL_MS", "100".into()),
        ]
    };
    let a = ServerProcess::start(&env(&data_a)).await;
    let b = ServerProcess::start(&env(&data_b)).await;
    let (at_a, at_b) = (|p: &str| format!("{}{p}", a.base), |p: &str| format!("{}{p}", b.base));

    // The broker first, so it sees every capability's changes from here on.
    let admin = Caller::sign_up(&a.base, "root").await;
    let receiver = Receiver::start().await;
    admin.post(at_a("/api/v1/topics"), json!({"name": "fin:purchase"})).await;
    let sub = admin.post(at_a("/api/v1/subscribers"), json!({"name": "everything", "url": receiver.url("/all")})).await;
    admin.post(at_b(&format!("/api/v1/subscribers/{}/subscriptions", sub["id"])), json!({"topic": "*"})).await;
    let mia = Caller::sign_up(&b.base, "mia").await;

    // Live pages on B.
    let mut meetings_on_b = mia.stream(at_b("/api/v1/meetings/events")).await;
    let mut inbox_on_b = mia.stream(at_b("/api/v1/me/chat/events")).await;

    // Meetings: a webhook into A is live on B.
    let booking = invitee_event("invitee.created", "WHOLE", "I", "2031-03-01T10:00:00.000000Z", json!({}));
    assert_eq!(deliver(&reqwest::Client::new(), &a.base, &booking).await.status(), 202);
    let change: Value = serde_json::from_str(&meetings_on_b.next(Duration::from_secs(15)).await.data).unwrap();
    assert_eq!(change["status"], "scheduled");

    // Chat: posted on A, announced on B; once expired, archived (by either process) and
    // still answered identically by both.
    let mut hot_answers = BTreeMap::new();
    for i in 0..30 {
        let id = admin.post(at_a("/chat"), json!({"username": "mia", "text": format!("note {i}"), "timeout": 2})).await["id"].as_i64().unwrap();
        hot_answers.insert(id, mia.get(at_b(&format!("/chat/{id}"))).await);
    }
    inbox_on_b.next(Duration::from_secs(15)).await;

    // Scheduler: an event created on B.
    let event = json!({"title": "Review", "start": "2031-03-02T09:00:00Z", "end": "2031-03-02T10:00:00Z"});
    mia.post(at_b("/api/v1/users/mia/events"), event).await;

    // Broker: publishers on both processes.
    let mut published = Vec::new();
    for i in 0..40 {
        let on = if i % 2 == 0 { at_a("/api/v1/topics/fin:purchase/messages") } else { at_b("/api/v1/topics/fin:purchase/messages") };
        published.push(admin.post(on, json!({"payload": {"i": i}})).await["id"].as_i64().unwrap());
    }

    // Wages: one upload, imported by one of the two runners.
    let rows: Vec<String> = (0..500).map(|i| filing(&format!("W-{i}"), "Whole Co", "Analyst", "Austin", "TX", &(70_000 + i).to_string(), "Year")).collect();
    let res = admin.client.post(at_a("/api/v1/wages/imports")).bearer_auth(&admin.token).body(format!("{HEADER}\n{}\n", rows.join("\n"))).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let import = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // -- what must hold --------------------------------------------------------------
    let conn = sea_orm::Database::connect(db.url.clone()).await.unwrap();
    eventually(Duration::from_secs(60), "every expired chat message to be archived", || async {
        (app::chat::store::message::Entity::find().count(&conn).await.unwrap() == 0).then_some(())
    })
    .await;
    let index = app::chat::store::archived::Entity::find().all(&conn).await.unwrap();
    assert_eq!(index.iter().map(|r| r.message_id).collect::<HashSet<_>>(), hot_answers.keys().copied().collect(), "each archived once");
    let mut lines_per_id: HashMap<i64, usize> = HashMap::new();
    for key in index.iter().map(|r| r.batch_key.clone()).collect::<HashSet<_>>() {
        let bytes = store.get(&key).await.unwrap().expect("the batch is in the bucket");
        for line in app::chat::cold::decode(&bytes).unwrap() {
            *lines_per_id.entry(line.id).or_default() += 1;
        }
    }
    assert!(lines_per_id.values().all(|n| *n == 1), "no message in two batches: archiving never ran twice at once");
    for (id, hot) in &hot_answers {
        assert_eq!(&mia.get(at_a(&format!("/chat/{id}"))).await, hot, "cold answer on A equals the hot one");
        assert_eq!(&mia.get(at_b(&format!("/chat/{id}"))).await, hot, "cold answer on B equals the hot one");
    }

    let done = eventually(Duration::from_secs(60), "the wage import", || {
        let status = admin.get(at_b(&format!("/api/v1/wages/imports/{import}")));
        async move { Some(status.await).filter(|s| s["state"] == "done") }
    })
    .await;
    assert_eq!((done["rows_new"].as_i64(), done["rows_updated"].as_i64()), (Some(500), Some(0)), "imported once: {done}");

    // Every capability published into the broker, and fin:purchase arrived in order.
    let expected_types = ["user:new", "meeting:scheduled", "chat:message", "event:created", "fin:purchase"];
    let want = published.len();
    let firsts = eventually(Duration::from_secs(60), "the broker to deliver everything", || {
        let firsts = receiver.first_successes("/all");
        let fin = firsts.iter().filter(|h| h.json()["type"] == "fin:purchase").count();
        // Everything after the subscription: mia's sign-up, the booking, 30 chat
        // messages, the calendar event, and the purchases.
        async move { (fin == want && firsts.len() == want + 33).then_some(firsts) }
    })
    .await;
    let types: HashSet<String> = firsts.iter().map(|h| h.json()["type"].as_str().unwrap().to_owned()).collect();
    for t in expected_types {
        assert!(types.contains(t), "{t} reached the broker: {types:?}");
    }
    let fin: Vec<i64> = firsts.iter().filter(|h| h.json()["type"] == "fin:purchase").map(|h| h.message_id()).collect();
    assert_eq!(fin, published, "publish order kept across two publishing processes");
    assert_eq!(receiver.max_in_flight_per_lane(), 1, "never two deliveries in flight on one lane");
    drop((a, b));
}

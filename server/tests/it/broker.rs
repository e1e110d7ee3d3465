//! The webhook broker end to end: the real server delivering to a real HTTP receiver.

use crate::receiver::{Hit, Receiver, Reply};
use crate::support::{assert_error, eventually, Backend, TestApp};
use app::broker::signature;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// A broker app: loopback allowed as a target, fast retries.
pub async fn broker_app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()];
        s.part_mut::<app::broker::settings::BrokerSettings>().retry_base = Duration::from_millis(40);
        s.part_mut::<app::broker::settings::BrokerSettings>().retry_max = Duration::from_millis(200);
    })
    .await
}

pub struct Admin<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl<'a> Admin<'a> {
    pub async fn new(app: &'a TestApp) -> Self {
        let token = app.user_with_token("root").await; // the first account is admin
        Self { app, token }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let res = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(res.status().is_success(), "POST {path}: {} {}", res.status(), res.text().await.unwrap());
        res.json().await.unwrap_or(Value::Null)
    }

    pub async fn get(&self, path: &str) -> Value {
        let res = self.call(reqwest::Method::GET, path, None).await;
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap()
    }

    pub async fn topic(&self, name: &str) {
        self.post("/api/v1/topics", json!({"name": name})).await;
    }

    /// A subscriber on `url` subscribed to `topic`; returns (id, secret).
    pub async fn subscriber(&self, url: &str, topic: &str, extra: Value) -> (i64, String) {
        let s = self.post("/api/v1/subscribers", json!({"name": url, "url": url})).await;
        let id = s["id"].as_i64().unwrap();
        let mut body = json!({"topic": topic});
        body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        self.post(&format!("/api/v1/subscribers/{id}/subscriptions"), body).await;
        (id, s["secret"].as_str().unwrap().to_owned())
    }

    pub async fn publish(&self, topic: &str, payload: Value) -> i64 {
        let res = self.post(&format!("/api/v1/topics/{topic}/messages"), json!({"payload": payload})).await;
        res["id"].as_i64().unwrap()
    }
}

fn payload_n(hit: &Hit) -> i64 {
    hit.json()["data"]["n"].as_i64().unwrap()
}

/// Each lane of a subscription as (active, blocked, next due time): the dispatcher claims
/// only active lanes whose due time has come.
async fn lanes_of(app: &TestApp, subscription_id: i64) -> Vec<(bool, bool, Option<i64>)> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state.db;
    let sql = format!("SELECT active, blocked, next_due_at FROM broker_lanes WHERE subscription_id = {subscription_id} ORDER BY id");
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter()
        .map(|r| (r.try_get("", "active").unwrap(), r.try_get("", "blocked").unwrap(), r.try_get("", "next_due_at").unwrap()))
        .collect()
}

async fn wait_for_successes(receiver: &Receiver, path: &str, n: usize) -> Vec<Hit> {
    eventually(Duration::from_secs(60), &format!("{n} deliveries on {path}"), || {
        let hits = receiver.first_successes(path);
        async move { (hits.len() >= n).then_some(hits) }
    })
    .await
}

/// Order per (topic, subscriber) holds while the receiver fails the 1st, 3rd and 7th
/// attempt of random messages (with 500s, 503 + Retry-After and slow answers).
async fn delivery_is_ordered_signed_and_retried(backend: Backend) {
    let app = broker_app(backend).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    admin.topic("fin:purchase").await;
    admin.topic("fin:refund").await;
    let (_, secret) = admin.subscriber(&receiver.url("/hook/a"), "fin:*", json!({})).await;

    // Each message, chosen at random, fails its 1st, 3rd and 7th attempt (and thus is
    // tried 1 → fail, 2 → ok) or nothing; some answers are slow.
    let unlucky: HashSet<i64> = (0..40).filter(|_| rand::random::<f64>() < 0.35).collect();
    let unlucky2 = unlucky.clone();
    receiver.set_plan(move |hit| {
        let n = hit.json()["data"]["n"].as_i64().unwrap();
        if unlucky2.contains(&n) && [1, 3, 7].contains(&hit.attempt) {
            return if n % 2 == 0 {
                Reply::status(500)
            } else {
                Reply { status: 503, header: Some(("retry-after", "0".into())), delay: Duration::ZERO }
            };
        }
        Reply { status: 200, header: None, delay: Duration::from_millis(if n % 5 == 0 { 30 } else { 0 }) }
    });

    for n in 0..40 {
        let topic = if n % 3 == 0 { "fin:refund" } else { "fin:purchase" };
        admin.publish(topic, json!({"n": n})).await;
    }
    let hits = wait_for_successes(&receiver, "/hook/a", 40).await;

    for topic in ["fin:purchase", "fin:refund"] {
        let order: Vec<i64> = hits.iter().filter(|h| h.json()["type"] == topic).map(payload_n).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "first successful deliveries of {topic} are in publish order");
    }
    let all = receiver.hits_on("/hook/a");
    for n in &unlucky {
        let tries: Vec<u16> = all.iter().filter(|h| payload_n(h) == *n).map(|h| h.status).collect();
        assert!(tries.len() >= 2 && !(200..300).contains(&tries[0]), "message {n} failed first, then was retried: {tries:?}");
    }
    assert_eq!(receiver.max_in_flight_per_lane(), 1, "one request in flight per (topic, subscriber)");

    // Signatures: every request verifies with the subscriber's secret; retries keep the id.
    let now = app::platform::time::now_ms() / 1000;
    for hit in &all {
        let ts: i64 = hit.timestamp.parse().unwrap();
        assert!(signature::verify(&secret, &hit.webhook_id, ts, &hit.signature, &hit.body, now, 300), "{hit:?}");
        let body = hit.json();
        assert!(body["timestamp"].as_str().is_some() && body["type"].as_str().unwrap().starts_with("fin:"));
    }
    let ids_per_n: HashMap<i64, HashSet<String>> = all.iter().fold(HashMap::new(), |mut m, h| {
        m.entry(payload_n(h)).or_default().insert(h.webhook_id.clone());
        m
    });
    assert!(ids_per_n.values().all(|ids| ids.len() == 1), "webhook-id is stable across retries");

    // The delivery log shows the attempts.
    let subs = admin.get("/api/v1/subscribers").await;
    let sid = subs[0]["id"].as_i64().unwrap();
    let deliveries = admin.get(&format!("/api/v1/subscribers/{sid}/deliveries?limit=100")).await;
    assert_eq!(deliveries.as_array().unwrap().len(), 40);
    assert!(deliveries.as_array().unwrap().iter().all(|d| d["state"] == "delivered"));
    if !unlucky.is_empty() {
        let d = deliveries.as_array().unwrap().iter().find(|d| d["attempts"].as_i64() >= Some(2));
        let d = d.expect("a retried message shows its attempts in the log");
        let attempts = admin.get(&format!("/api/v1/deliveries/{}/attempts", d["id"])).await;
        let codes: Vec<i64> = attempts.as_array().unwrap().iter().map(|a| a["status_code"].as_i64().unwrap_or(0)).collect();
        assert!(codes.len() >= 2 && codes[0] >= 500 && *codes.last().unwrap() == 200, "{codes:?}");
    }
    app.stop().await;
}

/// A subscriber that keeps failing does not hold back a healthy one.
async fn a_failing_subscriber_does_not_delay_a_healthy_one(backend: Backend) {
    let app = broker_app(backend).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    receiver.set_plan(|hit| Reply::status(if hit.path == "/hook/broken" { 500 } else { 200 }));
    admin.topic("user:online").await;
    admin.subscriber(&receiver.url("/hook/broken"), "user:online", json!({})).await;
    admin.subscriber(&receiver.url("/hook/healthy"), "user:online", json!({})).await;
    for n in 0..20 {
        admin.publish("user:online", json!({"n": n})).await;
    }
    let healthy = wait_for_successes(&receiver, "/hook/healthy", 20).await;
    assert_eq!(healthy.iter().map(payload_n).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    let broken = receiver.hits_on("/hook/broken");
    assert!(!broken.is_empty());
    assert!(broken.iter().all(|h| payload_n(h) == 0), "the broken lane retries its head only");
    app.stop().await;
}

/// The System page's backlog figure: what waits on a lane the dispatcher is working
/// through, summed per subscription, on both databases.
async fn the_backlog_is_counted_per_subscription(backend: Backend) {
    let app = broker_app(backend).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    receiver.set_plan(|_| Reply::status(500));
    admin.topic("user:online").await;
    let (sid, _) = admin.subscriber(&receiver.url("/down"), "user:online", json!({})).await;
    let sub_id = admin.get(&format!("/api/v1/subscribers/{sid}/subscriptions")).await[0]["id"].as_i64().unwrap();
    for n in 0..3 {
        admin.publish("user:online", json!({"n": n})).await;
    }
    // The head was tried and refused; the lane waits for its retry with all three.
    eventually(Duration::from_secs(15), "a refused first attempt", || async { (!receiver.hits().is_empty()).then_some(()) }).await;
    let backlog = eventually(Duration::from_secs(15), "three waiting", || async {
        let b = app::broker::store::due_backlog(&app.state.db.conn).await.unwrap();
        (b == [(sub_id, 3)]).then_some(b)
    })
    .await;
    assert_eq!(backlog, [(sub_id, 3)]);
    app.stop().await;
}

/// A worker's turn that read no pending head still gives back a lane with work: here the
/// subscription is resumed while a worker holds the lane (a resume keeps a running lease,
/// as a sequencer appending to a leased lane does). Before, such a release idled the lane
/// and its messages waited for the next publish.
async fn work_that_arrives_during_an_empty_turn_is_not_stranded(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let app = broker_app(backend).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    admin.topic("user:online").await;
    let (sid, _) = admin.subscriber(&receiver.url("/hook"), "user:online", json!({})).await;
    let sub_id = admin.get(&format!("/api/v1/subscribers/{sid}/subscriptions")).await[0]["id"].as_i64().unwrap();
    admin.post(&format!("/api/v1/subscriptions/{sub_id}/pause"), json!({})).await;
    admin.publish("user:online", json!({"n": 0})).await;
    eventually(Duration::from_secs(10), "the message waiting on the paused lane", || async {
        let lag = admin.get(&format!("/api/v1/subscribers/{sid}/subscriptions")).await[0]["lag"].as_i64();
        (lag == Some(1)).then_some(())
    })
    .await;

    // A worker's claim, as the dispatcher writes it: due at the lease's end, version + 1.
    let db = &app.state.db;
    let lease_end = app::platform::time::now_ms() + 600_000;
    let claim = format!("UPDATE broker_lanes SET next_due_at = {lease_end}, lease_version = lease_version + 1 WHERE subscription_id = {sub_id}");
    db.execute_raw(Statement::from_string(db.get_database_backend(), claim)).await.unwrap();
    let read = format!("SELECT id, lease_version FROM broker_lanes WHERE subscription_id = {sub_id}");
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), read)).await.unwrap().unwrap();
    let (lane_id, version): (i64, i64) = (row.try_get("", "id").unwrap(), row.try_get("", "lease_version").unwrap());
    admin.post(&format!("/api/v1/subscriptions/{sub_id}/resume"), json!({})).await;
    assert_eq!(lanes_of(&app, sub_id).await, [(true, false, Some(lease_end))], "the resume left the running lease alone");
    assert!(receiver.hits().is_empty());

    // The worker's turn ends having read no head (it read before the resume).
    app::db_write!(db, |txn| { app::broker::store::release_lane(&*txn, lane_id, version, None).await }).unwrap();
    let hits = wait_for_successes(&receiver, "/hook", 1).await;
    assert_eq!(hits.iter().map(payload_n).collect::<Vec<_>>(), [0]);
    app.stop().await;
}

both_backends!(delivery_is_ordered_signed_and_retried, a_failing_subscriber_does_not_delay_a_healthy_one, the_backlog_is_counted_per_subscription);
both_backends!(work_that_arrives_during_an_empty_turn_is_not_stranded);

#[tokio::test]
async fn the_official_standard_webhooks_library_verifies_our_signatures() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    admin.topic("fin:purchase").await;
    let (_, secret) = admin.subscriber(&receiver.url("/hook"), "fin:purchase", json!({})).await;
    admin.publish("fin:purchase", json!({"amount": 12.5, "currency": "EUR", "note": "ünïcode ✓"})).await;
    let hit = wait_for_successes(&receiver, "/hook", 1).await.remove(0);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), &hit.body).unwrap();
    let script = r#"
import sys, json
from standardwebhooks import Webhook
secret, msg_id, ts, sig, path = sys.argv[1:6]
body = open(path, 'rb').read()
payload = Webhook(secret).verify(body, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print(json.dumps(payload))
"#;
    let python = std::env::var("SB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args(["-c", script, &secret, &hit.webhook_id, &hit.timestamp, &hit.signature])
        .arg(dir.path().join("body"))
        .output()
        .expect("run python with the standardwebhooks package (SB_TEST_PYTHON; ./scripts/test.sh installs it)");
    assert!(out.status.success(), "verification failed: {}", String::from_utf8_lossy(&out.stderr));
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["data"]["note"], "ünïcode ✓");
    assert_eq!(verified["type"], "fin:purchase");

    // Rotation: the new secret signs, the old one still does for 24 h.
    let sid = admin.get("/api/v1/subscribers").await[0]["id"].as_i64().unwrap();
    let rotated = admin.post(&format!("/api/v1/subscribers/{sid}/secret/rotate"), json!({})).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_valid_until"].is_string());
    admin.publish("fin:purchase", json!({"amount": 1})).await;
    let hit = wait_for_successes(&receiver, "/hook", 2).await.remove(1);
    let ts: i64 = hit.timestamp.parse().unwrap();
    for s in [&secret, &new_secret] {
        assert!(signature::verify(s, &hit.webhook_id, ts, &hit.signature, &hit.body, ts, 300));
    }
    assert_eq!(admin.get(&format!("/api/v1/subscribers/{sid}/secret")).await["secret"], new_secret);
    app.stop().await;
}

#[tokio::test]
async fn publishing_the_same_idempotency_key_twice_delivers_once() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    admin.topic("fin:purchase").await;
    admin.subscriber(&receiver.url("/hook"), "fin:purchase", json!({})).await;
    let body = json!({"payload": {"order": 7}, "idempotency_key": "order-7"});
    let first = admin.post("/api/v1/topics/fin:purchase/messages", body.clone()).await;
    let second = admin.post("/api/v1/topics/fin:purchase/messages", body).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!((first["duplicate"].as_bool(), second["duplicate"].as_bool()), (Some(false), Some(true)));
    admin.publish("fin:purchase", json!({"order": 8})).await;
    // A sentinel behind them on the same lane: delivery is in order, so once it has
    // arrived, a duplicate of 7 (queued before it) would have arrived too.
    admin.publish("fin:purchase", json!({"order": 9})).await;
    wait_for_successes(&receiver, "/hook", 3).await;
    let orders: Vec<i64> = receiver.hits_on("/hook").iter().map(|h| h.json()["data"]["order"].as_i64().unwrap()).collect();
    assert_eq!(orders, [7, 8, 9]);
    app.stop().await;
}

/// Publishes that arrive together share a transaction (group commit), yet each gets its
/// own answer: its own message id (the one its payload was stored under), or why it
/// may not publish (403 on an admins-only topic, 404 for no topic), or no id where
/// nobody subscribes — whatever else is in its batch.
async fn publishes_at_once_each_get_their_own_answer(backend: Backend) {
    let app = broker_app(backend).await;
    let admin = Admin::new(&app).await;
    let member = app.user_with_token("member").await;
    let receiver = Receiver::start().await;
    for topic in ["fin:open", "fin:closed", "fin:quiet"] {
        admin.topic(topic).await;
    }
    for topic in ["fin:open", "fin:quiet"] {
        admin.call(reqwest::Method::PATCH, &format!("/api/v1/topics/{topic}"), Some(json!({"members_may_publish": true}))).await;
    }
    admin.subscriber(&receiver.url("/open"), "fin:open", json!({})).await;
    admin.subscriber(&receiver.url("/closed"), "fin:closed", json!({})).await;

    let topics = ["fin:open", "fin:closed", "fin:quiet", "fin:none"];
    let answers = futures::future::join_all((0..80i64).map(|n| {
        let topic = topics[n as usize % topics.len()];
        let req = app.client.post(app.url(&format!("/api/v1/topics/{topic}/messages"))).bearer_auth(&member).json(&json!({"payload": {"n": n}}));
        async move {
            let res = req.send().await.unwrap();
            (n, topic, res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let mut sent_as: HashMap<i64, i64> = HashMap::new(); // message id → the n its request sent
    for (n, topic, status, body) in answers {
        match topic {
            "fin:open" => {
                assert_eq!(status, 202, "publish {n}: {body}");
                assert!(sent_as.insert(body["id"].as_i64().expect("an id"), n).is_none(), "two publishes answered with one id");
            }
            "fin:closed" => assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "publish {n}: {body}"),
            "fin:quiet" => assert_eq!((status, body["id"].is_null()), (202, true), "publish {n}: {body}"),
            _ => assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "publish {n}: {body}"),
        }
    }
    assert_eq!(sent_as.len(), 20);
    // Each delivered message carries the payload of the request that was told its id.
    for hit in wait_for_successes(&receiver, "/open", 20).await {
        assert_eq!(sent_as.get(&hit.message_id()), Some(&payload_n(&hit)), "message {} carries another request's payload", hit.message_id());
    }
    // A sentinel behind the refused ones on their topic's lane: delivery is in order, so
    // once it has arrived, a refused publish that had been stored would have arrived too.
    let sentinel = admin.publish("fin:closed", json!({"n": -1})).await;
    let closed: Vec<i64> = wait_for_successes(&receiver, "/closed", 1).await.iter().map(Hit::message_id).collect();
    assert_eq!(closed, [sentinel], "a refused publish was delivered");
    app.stop().await;
}

both_backends!(publishes_at_once_each_get_their_own_answer);

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    // No BROKER_ALLOWED_TARGETS here.
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.part_mut::<app::broker::settings::BrokerSettings>().retry_base = Duration::from_millis(40)).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    for url in [receiver.url("/hook"), "http://10.0.0.8/hook".into(), "http://[::1]:80/".into(), "file:///etc/passwd".into()] {
        let res = admin.call(reqwest::Method::POST, "/api/v1/subscribers", Some(json!({"name": "x", "url": url}))).await;
        assert_error(res, 400, "invalid_field", Some("url")).await;
    }
    // A host name is checked where it resolves: localhost resolves to loopback, so the
    // request is never sent and the attempt log says why.
    admin.topic("user:online").await;
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    let (sid, _) = admin.subscriber(&format!("http://localhost:{port}/hook"), "user:online", json!({})).await;
    admin.publish("user:online", json!({"n": 1})).await;
    let deliveries = eventually(Duration::from_secs(10), "a refused attempt", || async {
        let d = admin.get(&format!("/api/v1/subscribers/{sid}/deliveries")).await;
        (d[0]["attempts"].as_i64() >= Some(1)).then_some(d)
    })
    .await;
    assert!(deliveries[0]["last_error"].as_str().unwrap().contains("refused"), "{deliveries}");
    assert!(receiver.hits().is_empty(), "nothing reached the private address");
    app.stop().await;
}

#[tokio::test]
async fn pause_holds_messages_and_resume_delivers_them_in_order() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    admin.topic("user:online").await;
    let (sid, _) = admin.subscriber(&receiver.url("/hook"), "user:online", json!({})).await;
    let sub_id = admin.get(&format!("/api/v1/subscribers/{sid}/subscriptions")).await[0]["id"].as_i64().unwrap();

    let paused = admin.post(&format!("/api/v1/subscriptions/{sub_id}/pause"), json!({})).await;
    assert_eq!(paused["state"], "paused");
    for n in 0..5 {
        admin.publish("user:online", json!({"n": n})).await;
    }
    // Once all five wait on the paused lane (lag 5), none was tried, and the lane has no
    // due time: the dispatcher claims only lanes due by now, so none can be tried later
    // either, until resumed.
    eventually(Duration::from_secs(10), "five messages waiting", || async {
        let lag = admin.get(&format!("/api/v1/subscribers/{sid}/subscriptions")).await[0]["lag"].as_i64();
        (lag == Some(5)).then_some(())
    })
    .await;
    assert!(receiver.hits().is_empty(), "nothing is delivered while paused");
    let pending = admin.get(&format!("/api/v1/subscribers/{sid}/deliveries?state=pending")).await;
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 5);
    assert!(pending.iter().all(|d| d["attempts"] == 0), "none was even tried: {pending:?}");
    assert_eq!(lanes_of(&app, sub_id).await, [(false, false, None)], "the lane is inactive with no due time");

    let resumed = admin.post(&format!("/api/v1/subscriptions/{sub_id}/resume"), json!({})).await;
    assert_eq!(resumed["state"], "active");
    let hits = wait_for_successes(&receiver, "/hook", 5).await;
    assert_eq!(hits.iter().map(payload_n).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    app.stop().await;
}

#[tokio::test]
async fn replay_sends_again_with_the_same_webhook_id() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    admin.topic("fin:purchase").await;
    let (sid, _) = admin.subscriber(&receiver.url("/hook"), "fin:purchase", json!({})).await;
    let first = admin.publish("fin:purchase", json!({"n": 0})).await;
    admin.publish("fin:purchase", json!({"n": 1})).await;
    wait_for_successes(&receiver, "/hook", 2).await;

    let res = admin.post(&format!("/api/v1/subscribers/{sid}/replay"), json!({"message_id": first})).await;
    assert_eq!(res["replayed"], 1);
    eventually(Duration::from_secs(10), "the replayed delivery", || async {
        (receiver.hits_on("/hook").len() == 3).then_some(())
    })
    .await;
    let hits = receiver.hits_on("/hook");
    assert_eq!(hits[2].webhook_id, format!("msg_{first}"));

    let res = admin.post(&format!("/api/v1/subscribers/{sid}/replay"), json!({"since": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(res["replayed"], 2);
    eventually(Duration::from_secs(10), "two more", || async { (receiver.hits_on("/hook").len() == 5).then_some(()) }).await;
    let tail: Vec<i64> = receiver.hits_on("/hook")[3..].iter().map(payload_n).collect();
    assert_eq!(tail, [0, 1], "a replay since a time keeps publish order");

    let res = admin.call(reqwest::Method::POST, &format!("/api/v1/subscribers/{sid}/replay"), Some(json!({"since": "last tuesday"}))).await;
    assert_error(res, 400, "invalid_field", Some("since")).await;
    app.stop().await;
}

/// Runs one statement on a connection or transaction of the test's own.
async fn exec(conn: &impl sea_orm::ConnectionTrait, sql: String) {
    conn.execute_raw(sea_orm::Statement::from_string(conn.get_database_backend(), sql)).await.unwrap();
}

/// Waits until a statement that locks `broker_messages` rows runs on the test's database
/// (MariaDB): while the test holds those rows, that is a statement waiting for them.
/// (InnoDB does not list a locking read as `LOCK WAIT` when it waits while the optimizer
/// reads a row by its primary key, so the server's process list is what is watched.)
async fn someone_waits_to_lock_messages(app: &TestApp) {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state.db;
    let sql = "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID() \
               AND INFO LIKE '%FROM `broker_messages`%FOR UPDATE%'";
    eventually(Duration::from_secs(10), "a statement waiting to lock the message", || async {
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        (row.try_get::<i64>("", "n").unwrap() > 0).then_some(())
    })
    .await;
}

async fn rows(app: &TestApp, sql: String) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state.db;
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

/// A transaction of the test's own that holds message `m` as the broker's writers lock it.
async fn hold_message(app: &TestApp, m: i64) -> sea_orm::DatabaseTransaction {
    use sea_orm::TransactionTrait;
    let txn = app.state.db.conn.begin().await.unwrap();
    exec(&txn, format!("SELECT id FROM broker_messages WHERE id = {m} FOR UPDATE")).await;
    txn
}

/// A message delivered once to `/hook`, ready for retention (`prune` with no retention):
/// (its subscriber, the message).
async fn one_delivered_message(admin: &Admin<'_>, receiver: &Receiver) -> (i64, i64) {
    admin.topic("fin:purchase").await;
    let (sid, _) = admin.subscriber(&receiver.url("/hook"), "fin:purchase", json!({})).await;
    let m = admin.publish("fin:purchase", json!({"n": 0})).await;
    wait_for_successes(receiver, "/hook", 1).await;
    (sid, m)
}

/// Retention and replay side by side on MariaDB (SQLite's write gate runs one writer at a
/// time): a prune that comes while a replay of its message is in flight waits for it, then
/// finds the new delivery pending and keeps the message. Before, it deleted the message
/// under the replay's new delivery, which then stayed pending for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prune_waits_for_a_replay_of_its_message() {
    let app = broker_app(Backend::MariaDb).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    let (_, m) = one_delivered_message(&admin, &receiver).await;

    // A replay in flight: the message held, its new delivery written, not yet committed.
    let replay = hold_message(&app, m).await;
    exec(&replay, format!("INSERT INTO broker_deliveries (lane_id, message_id, subscriber_id, state, attempts, next_attempt_at, created_at) \
                           SELECT lane_id, message_id, subscriber_id, 'pending', 0, 0, 0 FROM broker_deliveries WHERE message_id = {m}")).await;
    let (pruned, ()) = tokio::join!(app::broker::log::prune(&app.state.db, Duration::ZERO), async {
        someone_waits_to_lock_messages(&app).await;
        replay.commit().await.unwrap();
    });
    pruned.unwrap();
    assert_eq!(rows(&app, format!("SELECT COUNT(*) AS n FROM broker_messages WHERE id = {m}")).await, 1, "the message was kept");
    let pending = format!("SELECT COUNT(*) AS n FROM broker_deliveries WHERE message_id = {m} AND state = 'pending'");
    assert_eq!(rows(&app, pending).await, 1, "the replayed delivery was kept");
    app.stop().await;
}

/// The other way round: a replay that comes while a prune deletes its message waits for
/// the prune and answers 404, adding no delivery. Before, it read the message the prune
/// was deleting and left a delivery pending for a message that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_waits_for_a_prune_of_its_message() {
    let app = broker_app(Backend::MariaDb).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    let (sid, m) = one_delivered_message(&admin, &receiver).await;

    // A prune in flight: the message held and deleted with its log, not yet committed.
    let prune = hold_message(&app, m).await;
    exec(&prune, format!("DELETE FROM broker_attempts WHERE delivery_id IN (SELECT id FROM broker_deliveries WHERE message_id = {m})")).await;
    exec(&prune, format!("DELETE FROM broker_deliveries WHERE message_id = {m}")).await;
    exec(&prune, format!("DELETE FROM broker_messages WHERE id = {m}")).await;
    let path = format!("/api/v1/subscribers/{sid}/replay");
    let (res, ()) = tokio::join!(admin.call(reqwest::Method::POST, &path, Some(json!({"message_id": m}))), async {
        someone_waits_to_lock_messages(&app).await;
        prune.commit().await.unwrap();
    });
    assert_error(res, 404, "not_found", None).await;
    assert_eq!(rows(&app, format!("SELECT COUNT(*) AS n FROM broker_deliveries WHERE message_id = {m}")).await, 0, "no delivery of a pruned message");
    app.stop().await;
}

/// An operator's retry of a head that waits out its backoff sends it now. Before, the
/// lane's due time (the backoff's end, here an hour away) read as a worker's lease and was
/// kept, so "retry" only reset the attempt counter.
async fn retry_sends_a_backing_off_head_now(backend: Backend) {
    let app = broker_app(backend).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    receiver.set_plan(|_| Reply::status(500));
    admin.topic("fin:purchase").await;
    let hour = json!({"retry_base_ms": 3_600_000, "retry_max_ms": 3_600_000});
    let (sid, _) = admin.subscriber(&receiver.url("/hook"), "fin:purchase", hour).await;
    let sub_id = admin.get(&format!("/api/v1/subscribers/{sid}/subscriptions")).await[0]["id"].as_i64().unwrap();
    admin.publish("fin:purchase", json!({"n": 0})).await;
    // The first attempt failed and the worker gave the lane back due in about an hour.
    eventually(Duration::from_secs(10), "the lane to wait out the backoff", || async {
        let lanes = lanes_of(&app, sub_id).await;
        let later = app::platform::time::now_ms() + 30 * 60_000;
        (lanes.len() == 1 && lanes[0].2.is_some_and(|due| due > later)).then_some(())
    })
    .await;
    receiver.set_plan(|_| Reply::status(200));
    let head = admin.get(&format!("/api/v1/subscribers/{sid}/deliveries?state=pending")).await[0]["id"].as_i64().unwrap();
    let res = admin.call(reqwest::Method::POST, &format!("/api/v1/deliveries/{head}/retry"), None).await;
    assert_eq!(res.status(), 204);
    let hits = wait_for_successes(&receiver, "/hook", 1).await;
    assert_eq!(hits.iter().map(payload_n).collect::<Vec<_>>(), [0]);
    assert_eq!(receiver.hits_on("/hook").len(), 2, "one failed attempt, then the retry");
    app.stop().await;
}

both_backends!(retry_sends_a_backing_off_head_now);

/// After its attempts, `dead_letter` parks a message and goes on; `block` holds the lane
/// until an operator skips (or retries) the head.
#[tokio::test]
async fn dead_letter_goes_on_while_block_waits_for_an_operator() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    receiver.set_plan(|hit| Reply::status(if payload_n(hit) == 1 { 500 } else { 200 }));
    admin.topic("fin:purchase").await;
    let (dl, _) = admin.subscriber(&receiver.url("/dead-letter"), "fin:purchase", json!({"policy": "dead_letter", "max_attempts": 2})).await;
    let (bl, _) = admin.subscriber(&receiver.url("/block"), "fin:purchase", json!({"policy": "block", "max_attempts": 2})).await;
    for n in 0..3 {
        admin.publish("fin:purchase", json!({"n": n})).await;
    }
    let dead_letter = wait_for_successes(&receiver, "/dead-letter", 2).await;
    assert_eq!(dead_letter.iter().map(payload_n).collect::<Vec<_>>(), [0, 2]);
    let dead = admin.get(&format!("/api/v1/subscribers/{dl}/deliveries?state=dead")).await;
    assert_eq!((dead.as_array().unwrap().len(), dead[0]["attempts"].as_i64()), (1, Some(2)));

    let blocked = eventually(Duration::from_secs(10), "the block lane to block", || async {
        let subs = admin.get(&format!("/api/v1/subscribers/{bl}/subscriptions")).await;
        (subs[0]["blocked"] == true).then_some(subs)
    })
    .await;
    assert_eq!(blocked[0]["lag"], 2, "the failed head and the message behind it wait");
    assert_eq!(receiver.first_successes("/block").iter().map(payload_n).collect::<Vec<_>>(), [0]);
    // The block is written with the head's last attempt, and a blocked lane is never
    // scheduled again: the message behind the head was never tried, and cannot be now.
    let pending = admin.get(&format!("/api/v1/subscribers/{bl}/deliveries?state=pending")).await;
    let mut waiting: Vec<Value> = pending.as_array().unwrap().clone();
    waiting.sort_by_key(|d| d["id"].as_i64());
    let attempts: Vec<Option<i64>> = waiting.iter().map(|d| d["attempts"].as_i64()).collect();
    assert_eq!(attempts, [Some(2), Some(0)], "the head used its two attempts, the next none: {pending}");
    let block_sub = blocked[0]["id"].as_i64().unwrap();
    assert_eq!(lanes_of(&app, block_sub).await, [(true, true, None)], "the lane is blocked with no due time");
    let head = waiting[0].clone();
    let res = admin.call(reqwest::Method::POST, &format!("/api/v1/deliveries/{}/skip", head["id"]), None).await;
    assert_eq!(res.status(), 204);
    let unblocked = wait_for_successes(&receiver, "/block", 2).await;
    assert_eq!(unblocked.iter().map(payload_n).collect::<Vec<_>>(), [0, 2]);
    let res = admin.call(reqwest::Method::POST, &format!("/api/v1/deliveries/{}/skip", head["id"]), None).await;
    assert_error(res, 409, "not_pending", None).await;
    app.stop().await;
}

#[tokio::test]
async fn gone_disables_and_retry_after_is_honoured() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    receiver.set_plan(|hit| match (hit.path.as_str(), hit.attempt) {
        ("/gone", _) => Reply::status(410),
        ("/busy", 1) => Reply { status: 429, header: Some(("retry-after", "1".into())), delay: Duration::ZERO },
        _ => Reply::status(200),
    });
    admin.topic("user:online").await;
    let (gone, _) = admin.subscriber(&receiver.url("/gone"), "user:online", json!({})).await;
    admin.subscriber(&receiver.url("/busy"), "user:online", json!({})).await;
    admin.publish("user:online", json!({"n": 0})).await;

    let busy = eventually(Duration::from_secs(10), "the busy retry", || async {
        let h = receiver.hits_on("/busy");
        (h.len() == 2).then_some(h)
    })
    .await;
    let waited = busy[1].at - busy[0].at;
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 was honoured (waited {waited:?})");

    let subs = admin.get(&format!("/api/v1/subscribers/{gone}/subscriptions")).await;
    assert_eq!(subs[0]["state"], "disabled");
    assert!(subs[0]["disabled_reason"].as_str().unwrap().contains("410"));
    admin.publish("user:online", json!({"n": 1})).await;
    // One message is fanned out to every subscription in one transaction: once /busy has
    // it, a delivery to /gone would exist too, were the subscription still enabled.
    let busy = wait_for_successes(&receiver, "/busy", 2).await;
    assert_eq!(busy.iter().map(payload_n).collect::<Vec<_>>(), [0, 1]);
    let deliveries = admin.get(&format!("/api/v1/subscribers/{gone}/deliveries")).await;
    assert_eq!(deliveries.as_array().unwrap().len(), 1, "a disabled subscription gets nothing more: {deliveries}");
    assert_eq!(receiver.hits_on("/gone").len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn signing_up_publishes_user_new() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let receiver = Receiver::start().await;
    admin.subscriber(&receiver.url("/users"), "user:*", json!({})).await;
    app.user_with_token("grace").await;
    let hit = wait_for_successes(&receiver, "/users", 1).await.remove(0);
    let body = hit.json();
    assert_eq!((body["type"].as_str(), body["data"]["username"].as_str()), (Some("user:new"), Some("grace")));
    assert_eq!(body["data"]["role"], "member");
    app.stop().await;
}

#[tokio::test]
async fn the_rest_api_refuses_what_it_should() {
    let app = broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    let member = app.user_with_token("member").await;
    let as_member = |method: reqwest::Method, path: &str, body: Value| {
        app.client.request(method, app.url(path)).bearer_auth(&member).json(&body).send()
    };
    admin.topic("fin:purchase").await;

    let res = admin.call(reqwest::Method::POST, "/api/v1/topics/fin:nothing/messages", Some(json!({"payload": 1}))).await;
    assert_error(res, 404, "not_found", None).await;
    let res = admin.call(reqwest::Method::POST, "/api/v1/topics/fin:purchase/messages", Some(json!({"idempotency_key": "x"}))).await;
    assert_error(res, 400, "invalid_field", Some("payload")).await;
    let res = app.client.post(app.url("/api/v1/topics/fin:purchase/messages")).bearer_auth(&admin.token)
        .header("content-type", "application/json").body("{\"payload\": ").send().await.unwrap();
    assert_error(res, 400, "invalid_field", Some("body")).await;
    let res = admin.call(reqwest::Method::POST, "/api/v1/topics", Some(json!({"name": "Fin Purchase"}))).await;
    assert_error(res, 400, "invalid_field", Some("name")).await;
    let res = admin.call(reqwest::Method::POST, "/api/v1/topics", Some(json!({"name": "fin:purchase"}))).await;
    assert_error(res, 409, "topic_exists", Some("name")).await;

    // Members: no management, publishing only where the topic allows it.
    assert_error(as_member(reqwest::Method::POST, "/api/v1/topics", json!({"name": "x:y"})).await.unwrap(), 403, "forbidden", None).await;
    assert_error(as_member(reqwest::Method::GET, "/api/v1/subscribers", json!({})).await.unwrap(), 403, "forbidden", None).await;
    let res = as_member(reqwest::Method::POST, "/api/v1/topics/fin:purchase/messages", json!({"payload": 1})).await.unwrap();
    assert_error(res, 403, "forbidden", None).await;
    admin.call(reqwest::Method::PATCH, "/api/v1/topics/fin:purchase", Some(json!({"members_may_publish": true}))).await;
    let res = as_member(reqwest::Method::POST, "/api/v1/topics/fin:purchase/messages", json!({"payload": 1})).await.unwrap();
    assert_eq!(res.status(), 202);
    let res = app.client.get(app.url("/api/v1/topics")).send().await.unwrap();
    assert_error(res, 401, "unauthorized", None).await;

    // Subscriptions: valid patterns only, no overlapping ones per subscriber.
    let receiver = Receiver::start().await;
    let s = admin.post("/api/v1/subscribers", json!({"name": "r", "url": receiver.url("/r")})).await;
    let subs = format!("/api/v1/subscribers/{}/subscriptions", s["id"]);
    assert_eq!(admin.call(reqwest::Method::POST, &subs, Some(json!({"topic": "fin:*"}))).await.status(), 201);
    let res = admin.call(reqwest::Method::POST, &subs, Some(json!({"topic": "fin:purchase"}))).await;
    assert_error(res, 409, "subscription_overlaps", Some("topic")).await;
    let res = admin.call(reqwest::Method::POST, &subs, Some(json!({"topic": "fin:**"}))).await;
    assert_error(res, 400, "invalid_field", Some("topic")).await;
    let res = admin.call(reqwest::Method::POST, &subs, Some(json!({"topic": "user:new", "policy": "sometimes"}))).await;
    assert_error(res, 400, "invalid_field", Some("policy")).await;
    let res = admin.call(reqwest::Method::POST, &subs, Some(json!({"topic": "user:new", "max_attempts": 0}))).await;
    assert_error(res, 400, "invalid_field", Some("max_attempts")).await;
    let res = admin.call(reqwest::Method::GET, "/api/v1/subscribers/999/deliveries", None).await;
    assert_error(res, 404, "not_found", None).await;
    // (A message nobody subscribes to is not stored; now the subscriber above takes it.)
    admin.publish("fin:purchase", json!({"n": 1})).await;
    let res = admin.call(reqwest::Method::DELETE, "/api/v1/topics/fin:purchase", None).await;
    assert_error(res, 409, "topic_has_messages", None).await;
    app.stop().await;
}

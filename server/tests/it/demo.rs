//! The embedded run's demo: every capability seeded through its own services, the
//! broker's built-in receiver as a real, signature-checking endpoint, and the pages'
//! "Send test message" / "Send a test booking".

use crate::meetings::meetings_app_settings;
use crate::support::{assert_error, client, eventually, free_port, Backend, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

/// An app with the demo's parts configured as start-up configures them. The seeds are
/// then called as their jobs call them (the wage portal's, which loads the OEWS
/// market data, has tests of its own).
async fn demo_app() -> TestApp {
    let listen = format!("127.0.0.1:{}", free_port());
    let base = app::broker::demo::receiver_base(listen.parse().unwrap());
    TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.listen = listen;
        s.part_mut::<app::broker::settings::BrokerSettings>().demo_receiver = Some(base);
        meetings_app_settings(s);
        s.part_mut::<app::meetings::settings::MeetingsSettings>().test_bookings = true;
    })
    .await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    assert!(res.status().is_success(), "GET {path}: {}", res.status());
    res.json().await.unwrap()
}

async fn server_fn(app: &TestApp, token: &str, name: &str, form: &str) -> reqwest::Response {
    let url = app.url(&format!("/_fn/{name}"));
    app.client.post(url).bearer_auth(token).header("content-type", "application/x-www-form-urlencoded").body(form.to_owned()).send().await.unwrap()
}

#[tokio::test]
async fn the_demo_topic_is_delivered_in_order_to_the_built_in_receiver_with_a_retry() {
    let app = demo_app().await;
    let admin = app.user_with_token("root").await;
    app::broker::demo::seed(&app.state).await.unwrap();

    let subs = get(&app, &admin, "/api/v1/subscribers").await;
    let sub = subs.as_array().unwrap().iter().find(|s| s["name"] == "Demo receiver (built in)").expect("the demo subscriber").clone();
    let sid = sub["id"].as_i64().unwrap();
    assert_eq!(sub["url"], format!("{}/{sid}", app.state.settings.part::<app::broker::settings::BrokerSettings>().demo_receiver.as_deref().unwrap()));
    let path = format!("/api/v1/subscribers/{sid}/deliveries?limit=100");
    let delivered = eventually(Duration::from_secs(60), "the three demo messages delivered", || async {
        let d = get(&app, &admin, &path).await;
        let d = d.as_array().unwrap().clone();
        (d.len() == 3 && d.iter().all(|x| x["state"] == "delivered")).then_some(d)
    })
    .await;
    // In order, and the second one only after its two refusals.
    let mut by_seq = delivered.clone();
    by_seq.sort_by_key(|d| d["seq"].as_i64());
    let finished: Vec<i64> = by_seq.iter().map(|d| d["finished_at"].as_i64().unwrap()).collect();
    assert!(finished.windows(2).all(|w| w[0] <= w[1]), "delivered in publish order: {by_seq:?}");
    let attempts: Vec<i64> = by_seq.iter().map(|d| d["attempts"].as_i64().unwrap()).collect();
    assert_eq!(attempts, [1, 3, 1]);
    let log = get(&app, &admin, &format!("/api/v1/deliveries/{}/attempts", by_seq[1]["id"])).await;
    let codes: Vec<i64> = log.as_array().unwrap().iter().map(|a| a["status_code"].as_i64().unwrap_or(0)).collect();
    assert_eq!(codes, [503, 503, 200], "the receiver's answers are the log's");

    // Seeding again adds nothing: one subscriber, the same three messages.
    app::broker::demo::seed(&app.state).await.unwrap();
    let subs = get(&app, &admin, "/api/v1/subscribers").await;
    assert_eq!(subs.as_array().unwrap().len(), 1);
    let topic = get(&app, &admin, "/api/v1/topics/demo:ping").await;
    assert_eq!(topic["messages"], 3, "{topic}");

    // "Send test message" is one more delivery, to the same receiver.
    let res = server_fn(&app, &admin, "broker_send_test", "topic=demo%3Aping").await;
    assert!(res.status().is_success(), "{}", res.status());
    eventually(Duration::from_secs(30), "the test message delivered", || async {
        let d = get(&app, &admin, &path).await;
        let d = d.as_array().unwrap().clone();
        (d.len() == 4 && d.iter().all(|x| x["state"] == "delivered")).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_built_in_receiver_takes_only_what_is_signed_for_it() {
    let app = demo_app().await;
    let admin = app.user_with_token("root").await;
    app::broker::demo::seed(&app.state).await.unwrap();
    let sid = get(&app, &admin, "/api/v1/subscribers").await[0]["id"].as_i64().unwrap();
    let http = client();
    let post = |id: i64, headers: Vec<(&'static str, String)>| {
        let mut req = http.post(app.url(&format!("/webhooks/demo-receiver/{id}"))).body(r#"{"n":1}"#);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let now = (app::platform::time::now_ms() / 1000).to_string();
    assert_error(post(sid, vec![]).await.unwrap(), 401, "unauthorized", Some("webhook-id")).await;
    let forged = vec![("webhook-id", "msg_x".to_owned()), ("webhook-timestamp", now.clone()), ("webhook-signature", "v1,AAAA".to_owned())];
    assert_error(post(sid, forged.clone()).await.unwrap(), 401, "unauthorized", Some("webhook-signature")).await;
    assert_error(post(sid + 1, forged).await.unwrap(), 404, "not_found", None).await;

    // Signed with the subscriber's secret, it is taken: the receiver is a real endpoint.
    let secret = get(&app, &admin, &format!("/api/v1/subscribers/{sid}/secret")).await["secret"].as_str().unwrap().to_owned();
    let ts: i64 = now.parse().unwrap();
    let signature = app::broker::signature::sign(&secret, "msg_y", ts, br#"{"n":1}"#).unwrap();
    let res = post(sid, vec![("webhook-id", "msg_y".into()), ("webhook-timestamp", now), ("webhook-signature", signature)]).await.unwrap();
    assert_eq!(res.status(), 200);
    let receipt: Value = res.json().await.unwrap();
    assert_eq!((receipt["received"].as_str(), receipt["verified"].as_bool(), receipt["attempt"].as_i64()), (Some("msg_y"), Some(true), Some(1)));

    // The permission is for the receiver's own path only: the rest of this server, or
    // the same path on another port, is still refused as a target.
    let base = app.state.settings.part::<app::broker::settings::BrokerSettings>().demo_receiver.clone().unwrap();
    for url in [base.replace("/webhooks/demo-receiver", "/api/v1/topics"), format!("{base}/{sid}/../../../api/v1/topics"), base.replace(":", ":1")] {
        let res = app.client.post(app.url("/api/v1/subscribers")).bearer_auth(&admin).json(&json!({"name": "sneaky", "url": url})).send().await.unwrap();
        assert_error(res, 400, "invalid_field", Some("url")).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_demo_calendar_and_meetings_are_seeded_once_and_a_test_booking_arrives() {
    let app = demo_app().await;
    let _admin = app.user_with_token("root").await;
    let alice = app.user_with_token("alice").await;
    app::scheduler::demo::seed(&app.state).await.unwrap();
    app::scheduler::demo::seed(&app.state).await.unwrap();
    app::meetings::demo::seed(&app.state).await.unwrap();
    app::meetings::demo::seed(&app.state).await.unwrap();

    // The calendar: shared, so any member sees its events in full; nobody signs in as it.
    let around = |days: i64| app::platform::time::to_rfc3339(app::platform::time::now_ms() + days * 86_400_000);
    let events = get(&app, &alice, &format!("/api/v1/users/demo/events?from={}&to={}&limit=500", around(-20), around(20))).await;
    let events = events["events"].as_array().unwrap();
    let mut titles: Vec<&str> = events.iter().map(|e| e["title"].as_str().unwrap_or_default()).collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), 5, "{titles:?}");
    assert!(titles.iter().all(|t| t.ends_with("(demo)")), "{titles:?}");
    assert_eq!(events.iter().filter(|e| e["series_id"].is_null()).count(), 4, "four single events, seeded once");
    assert!(events.iter().any(|e| e["recurrence"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"), "and a stand-up every weekday");
    let res = app.post_json("/api/v1/auth/tokens", &json!({"username": "demo", "password": "!"})).await;
    assert_eq!(res.status(), 401);
    let res = app.post_json("/api/v1/auth/signup", &json!({"username": "demo", "password": "correct horse battery staple"})).await;
    assert_eq!(res.status(), 409);

    // Meetings: folded from signed deliveries, the canceled one canceled, nothing twice.
    let meetings = eventually(Duration::from_secs(20), "four demo meetings", || async {
        let m = get(&app, &alice, "/api/v1/meetings").await;
        (m.as_array().unwrap().len() == 4).then_some(m)
    })
    .await;
    let statuses: Vec<(&str, &str)> = meetings.as_array().unwrap().iter().map(|m| (m["invitee_name"].as_str().unwrap(), m["status"].as_str().unwrap())).collect();
    assert!(statuses.contains(&("Katherine Johnson (demo)", "canceled")), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|(_, s)| *s == "scheduled").count(), 3, "{statuses:?}");

    // "Send a test booking" goes through the same intake.
    let res = server_fn(&app, &alice, "meetings_test_booking", "").await;
    assert!(res.status().is_success(), "{}", res.status());
    eventually(Duration::from_secs(20), "the test booking folded", || async {
        let m = get(&app, &alice, "/api/v1/meetings").await;
        m.as_array().unwrap().iter().any(|m| m["invitee_name"] == "Test Booking (demo)").then_some(())
    })
    .await;
    app.stop().await;
}

/// Test bookings are signed with the key the app holds: only the demo installation's
/// generated development key may sign them, never a configured (real) one.
#[test]
fn test_bookings_are_on_only_with_a_generated_key_on_a_demo_installation() {
    let on = |vars: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let mut vars: std::collections::HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        vars.insert("SB_DATA_DIR".into(), data);
        let settings = server::compose::with_dev_secrets(server::compose::settings_from_vars(&|k| vars.get(k).cloned()));
        settings.part::<app::meetings::settings::MeetingsSettings>().test_bookings
    };
    assert!(on(&[]), "the embedded run: demo on, key generated");
    assert!(!on(&[("CALENDLY_WEBHOOK_SIGNING_KEY", "a-real-key")]), "a configured key is a real feed");
    assert!(!on(&[("SB_DEMO_DATA", "false")]), "no demo, no samples");
    assert!(!on(&[("DATABASE_URL", "mysql://root@127.0.0.1:3306/test"), ("CALENDLY_WEBHOOK_SIGNING_KEY", "k"), ("SB_DEMO_DATA", "true"), ("SB_SECRET_KEY", crate::support::TEST_SECRET_KEY)]));
}

#[tokio::test]
async fn a_test_booking_needs_the_embedded_runs_development_key() {
    let app = TestApp::spawn_with(Backend::Sqlite, meetings_app_settings).await;
    let alice = app.user_with_token("alice").await;
    let res = server_fn(&app, &alice, "meetings_test_booking", "").await;
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn the_first_administrator_of_a_demo_installation_finds_welcome_messages() {
    use app::platform::jobs::entity as job;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    // Quiet: no job runner, so the test sees the queued job and then runs it itself.
    let app = TestApp::spawn_quiet(Backend::Sqlite, |s| s.demo_data = true).await;
    let root = app.user_with_token("root").await;
    let _alice = app.user_with_token("alice").await;
    let queued = job::Entity::find().filter(job::Column::Kind.eq(app::chat::demo::WELCOME_JOB)).all(&app.state.db.conn).await.unwrap();
    assert_eq!(queued.len(), 1, "queued for the first administrator only: {queued:?}");
    let payload: Value = serde_json::from_str(&queued[0].payload).unwrap();
    let ids = app::chat::demo::welcome(&app.state, payload["user_id"].as_i64().unwrap()).await.unwrap();
    assert_eq!(ids.len(), 2);
    let inbox = get(&app, &root, "/chats/root").await;
    let read: Vec<i64> = inbox.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(read, ids, "both in the inbox: {inbox}");
    for id in ids {
        let m: Value = server_fn(&app, &root, "chat_open", &format!("id={id}")).await.json().await.unwrap();
        assert_eq!(m["sender"], "demo", "{m}");
    }
    app.stop().await;
}

#[tokio::test]
async fn no_welcome_is_queued_without_the_demo() {
    use app::platform::jobs::entity as job;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, PaginatorTrait};
    let app = TestApp::spawn_quiet(Backend::Sqlite, |_| {}).await;
    app.user_with_token("root").await;
    let queued = job::Entity::find().filter(job::Column::Kind.eq(app::chat::demo::WELCOME_JOB)).count(&app.state.db.conn).await.unwrap();
    assert_eq!(queued, 0);
    app.stop().await;
}

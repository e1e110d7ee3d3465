//! The meetings feed: signed Calendly deliveries in, one live state per meeting out,
//! nothing lost while the database is down.

use crate::support::{assert_error, eventually, Backend, ServerProcess, TcpProxy, TestApp, TestDb};
use serde_json::{json, Value};
use std::time::Duration;

pub const KEY: &str = "test-signing-key";
const API: &str = "https://api.calendly.com";

pub fn meetings_app_settings(s: &mut app::platform::settings::Settings) {
    s.part_mut::<app::meetings::settings::MeetingsSettings>().signing_key = Some(KEY.into());
}

/// An `invitee.created` / `invitee.canceled` delivery, as Calendly documents it.
pub fn invitee_event(event: &str, ev: &str, inv: &str, start: &str, extra: Value) -> Value {
    let mut payload = json!({
        "uri": format!("{API}/scheduled_events/{ev}/invitees/{inv}"),
        "email": format!("{inv}@example.com"),
        "name": format!("Invitee {inv}"),
        "status": if event == "invitee.canceled" { "canceled" } else { "active" },
        "timezone": "Europe/Paris",
        "event": format!("{API}/scheduled_events/{ev}"),
        "rescheduled": false,
        "old_invitee": null,
        "new_invitee": null,
        "created_at": "2026-11-20T09:00:00.000000Z",
        "updated_at": "2026-11-20T09:00:00.000000Z",
        "scheduled_event": {
            "uri": format!("{API}/scheduled_events/{ev}"),
            "name": "30 Minute Meeting",
            "status": "active",
            "start_time": start,
            "end_time": start.replace("T10:00", "T10:30"),
            "location": {"type": "zoom", "location": "https://zoom.example/j/123"},
            "event_memberships": [{"user": format!("{API}/users/HOST"), "user_email": "host@example.com", "user_name": "Host"}]
        }
    });
    payload.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    json!({"created_at": "2026-11-20T09:00:01.000000Z", "created_by": format!("{API}/users/HOST"), "event": event, "payload": payload})
}

pub fn signature(key: &str, at: i64, body: &[u8]) -> String {
    format!("t={at},v1={}", app::meetings::calendly::sign(key, at, body))
}

pub async fn deliver(client: &reqwest::Client, base: &str, body: &Value) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = signature(KEY, app::platform::time::now_ms() / 1000, &bytes);
    client
        .post(format!("{base}/webhooks/calendly"))
        .header("content-type", "application/json")
        .header("calendly-webhook-signature", sig)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// Waits until every stored delivery has been folded (intake answers before folding).
pub async fn folded(app: &TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use app::meetings::store::inbox;
    eventually(Duration::from_secs(30), "every stored delivery folded", || async {
        let left = inbox::Entity::find().filter(inbox::Column::ProcessedAt.is_null()).count(&app.state.db.conn).await.unwrap();
        (left == 0).then_some(())
    })
    .await;
}

async fn meetings(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    folded(app).await;
    let res = app.client.get(app.url(&format!("/api/v1/meetings{query}"))).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

fn cancel(reason: &str) -> Value {
    json!({"cancellation": {"canceled_by": "Invitee A", "reason": reason, "canceler_type": "invitee"}})
}

async fn create_cancel_duplicates_and_order(backend: Backend) {
    let app = TestApp::spawn_with(backend, meetings_app_settings).await;
    let token = app.user_with_token("viewer").await;

    let created = invitee_event("invitee.created", "EV1", "IN1", "2030-01-10T10:00:00.000000Z", json!({}));
    let res = deliver(&app.client, &app.base, &created).await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "accepted");
    let list = meetings(&app, &token, "").await;
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!((m["status"].as_str(), m["host_email"].as_str()), (Some("scheduled"), Some("host@example.com")));
    assert_eq!((m["invitee_name"].as_str(), m["location"].as_str()), (Some("Invitee IN1"), Some("https://zoom.example/j/123")));
    assert_eq!(m["start_time"].as_i64(), app::platform::time::parse_rfc3339("2030-01-10T10:00:00Z"));

    // Calendly retries: the same (event, invitee) again changes nothing.
    let res = deliver(&app.client, &app.base, &created).await;
    assert_eq!((res.status().as_u16(), res.json::<Value>().await.unwrap()["status"].as_str()), (200, Some("duplicate")));

    let canceled = invitee_event("invitee.canceled", "EV1", "IN1", "2030-01-10T10:00:00.000000Z", cancel("conflict"));
    assert_eq!(deliver(&app.client, &app.base, &canceled).await.status(), 202);
    // A late duplicate of the create does not resurrect it.
    deliver(&app.client, &app.base, &created).await;
    let list = meetings(&app, &token, "").await;
    assert_eq!(list.len(), 1, "one row per meeting");
    assert_eq!((list[0]["status"].as_str(), list[0]["cancel_reason"].as_str()), (Some("canceled"), Some("conflict")));

    // Out of order: the cancel arrives before the create; it still ends canceled.
    let cancel_first = invitee_event("invitee.canceled", "EV2", "IN2", "2030-01-11T10:00:00.000000Z", cancel("sick"));
    deliver(&app.client, &app.base, &cancel_first).await;
    deliver(&app.client, &app.base, &invitee_event("invitee.created", "EV2", "IN2", "2030-01-11T10:00:00.000000Z", json!({}))).await;
    let ev2 = meetings(&app, &token, "?status=canceled").await;
    assert_eq!(ev2.iter().filter(|m| m["event_uri"].as_str().unwrap().ends_with("EV2")).count(), 1);

    // The raw deliveries are kept verbatim (one per distinct delivery).
    use sea_orm::{EntityTrait, PaginatorTrait};
    let raw = app::meetings::store::inbox::Entity::find().count(&app.state.db.conn).await.unwrap();
    assert_eq!(raw, 4);
    app.stop().await;
}

async fn a_reschedule_links_old_and_new(backend: Backend) {
    let app = TestApp::spawn_with(backend, meetings_app_settings).await;
    let token = app.user_with_token("viewer").await;
    let old_inv = format!("{API}/scheduled_events/OLD/invitees/I1");
    let new_inv = format!("{API}/scheduled_events/NEW/invitees/I2");
    // New booking first (order is not guaranteed), then the cancel of the old one.
    deliver(&app.client, &app.base, &invitee_event("invitee.created", "OLD", "I1", "2030-02-01T10:00:00.000000Z", json!({}))).await;
    deliver(&app.client, &app.base, &invitee_event("invitee.created", "NEW", "I2", "2030-02-03T10:00:00.000000Z", json!({"old_invitee": old_inv}))).await;
    let cancel_old = invitee_event(
        "invitee.canceled", "OLD", "I1", "2030-02-01T10:00:00.000000Z",
        json!({"rescheduled": true, "new_invitee": new_inv, "cancellation": {"canceled_by": "I1", "reason": "moved", "canceler_type": "invitee"}}),
    );
    deliver(&app.client, &app.base, &cancel_old).await;
    let list = meetings(&app, &token, "").await;
    assert_eq!(list.len(), 2);
    let (old, new) = (&list[0], &list[1]);
    assert_eq!((old["status"].as_str(), new["status"].as_str()), (Some("rescheduled"), Some("scheduled")));
    assert_eq!(old["rescheduled_to"]["id"], new["id"]);
    assert_eq!(new["rescheduled_from"]["id"], old["id"]);
    assert_eq!(old["rescheduled_to"]["start_time"], new["start_time"]);
    app.stop().await;
}

/// Deliveries that arrive at once are each stored once and told so: of two copies of
/// one delivery sent at once, one is accepted and the other is a duplicate, a copy of
/// one stored earlier is a duplicate, and each accepted id is the row of the delivery
/// that was told it.
async fn deliveries_at_once_are_each_stored_once(backend: Backend) {
    use app::meetings::store::inbox;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let app = TestApp::spawn_with(backend, meetings_app_settings).await;
    let earlier = invitee_event("invitee.created", "EV0", "IN0", "2030-03-01T10:00:00.000000Z", json!({}));
    assert_eq!(deliver(&app.client, &app.base, &earlier).await.status(), 202);

    let mut sent: Vec<(String, Value)> = vec![("EV0".into(), earlier.clone()), ("EV0".into(), earlier)];
    for n in 1..=30 {
        let ev = format!("EV{n}");
        let body = invitee_event("invitee.created", &ev, &format!("IN{n}"), "2030-03-02T10:00:00.000000Z", json!({}));
        sent.extend([(ev.clone(), body.clone()), (ev, body)]);
    }
    let app_ref = &app;
    let answers = futures::future::join_all(sent.iter().map(|(ev, body)| async move {
        let res = deliver(&app_ref.client, &app_ref.base, body).await;
        (ev.clone(), res.status().as_u16(), res.json::<Value>().await.unwrap())
    }))
    .await;
    let mut accepted: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for (ev, status, body) in &answers {
        match (status, body["status"].as_str()) {
            (202, Some("accepted")) => accepted.entry(ev.clone()).or_default().push(body["id"].as_i64().expect("an id")),
            (200, Some("duplicate")) => {}
            _ => panic!("delivery of {ev}: {status} {body}"),
        }
    }
    assert!(!accepted.contains_key("EV0"), "a copy of a delivery stored earlier was accepted again");
    for n in 1..=30 {
        let ev = format!("EV{n}");
        let ids = accepted.get(&ev).cloned().unwrap_or_default();
        assert_eq!(ids.len(), 1, "{ev}: accepted {ids:?}, expected exactly one of its two copies");
        let row = inbox::Entity::find_by_id(ids[0]).one(&app.state.db.conn).await.unwrap().expect("the accepted row");
        assert!(row.body.contains(&format!("/scheduled_events/{ev}/")), "id {} holds another delivery than {ev}'s", ids[0]);
    }
    assert_eq!(inbox::Entity::find().count(&app.state.db.conn).await.unwrap(), 31);
    app.stop().await;
}

both_backends!(create_cancel_duplicates_and_order, a_reschedule_links_old_and_new);
both_backends!(deliveries_at_once_are_each_stored_once);

#[tokio::test]
async fn bad_deliveries_are_refused_and_unknown_events_kept() {
    let app = TestApp::spawn_with(Backend::Sqlite, meetings_app_settings).await;
    let url = app.url("/webhooks/calendly");
    let body = serde_json::to_vec(&invitee_event("invitee.created", "E", "I", "2030-01-10T10:00:00.000000Z", json!({}))).unwrap();
    let now = app::platform::time::now_ms() / 1000;
    let post = |sig: Option<String>, body: Vec<u8>| {
        let mut req = app.client.post(&url).header("content-type", "application/json").body(body);
        if let Some(sig) = sig {
            req = req.header("calendly-webhook-signature", sig);
        }
        req.send()
    };
    assert_error(post(None, body.clone()).await.unwrap(), 401, "unauthorized", None).await;
    assert_error(post(Some(signature("wrong key", now, &body)), body.clone()).await.unwrap(), 401, "unauthorized", None).await;
    assert_error(post(Some("t=1,v1".into()), body.clone()).await.unwrap(), 401, "unauthorized", None).await;
    let stale = assert_error(post(Some(signature(KEY, now - 600, &body)), body.clone()).await.unwrap(), 401, "stale_signature", None).await;
    assert!(stale["error"]["message"].as_str().unwrap().contains("180"), "{stale}");

    let garbage = b"{not json".to_vec();
    assert_error(post(Some(signature(KEY, now, &garbage)), garbage).await.unwrap(), 400, "invalid_field", Some("body")).await;
    let mut missing = invitee_event("invitee.created", "E", "I", "2030-01-10T10:00:00.000000Z", json!({}));
    missing["payload"]["scheduled_event"].as_object_mut().unwrap().remove("start_time");
    let missing = serde_json::to_vec(&missing).unwrap();
    assert_error(post(Some(signature(KEY, now, &missing)), missing).await.unwrap(), 400, "invalid_field", Some("payload.scheduled_event.start_time")).await;

    let unknown = serde_json::to_vec(&json!({"event": "routing_form_submission.created", "created_at": "2026-11-20T09:00:00Z", "payload": {"x": 1}})).unwrap();
    let res = post(Some(signature(KEY, now, &unknown)), unknown.clone()).await.unwrap();
    assert_eq!(res.status(), 202, "unknown events are accepted and kept");
    use sea_orm::EntityTrait;
    folded(&app).await;
    let kept = app::meetings::store::inbox::Entity::find().all(&app.state.db.conn).await.unwrap();
    assert_eq!(kept.len(), 1, "only the unknown event was stored (the refused ones were not)");
    assert_eq!(kept[0].body.as_bytes(), &unknown[..], "stored verbatim");
    assert!(kept[0].processed_at.is_some() && kept[0].error.is_some());

    let token = app.user_with_token("viewer").await;
    let res = app.client.get(app.url("/api/v1/meetings?status=maybe")).bearer_auth(&token).send().await.unwrap();
    assert_error(res, 400, "invalid_field", Some("status")).await;
    let res = app.client.get(app.url("/api/v1/meetings?from=yesterday")).bearer_auth(&token).send().await.unwrap();
    assert_error(res, 400, "invalid_field", Some("from")).await;
    assert_error(app.get("/api/v1/meetings").await, 401, "unauthorized", None).await;
    app.stop().await;
}

#[tokio::test]
async fn filters_select_by_status_host_and_time() {
    let app = TestApp::spawn_with(Backend::Sqlite, meetings_app_settings).await;
    let token = app.user_with_token("viewer").await;
    for (ev, day) in [("A", "05"), ("B", "06"), ("C", "07")] {
        deliver(&app.client, &app.base, &invitee_event("invitee.created", ev, &format!("i{ev}"), &format!("2030-03-{day}T10:00:00.000000Z"), json!({}))).await;
    }
    deliver(&app.client, &app.base, &invitee_event("invitee.canceled", "B", "iB", "2030-03-06T10:00:00.000000Z", cancel("x"))).await;
    let names = |list: Vec<Value>| list.iter().map(|m| m["event_uri"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(meetings(&app, &token, "").await), ["A", "B", "C"]);
    assert_eq!(names(meetings(&app, &token, "?status=scheduled").await), ["A", "C"]);
    assert_eq!(names(meetings(&app, &token, "?from=2030-03-06&to=2030-03-07").await), ["B"]);
    assert_eq!(names(meetings(&app, &token, "?host=host@example.com&status=canceled").await), ["B"]);
    assert!(meetings(&app, &token, "?host=nobody@example.com").await.is_empty());
    app.stop().await;
}

/// The database goes away: deliveries are still acknowledged once spooled to the object
/// store, and land in the database exactly once when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_survive_the_database_being_down() {
    let db = TestDb::new(Backend::MariaDb).await;
    let proxy = TcpProxy::start(&db.address()).await;
    let url = db.url_via(&proxy);
    let app = TestApp::spawn_on(db, |s| {
        meetings_app_settings(s);
        s.database_url = url;
    })
    .await;
    let token = app.user_with_token("viewer").await;

    proxy.cut();
    let created = invitee_event("invitee.created", "DOWN", "I", "2030-04-01T10:00:00.000000Z", json!({}));
    let res = deliver(&app.client, &app.base, &created).await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "spooled");
    // Calendly retries the same delivery: spooled again, deduplicated at replay.
    assert_eq!(deliver(&app.client, &app.base, &created).await.status(), 202);
    assert_eq!(app.state.store.list("spool/", None, 10).await.unwrap().len(), 2);

    proxy.restore();
    let list = eventually(Duration::from_secs(60), "the spool to be replayed by the job", || async {
        let res = app.client.get(app.url("/api/v1/meetings")).bearer_auth(&token).send().await.ok()?;
        let list: Vec<Value> = res.json::<Vec<Value>>().await.ok()?;
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(list.len(), 1, "exactly once");
    assert_eq!(list[0]["status"], "scheduled");
    eventually(Duration::from_secs(30), "the spool to empty", || async {
        app.state.store.list("spool/", None, 10).await.unwrap().is_empty().then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn with_neither_database_nor_store_the_sender_is_told_to_retry() {
    let db = TestDb::new(Backend::MariaDb).await;
    let proxy = TcpProxy::start(&db.address()).await;
    let url = db.url_via(&proxy);
    let app = TestApp::spawn_on(db, |s| {
        meetings_app_settings(s);
        s.database_url = url;
        s.store = app::platform::settings::StoreSettings::S3(app::platform::object_store::S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "nowhere".into(),
            region: "us-east-1".into(),
            access_key: Some("k".into()),
            secret_key: Some("s".into()),
            path_style: true,
        });
    })
    .await;
    proxy.cut();
    let res = deliver(&app.client, &app.base, &invitee_event("invitee.created", "X", "I", "2030-04-01T10:00:00.000000Z", json!({}))).await;
    assert_error(res, 503, "unavailable", None).await;
    proxy.restore();
    app.stop().await;
}

/// A webhook accepted by one process reaches a live stream served by another (two
/// processes, one MariaDB database).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_on_one_process_reaches_a_page_on_another() {
    let db = TestDb::new(Backend::MariaDb).await;
    let data = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = |d: &tempfile::TempDir| {
        vec![
            ("DATABASE_URL", db.url.clone()),
            ("SB_DATA_DIR", d.path().display().to_string()),
            ("CALENDLY_WEBHOOK_SIGNING_KEY", KEY.to_owned()),
        ]
    };
    let a = ServerProcess::start(&env(&data.0)).await;
    let b = ServerProcess::start(&env(&data.1)).await;
    let client = reqwest::Client::new();
    let token = crate::support::new_user_token(&client, &b.base, "viewer").await;
    let res = client.get(format!("{}/api/v1/meetings/events", b.base)).bearer_auth(&token).send().await.unwrap();
    let mut events = crate::changes::SseReader::new(res);

    let res = deliver(&client, &a.base, &invitee_event("invitee.created", "XP", "I", "2030-05-01T10:00:00.000000Z", json!({}))).await;
    assert_eq!(res.status(), 202);
    let event = events.next(Duration::from_secs(15)).await;
    let change: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(change["status"], "scheduled");
    assert!(event.id.is_some(), "events carry ids for Last-Event-ID");
}

/// Spool objects that no longer parse are left for a person, and never stall the ones
/// after them: a full page of them is paged past.
#[tokio::test]
async fn unreadable_spool_objects_do_not_hold_back_the_rest() {
    let app = TestApp::spawn_quiet(Backend::Sqlite, meetings_app_settings).await;
    let token = app.user_with_token("root").await;
    for n in 0..105 {
        app.state.store.put(&format!("spool/calendly/0000000000000-{n:016x}.json"), "not json".into()).await.unwrap();
    }
    let body = invitee_event("invitee.created", "SPOOLED", "I1", "2031-05-01T10:00:00.000000Z", json!({})).to_string();
    let record = json!({"received_at": app::platform::time::now_ms(), "body": body}).to_string();
    app.state.store.put("spool/calendly/9999999999999-0000000000000001.json", record.into()).await.unwrap();

    assert_eq!(app::meetings::service::replay_spool(&app.state).await.unwrap(), 1, "the readable one, behind 105 that are not");
    let left = app.state.store.list("spool/calendly/", None, 1000).await.unwrap();
    assert_eq!(left.len(), 105, "the unreadable ones stay");
    app::meetings::service::fold_pending(&app.state, 10).await.unwrap();
    let found = meetings(&app, &token, "").await;
    assert_eq!(found.len(), 1, "{found:?}");
    app.stop().await;
}

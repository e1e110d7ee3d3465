//! Scheduler: events REST with its status codes and access rules, range queries at their
//! boundaries and across daylight-saving changes, optimistic concurrency, iCal checked by
//! an independent parser, and the broker events.

use crate::support::{assert_error, eventually, Backend, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl<'a> Client<'a> {
    pub async fn new(app: &'a TestApp, name: &str) -> Self {
        Self { app, token: app.user_with_token(name).await }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn create(&self, user: &str, body: Value) -> Value {
        let res = self.call(reqwest::Method::POST, &format!("/api/v1/users/{user}/events"), Some(body)).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        res.json().await.unwrap()
    }

    pub async fn list(&self, user: &str, query: &str) -> Value {
        let res = self.call(reqwest::Method::GET, &format!("/api/v1/users/{user}/events?{query}"), None).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

fn ids(page: &Value) -> Vec<i64> {
    page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

async fn events_rest_and_range_boundaries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = Client::new(&app, "ada").await;

    let res = ada.call(reqwest::Method::POST, "/api/v1/users/ada/events", Some(json!({
        "title": "Standup", "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T09:15:00Z", "location": "Room 1"
    }))).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let standup: Value = res.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/events/{}", standup["id"]));
    assert_eq!((standup["version"].as_i64(), standup["start"].as_str()), (Some(1), Some("2030-01-07T09:00:00.000Z")));
    assert_eq!(standup["conflicts"], json!([]));

    // Overlap is allowed but flagged, both ways.
    let review = ada.create("ada", json!({"title": "Review", "start": "2030-01-07T09:10:00Z", "end": "2030-01-07T10:00:00Z"})).await;
    assert_eq!(review["conflicts"], json!([standup["id"]]));
    let got: Value = ada.call(reqwest::Method::GET, &location, None).await.json().await.unwrap();
    assert_eq!(got["conflicts"], json!([review["id"]]));

    // Ranges are half-open [from, to): touching the edge is outside.
    let q = |from: &str, to: &str| format!("from={from}&to={to}");
    assert_eq!(ids(&ada.list("ada", &q("2030-01-07T09:15:00Z", "2030-01-07T12:00:00Z")).await), [review["id"].as_i64().unwrap()], "an event ending at `from` is out");
    assert!(ids(&ada.list("ada", &q("2030-01-07T08:00:00Z", "2030-01-07T09:00:00Z")).await).is_empty(), "an event starting at `to` is out");
    assert_eq!(ids(&ada.list("ada", &q("2030-01-07T09:05:00Z", "2030-01-07T09:06:00Z")).await).len(), 1, "a range inside an event finds it");
    let all = ada.list("ada", &q("2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z")).await;
    assert_eq!(ids(&all), [standup["id"].as_i64().unwrap(), review["id"].as_i64().unwrap()], "ordered by start");

    // Pagination with a cursor.
    for n in 0..5 {
        ada.create("ada", json!({"title": format!("e{n}"), "start": format!("2030-03-0{}T10:00:00Z", n + 1), "end": format!("2030-03-0{}T11:00:00Z", n + 1)})).await;
    }
    let first = ada.list("ada", &format!("{}&limit=2", q("2030-03-01T00:00:00Z", "2030-04-01T00:00:00Z"))).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = ada.list("ada", &format!("{}&limit=2&cursor={cursor}", q("2030-03-01T00:00:00Z", "2030-04-01T00:00:00Z"))).await;
    let third = ada.list("ada", &format!("{}&limit=2&cursor={}", q("2030-03-01T00:00:00Z", "2030-04-01T00:00:00Z"), second["next_cursor"].as_str().unwrap())).await;
    let titles: Vec<String> = [&first, &second, &third].iter().flat_map(|p| p["events"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap().to_owned())).collect();
    assert_eq!(titles, ["e0", "e1", "e2", "e3", "e4"]);
    assert!(third["next_cursor"].is_null());

    // A long event is found from deep inside it, though every event before it was short
    // (ranges look back as far as the calendar's longest event), whether it was created
    // long or made long by a change.
    let conference = ada.create("ada", json!({"title": "Conference", "start": "2030-05-01T08:00:00Z", "end": "2030-05-21T18:00:00Z"})).await;
    let inside = q("2030-05-15T12:00:00Z", "2030-05-15T13:00:00Z");
    assert_eq!(ids(&ada.list("ada", &inside).await), [conference["id"].as_i64().unwrap()]);
    let talk = ada.create("ada", json!({"title": "Talk", "start": "2030-05-10T10:00:00Z", "end": "2030-05-10T11:00:00Z"})).await;
    assert_eq!(talk["conflicts"], json!([conference["id"]]), "a conflict with an event that began 9 days before");
    let bob = Client::new(&app, "bob").await;
    let trip = bob.create("bob", json!({"title": "Trip", "start": "2030-06-01T08:00:00Z", "end": "2030-06-01T09:00:00Z"})).await;
    let later = q("2030-06-25T00:00:00Z", "2030-06-26T00:00:00Z");
    assert!(ids(&bob.list("bob", &later).await).is_empty());
    let res = bob.call(reqwest::Method::PATCH, &format!("/api/v1/events/{}", trip["id"]), Some(json!({"version": 1, "end": "2030-06-30T09:00:00Z"}))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(ids(&bob.list("bob", &later).await), [trip["id"].as_i64().unwrap()], "made long by a change");

    // Optimistic concurrency.
    let path = format!("/api/v1/events/{}", standup["id"]);
    let res = ada.call(reqwest::Method::PATCH, &path, Some(json!({"version": 1, "title": "Daily standup"}))).await;
    let updated: Value = res.json().await.unwrap();
    assert_eq!((updated["version"].as_i64(), updated["title"].as_str()), (Some(2), Some("Daily standup")));
    let res = ada.call(reqwest::Method::PATCH, &path, Some(json!({"version": 1, "title": "lost update"}))).await;
    assert_error(res, 409, "version_conflict", Some("version")).await;
    let res = ada.call(reqwest::Method::DELETE, &format!("{path}?version=1"), None).await;
    assert_error(res, 409, "version_conflict", Some("version")).await;
    assert_eq!(ada.call(reqwest::Method::DELETE, &format!("{path}?version=2"), None).await.status(), 204);
    assert_error(ada.call(reqwest::Method::GET, &path, None).await, 404, "not_found", None).await;
    app.stop().await;
}

both_backends!(events_rest_and_range_boundaries);

#[tokio::test]
async fn bad_events_are_refused_naming_the_field() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = Client::new(&app, "ada").await;
    let base = json!({"title": "x", "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("end", json!("2030-01-07T08:00:00Z")), "end"),
        (with("end", json!("2030-01-07T09:00:00Z")), "end"),
        (with("end", json!("2030-06-07T09:00:00Z")), "end"),
        (with("title", json!("")), "title"),
        (with("title", json!("t".repeat(201))), "title"),
        (with("location", json!("l".repeat(501))), "location"),
        (with("time_zone", json!("Mars/Olympus")), "time_zone"),
        (with("start", json!("next tuesday")), "start"),
        (with("start", json!("2030-01-07 09:00")), "start"),
        (json!({"title": "x", "end": "2030-01-07T10:00:00Z"}), "start"),
    ];
    for (body, field) in cases {
        let res = ada.call(reqwest::Method::POST, "/api/v1/users/ada/events", Some(body.clone())).await;
        assert_error(res, 400, "invalid_field", Some(field)).await;
    }
    let page = ada.list("ada", "from=2030-01-01T00:00:00Z&to=2031-01-01T00:00:00Z").await;
    assert!(page["events"].as_array().unwrap().is_empty(), "nothing was written");
    let res = ada.call(reqwest::Method::GET, "/api/v1/users/ada/events?from=yesterday", None).await;
    assert_error(res, 400, "invalid_field", Some("from")).await;
    let res = ada.call(reqwest::Method::GET, "/api/v1/users/ada/events?cursor=bogus", None).await;
    assert_error(res, 400, "invalid_field", Some("cursor")).await;
    assert_error(ada.call(reqwest::Method::GET, "/api/v1/users/nobody", None).await, 404, "not_found", None).await;
    app.stop().await;
}

#[tokio::test]
async fn others_see_free_busy_and_cannot_change_anything() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = Client::new(&app, "boss").await; // first account: admin
    let ada = Client::new(&app, "ada").await;
    let bob = Client::new(&app, "bob").await;
    let secret = ada.create("ada", json!({"title": "Dentist", "description": "root canal", "location": "Main St", "start": "2030-01-08T15:00:00Z", "end": "2030-01-08T16:00:00Z"})).await;
    let path = format!("/api/v1/events/{}", secret["id"]);

    let seen = bob.list("ada", "from=2030-01-01T00:00:00Z&to=2030-02-01T00:00:00Z").await;
    let e = &seen["events"][0];
    assert_eq!((e["title"].as_str(), e["busy_only"].as_bool(), e["description"].as_str()), (Some("Busy"), Some(true), Some("")));
    assert_eq!(e["start"], secret["start"], "the time is visible");
    let single: Value = bob.call(reqwest::Method::GET, &path, None).await.json().await.unwrap();
    assert_eq!(single["title"], "Busy");
    assert_error(bob.call(reqwest::Method::PATCH, &path, Some(json!({"version": 1, "title": "mine"}))).await, 403, "forbidden", None).await;
    assert_error(bob.call(reqwest::Method::DELETE, &path, None).await, 403, "forbidden", None).await;
    let res = bob.call(reqwest::Method::POST, "/api/v1/users/ada/events", Some(json!({"title": "x", "start": "2030-01-09T09:00:00Z", "end": "2030-01-09T10:00:00Z"}))).await;
    assert_error(res, 403, "forbidden", None).await;
    assert_error(bob.call(reqwest::Method::GET, &format!("{path}/ics"), None).await, 403, "forbidden", None).await;

    // Admins see everything; sharing opens the details to everyone.
    let as_admin: Value = admin.call(reqwest::Method::GET, &path, None).await.json().await.unwrap();
    assert_eq!(as_admin["title"], "Dentist");
    ada.call(reqwest::Method::PATCH, "/api/v1/me", Some(json!({"calendar_shared": true}))).await;
    let shared: Value = bob.call(reqwest::Method::GET, &path, None).await.json().await.unwrap();
    assert_eq!((shared["title"].as_str(), shared["busy_only"].as_bool()), (Some("Dentist"), Some(false)));
    assert_error(app.get("/api/v1/users/ada/events").await, 401, "unauthorized", None).await;
    app.stop().await;
}

/// Events in America/New_York across both 2026 daylight-saving changes: stored in UTC,
/// shown in the zone, all-day days of 23 and 25 hours.
async fn daylight_saving_in_new_york(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = Client::new(&app, "ada").await;
    let me: Value = ada.call(reqwest::Method::PATCH, "/api/v1/me", Some(json!({"time_zone": "America/New_York"}))).await.json().await.unwrap();
    assert_eq!(me["time_zone"], "America/New_York");
    let res = ada.call(reqwest::Method::PATCH, "/api/v1/me", Some(json!({"time_zone": "Eastern"}))).await;
    assert_error(res, 400, "invalid_field", Some("time_zone")).await;

    // 9:00 local on the Saturday and Monday around the spring change: 14:00Z then 13:00Z.
    let sat = ada.create("ada", json!({"title": "sat", "start": "2026-03-07T09:00:00-05:00", "end": "2026-03-07T10:00:00-05:00"})).await;
    let mon = ada.create("ada", json!({"title": "mon", "start": "2026-03-09T09:00:00-04:00", "end": "2026-03-09T10:00:00-04:00"})).await;
    assert_eq!(sat["start"], "2026-03-07T14:00:00.000Z");
    assert_eq!(mon["start"], "2026-03-09T13:00:00.000Z");
    // All-day on the short and the long day: midnight to midnight local.
    let short = ada.create("ada", json!({"title": "short day", "all_day": true, "start": "2026-03-08"})).await;
    assert_eq!((short["start"].as_str(), short["end"].as_str()), (Some("2026-03-08T05:00:00.000Z"), Some("2026-03-09T04:00:00.000Z")));
    let long = ada.create("ada", json!({"title": "long day", "all_day": true, "start": "2026-11-01"})).await;
    assert_eq!((long["start"].as_str(), long["end"].as_str()), (Some("2026-11-01T04:00:00.000Z"), Some("2026-11-02T05:00:00.000Z")));
    // A range given in local time across the change finds exactly what it should.
    let page = ada.list("ada", "from=2026-03-08T00:00:00-05:00&to=2026-03-09T00:00:00-04:00").await;
    let titles: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["short day"]);
    app.stop().await;
}

both_backends!(daylight_saving_in_new_york);

#[tokio::test]
async fn the_ical_feed_is_accepted_by_an_independent_parser() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = Client::new(&app, "ada").await;
    ada.call(reqwest::Method::PATCH, "/api/v1/me", Some(json!({"time_zone": "Europe/Paris"}))).await;
    let soon = chrono::Utc::now() + chrono::Duration::days(3);
    let day = soon.format("%Y-%m-%d").to_string();
    let start = soon.format("%Y-%m-%dT10:00:00Z").to_string();
    let end = soon.format("%Y-%m-%dT11:30:00Z").to_string();
    let long_text = "Agenda: budget, hiring; travel\\plans\nSecond line with ünïcode and a long tail ".repeat(4);
    let meeting = ada.create("ada", json!({"title": "Planning, Q3; all hands", "description": long_text, "location": "Room 1, floor 2", "start": start, "end": end})).await;
    let holiday = ada.create("ada", json!({"title": "Holiday", "all_day": true, "start": day})).await;
    let updated: Value = ada
        .call(reqwest::Method::PATCH, &format!("/api/v1/events/{}", meeting["id"]), Some(json!({"version": 1, "location": "Room 2, floor 2"})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["version"], 2);

    let url: Value = ada.call(reqwest::Method::GET, "/api/v1/me/ical", None).await.json().await.unwrap();
    let url = url["url"].as_str().unwrap().to_owned();
    let again: Value = ada.call(reqwest::Method::GET, "/api/v1/me/ical", None).await.json().await.unwrap();
    assert_eq!(again["url"], url, "revealing twice gives the same address");
    let path = url.split_once("/ical/").map(|(_, t)| format!("/ical/{t}")).unwrap();
    let res = app.get(&path).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/calendar"));
    let body = res.text().await.unwrap();
    assert!(body.contains("\r\n") && body.lines().all(|l| l.len() <= 76), "CRLF lines folded at 75 octets");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feed.ics"), &body).unwrap();
    let script = r#"
import json, sys
from icalendar import Calendar
cal = Calendar.from_ical(open(sys.argv[1], 'rb').read())
out = []
for e in cal.walk('VEVENT'):
    out.append({
        "uid": str(e.get('UID')), "summary": str(e.get('SUMMARY')), "description": str(e.get('DESCRIPTION', '')),
        "location": str(e.get('LOCATION', '')), "sequence": int(e.get('SEQUENCE')),
        "start": e.decoded('DTSTART').isoformat(), "end": e.decoded('DTEND').isoformat(),
        "stamp": e.decoded('DTSTAMP').isoformat(),
    })
print(json.dumps({"name": str(cal.get('X-WR-CALNAME')), "events": out}))
"#;
    let python = std::env::var("SB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python).args(["-c", script]).arg(dir.path().join("feed.ics")).output().expect("python with icalendar");
    assert!(out.status.success(), "icalendar refused the feed: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = parsed["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let m = events.iter().find(|e| e["uid"] == meeting["uid"]).expect("the meeting, by its stable UID");
    assert_eq!(m["summary"], "Planning, Q3; all hands", "escaping round-trips");
    assert_eq!(m["description"], long_text.as_str(), "folding and escaping round-trip");
    assert_eq!(m["location"], "Room 2, floor 2");
    assert_eq!(m["sequence"], 1, "SEQUENCE bumps on change");
    assert_eq!(m["start"].as_str().unwrap(), soon.format("%Y-%m-%dT10:00:00+00:00").to_string());
    assert_eq!(m["end"].as_str().unwrap(), soon.format("%Y-%m-%dT11:30:00+00:00").to_string());
    let h = events.iter().find(|e| e["uid"] == holiday["uid"]).unwrap();
    assert_eq!((h["start"].as_str(), h["sequence"].as_i64()), (Some(day.as_str()), Some(0)), "all-day as a DATE");

    // Rotating revokes the old address.
    let rotated: Value = ada.call(reqwest::Method::POST, "/api/v1/me/ical/rotate", None).await.json().await.unwrap();
    assert_ne!(rotated["url"], url);
    assert_error(app.get(&path).await, 404, "not_found", None).await;
    // A single event as .ics.
    let one = ada.call(reqwest::Method::GET, &format!("/api/v1/events/{}/ics", holiday["id"]), None).await;
    assert_eq!(one.status(), 200);
    assert_eq!(one.text().await.unwrap().matches("BEGIN:VEVENT").count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn every_change_is_published_to_the_broker() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()]).await;
    let admin = crate::broker::Admin::new(&app).await;
    let receiver = crate::receiver::Receiver::start().await;
    admin.subscriber(&receiver.url("/events"), "event:*", json!({})).await;
    let ada = Client::new(&app, "ada").await;
    let e = ada.create("ada", json!({"title": "t", "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z"})).await;
    let path = format!("/api/v1/events/{}", e["id"]);
    ada.call(reqwest::Method::PATCH, &path, Some(json!({"version": 1, "title": "t2"}))).await;
    ada.call(reqwest::Method::DELETE, &path, None).await;
    let hits = eventually(Duration::from_secs(20), "three event:* deliveries", || async {
        let h = receiver.first_successes("/events");
        (h.len() == 3).then_some(h)
    })
    .await;
    // Three topics, three lanes: order holds per topic, not across them (by design), so
    // consumers order by the payload's version.
    let mut got: Vec<(String, i64, String)> = hits
        .iter()
        .map(|h| {
            let b = h.json();
            (b["type"].as_str().unwrap().to_owned(), b["data"]["version"].as_i64().unwrap(), b["data"]["title"].as_str().unwrap().to_owned())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [("event:created".into(), 1, "t".into()), ("event:deleted".into(), 2, "t2".into()), ("event:updated".into(), 2, "t2".into())]
    );
    app.stop().await;
}

//! Booking pages over the REST API: the free slots (weekly hours less single and
//! recurring busy events) in the visitor's zone; a booking that becomes an event on the
//! owner's calendar and a meeting in the meetings feed, published as `meeting:scheduled`
//! and canceled by its link (`meeting:canceled`); two visitors racing for one slot (one
//! wins); refusals naming the field; the per-address limit.

use crate::scheduler::Client;
use crate::support::{assert_error, eventually, Backend, TestApp};
use app::platform::time::{parse_rfc3339, to_rfc3339, zones};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// A day well ahead, as `YYYY-MM-DD`, and its weekday's code.
fn ahead(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%d").to_string()
}

async fn open_page(owner: &Client<'_>, hours: &str) {
    let every_day: serde_json::Map<String, Value> = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"].iter().map(|d| (d.to_string(), json!(hours))).collect();
    let res = owner
        .call(
            Method::PUT,
            "/api/v1/me/booking-page",
            Some(json!({"enabled": true, "title": "Intro call", "hours": every_day, "time_zone": "Europe/Paris", "slot_minutes": 60,
                "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 0, "horizon_days": 30})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn slots(app: &TestApp, query: &str) -> Vec<(String, String)> {
    let res = app.get(&format!("/api/v1/booking/olga?{query}")).await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["days"].as_array().unwrap().iter().flat_map(|d| d["slots"].as_array().unwrap().iter().map(|s| (s["start"].as_str().unwrap().to_owned(), s["label"].as_str().unwrap().to_owned()))).collect()
}

async fn book(app: &TestApp, start: &str, name: &str, email: &str) -> reqwest::Response {
    app.post_json("/api/v1/booking/olga", &json!({"start": start, "name": name, "email": email, "time_zone": "America/New_York"})).await
}

async fn a_booking_becomes_an_event_and_a_meeting(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()]).await;
    let admin = crate::broker::Admin::new(&app).await;
    let receiver = crate::receiver::Receiver::start().await;
    admin.subscriber(&receiver.url("/meetings"), "meeting:*", json!({})).await;
    let olga = Client::new(&app, "olga").await;
    assert_error(app.get("/api/v1/booking/olga").await, 404, "not_found", None).await;
    open_page(&olga, "09:00-12:00").await;

    // Shown in the visitor's zone: 09:00 in Paris is 03:00 (or 04:00) in New York.
    let day = ahead(10);
    let week = format!("from={day}&time_zone=Europe/Paris");
    let free = slots(&app, &week).await;
    assert_eq!(free.len(), 7 * 3, "three hours a day for a week");
    assert_eq!(free[0].1, "09:00");
    let in_new_york = slots(&app, &format!("from={day}&time_zone=America/New_York")).await;
    let ny = zones::parse_zone("z", "America/New_York").unwrap();
    let expected = zones::to_local(ny, parse_rfc3339(&free[0].0).unwrap()).format("%H:%M").to_string();
    assert!(in_new_york.iter().any(|(start, label)| *start == free[0].0 && *label == expected), "{in_new_york:?}");

    // Busy times are left out: a single event over the first slot, a daily series over 11:00.
    let (first, second, third) = (free[0].0.clone(), free[1].0.clone(), free[2].0.clone());
    olga.create("olga", json!({"title": "Dentist", "start": first, "end": second})).await;
    let hour_later = to_rfc3339(parse_rfc3339(&third).unwrap() + 3_600_000);
    olga.create("olga", json!({"title": "Standup", "start": third, "end": hour_later, "time_zone": "Europe/Paris", "recurrence": "FREQ=DAILY;COUNT=3"})).await;
    let left = slots(&app, &week).await;
    assert!(!left.iter().any(|s| s.0 == first || s.0 == third), "busy slots are not offered");
    assert!(left.iter().any(|s| s.0 == second));
    assert_eq!(left.len(), 21 - 4, "the event and three occurrences");

    // Refused, naming what is wrong.
    assert_error(book(&app, &first, "Vera", "vera@example.com").await, 409, "slot_taken", Some("start")).await;
    let off_grid = second.replace(":00:00.000Z", ":30:00.000Z");
    assert_error(book(&app, &off_grid, "Vera", "vera@example.com").await, 400, "invalid_field", Some("start")).await;
    assert_error(book(&app, &second, " ", "vera@example.com").await, 400, "invalid_field", Some("name")).await;
    assert_error(book(&app, &second, "Vera", "vera").await, 400, "invalid_field", Some("email")).await;
    assert_error(book(&app, &second, "Vera\u{202E}gninraw", "vera@example.com").await, 400, "invalid_field", Some("name")).await;

    // Booked: an event on the calendar, a meeting in the feed.
    let res = book(&app, &second, "Vera Visitor", "vera@example.com").await;
    assert_eq!(res.status(), 201);
    let booked: Value = res.json().await.unwrap();
    assert_eq!(booked["start"], second.as_str());
    let cancel = booked["cancel_url"].as_str().unwrap().rsplit_once('/').unwrap().1.to_owned();
    assert!(!slots(&app, &week).await.iter().any(|s| s.0 == second), "a booked slot is gone");
    let calendar = olga.list("olga", &format!("from={first}&to={third}")).await;
    let titles: Vec<&str> = calendar["events"].as_array().unwrap().iter().map(|e| e["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Dentist", "Intro call: Vera Visitor"]);
    let meetings: Value = olga.call(Method::GET, "/api/v1/meetings", None).await.json().await.unwrap();
    let m = meetings.as_array().unwrap().iter().find(|m| m["invitee_email"] == "vera@example.com").expect("the booking is a meeting");
    assert_eq!((m["status"].as_str(), m["host_email"].as_str(), m["name"].as_str()), (Some("scheduled"), Some("olga"), Some("Intro call")));

    // Canceled by its link: the event goes, the meeting is canceled, the slot is free.
    assert_eq!(app.client.delete(app.url(&format!("/api/v1/bookings/{cancel}"))).send().await.unwrap().status(), 204);
    assert_eq!(app.client.delete(app.url(&format!("/api/v1/bookings/{cancel}"))).send().await.unwrap().status(), 204, "again: nothing changes");
    assert_error(app.client.delete(app.url("/api/v1/bookings/not-a-token")).send().await.unwrap(), 404, "not_found", None).await;
    assert!(slots(&app, &week).await.iter().any(|s| s.0 == second));
    let calendar = olga.list("olga", &format!("from={first}&to={third}")).await;
    assert_eq!(calendar["events"].as_array().unwrap().len(), 1);
    let meetings: Value = olga.call(Method::GET, "/api/v1/meetings", None).await.json().await.unwrap();
    let m = meetings.as_array().unwrap().iter().find(|m| m["invitee_email"] == "vera@example.com").unwrap();
    assert_eq!((m["status"].as_str(), m["canceled_by"].as_str()), (Some("canceled"), Some("Vera Visitor")));
    let topics = eventually(Duration::from_secs(20), "meeting:scheduled then meeting:canceled", || async {
        let hits = receiver.first_successes("/meetings");
        (hits.len() == 2).then(|| hits.iter().map(|h| h.json()["type"].as_str().unwrap().to_owned()).collect::<Vec<_>>())
    })
    .await;
    let mut topics = topics;
    topics.sort();
    assert_eq!(topics, ["meeting:canceled", "meeting:scheduled"]);

    // A page its owner turns off is not found.
    let mut off: Value = olga.call(Method::GET, "/api/v1/me/booking-page", None).await.json().await.unwrap();
    off["enabled"] = json!(false);
    assert_eq!(olga.call(Method::PUT, "/api/v1/me/booking-page", Some(off)).await.status(), 200);
    assert_error(app.get("/api/v1/booking/olga").await, 404, "not_found", None).await;
    app.stop().await;
}

both_backends!(a_booking_becomes_an_event_and_a_meeting);

/// The host deletes the event a booking made: the booking is canceled with it — the
/// meeting shows canceled in the feed and is published as `meeting:canceled`, the
/// visitor's link answers as for a canceled booking, and the slot is offered again.
/// Before, the booking stayed "scheduled" for a meeting no longer on anyone's calendar.
async fn deleting_a_booked_event_cancels_the_booking(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()]).await;
    let admin = crate::broker::Admin::new(&app).await;
    let receiver = crate::receiver::Receiver::start().await;
    admin.subscriber(&receiver.url("/meetings"), "meeting:*", json!({})).await;
    let olga = Client::new(&app, "olga").await;
    open_page(&olga, "09:00-10:00").await;
    let week = format!("from={}&time_zone=Europe/Paris", ahead(10));
    let first = slots(&app, &week).await[0].0.clone();
    let res = book(&app, &first, "Vera Visitor", "vera@example.com").await;
    assert_eq!(res.status(), 201);
    let booked: Value = res.json().await.unwrap();
    let cancel = booked["cancel_url"].as_str().unwrap().rsplit_once('/').unwrap().1.to_owned();
    let calendar = olga.list("olga", &format!("from={first}&to={}", to_rfc3339(parse_rfc3339(&first).unwrap() + 3_600_000))).await;
    let event_id = calendar["events"][0]["id"].as_i64().expect("the booking's event");

    assert_eq!(olga.call(Method::DELETE, &format!("/api/v1/events/{event_id}"), None).await.status(), 204);
    let meetings: Value = olga.call(Method::GET, "/api/v1/meetings", None).await.json().await.unwrap();
    let m = meetings.as_array().unwrap().iter().find(|m| m["invitee_email"] == "vera@example.com").expect("the booking's meeting");
    assert_eq!((m["status"].as_str(), m["canceled_by"].as_str()), (Some("canceled"), Some("olga")), "canceled by the host, not the visitor");
    assert!(slots(&app, &week).await.iter().any(|s| s.0 == first), "the slot is free again");
    assert_eq!(app.client.delete(app.url(&format!("/api/v1/bookings/{cancel}"))).send().await.unwrap().status(), 204, "the link: already canceled");
    let topics = eventually(Duration::from_secs(20), "meeting:scheduled then meeting:canceled", || async {
        let hits = receiver.first_successes("/meetings");
        (hits.len() == 2).then(|| hits.iter().map(|h| h.json()["type"].as_str().unwrap().to_owned()).collect::<Vec<_>>())
    })
    .await;
    assert_eq!(topics, ["meeting:scheduled", "meeting:canceled"], "in order, once each");

    // A meeting that has begun is history: deleting its event leaves it scheduled.
    let res = book(&app, &first, "Walt Visitor", "walt@example.com").await;
    assert_eq!(res.status(), 201);
    let calendar = olga.list("olga", &format!("from={first}&to={}", to_rfc3339(parse_rfc3339(&first).unwrap() + 3_600_000))).await;
    let event_id = calendar["events"][0]["id"].as_i64().expect("the second booking's event");
    {
        use sea_orm::{ConnectionTrait, Statement};
        let db = &app.state.db;
        let begun = format!("UPDATE bookings SET start_at = {} WHERE event_id = {event_id}", app::platform::time::now_ms() - 60_000);
        db.execute_raw(Statement::from_string(db.get_database_backend(), begun)).await.unwrap();
    }
    assert_eq!(olga.call(Method::DELETE, &format!("/api/v1/events/{event_id}"), None).await.status(), 204);
    let meetings: Value = olga.call(Method::GET, "/api/v1/meetings", None).await.json().await.unwrap();
    let m = meetings.as_array().unwrap().iter().find(|m| m["invitee_email"] == "walt@example.com").expect("the second meeting");
    assert_eq!(m["status"], "scheduled");
    app.stop().await;
}

both_backends!(deleting_a_booked_event_cancels_the_booking);

/// Two visitors book the same slot at the same moment, three times over: each time one
/// gets it and the other is told it was taken.
async fn two_visitors_racing_for_one_slot_get_one_booking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let olga = Client::new(&app, "olga").await;
    open_page(&olga, "09:00-12:00").await;
    let free = slots(&app, &format!("from={}&time_zone=Europe/Paris", ahead(5))).await;
    for (start, _) in free.iter().take(3) {
        let (a, b) = tokio::join!(book(&app, start, "Ann", "ann@example.com"), book(&app, start, "Ben", "ben@example.com"));
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "one booking per slot");
    }
    let calendar = olga.list("olga", &format!("from={}&to={}", free[0].0, free[3].0)).await;
    assert_eq!(calendar["events"].as_array().unwrap().len(), 3, "three events, none twice");
    // One address may hold a few upcoming bookings on a page, not the whole page.
    for (start, _) in &free[3..6] {
        assert_eq!(book(&app, start, "Sam", "sam@example.com").await.status(), 201);
    }
    assert_error(book(&app, &free[6].0, "Sam", "sam@example.com").await, 409, "too_many_bookings", Some("email")).await;
    app.stop().await;
}

both_backends!(two_visitors_racing_for_one_slot_get_one_booking);

#[tokio::test]
async fn bookings_are_limited_per_address_and_settings_checked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let olga = Client::new(&app, "olga").await;
    let bad = json!({"enabled": true, "title": "x", "hours": {"MO": "17:00-09:00"}, "time_zone": "Europe/Paris", "slot_minutes": 60,
        "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 0, "horizon_days": 30});
    assert_error(olga.call(Method::PUT, "/api/v1/me/booking-page", Some(bad.clone())).await, 400, "invalid_field", Some("hours.MO")).await;
    let mut slot = bad.clone();
    slot["hours"] = json!({"MO": "09:00-17:00"});
    slot["slot_minutes"] = json!(1);
    assert_error(olga.call(Method::PUT, "/api/v1/me/booking-page", Some(slot)).await, 400, "invalid_field", Some("slot_minutes")).await;
    // The settings form's numbers too: a word where a number goes is named, not a decoding error.
    let form = "title=x&hours_mo=09%3A00-17%3A00&slot_minutes=30&buffer_before_minutes=0&buffer_after_minutes=soon&min_notice_minutes=0&horizon_days=30";
    let res = app.client.post(app.url("/_fn/settings_save_booking")).bearer_auth(&olga.token)
        .header("content-type", "application/x-www-form-urlencoded").body(form).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let err: serde_json::Value = res.json().await.unwrap();
    assert_eq!((err["code"].as_str(), err["field"].as_str()), (Some("invalid_field"), Some("buffer_after_minutes")), "{err}");
    open_page(&olga, "08:00-20:00").await;
    let free = slots(&app, &format!("from={}&time_zone=Europe/Paris", ahead(3))).await;
    let mut statuses = Vec::new();
    for (n, (start, _)) in free.iter().take(crate::booking::LIMIT + 1).enumerate() {
        statuses.push(book(&app, start, "Flo", &format!("flo{n}@example.com")).await.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), crate::booking::LIMIT);
    assert_eq!(statuses.last(), Some(&429), "the next one from the same address waits");
    app.stop().await;
}

/// The default `SB_BOOKING_RATE_PER_MIN`.
pub const LIMIT: usize = 10;

//! Subscribed calendars and `.ics` imports over the REST API, against a real feed server
//! on loopback: a feed's events (a series expanded, a free event kept free) shown to
//! their owner only and counted as busy on the booking page; a refresh that asks with the
//! feed's `ETag` and takes a 304 as "unchanged"; a changed feed replacing the events; a
//! broken feed keeping the last good ones and saying why; fetches refused where webhooks
//! may not go (private addresses in any spelling, names resolving there, redirects
//! there; the allow-list for admins only), too big (declared or streamed) or too slow;
//! the address sealed at rest; "Refresh" at most every 30 s; uploads and their limits; an
//! import that adds each event once however often it is repeated.

use crate::scheduler::Client;
use crate::support::{assert_error, Backend, TestApp};
use app::scheduler::settings::SchedulerSettings;
use app::scheduler::store::{subscribed_event, subscription};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A calendar server: `/cal.ics` answers the current body with its ETag, or 304 to a
/// request that names it; `/big.ics` is too big, `/slow.ics` too slow, `/elsewhere`
/// redirects to the cloud metadata address.
struct FeedServer {
    base: String,
    state: Arc<Mutex<FeedState>>,
}

struct FeedState {
    body: String,
    etag: String,
    /// The `If-None-Match` of each request to `/cal.ics`.
    seen: Vec<Option<String>>,
}

async fn serve_feed(State(state): State<Arc<Mutex<FeedState>>>, headers: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    let asked = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    s.seen.push(asked.clone());
    if asked.as_deref() == Some(s.etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([(header::ETAG, s.etag.clone()), (header::CONTENT_TYPE, "text/calendar".to_owned())], s.body.clone()).into_response()
}

impl FeedServer {
    async fn start(body: String) -> Self {
        use axum::routing::get;
        let state = Arc::new(Mutex::new(FeedState { body, etag: "\"v1\"".into(), seen: Vec::new() }));
        let app = axum::Router::new()
            .route("/cal.ics", get(serve_feed))
            .route("/big.ics", get(|| async { "BEGIN:VCALENDAR\r\n".repeat(10_000) }))
            // No length declared: only counting the bytes as they come catches it.
            .route("/chunked.ics", get(|| async {
                let chunks = (0..100).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from("X".repeat(1024))));
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }))
            .route("/slow.ics", get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
            }))
            .route("/elsewhere", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "http://169.254.169.254/latest/meta-data")]) }))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn set(&self, body: String, etag: &str) {
        let mut s = self.state.lock().unwrap();
        s.body = body;
        s.etag = etag.to_owned();
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().seen.clone()
    }
}

/// A day a week ahead (`YYYYMMDD` for the feed, `YYYY-MM-DD` for the pages).
fn next_week() -> (String, String) {
    let day = chrono::Utc::now().date_naive() + chrono::Duration::days(7);
    (day.format("%Y%m%d").to_string(), day.format("%Y-%m-%d").to_string())
}

fn calendar(events: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n")
}

/// On `day`: "Offsite" 10–11 UTC, "Reminder" 12–13 (free), and "Team sync" 14–15 weekly,
/// three times.
fn team_feed(day: &str) -> String {
    calendar(&format!(
        "BEGIN:VEVENT\r\nUID:offsite\r\nSUMMARY:Offsite\r\nDTSTART:{day}T100000Z\r\nDTEND:{day}T110000Z\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:reminder\r\nSUMMARY:Reminder\r\nDTSTART:{day}T120000Z\r\nDTEND:{day}T130000Z\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:sync\r\nSUMMARY:Team sync\r\nDTSTART:{day}T140000Z\r\nDTEND:{day}T150000Z\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n"
    ))
}

/// What the calendar page shows `who` of `user`'s week of `date`: (title, subscribed
/// calendar) of each event.
async fn week(who: &Client<'_>, user: &str, date: &str) -> Vec<(String, Option<String>)> {
    let res = who
        .app
        .client
        .post(who.app.url("/_fn/calendar_page"))
        .bearer_auth(&who.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&view=week&date={date}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["events"].as_array().unwrap().iter().map(|e| (e["title"].as_str().unwrap().to_owned(), e["calendar"].as_str().map(str::to_owned))).collect()
}

async fn subscriptions(who: &Client<'_>) -> Vec<Value> {
    let res = who.call(Method::GET, "/api/v1/me/calendar-subscriptions", None).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The ids of a subscription's stored occurrences.
async fn stored_rows(app: &TestApp, id: i64) -> Vec<i64> {
    let rows = subscribed_event::Entity::find().filter(subscribed_event::Column::SubscriptionId.eq(id)).all(&app.state.db.conn).await.unwrap();
    rows.iter().map(|e| e.id).collect()
}

/// Makes every subscription due and runs the refresh job once.
async fn refresh_all(app: &TestApp) {
    subscription::Entity::update_many()
        .col_expr(subscription::Column::RefreshAt, Expr::value(0i64))
        .filter(subscription::Column::Kind.eq(app::scheduler::domain::SubscriptionKind::Url))
        .exec(&app.state.db.conn)
        .await
        .unwrap();
    app::scheduler::subscriptions::refresh_due(&app.state).await.unwrap();
}

fn allow_loopback(s: &mut app::platform::settings::Settings) {
    let scheduler = s.part_mut::<SchedulerSettings>();
    scheduler.allowed_targets = vec!["127.0.0.1".into()];
    scheduler.feed_max_bytes = 64 << 10;
    scheduler.feed_timeout = Duration::from_secs(1);
}

async fn a_feed_is_shown_refreshed_conditionally_and_kept_when_broken(backend: Backend) {
    let app = TestApp::spawn_quiet(backend, allow_loopback).await;
    let (day, date) = next_week();
    let feed = FeedServer::start(team_feed(&day)).await;
    let ada = Client::new(&app, "ada").await;
    let bob = Client::new(&app, "bob").await;

    let res = ada.call(Method::POST, "/api/v1/me/calendar-subscriptions", Some(json!({"name": "Team", "url": feed.url("/cal.ics")}))).await;
    assert_eq!(res.status(), 201);
    let sub: Value = res.json().await.unwrap();
    assert_eq!((sub["event_count"].as_i64(), sub["last_error"].as_str(), sub["source"].as_str()), (Some(5), None, Some("127.0.0.1")), "{sub}");
    assert!(!sub.to_string().contains("/cal.ics"), "the address itself is never shown again: {sub}");
    assert_eq!(feed.seen(), vec![None], "fetched once, at once, without a validator");
    let id = sub["id"].as_i64().unwrap();
    let stored = subscription::Entity::find_by_id(id).one(&app.state.db.conn).await.unwrap().unwrap();
    let sealed = stored.url_sealed.unwrap();
    assert!(!sealed.contains("cal.ics") && !sealed.contains("127.0.0.1"), "the address is sealed at rest: {sealed}");
    // "Refresh" right after a fetch fetches nothing (at most every 30 s).
    let res = ada.call(Method::POST, &format!("/api/v1/me/calendar-subscriptions/{id}/refresh"), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(feed.seen().len(), 1, "no second fetch within 30 s");

    // Shown to its owner beside their own events, read-only; never to anyone else.
    let shown = week(&ada, "ada", &date).await;
    for title in ["Offsite", "Reminder", "Team sync"] {
        assert!(shown.contains(&(title.to_owned(), Some("Team".to_owned()))), "{title} in {shown:?}");
    }
    let next = (chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap() + chrono::Duration::days(7)).format("%Y-%m-%d").to_string();
    assert!(week(&ada, "ada", &next).await.contains(&("Team sync".to_owned(), Some("Team".to_owned()))), "the series repeats");
    assert!(week(&bob, "ada", &date).await.is_empty(), "others see none of it");

    // Busy on the booking page, but for the event marked free.
    let hours: serde_json::Map<String, Value> = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"].iter().map(|d| (d.to_string(), json!("09:00-17:00"))).collect();
    let page = json!({"enabled": true, "title": "Call", "hours": hours, "time_zone": "UTC", "slot_minutes": 60,
        "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 0, "horizon_days": 30});
    assert_eq!(ada.call(Method::PUT, "/api/v1/me/booking-page", Some(page)).await.status(), 200);
    let slots: Value = app.get(&format!("/api/v1/booking/ada?from={date}&time_zone=UTC")).await.json().await.unwrap();
    let labels: Vec<&str> = slots["days"][0]["slots"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["09:00", "11:00", "12:00", "13:00", "15:00", "16:00"], "10:00 and 14:00 are taken; 12:00 is free");

    // Unchanged: asked with the ETag, answered 304, nothing replaced.
    let rows_before = stored_rows(&app, id).await;
    assert_eq!(rows_before.len(), 5);
    refresh_all(&app).await;
    assert_eq!(feed.seen().last().unwrap().as_deref(), Some("\"v1\""));
    assert_eq!(stored_rows(&app, id).await, rows_before, "a 304 keeps the rows as they are");
    // A new answer with the same events (most feeds restamp every answer): nothing rewritten.
    feed.set(team_feed(&day), "\"v1b\"");
    refresh_all(&app).await;
    assert_eq!(stored_rows(&app, id).await, rows_before, "the same occurrences keep their rows");
    // After a week of conditional answers, a feed is read in full (the window moves on).
    subscription::Entity::update_many().col_expr(subscription::Column::ExpandedAt, Expr::value(0i64)).exec(&app.state.db.conn).await.unwrap();
    refresh_all(&app).await;
    assert_eq!(feed.seen().last().unwrap(), &None, "asked without a validator");

    // Changed: the new feed replaces the old one.
    feed.set(calendar(&format!("BEGIN:VEVENT\r\nUID:offsite\r\nSUMMARY:Offsite (moved)\r\nDTSTART:{day}T150000Z\r\nDTEND:{day}T160000Z\r\nEND:VEVENT\r\n")), "\"v2\"");
    refresh_all(&app).await;
    assert_eq!(subscriptions(&ada).await[0]["event_count"], 1);
    assert_eq!(week(&ada, "ada", &date).await, vec![("Offsite (moved)".to_owned(), Some("Team".to_owned()))]);

    // Broken: the last good events stay, and the settings page says why.
    feed.set("<html>Maintenance</html>".into(), "\"v3\"");
    refresh_all(&app).await;
    let listed = subscriptions(&ada).await;
    assert!(listed[0]["last_error"].as_str().unwrap().contains("BEGIN:VCALENDAR"), "{listed:?}");
    assert_eq!(listed[0]["event_count"], 1);
    assert_eq!(week(&ada, "ada", &date).await.len(), 1, "the calendar still shows the last good feed");

    // Only its owner (or an admin) changes it.
    assert_error(bob.call(Method::DELETE, &format!("/api/v1/me/calendar-subscriptions/{id}"), None).await, 403, "forbidden", None).await;
    assert_error(bob.call(Method::POST, &format!("/api/v1/me/calendar-subscriptions/{id}/refresh"), None).await, 403, "forbidden", None).await;
    let res = ada.call(Method::DELETE, &format!("/api/v1/me/calendar-subscriptions/{id}"), None).await;
    assert_eq!(res.status(), 204);
    assert!(week(&ada, "ada", &date).await.is_empty());
    let left = subscribed_event::Entity::find().filter(subscribed_event::Column::SubscriptionId.eq(id)).count(&app.state.db.conn).await.unwrap();
    assert_eq!(left, 0, "its events go with it");
}

both_backends!(a_feed_is_shown_refreshed_conditionally_and_kept_when_broken);

/// The reason a new subscription to `url` gives for not being read (it is made: the
/// address passed the checks that need no network).
async fn fetch_error(who: &Client<'_>, url: &str) -> String {
    let res = who.call(Method::POST, "/api/v1/me/calendar-subscriptions", Some(json!({"name": "x", "url": url}))).await;
    assert_eq!(res.status(), 201, "{url}");
    let sub: Value = res.json().await.unwrap();
    assert_eq!(sub["event_count"], 0);
    sub["last_error"].as_str().unwrap_or_else(|| panic!("{url} was read: {sub}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feeds_are_fetched_only_where_webhooks_may_go_and_within_bounds() {
    let feed = FeedServer::start(team_feed(&next_week().0)).await;
    let port = feed.base.rsplit(':').next().unwrap().to_owned();

    // Without the allow-list: loopback, private and metadata addresses are refused at
    // once (400 on `url`), and a name that resolves to loopback is refused when fetched.
    let closed = TestApp::spawn_quiet(Backend::Sqlite, |_| {}).await;
    let ada = Client::new(&closed, "ada").await;
    let loopback_spellings = [
        feed.url("/cal.ics"),
        format!("http://2130706433:{port}/cal.ics"),
        format!("http://0x7f.1:{port}/cal.ics"),
        format!("http://[::ffff:127.0.0.1]:{port}/cal.ics"),
        format!("webcal://127.0.0.1:{port}/cal.ics"),
        "http://[::1]/cal.ics".into(),
        "http://169.254.169.254/".into(),
        "ftp://example.com/cal.ics".into(),
        "http://user:pw@example.com/".into(),
    ];
    for url in loopback_spellings {
        let res = ada.call(Method::POST, "/api/v1/me/calendar-subscriptions", Some(json!({"name": "x", "url": url}))).await;
        assert_error(res, 400, "invalid_field", Some("url")).await;
    }
    let err = fetch_error(&ada, &format!("http://localhost:{port}/cal.ics")).await;
    assert!(err.contains("resolves only to private, loopback or link-local addresses"), "{err}");
    assert!(!err.contains("/cal.ics"), "errors do not repeat the address: {err}");
    assert!(feed.seen().is_empty(), "nothing reached the feed server");
    let res = ada.call(Method::POST, "/api/v1/me/calendar-subscriptions", Some(json!({"name": "", "url": "https://example.com/x.ics"}))).await;
    assert_error(res, 400, "invalid_field", Some("name")).await;

    // With it: a redirect to a refused address, a feed too big, one too slow.
    let open = TestApp::spawn_quiet(Backend::Sqlite, allow_loopback).await;
    let bea = Client::new(&open, "bea").await; // the first account: an admin
    // The allow-list is the operator's, for admins (as webhook targets are): a member's
    // subscription may not reach what it opens.
    let cem = Client::new(&open, "cem").await;
    let res = cem.call(Method::POST, "/api/v1/me/calendar-subscriptions", Some(json!({"name": "x", "url": feed.url("/cal.ics")}))).await;
    assert_error(res, 400, "invalid_field", Some("url")).await;
    let err = fetch_error(&bea, &feed.url("/elsewhere")).await;
    assert!(err.contains("redirect") && err.contains("169.254.169.254"), "{err}");
    assert!(fetch_error(&bea, &feed.url("/big.ics")).await.contains("larger than 64 KiB"));
    assert!(fetch_error(&bea, &feed.url("/chunked.ics")).await.contains("larger than 64 KiB"));
    assert!(fetch_error(&bea, &feed.url("/slow.ics")).await.contains("no complete answer within 1 s"));
    let err = fetch_error(&bea, &feed.url("/missing.ics")).await;
    assert_eq!(err, "the server answered HTTP 404");
}

async fn uploads_and_imports(backend: Backend) {
    let app = TestApp::spawn_quiet(backend, |s| s.part_mut::<SchedulerSettings>().files_per_hour = 1000).await;
    let ada = Client::new(&app, "ada").await;
    let (day, date) = next_week();
    let upload = |path: &str, body: String| {
        app.client.post(app.url(path)).bearer_auth(&ada.token).header("content-type", "text/calendar").body(body).send()
    };

    // An uploaded file is shown as it is; a file that is not a calendar is refused.
    let res = upload("/api/v1/me/calendar-subscriptions/upload?name=Holidays", team_feed(&day)).await.unwrap();
    assert_eq!(res.status(), 201);
    let sub: Value = res.json().await.unwrap();
    assert_eq!((sub["kind"].as_str(), sub["event_count"].as_i64(), sub["next_refresh"].as_str()), (Some("upload"), Some(5), None));
    assert_eq!(week(&ada, "ada", &date).await.len(), 3);
    let res = upload("/api/v1/me/calendar-subscriptions/upload?name=Bad", "name,start\nx,y\n".into()).await.unwrap();
    let err = assert_error(res, 400, "invalid_field", Some("file")).await;
    assert!(err["error"]["message"].as_str().unwrap().contains("BEGIN:VCALENDAR"));

    // An import: a weekly series of four with the second skipped and the third moved an
    // hour later, a single event, and one with no start (left out, said).
    let file = calendar(&format!(
        "BEGIN:VEVENT\r\nUID:series@elsewhere\r\nSUMMARY:Review\r\nDTSTART;TZID=Europe/Paris:{day}T090000\r\nDTEND;TZID=Europe/Paris:{day}T100000\r\n\
         RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=Europe/Paris:{second}T090000\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:series@elsewhere\r\nRECURRENCE-ID;TZID=Europe/Paris:{third}T090000\r\nSUMMARY:Review (late)\r\n\
         DTSTART;TZID=Europe/Paris:{third}T100000\r\nDTEND;TZID=Europe/Paris:{third}T110000\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:lunch@elsewhere\r\nSUMMARY:Lunch\r\nDTSTART:{day}T120000Z\r\nDTEND:{day}T130000Z\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:broken@elsewhere\r\nSUMMARY:No start\r\nEND:VEVENT\r\n",
        second = shift(&day, 7),
        third = shift(&day, 14),
    ));
    let res = upload("/api/v1/me/calendar-import", file.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!((report["created"].as_i64(), report["already_imported"].as_i64()), (Some(2), Some(0)), "{report}");
    assert!(report["warnings"].as_str().unwrap().contains("\"No start\""), "{report}");
    let from = format!("{date}T00:00:00Z");
    let to = format!("{}T00:00:00Z", (chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap() + chrono::Duration::days(28)).format("%Y-%m-%d"));
    let titles = |page: &Value| -> Vec<(String, String)> {
        page["events"].as_array().unwrap().iter().map(|e| (e["title"].as_str().unwrap().to_owned(), e["start"].as_str().unwrap().to_owned())).collect()
    };
    let listed = titles(&ada.list("ada", &format!("from={from}&to={to}")).await);
    let review: Vec<&String> = listed.iter().filter(|(t, _)| t.starts_with("Review")).map(|(t, _)| t).collect();
    assert_eq!(review, ["Review", "Review (late)", "Review"], "four less the skipped one, the third moved: {listed:?}");
    assert!(listed.iter().any(|(t, _)| t == "Lunch"));
    let paris = app::platform::time::zones::parse_zone("z", "Europe/Paris").unwrap();
    let late = chrono::NaiveDateTime::parse_from_str(&format!("{}T100000", shift(&day, 14)), "%Y%m%dT%H%M%S").unwrap();
    let late = app::platform::time::to_rfc3339(app::platform::time::zones::local_to_utc("z", paris, late).unwrap());
    assert!(listed.contains(&("Review (late)".to_owned(), late.clone())), "10:00 in Paris ({late}): {listed:?}");

    // Again: nothing added twice.
    let again: Value = upload("/api/v1/me/calendar-import", file).await.unwrap().json().await.unwrap();
    assert_eq!((again["created"].as_i64(), again["already_imported"].as_i64()), (Some(0), Some(2)), "{again}");
    assert_eq!(titles(&ada.list("ada", &format!("from={from}&to={to}")).await), listed);
    let res = upload("/api/v1/me/calendar-import", "not a calendar".into()).await.unwrap();
    assert_error(res, 400, "invalid_field", Some("file")).await;

    // A file over 768 KiB is refused, and a calendar shows at most 20 others.
    let res = upload("/api/v1/me/calendar-import", calendar(&" ".repeat(800 << 10))).await.unwrap();
    assert_error(res, 400, "invalid_field", Some("file")).await;
    for n in 1..20 {
        let res = upload(&format!("/api/v1/me/calendar-subscriptions/upload?name=n{n}"), calendar("")).await.unwrap();
        assert_eq!(res.status(), 201, "subscription {}", n + 1);
    }
    let res = upload("/api/v1/me/calendar-subscriptions/upload?name=one-too-many", calendar("")).await.unwrap();
    let err = assert_error(res, 400, "invalid_field", Some("file")).await;
    assert!(err["error"]["message"].as_str().unwrap().contains("at most 20"), "{err}");
}

both_backends!(uploads_and_imports);

/// Thirty adds at once, with none there yet: exactly the per-user limit of them is taken,
/// the rest are refused naming the field (before, on MariaDB, every add counted the
/// others' uncommitted rows as absent and most got in).
async fn the_subscription_limit_holds_under_concurrent_adds(backend: Backend) {
    use app::scheduler::subscriptions::MAX_PER_USER;
    let app = TestApp::spawn_quiet(backend, |s| s.part_mut::<SchedulerSettings>().files_per_hour = 1000).await;
    let ada = Client::new(&app, "ada").await;
    let adds = (0..MAX_PER_USER + 10).map(|n| {
        let request = app.client.post(app.url(&format!("/api/v1/me/calendar-subscriptions/upload?name=c{n}"))).bearer_auth(&ada.token);
        async move { request.header("content-type", "text/calendar").body(calendar("")).send().await.unwrap() }
    });
    let answers = futures::future::join_all(adds).await;
    let taken = answers.iter().filter(|r| r.status() == 201).count() as u64;
    assert_eq!(taken, MAX_PER_USER, "{:?}", answers.iter().map(|r| r.status()).collect::<Vec<_>>());
    for refused in answers.into_iter().filter(|r| r.status() != 201) {
        assert_error(refused, 400, "invalid_field", Some("file")).await;
    }
    assert_eq!(subscriptions(&ada).await.len() as u64, MAX_PER_USER);
}

both_backends!(the_subscription_limit_holds_under_concurrent_adds);

/// `YYYYMMDD` plus `days`.
fn shift(day: &str, days: i64) -> String {
    (chrono::NaiveDate::parse_from_str(day, "%Y%m%d").unwrap() + chrono::Duration::days(days)).format("%Y%m%d").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_are_limited_per_user_and_hour() {
    let app = TestApp::spawn_quiet(Backend::Sqlite, |s| s.part_mut::<SchedulerSettings>().files_per_hour = 2).await;
    let (ada, bob) = (Client::new(&app, "ada").await, Client::new(&app, "bob").await);
    let send = |who: &Client<'_>, path: &str| {
        app.client.post(app.url(path)).bearer_auth(&who.token).header("content-type", "text/calendar").body(calendar("")).send()
    };
    assert_eq!(send(&ada, "/api/v1/me/calendar-subscriptions/upload?name=a").await.unwrap().status(), 201);
    assert_eq!(send(&ada, "/api/v1/me/calendar-import").await.unwrap().status(), 200);
    assert_error(send(&ada, "/api/v1/me/calendar-subscriptions/upload?name=b").await.unwrap(), 429, "rate_limited", None).await;
    assert_eq!(send(&bob, "/api/v1/me/calendar-import").await.unwrap().status(), 200, "one user's files do not count against another's");
}

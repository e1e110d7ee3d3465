//! Recurring events over the REST API: range queries that return each occurrence with its
//! series, across a daylight-saving change; changing and deleting one occurrence, it and
//! the following ones, or all; refusals naming the field; and the iCal feed's series,
//! exceptions and changed occurrences expanded by an independent library
//! (`recurring-ical-events`) into exactly the occurrences the API lists.

use crate::scheduler::Client;
use crate::support::{assert_error, Backend, TestApp};
use app::platform::time::{to_rfc3339, zones};
use reqwest::Method;
use serde_json::{json, Value};

fn starts_and_titles(page: &Value) -> Vec<(String, String)> {
    page["events"].as_array().unwrap().iter().map(|e| (e["start"].as_str().unwrap().to_owned(), e["title"].as_str().unwrap().to_owned())).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// Every page of ada's calendar for `query`, following `next_cursor` to the end.
async fn every_page(c: &Client<'_>, query: &str) -> Vec<Value> {
    let (mut pages, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = c.list("ada", &format!("{query}{cursor}")).await;
        let next = page["next_cursor"].as_str().map(|n| format!("&cursor={n}"));
        pages.push(page);
        match next {
            Some(n) => cursor = n,
            None => return pages,
        }
    }
}

async fn patch(c: &Client<'_>, id: i64, body: Value) -> reqwest::Response {
    c.call(Method::PATCH, &format!("/api/v1/events/{id}"), Some(body)).await
}

const AUTUMN: &str = "from=2026-10-01T00:00:00Z&to=2027-01-01T00:00:00Z";

async fn a_series_is_listed_changed_and_deleted_occurrence_by_occurrence(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = Client::new(&app, "ada").await;
    ada.call(Method::PATCH, "/api/v1/me", Some(json!({"time_zone": "Europe/Paris"}))).await;
    // Thursdays at 09:00 in Paris, six times; summer time ends on Sunday 2026-10-25.
    let sync = ada
        .create("ada", json!({"title": "Team sync", "start": "2026-10-15T09:00:00+02:00", "end": "2026-10-15T10:00:00+02:00", "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=TH;COUNT=6"}))
        .await;
    let sid = sync["id"].as_i64().unwrap();
    assert_eq!((sync["recurrence"].as_str(), sync["series_id"].as_i64()), (Some("FREQ=WEEKLY;COUNT=6;BYDAY=TH"), Some(sid)));
    ada.create("ada", json!({"title": "Dentist", "start": "2026-10-20T12:00:00Z", "end": "2026-10-20T13:00:00Z"})).await;

    let all = ada.list("ada", AUTUMN).await;
    assert_eq!(
        starts_and_titles(&all),
        pairs(&[
            ("2026-10-15T07:00:00.000Z", "Team sync"),
            ("2026-10-20T12:00:00.000Z", "Dentist"),
            ("2026-10-22T07:00:00.000Z", "Team sync"),
            ("2026-10-29T08:00:00.000Z", "Team sync"), // 09:00 local, now an hour later in UTC
            ("2026-11-05T08:00:00.000Z", "Team sync"),
            ("2026-11-12T08:00:00.000Z", "Team sync"),
            ("2026-11-19T08:00:00.000Z", "Team sync"),
        ])
    );
    let third = &all["events"][3];
    assert_eq!((third["series_id"].as_i64(), third["occurrence_start"].as_str(), third["id"].as_i64()), (Some(sid), Some("2026-10-29T08:00:00.000Z"), Some(sid)));
    assert!(all["events"][1]["series_id"].is_null(), "a single event belongs to no series");
    // A range in the middle, and one inside an occurrence, find just those.
    let middle = ada.list("ada", "from=2026-10-28T00:00:00Z&to=2026-11-06T00:00:00Z").await;
    assert_eq!(middle["events"].as_array().unwrap().len(), 2);
    let inside = ada.list("ada", "from=2026-10-29T08:30:00Z&to=2026-10-29T08:45:00Z").await;
    assert_eq!(starts_and_titles(&inside), pairs(&[("2026-10-29T08:00:00.000Z", "Team sync")]));
    // Pages of three run through occurrences and single events alike.
    let paged = every_page(&ada, &format!("{AUTUMN}&limit=3")).await;
    assert_eq!(paged.iter().flat_map(starts_and_titles).collect::<Vec<_>>(), starts_and_titles(&all));

    // This occurrence: moved to Friday and renamed, the series skips its Thursday.
    let moved = patch(&ada, sid, json!({"version": 1, "scope": "this", "occurrence": "2026-10-29T08:00:00.000Z", "title": "Team sync (moved)", "start": "2026-10-30T10:00:00Z", "end": "2026-10-30T11:00:00Z"})).await;
    assert_eq!(moved.status(), 200);
    let moved: Value = moved.json().await.unwrap();
    let moved_id = moved["id"].as_i64().unwrap();
    assert_ne!(moved_id, sid);
    assert_eq!((moved["series_id"].as_i64(), moved["occurrence_start"].as_str()), (Some(sid), Some("2026-10-29T08:00:00.000Z")));
    let stale = patch(&ada, sid, json!({"version": 1, "scope": "this", "occurrence": "2026-11-05T08:00:00.000Z", "title": "lost"})).await;
    assert_error(stale, 409, "version_conflict", Some("version")).await;
    let again = patch(&ada, sid, json!({"version": 2, "scope": "this", "occurrence": "2026-10-29T08:00:00.000Z", "title": "twice"})).await;
    assert_error(again, 409, "changed_on_its_own", Some("occurrence")).await;

    // This and following: from 12 November the series is another one, with the rest of
    // its COUNT.
    let v2 = patch(&ada, sid, json!({"version": 2, "scope": "following", "occurrence": "2026-11-12T08:00:00.000Z", "title": "Team sync v2"})).await;
    assert_eq!(v2.status(), 200);
    let v2: Value = v2.json().await.unwrap();
    let v2_id = v2["id"].as_i64().unwrap();
    assert_ne!(v2_id, sid);
    assert_eq!((v2["recurrence"].as_str(), v2["start"].as_str()), (Some("FREQ=WEEKLY;COUNT=2;BYDAY=TH"), Some("2026-11-12T08:00:00.000Z")));

    // All, expressed on the 22 October occurrence: 09:00 → 10:00 local moves every one,
    // on both sides of the change, and the changed one keeps its place in the series.
    let all_moved = patch(&ada, sid, json!({"version": 3, "scope": "all", "occurrence": "2026-10-22T07:00:00.000Z", "start": "2026-10-22T08:00:00Z", "end": "2026-10-22T09:00:00Z"})).await;
    assert_eq!(all_moved.status(), 200);
    let now = ada.list("ada", AUTUMN).await;
    assert_eq!(
        starts_and_titles(&now),
        pairs(&[
            ("2026-10-15T08:00:00.000Z", "Team sync"),
            ("2026-10-20T12:00:00.000Z", "Dentist"),
            ("2026-10-22T08:00:00.000Z", "Team sync"),
            ("2026-10-30T10:00:00.000Z", "Team sync (moved)"),
            ("2026-11-05T09:00:00.000Z", "Team sync"),
            ("2026-11-12T08:00:00.000Z", "Team sync v2"),
            ("2026-11-19T08:00:00.000Z", "Team sync v2"),
        ])
    );
    assert_eq!(now["events"][3]["occurrence_start"], "2026-10-29T09:00:00.000Z", "the changed occurrence moved with its series");

    // Delete one occurrence, a changed one, the following ones, then the whole series.
    let path = |id: i64, q: &str| format!("/api/v1/events/{id}?{q}");
    assert_eq!(ada.call(Method::DELETE, &path(sid, "version=4&scope=this&occurrence=2026-11-05T09:00:00.000Z"), None).await.status(), 204);
    assert_eq!(ada.call(Method::DELETE, &path(moved_id, ""), None).await.status(), 204);
    let res = ada.call(Method::DELETE, &path(v2_id, "version=1&scope=following&occurrence=2026-11-19T08:00:00.000Z"), None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        starts_and_titles(&ada.list("ada", AUTUMN).await),
        pairs(&[
            ("2026-10-15T08:00:00.000Z", "Team sync"),
            ("2026-10-20T12:00:00.000Z", "Dentist"),
            ("2026-10-22T08:00:00.000Z", "Team sync"),
            ("2026-11-12T08:00:00.000Z", "Team sync v2"),
        ]),
        "the deleted occurrence stays deleted when the row it was changed into goes"
    );
    assert_eq!(ada.call(Method::DELETE, &path(sid, "version=5"), None).await.status(), 204);
    assert_eq!(
        starts_and_titles(&ada.list("ada", AUTUMN).await),
        pairs(&[("2026-10-20T12:00:00.000Z", "Dentist"), ("2026-11-12T08:00:00.000Z", "Team sync v2")])
    );
    app.stop().await;
}

both_backends!(a_series_is_listed_changed_and_deleted_occurrence_by_occurrence);

#[tokio::test]
async fn bad_rules_and_scopes_are_refused_naming_the_field() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = Client::new(&app, "ada").await;
    let base = json!({"title": "x", "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z"});
    for rule in ["FREQ=HOURLY", "FREQ=DAILY;COUNT=5000", "FREQ=WEEKLY;BYDAY=XY", "FREQ=DAILY;UNTIL=20200101", "FREQ=DAILY;BYHOUR=9"] {
        let mut body = base.clone();
        body["recurrence"] = json!(rule);
        let res = ada.call(Method::POST, "/api/v1/users/ada/events", Some(body)).await;
        assert_error(res, 400, "invalid_field", Some("recurrence")).await;
    }
    let daily = ada.create("ada", json!({"title": "daily", "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z", "recurrence": "FREQ=DAILY;COUNT=3"})).await;
    let id = daily["id"].as_i64().unwrap();
    let cases = [
        (json!({"version": 1, "scope": "sometimes", "title": "y"}), "scope"),
        (json!({"version": 1, "scope": "this", "title": "y"}), "occurrence"),
        (json!({"version": 1, "scope": "this", "occurrence": "2030-01-07T09:30:00Z", "title": "y"}), "occurrence"),
        (json!({"version": 1, "scope": "this", "occurrence": "2030-01-10T09:00:00Z", "title": "y"}), "occurrence"),
        (json!({"version": 1, "scope": "this", "occurrence": "yesterday", "title": "y"}), "occurrence"),
        (json!({"version": 1, "scope": "this", "occurrence": "2030-01-08T09:00:00Z", "recurrence": "FREQ=DAILY"}), "recurrence"),
    ];
    for (body, field) in cases {
        assert_error(patch(&ada, id, body.clone()).await, 400, "invalid_field", Some(field)).await;
    }
    let res = ada.call(Method::DELETE, &format!("/api/v1/events/{id}?scope=following&occurrence=2030-02-01T09:00:00Z"), None).await;
    assert_error(res, 400, "invalid_field", Some("occurrence")).await;
    let unchanged: Value = ada.call(Method::GET, &format!("/api/v1/events/{id}"), None).await.json().await.unwrap();
    assert_eq!(unchanged["version"], 1, "nothing was written");
    assert_eq!(ada.list("ada", "from=2030-01-01T00:00:00Z&to=2030-02-01T00:00:00Z").await["events"].as_array().unwrap().len(), 3);
    // A start off the rule moves to its first day, as calendar apps do: a Tuesday start
    // repeating on Mondays starts on the next Monday.
    let mondays = ada.create("ada", json!({"title": "m", "start": "2030-01-08T09:00:00Z", "end": "2030-01-08T10:00:00Z", "recurrence": "FREQ=WEEKLY;BYDAY=MO"})).await;
    assert_eq!(mondays["start"], "2030-01-14T09:00:00.000Z");
    // Moved to the next day as a whole, from its second occurrence: Mondays become Tuesdays.
    let monday_id = mondays["id"].as_i64().unwrap();
    let res = patch(&ada, monday_id, json!({"version": 1, "scope": "all", "occurrence": "2030-01-21T09:00:00Z", "start": "2030-01-22T09:00:00Z", "end": "2030-01-22T10:00:00Z"})).await;
    assert_eq!(res.status(), 200);
    let moved: Value = res.json().await.unwrap();
    assert_eq!((moved["start"].as_str(), moved["recurrence"].as_str()), (Some("2030-01-15T09:00:00.000Z"), Some("FREQ=WEEKLY;BYDAY=TU")));
    // A new rule alone places the start on its first day, as for a new series; a rule that
    // cannot follow a move to another day is refused on `start`.
    let wednesdays: Value = patch(&ada, monday_id, json!({"version": 2, "recurrence": "FREQ=WEEKLY;BYDAY=WE"})).await.json().await.unwrap();
    assert_eq!(wednesdays["start"], "2030-01-16T09:00:00.000Z");
    let the_28th = ada.create("ada", json!({"title": "rent", "start": "2030-01-28T09:00:00Z", "end": "2030-01-28T10:00:00Z", "recurrence": "FREQ=MONTHLY;BYMONTHDAY=28"})).await;
    let res = patch(&ada, the_28th["id"].as_i64().unwrap(), json!({"version": 1, "start": "2030-01-29T09:00:00Z", "end": "2030-01-29T10:00:00Z"})).await;
    assert_error(res, 400, "invalid_field", Some("start")).await;
    // Others see a series as free/busy, without its rule.
    let bob = Client::new(&app, "bob").await;
    let seen = bob.list("ada", "from=2030-01-01T00:00:00Z&to=2030-02-01T00:00:00Z").await;
    assert!(seen["events"].as_array().unwrap().iter().all(|e| e["title"] == "Busy" && e["recurrence"].is_null()));
    assert_error(patch(&bob, id, json!({"version": 1, "scope": "this", "occurrence": "2030-01-08T09:00:00Z", "title": "mine"})).await, 403, "forbidden", None).await;
    app.stop().await;
}

/// The feed's series (timed, across a daylight-saving change; all-day, "the 2nd Tuesday"
/// until a date), a deleted occurrence and a changed one, expanded by the Python library
/// `recurring-ical-events` into the same occurrences the range API lists.
#[tokio::test]
async fn the_feed_expands_to_the_occurrences_the_api_lists() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = Client::new(&app, "ada").await;
    ada.call(Method::PATCH, "/api/v1/me", Some(json!({"time_zone": "Europe/Paris"}))).await;
    let paris = zones::parse_zone("z", "Europe/Paris").unwrap();
    let now = app::platform::time::now_ms();
    let today = zones::to_local(paris, now).date_naive();
    let monday = zones::week_start(today) + chrono::Duration::days(7);
    let at = |date: chrono::NaiveDate, h: u32| zones::local_to_utc("t", paris, date.and_hms_opt(h, 0, 0).unwrap()).unwrap();
    // 30 Mondays at 09:00 Paris time: seven months, so at least one change of the clocks.
    let weekly = ada
        .create("ada", json!({"title": "Weekly sync", "start": to_rfc3339(at(monday, 9)), "end": to_rfc3339(at(monday, 10)), "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=30"}))
        .await;
    let id = weekly["id"].as_i64().unwrap();
    let occurrence = |n: i64| to_rfc3339(at(monday + chrono::Duration::weeks(n), 9));
    let res = ada.call(Method::DELETE, &format!("/api/v1/events/{id}?version=1&scope=this&occurrence={}", occurrence(2)), None).await;
    assert_eq!(res.status(), 204);
    let fifth = at(monday + chrono::Duration::weeks(4), 9);
    let res = patch(&ada, id, json!({"version": 2, "scope": "this", "occurrence": occurrence(4), "title": "Weekly sync (later)", "start": to_rfc3339(fifth + 2 * 3_600_000), "end": to_rfc3339(fifth + 3 * 3_600_000)})).await;
    assert_eq!(res.status(), 200);
    let first_rent = monday + chrono::Duration::days(10);
    let until = (first_rent + chrono::Duration::days(240)).format("%Y%m%d");
    ada.create(
        "ada",
        json!({"title": "Rent", "all_day": true, "start": first_rent.to_string(), "time_zone": "America/New_York", "recurrence": format!("FREQ=MONTHLY;BYDAY=2TU;UNTIL={until}")}),
    )
    .await;
    ada.create("ada", json!({"title": "Dentist", "start": to_rfc3339(at(today + chrono::Duration::days(3), 15)), "end": to_rfc3339(at(today + chrono::Duration::days(3), 16))})).await;

    let (lo, hi) = (to_rfc3339(now - 86_400_000), to_rfc3339(now + 400 * 86_400_000));
    let listed = ada.list("ada", &format!("from={lo}&to={hi}&limit=500")).await;
    let mut expected: Vec<(String, String)> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let start = app::platform::time::parse_rfc3339(e["start"].as_str().unwrap()).unwrap();
            let start = if e["all_day"] == true {
                let zone = zones::parse_zone("z", e["time_zone"].as_str().unwrap()).unwrap();
                zones::to_local(zone, start).date_naive().to_string()
            } else {
                app::platform::time::to_datetime(start).format("%Y-%m-%dT%H:%M:%SZ").to_string()
            };
            (start, e["title"].as_str().unwrap().to_owned())
        })
        .collect();
    expected.sort();
    assert_eq!(expected.iter().filter(|e| e.1.starts_with("Weekly sync")).count(), 29, "30 less the deleted one");
    assert!(expected.iter().filter(|e| e.1 == "Rent").count() >= 7);

    let url: Value = ada.call(Method::GET, "/api/v1/me/ical", None).await.json().await.unwrap();
    let path = url["url"].as_str().unwrap().split_once("/ical/").map(|(_, t)| format!("/ical/{t}")).unwrap();
    let body = app.get(&path).await.text().await.unwrap();
    assert!(body.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Paris"), "the series' zone is described");
    assert_eq!(body.matches("RECURRENCE-ID;TZID=Europe/Paris:").count(), 1, "the changed occurrence");
    assert_eq!(body.matches("EXDATE;TZID=Europe/Paris:").count(), 1, "the deleted one only");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feed.ics"), &body).unwrap();
    let script = r#"
import datetime, json, sys
import recurring_ical_events
from icalendar import Calendar
cal = Calendar.from_ical(open(sys.argv[1], 'rb').read())
lo, hi = (datetime.datetime.fromisoformat(a.replace('Z', '+00:00')) for a in sys.argv[2:4])
def text(v):
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    return v.isoformat()
print(json.dumps([[text(e['DTSTART'].dt), str(e['SUMMARY'])] for e in recurring_ical_events.of(cal).between(lo, hi)]))
"#;
    let python = std::env::var("SB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python).args(["-c", script]).arg(dir.path().join("feed.ics")).args([&lo, &hi]).output().expect("python with recurring_ical_events");
    assert!(out.status.success(), "recurring-ical-events refused the feed: {}", String::from_utf8_lossy(&out.stderr));
    let mut expanded: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    expanded.sort();
    assert_eq!(expanded, expected, "the independent expansion of the feed gives the API's occurrences");
    app.stop().await;
}

/// Pages through twenty years of a daily series: every occurrence once, in order, however
/// far the cursor is from the series' start.
#[tokio::test]
async fn a_long_series_pages_through_every_occurrence() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = Client::new(&app, "ada").await;
    ada.create("ada", json!({"title": "daily", "start": "2000-01-01T09:00:00Z", "end": "2000-01-01T09:30:00Z", "recurrence": "FREQ=DAILY"})).await;
    let pages = every_page(&ada, "from=2010-01-01T00:00:00Z&to=2030-01-01T00:00:00Z&limit=500").await;
    let seen: Vec<String> = pages.iter().flat_map(starts_and_titles).map(|(start, _)| start).collect();
    assert_eq!(seen.len(), 7305, "twenty years of days, in {} pages", pages.len());
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, none twice");
    assert_eq!((seen[0].as_str(), seen[7304].as_str()), ("2010-01-01T09:00:00.000Z", "2029-12-31T09:00:00.000Z"));
    app.stop().await;
}

/// A calendar holds at most `MAX_RUNNING_SERIES` running series, and a series that has
/// ended (which does not count) cannot be made to run again past that: before, a change of
/// the whole series never checked the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ended_series_cannot_be_revived_past_the_running_limit() {
    use app::scheduler::service::MAX_RUNNING_SERIES;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = Client::new(&app, "ada").await;
    let ended = ada.create("ada", json!({"title": "Old", "start": "2020-01-06T09:00:00Z", "end": "2020-01-06T10:00:00Z", "recurrence": "RRULE:FREQ=WEEKLY;COUNT=2"})).await;
    let weekly = |n: u64| json!({"title": format!("S{n}"), "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T10:00:00Z", "recurrence": "RRULE:FREQ=WEEKLY"});
    let mut running = Vec::new();
    for chunk in (0..MAX_RUNNING_SERIES).collect::<Vec<_>>().chunks(25) {
        running.extend(futures::future::join_all(chunk.iter().map(|n| ada.create("ada", weekly(*n)))).await);
    }
    let res = ada.call(Method::POST, "/api/v1/users/ada/events", Some(weekly(MAX_RUNNING_SERIES))).await;
    assert_error(res, 400, "invalid_field", Some("recurrence")).await;

    let res = patch(&ada, ended["id"].as_i64().unwrap(), json!({"version": ended["version"], "recurrence": "RRULE:FREQ=WEEKLY"})).await;
    assert_error(res, 400, "invalid_field", Some("recurrence")).await;
    // A change that keeps a running series running is no new one.
    let res = patch(&ada, running[0]["id"].as_i64().unwrap(), json!({"version": running[0]["version"], "title": "Renamed"})).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    app.stop().await;
}

//! What a hostile or careless client meets: who may call which entry point (the
//! authorization matrix, held against every route, server function, page and operations
//! endpoint the server registers), body size limits on every route, cross-site request
//! forgery, and the webhook intake rate limit.

use crate::support::{assert_error, Backend, TestApp};
use serde_json::{json, Value};
use server::startup::{endpoints, EndpointKind};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

const PASSWORD: &str = "correct horse battery staple";
const METRICS_TOKEN: &str = "matrix-metrics-token";

/// Any 2xx (or a redirect, which is how server functions and pages say "done, go there").
const OK: u16 = 0;
/// Expected status for [anonymous, alice (member, owner of the fixtures), bob (another
/// member), admin].
type Expect = [u16; 4];
const PUBLIC: Expect = [OK, OK, OK, OK];
const MEMBERS: Expect = [401, OK, OK, OK];
const OWNER: Expect = [401, OK, 403, OK];
const ADMIN: Expect = [401, 403, 403, OK];
/// Who may see a fixture's private text, same order.
const SEEN_BY_OWNER: [bool; 4] = [false, true, false, true];
const SEEN_BY_ADMIN: [bool; 4] = [false, false, false, true];

enum Payload {
    None,
    Json(&'static str),
    Csv(&'static str),
    /// A server function's URL-encoded arguments.
    Form(&'static str),
}
use Payload::{Csv, Form, Json, None as Empty};

/// One row of the matrix. Placeholders in `path` and `body` name fixtures: `{alice}`,
/// `{topic}` (admins only publish), `{open_topic}` (members may publish), `{subscriber}`,
/// `{subscription}`, `{delivery}`, `{event}` (alice's, not shared), `{chat}` (from the
/// admin to alice), `{feed}`, `{import}`, `{calendar_subscription}` (alice's); `{new_*}` is
/// a fresh one per request, for calls that consume it; `{fresh}` a fresh name. `private`, when given, is a text that
/// must be in a 2xx answer for exactly the roles marked true (a page or list that
/// answers everyone must still not show what a role may not see).
struct Rule {
    method: &'static str,
    path: &'static str,
    body: Payload,
    expect: Expect,
    private: Option<(&'static str, [bool; 4])>,
}

const fn rule(method: &'static str, path: &'static str, body: Payload, expect: Expect) -> Rule {
    Rule { method, path, body, expect, private: None }
}

const fn hiding(method: &'static str, path: &'static str, body: Payload, expect: Expect, text: &'static str, seen: [bool; 4]) -> Rule {
    Rule { method, path, body, expect, private: Some((text, seen)) }
}

const fn page(path: &'static str) -> Rule {
    rule("GET", path, Empty, PUBLIC)
}

const fn server_fn(name_and_args: &'static str, body: &'static str, expect: Expect) -> Rule {
    rule("POST", name_and_args, Form(body), expect)
}

/// alice's booking page: open around the clock, so every booking finds a slot.
const BOOKING_PAGE: &str = r#"{"enabled": true, "title": "Matrix", "hours": {"MO": "00:00-24:00", "TU": "00:00-24:00", "WE": "00:00-24:00", "TH": "00:00-24:00", "FR": "00:00-24:00", "SA": "00:00-24:00", "SU": "00:00-24:00"}, "time_zone": "UTC", "slot_minutes": 15, "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 0, "horizon_days": 180}"#;

/// A calendar file with one event (uploads and imports).
const MATRIX_ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//matrix//EN\r\nBEGIN:VEVENT\r\nUID:matrix-1\r\nSUMMARY:Imported\r\nDTSTART:20310203T090000Z\r\nDTEND:20310203T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// alice's private event is on 2031-02-01 (see `World::new_event`).
const RULES: &[Rule] = &[
    // ---- REST: accounts
    rule("POST", "/api/v1/auth/signup", Json(r#"{"username": "user{fresh}", "password": "correct horse battery staple"}"#), PUBLIC),
    rule("POST", "/api/v1/auth/tokens", Json(r#"{"username": "carol", "password": "correct horse battery staple"}"#), PUBLIC),
    rule("GET", "/api/v1/me", Empty, MEMBERS),
    rule("PATCH", "/api/v1/me", Json(r#"{"display_name": "Renamed"}"#), MEMBERS),
    rule("POST", "/api/v1/me/password", Json(r#"{"current_password": "correct horse battery staple", "new_password": "correct horse battery staple"}"#), MEMBERS),
    rule("DELETE", "/api/v1/me/sessions", Empty, MEMBERS),
    rule("GET", "/api/v1/me/tokens", Empty, MEMBERS),
    // Tokens are per user: another member's token id is simply not found, admins included.
    rule("DELETE", "/api/v1/me/tokens/{new_token}", Empty, [401, OK, 404, 404]),
    // ---- REST: broker
    rule("GET", "/api/v1/topics", Empty, MEMBERS),
    rule("POST", "/api/v1/topics", Json(r#"{"name": "matrix:{fresh}"}"#), ADMIN),
    rule("GET", "/api/v1/topics/{topic}", Empty, MEMBERS),
    rule("PATCH", "/api/v1/topics/{topic}", Json(r#"{"description": "changed"}"#), ADMIN),
    rule("DELETE", "/api/v1/topics/{new_topic}", Empty, ADMIN),
    rule("POST", "/api/v1/topics/{topic}/messages", Json(r#"{"payload": {"n": 1}}"#), ADMIN),
    rule("POST", "/api/v1/topics/{open_topic}/messages", Json(r#"{"payload": {"n": 2}}"#), MEMBERS),
    rule("GET", "/api/v1/subscribers", Empty, ADMIN),
    rule("POST", "/api/v1/subscribers", Json(r#"{"name": "{fresh}", "url": "http://127.0.0.1:9/hook"}"#), ADMIN),
    rule("GET", "/api/v1/subscribers/{subscriber}", Empty, ADMIN),
    rule("PATCH", "/api/v1/subscribers/{subscriber}", Json(r#"{"name": "renamed"}"#), ADMIN),
    rule("DELETE", "/api/v1/subscribers/{new_subscriber}", Empty, ADMIN),
    rule("GET", "/api/v1/subscribers/{subscriber}/secret", Empty, ADMIN),
    rule("POST", "/api/v1/subscribers/{subscriber}/secret/rotate", Empty, ADMIN),
    rule("GET", "/api/v1/subscribers/{subscriber}/subscriptions", Empty, ADMIN),
    rule("POST", "/api/v1/subscribers/{new_subscriber}/subscriptions", Json(r#"{"topic": "{open_topic}"}"#), ADMIN),
    rule("PATCH", "/api/v1/subscriptions/{subscription}", Json(r#"{"max_attempts": 5}"#), ADMIN),
    rule("DELETE", "/api/v1/subscriptions/{new_subscription}", Empty, ADMIN),
    rule("POST", "/api/v1/subscriptions/{subscription}/pause", Empty, ADMIN),
    rule("POST", "/api/v1/subscriptions/{subscription}/resume", Empty, ADMIN),
    rule("GET", "/api/v1/subscribers/{subscriber}/deliveries", Empty, ADMIN),
    rule("GET", "/api/v1/deliveries/{delivery}/attempts", Empty, ADMIN),
    rule("POST", "/api/v1/deliveries/{new_delivery}/skip", Empty, ADMIN),
    rule("POST", "/api/v1/deliveries/{new_delivery}/retry", Empty, ADMIN),
    rule("POST", "/api/v1/subscribers/{subscriber}/replay", Json(r#"{"since": "2020-01-01T00:00:00Z"}"#), ADMIN),
    rule("GET", "/api/v1/subscribers/{subscriber}/events", Empty, ADMIN),
    // ---- REST: chat, at the root (the original contract) and under /api/v1
    rule("POST", "/chat", Json(r#"{"username": "alice", "text": "hello"}"#), MEMBERS),
    hiding("GET", "/chat/{chat}", Empty, OWNER, "for alice", SEEN_BY_OWNER),
    rule("GET", "/chats/{alice}", Empty, OWNER),
    rule("POST", "/api/v1/chat", Json(r#"{"username": "alice", "text": "hello"}"#), MEMBERS),
    hiding("GET", "/api/v1/chat/{chat}", Empty, OWNER, "for alice", SEEN_BY_OWNER),
    rule("GET", "/api/v1/chats/{alice}", Empty, OWNER),
    rule("GET", "/api/v1/me/chat/events", Empty, MEMBERS),
    // ---- REST: meetings (intake trusts only Calendly's signature, never a user's credentials)
    rule("POST", "/webhooks/calendly", Json(r#"{"event": "invitee.created"}"#), [401, 401, 401, 401]),
    // The demo's receiver answers only deliveries signed for its own subscriber, and only
    // when the demo is on (it is off here).
    rule("POST", "/webhooks/demo-receiver/{subscriber}", Json(r#"{"demo": true}"#), [404, 404, 404, 404]),
    rule("GET", "/api/v1/meetings", Empty, MEMBERS),
    rule("GET", "/api/v1/meetings/events", Empty, MEMBERS),
    // ---- REST: scheduler (alice's calendar is not shared, so bob sees only when she is busy)
    rule("GET", "/api/v1/users/{alice}", Empty, MEMBERS),
    hiding("GET", "/api/v1/users/{alice}/events?from=2031-01-01T00:00:00Z&to=2031-03-01T00:00:00Z", Empty, MEMBERS, "private", SEEN_BY_OWNER),
    rule("POST", "/api/v1/users/{alice}/events", Json(r#"{"title": "t", "start": "2031-01-01T09:00:00Z", "end": "2031-01-01T10:00:00Z"}"#), OWNER),
    hiding("GET", "/api/v1/events/{event}", Empty, MEMBERS, "private", SEEN_BY_OWNER),
    rule("PATCH", "/api/v1/events/{new_event}", Json(r#"{"version": 1, "title": "moved"}"#), OWNER),
    rule("DELETE", "/api/v1/events/{new_event}", Empty, OWNER),
    rule("GET", "/api/v1/events/{event}/ics", Empty, OWNER),
    rule("GET", "/api/v1/me/ical", Empty, MEMBERS),
    rule("POST", "/api/v1/me/ical/rotate", Empty, MEMBERS),
    // The feed's secret address is its credential (calendar apps send no other).
    rule("GET", "/ical/{feed}", Empty, PUBLIC),
    rule("GET", "/api/v1/calendar/events?user=alice", Empty, MEMBERS),
    // ---- REST: booking pages (anyone books; a cancel link's secret is its credential)
    rule("GET", "/api/v1/me/booking-page", Empty, MEMBERS),
    rule("PUT", "/api/v1/me/booking-page", Json(BOOKING_PAGE), MEMBERS),
    rule("GET", "/api/v1/booking/{alice}", Empty, PUBLIC),
    rule("POST", "/api/v1/booking/{alice}", Json(r#"{"start": "{new_slot}", "name": "Visitor", "email": "v{fresh}@example.com"}"#), PUBLIC),
    rule("DELETE", "/api/v1/bookings/{new_booking}", Empty, PUBLIC),
    // ---- REST: subscribed calendars and imports (each member their own; admins manage any)
    hiding("GET", "/api/v1/me/calendar-subscriptions", Empty, MEMBERS, "matrix-calendar", [false, true, false, false]),
    rule("POST", "/api/v1/me/calendar-subscriptions", Json(r#"{"name": "c{fresh}", "url": "https://calendar.example.invalid/cal.ics"}"#), MEMBERS),
    rule("POST", "/api/v1/me/calendar-subscriptions/upload?name=u{fresh}", Csv(MATRIX_ICS), MEMBERS),
    rule("DELETE", "/api/v1/me/calendar-subscriptions/{new_calendar_subscription}", Empty, OWNER),
    rule("POST", "/api/v1/me/calendar-subscriptions/{calendar_subscription}/refresh", Empty, OWNER),
    rule("POST", "/api/v1/me/calendar-import", Csv(MATRIX_ICS), MEMBERS),
    // ---- REST: wages (every member reads, admins import)
    rule("GET", "/api/v1/wages", Empty, MEMBERS),
    rule("GET", "/api/v1/wages/stats", Empty, MEMBERS),
    rule("GET", "/api/v1/wages/export.csv", Empty, MEMBERS),
    rule("POST", "/api/v1/wages/imports", Csv("CASE_NUMBER,WAGE_RATE_OF_PAY_FROM\n"), ADMIN),
    rule("GET", "/api/v1/wages/imports", Empty, ADMIN),
    rule("GET", "/api/v1/wages/imports/{import}", Empty, ADMIN),
    rule("GET", "/api/v1/wages/imports/events", Empty, ADMIN),
    // ---- operations (/metrics wants SB_METRICS_TOKEN, which no user token is)
    rule("GET", "/api/openapi.json", Empty, PUBLIC),
    rule("GET", "/healthz", Empty, PUBLIC),
    rule("GET", "/readyz", Empty, PUBLIC),
    rule("GET", "/metrics", Empty, [401, 401, 401, 401]),
    // Any page load reports its timing; the route, not the path, is kept.
    rule("POST", "/beacon", Json(r#"{"path":"/","ttfb_ms":1,"dom_ready_ms":2,"hydrated_ms":3}"#), PUBLIC),
    // ---- server functions (the pages' calls; the same services as the REST routes)
    server_fn("/_fn/current_viewer", "", PUBLIC),
    server_fn("/_fn/log_in", "username=carol&password=correct+horse+battery+staple", PUBLIC),
    server_fn("/_fn/sign_up", "username=user{fresh}&password=correct+horse+battery+staple", PUBLIC),
    server_fn("/_fn/log_out", "", PUBLIC),
    server_fn("/_fn/my_tokens", "", MEMBERS),
    // Tokens are minted by a browser session that gives the password again, never by a token.
    server_fn("/_fn/create_my_token", "name=t{fresh}&password=correct+horse+battery+staple", [401, 403, 403, 403]),
    server_fn("/_fn/revoke_my_token", "id={new_token}", [401, OK, 404, 404]),
    server_fn("/_fn/change_my_password", "current_password=correct+horse+battery+staple&new_password=correct+horse+battery+staple", MEMBERS),
    server_fn("/_fn/sign_out_everywhere", "", MEMBERS),
    server_fn("/_fn/chat_inbox", "", MEMBERS),
    server_fn("/_fn/chat_send", "to=alice&text=hi", MEMBERS),
    server_fn("/_fn/chat_read", "", MEMBERS),
    hiding("POST", "/_fn/chat_open", Form("id={chat}"), OWNER, "for alice", SEEN_BY_OWNER),
    hiding("POST", "/_fn/calendar_page", Form("user=alice&view=week&date=2031-02-01"), MEMBERS, "private", SEEN_BY_OWNER),
    // The hole of issue 12: a change is judged by the stored event's owner, whatever
    // `owner` the form claims (empty: "my own calendar").
    server_fn("/_fn/calendar_save", "id={new_event}&version=1&owner=&title=moved&start_local=2031-02-01T09:00&end_local=2031-02-01T10:00", OWNER),
    server_fn("/_fn/calendar_save", "id={new_event}&version=1&owner=bob&title=moved&start_local=2031-02-01T09:00&end_local=2031-02-01T10:00", OWNER),
    server_fn("/_fn/calendar_save", "owner=alice&title=new&start_local=2031-02-02T09:00&end_local=2031-02-02T10:00", OWNER),
    server_fn("/_fn/calendar_delete", "id={new_event}&version=1", OWNER),
    server_fn("/_fn/calendar_move", "id={new_event}&version=1&start_local=2031-02-01T11:00&end_local=2031-02-01T12:00", OWNER),
    server_fn("/_fn/settings_load", "", MEMBERS),
    server_fn("/_fn/settings_save", "display_name=Renamed&time_zone=UTC", MEMBERS),
    server_fn("/_fn/settings_feed", "", MEMBERS),
    server_fn("/_fn/settings_booking", "", MEMBERS),
    server_fn("/_fn/settings_save_booking", "enabled=on&title=Matrix&hours_mo=00%3A00-24%3A00&hours_tu=00%3A00-24%3A00&hours_we=00%3A00-24%3A00&hours_th=00%3A00-24%3A00&hours_fr=00%3A00-24%3A00&hours_sa=00%3A00-24%3A00&hours_su=00%3A00-24%3A00&slot_minutes=15&buffer_before_minutes=0&buffer_after_minutes=0&min_notice_minutes=0&horizon_days=180", MEMBERS),
    server_fn("/_fn/booking_page", "username=alice", PUBLIC),
    server_fn("/_fn/booking_book", "username=alice&start={new_slot}&name=Visitor&email=v{fresh}%40example.com", PUBLIC),
    server_fn("/_fn/booking_cancel", "token={new_booking}", PUBLIC),
    server_fn("/_fn/settings_rotate_feed", "", MEMBERS),
    hiding("POST", "/_fn/settings_subscriptions", Form(""), MEMBERS, "matrix-calendar", [false, true, false, false]),
    server_fn("/_fn/settings_subscribe", "name=c{fresh}&url=https%3A%2F%2Fcalendar.example.invalid%2Fcal.ics", MEMBERS),
    server_fn("/_fn/settings_unsubscribe", "id={new_calendar_subscription}", OWNER),
    server_fn("/_fn/settings_refresh_subscription", "id={calendar_subscription}", OWNER),
    server_fn("/_fn/meetings_list", "", MEMBERS),
    server_fn("/_fn/wages_view", "query=", MEMBERS),
    server_fn("/_fn/wages_imports", "", ADMIN),
    hiding("POST", "/_fn/system_status", Form(""), PUBLIC, "{objects_dir}", SEEN_BY_ADMIN),
    hiding("POST", "/_fn/broker_overview", Form(""), ADMIN, "matrix:closed", SEEN_BY_ADMIN),
    server_fn("/_fn/broker_create_topic", "name=matrix:{fresh}&description=d", ADMIN),
    server_fn("/_fn/broker_publish", "topic={topic}&payload=%7B%22n%22%3A3%7D", ADMIN),
    server_fn("/_fn/broker_send_test", "topic={topic}", ADMIN),
    // Test bookings exist only on the embedded run's development key (off here).
    server_fn("/_fn/meetings_test_booking", "", [401, 404, 404, 404]),
    server_fn("/_fn/system_view", "", ADMIN),
    server_fn("/_fn/broker_create_subscriber", "name={fresh}&url=http%3A%2F%2F127.0.0.1%3A9%2Fhook", ADMIN),
    server_fn("/_fn/broker_subscriber", "id={subscriber}", ADMIN),
    server_fn("/_fn/broker_reveal_secret", "id={subscriber}", ADMIN),
    server_fn("/_fn/broker_rotate_secret", "id={subscriber}", ADMIN),
    server_fn("/_fn/broker_subscribe", "subscriber_id={new_subscriber}&topic={open_topic}&policy=block", ADMIN),
    server_fn("/_fn/broker_set_paused", "subscription_id={subscription}&paused=true", ADMIN),
    server_fn("/_fn/broker_unsubscribe", "subscription_id={new_subscription}", ADMIN),
    server_fn("/_fn/broker_delivery_action", "delivery_id={new_delivery}&action=skip", ADMIN),
    server_fn("/_fn/broker_attempts", "delivery_id={delivery}", ADMIN),
    // ---- pages: rendered for everyone; what they show comes from the server functions
    page("/"),
    page("/login"),
    page("/signup"),
    page("/account"),
    hiding("GET", "/calendar?user=alice&date=2031-02-01", Empty, PUBLIC, "private", SEEN_BY_OWNER),
    page("/settings"),
    page("/book/{alice}"),
    page("/book/cancel/{new_booking}"),
    page("/meetings"),
    page("/inbox"),
    hiding("GET", "/inbox/message?id={chat}", Empty, PUBLIC, "for alice", SEEN_BY_OWNER),
    page("/wages"),
    page("/system"),
    hiding("GET", "/broker", Empty, PUBLIC, "matrix:closed", SEEN_BY_ADMIN),
    // (Its name is renamed by a PATCH above; its endpoint stays.)
    hiding("GET", "/broker/subscribers/{subscriber}", Empty, PUBLIC, "127.0.0.1:9/hook", SEEN_BY_ADMIN),
];

/// The app with three accounts and the fixtures the rules name.
struct World {
    app: TestApp,
    http: reqwest::Client,
    /// Bearer tokens of alice, bob and the admin.
    tokens: [String; 3],
    fixed: HashMap<&'static str, String>,
    counter: AtomicUsize,
}

impl World {
    async fn new() -> Self {
        // No job runner, no dispatcher: nothing but the requests changes the database.
        let app = TestApp::spawn_quiet(Backend::Sqlite, |s| {
            s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()];
            s.metrics_token = Some(METRICS_TOKEN.into());
            crate::meetings::meetings_app_settings(s);
            let scheduler = s.part_mut::<app::scheduler::settings::SchedulerSettings>();
            scheduler.booking_rate_per_min = 100_000;
            // Feeds on `.invalid` names (which never resolve) fail at once: a subscription is
            // made, its fetch fails.
            scheduler.files_per_hour = 100_000;
        })
        .await;
        let admin = app.user_with_token("root").await; // the first account is the admin
        let alice = app.user_with_token("alice").await;
        let bob = app.user_with_token("bob").await;
        let res = app.post_json("/api/v1/auth/signup", &json!({"username": "carol", "password": PASSWORD})).await;
        assert_eq!(res.status(), 201);
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut world = Self { app, http, tokens: [alice, bob, admin], fixed: HashMap::new(), counter: AtomicUsize::new(0) };
        world.fixtures().await;
        world
    }

    fn fresh(&self) -> String {
        format!("m{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// A call that must succeed, as alice (0) or the admin (2).
    async fn ok(&self, who: usize, method: &str, path: &str, body: Value) -> Value {
        let res = self.send(Some(who), method, path, &Payload::None, Some(body)).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "fixture {method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn send(&self, who: Option<usize>, method: &str, path: &str, payload: &Payload, body: Option<Value>) -> reqwest::Response {
        let mut req = self.http.request(method.parse().unwrap(), self.app.url(path));
        if let Some(who) = who {
            req = req.bearer_auth(&self.tokens[who]);
        }
        req = match (payload, body) {
            (Payload::Form(_), Some(Value::String(form))) => req.header("content-type", "application/x-www-form-urlencoded").body(form),
            (_, Some(body)) => req.json(&body),
            (Payload::Csv(csv), None) => req.header("content-type", "text/csv").body(*csv),
            _ => req,
        };
        req.send().await.expect("request")
    }

    async fn fixtures(&mut self) {
        let topic = self.ok(2, "POST", "/api/v1/topics", json!({"name": "matrix:closed"})).await;
        let open = self.ok(2, "POST", "/api/v1/topics", json!({"name": "matrix:open", "members_may_publish": true})).await;
        let (subscriber, subscription, delivery) = self.subscribed_delivery("matrix:closed", "matrix-subscriber").await;
        let event = self.new_event().await;
        self.ok(0, "PUT", "/api/v1/me/booking-page", serde_json::from_str(BOOKING_PAGE).unwrap()).await;
        let chat = self.ok(2, "POST", "/chat", json!({"username": "alice", "text": "for alice"})).await;
        let csv = Payload::Csv("CASE_NUMBER\n");
        let res = self.send(Some(2), "POST", "/api/v1/wages/imports", &csv, None).await;
        assert_eq!(res.status(), 202);
        let import = res.json::<Value>().await.unwrap();
        let calendar = self.new_calendar_subscription("matrix-calendar").await;
        let id = |v: &Value| v["id"].to_string();
        self.fixed = HashMap::from([
            ("alice", "alice".to_owned()),
            ("topic", topic["name"].as_str().unwrap().to_owned()),
            ("open_topic", open["name"].as_str().unwrap().to_owned()),
            ("subscriber", subscriber),
            ("subscription", subscription),
            ("delivery", delivery),
            ("event", event),
            ("chat", id(&chat)),
            ("import", id(&import)),
            ("calendar_subscription", calendar),
            ("objects_dir", self.app.objects_dir().display().to_string()),
        ]);
    }

    /// A new subscriber on `topic` and one message published to it: (subscriber,
    /// subscription, delivery) ids. The endpoint refuses connections, and no dispatcher
    /// runs, so the delivery stays pending.
    async fn subscribed_delivery(&self, topic: &str, name: &str) -> (String, String, String) {
        let sub = self.ok(2, "POST", "/api/v1/subscribers", json!({"name": name, "url": "http://127.0.0.1:9/hook"})).await;
        let sid = sub["id"].to_string();
        let subscription = self.ok(2, "POST", &format!("/api/v1/subscribers/{sid}/subscriptions"), json!({"topic": topic})).await;
        self.ok(2, "POST", &format!("/api/v1/topics/{topic}/messages"), json!({"payload": {"fixture": true}})).await;
        // No background work runs here: sequence the message so its delivery exists.
        app::broker::service::Sequencer::new(self.app.state.db.clone()).run_once().await.expect("sequencing");
        let deliveries = self.ok(2, "GET", &format!("/api/v1/subscribers/{sid}/deliveries"), Value::Null).await;
        let delivery = deliveries.as_array().and_then(|d| d.last()).map(|d| d["id"].to_string()).expect("a delivery");
        (sid, subscription["id"].to_string(), delivery)
    }

    /// A calendar subscription of alice's, on an address that never resolves.
    async fn new_calendar_subscription(&self, name: &str) -> String {
        self.ok(0, "POST", "/api/v1/me/calendar-subscriptions", json!({"name": name, "url": "https://calendar.example.invalid/cal.ics"})).await["id"].to_string()
    }

    async fn new_event(&self) -> String {
        let body = json!({"title": "private", "start": "2031-02-01T09:00:00Z", "end": "2031-02-01T10:00:00Z"});
        self.ok(0, "POST", "/api/v1/users/alice/events", body).await["id"].to_string()
    }

    /// The value of placeholder `name`, creating a fresh fixture where it says `new_`.
    async fn resolve(&self, name: &str) -> String {
        match name {
            "fresh" => self.fresh(),
            "new_topic" => {
                let name = format!("matrix:{}", self.fresh());
                self.ok(2, "POST", "/api/v1/topics", json!({"name": name})).await;
                name
            }
            "new_subscriber" => {
                self.ok(2, "POST", "/api/v1/subscribers", json!({"name": self.fresh(), "url": "http://127.0.0.1:9/x"})).await["id"].to_string()
            }
            "new_subscription" => {
                let sid = self.resolve_boxed("new_subscriber").await;
                let body = json!({"topic": "matrix:closed"});
                self.ok(2, "POST", &format!("/api/v1/subscribers/{sid}/subscriptions"), body).await["id"].to_string()
            }
            "new_delivery" => {
                let topic = self.resolve_boxed("new_topic").await;
                self.subscribed_delivery(&topic, &self.fresh()).await.2
            }
            "new_event" => self.new_event().await,
            "new_calendar_subscription" => self.new_calendar_subscription(&self.fresh()).await,
            // A free slot of alice's page (each booking takes one); not the first, which
            // may be about to start.
            "new_slot" => {
                let page = self.ok(1, "GET", "/api/v1/booking/alice?time_zone=UTC", Value::Null).await;
                let slots = page["days"].as_array().unwrap().iter().flat_map(|d| d["slots"].as_array().unwrap().iter());
                slots.map(|s| s["start"].as_str().unwrap().to_owned()).nth(1).expect("a free slot")
            }
            "new_booking" => {
                let start = self.resolve_boxed("new_slot").await;
                let body = json!({"start": start, "name": "Fixture", "email": format!("f{}@example.com", self.fresh())});
                let booked = self.ok(1, "POST", "/api/v1/booking/alice", body).await;
                booked["cancel_url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
            }
            "new_token" => {
                let body = json!({"username": "alice", "password": PASSWORD, "name": self.fresh()});
                self.ok(0, "POST", "/api/v1/auth/tokens", body).await["id"].to_string()
            }
            "feed" => {
                let feed = self.ok(0, "GET", "/api/v1/me/ical", Value::Null).await;
                feed["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
            }
            other => self.fixed.get(other).unwrap_or_else(|| panic!("no fixture {other}")).clone(),
        }
    }

    fn resolve_boxed<'a>(&'a self, name: &'a str) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + 'a>> {
        Box::pin(self.resolve(name))
    }

    /// `template` with every `{placeholder}` resolved.
    async fn fill(&self, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else { break };
            let name = &rest[start + 1..start + len];
            out.push_str(&rest[..start]);
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                out.push_str(&self.resolve(name).await);
                rest = &rest[start + len + 1..];
            } else {
                // A JSON brace, not a placeholder: keep it and look inside.
                out.push('{');
                rest = &rest[start + 1..];
            }
        }
        out.push_str(rest);
        out
    }

    /// A digest of everything the app stores: every table's rows (but the token
    /// `last_used_at` stamp, written at most once a minute on use) and every object's
    /// name and size. A refused call must leave it unchanged.
    async fn stored(&self) -> String {
        use sea_orm::{FromQueryResult, JsonValue, Statement};
        let db = &self.app.state.db.conn;
        let backend = db.get_database_backend();
        let query = |sql: String| JsonValue::find_by_statement(Statement::from_string(backend, sql)).all(db);
        let tables = query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name".into()).await.unwrap();
        let mut out = String::new();
        for t in tables {
            let name = t["name"].as_str().unwrap().to_owned();
            let rows = query(format!("SELECT * FROM \"{name}\" ORDER BY rowid")).await.unwrap();
            for mut row in rows {
                if let Some(o) = row.as_object_mut() {
                    o.remove("last_used_at");
                }
                out.push_str(&format!("{name}:{row}\n"));
            }
        }
        let mut objects: Vec<String> = walk(self.app.objects_dir());
        objects.sort();
        out.push_str(&objects.join("\n"));
        out
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![format!("{} {}", path.display(), e.metadata().map(|m| m.len()).unwrap_or(0))]
            }
        })
        .collect()
}

/// `/api/v1/users/{username}` and `/api/v1/users/{alice}?x=1` both become `GET /api/v1/users/{}`.
fn shape(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push_str("{}");
            }
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    // Router patterns written `:id` count the same as `{id}`.
    let out = out.split('/').map(|seg| if seg.starts_with(':') { "{}" } else { seg }).collect::<Vec<_>>().join("/");
    format!("{} {out}", method.to_ascii_uppercase())
}

#[tokio::test]
async fn every_entry_point_answers_each_kind_of_caller_exactly_as_it_should() {
    // Every entry point the server registers: REST routes, server functions, pages and
    // operations endpoints, read from the sources the router is built from.
    let registered: BTreeSet<String> = endpoints().iter().map(|e| shape(&e.method, &e.path)).collect();
    let kinds: BTreeSet<EndpointKind> = endpoints().iter().map(|e| e.kind).collect();
    assert_eq!(kinds.len(), 4, "routes, server functions, pages and operations were all found: {kinds:?}");
    let covered: BTreeSet<String> = RULES.iter().map(|r| shape(r.method, r.path)).collect();
    let missing: Vec<_> = registered.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&registered).collect();
    assert!(missing.is_empty() && stale.is_empty(), "every entry point needs a rule: no rule for {missing:?}; rules for nothing: {stale:?}");

    let world = World::new().await;
    let snapshot = world.stored().await;
    assert!(snapshot.contains("\"username\":\"alice\"") && snapshot.contains("broker_deliveries:"), "the digest sees the rows");
    let mut wrong = Vec::new();
    for rule in RULES {
        for (role, expected) in rule.expect.iter().enumerate() {
            let who = role.checked_sub(1); // 0 = anonymous
            let role_name = ["anonymous", "alice", "bob", "admin"][role];
            let path = world.fill(rule.path).await;
            let body = match rule.body {
                Payload::Json(t) => Some(serde_json::from_str::<Value>(&world.fill(t).await).expect("rule body is JSON")),
                Payload::Form(t) => Some(Value::String(world.fill(t).await)),
                _ => None,
            };
            let before = world.stored().await;
            let res = world.send(who, rule.method, &path, &rule.body, body).await;
            let status = res.status();
            // A live stream never ends: its status and headers are the answer.
            let stream = res.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let text = if stream { String::new() } else { res.text().await.unwrap_or_default() };
            let passed = status.is_success() || status.is_redirection();
            let ok = if *expected == OK { passed } else { status.as_u16() == *expected };
            if !ok {
                wrong.push(format!("{} {path} as {role_name}: {status}, expected {expected} (0 = 2xx): {text:.200}", rule.method));
            }
            if !passed {
                let after = world.stored().await;
                if before != after {
                    wrong.push(format!("{} {path} as {role_name} was refused ({status}) but changed what is stored", rule.method));
                }
            }
            if let (Some((secret, seen)), true) = (rule.private, passed) {
                let secret = world.fill(secret).await;
                if text.contains(&secret) != seen[role] {
                    let verb = if seen[role] { "does not show" } else { "shows" };
                    wrong.push(format!("{} {path} as {role_name} {verb} {secret:?}", rule.method));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
    world.app.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_on_every_route() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.http.max_body_bytes = 4 << 10;
        s.part_mut::<app::wages::settings::WagesSettings>().upload_max_bytes = 1 << 20;
    })
    .await;
    let admin = app.user_with_token("root").await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{username}", "root").replace("{topic}", "a:b").replace("{file}", "x.ics");
        let concrete = concrete.split('/').map(|seg| if seg.starts_with('{') { "1" } else { seg }).collect::<Vec<_>>().join("/");
        for method in ops.as_object().unwrap().keys() {
            let limit = if path == "/api/v1/wages/imports" && method == "post" { 1 << 20 } else { 4 << 10 };
            let res = app
                .client
                .request(method.to_ascii_uppercase().parse().unwrap(), app.url(&concrete))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(vec![b' '; limit + 1])
                .send()
                .await
                .unwrap();
            let body = assert_error(res, 413, "payload_too_large", Some("body")).await;
            assert!(body["error"]["message"].as_str().unwrap().contains("limited to"), "{method} {path}: {body}");
            checked += 1;
        }
    }
    assert!(checked >= 58, "only {checked} operations");
    // A body just under the limit is read and judged on its content.
    let res = app.client.post(app.url("/api/v1/topics")).bearer_auth(&admin).json(&json!({"name": "ok:size"})).send().await.unwrap();
    assert_eq!(res.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn a_state_change_from_another_site_is_refused_and_changes_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Signed in with a session cookie, as in a browser.
    let creds = json!({"username": "root", "password": PASSWORD});
    assert_eq!(app.post_json("/api/v1/auth/signup", &creds).await.status(), 201);
    let res = app.client.post(app.url("/_fn/log_in")).form(&[("username", "root"), ("password", PASSWORD)]).send().await.unwrap();
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    let me = app.get("/api/v1/me").await;
    assert_eq!(me.status(), 200, "the session cookie signs us in");

    let forged = |origin: Option<String>, site: Option<&'static str>| {
        let mut req = app.client.post(app.url("/api/v1/topics")).json(&json!({"name": "forged:topic"}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        req.send()
    };
    assert_error(forged(Some("https://evil.example".into()), None).await.unwrap(), 403, "cross_site_request", None).await;
    assert_error(forged(None, Some("cross-site")).await.unwrap(), 403, "cross_site_request", None).await;
    assert_eq!(app.get("/api/v1/topics/forged:topic").await.status(), 404, "nothing was created");
    // The app's own pages (same origin) still work.
    let res = forged(Some(app.base.clone()), Some("same-origin")).await.unwrap();
    assert_eq!(res.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn a_flood_of_webhooks_from_one_address_is_turned_away() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        crate::meetings::meetings_app_settings(s);
        s.http.webhook_rate_per_min = 3;
    })
    .await;
    for _ in 0..3 {
        let res = app.post_json("/webhooks/calendly", &json!({"event": "invitee.created"})).await;
        assert_eq!(res.status(), 401, "unsigned, but within the rate");
    }
    let res = app.post_json("/webhooks/calendly", &json!({"event": "invitee.created"})).await;
    assert_error(res, 429, "rate_limited", None).await;
    app.stop().await;
}

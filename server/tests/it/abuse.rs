//! What a hostile or careless client meets: who may call which route (the authorization
//! matrix, checked against every operation of the OpenAPI document), body size limits on
//! every route, cross-site request forgery, and the webhook intake rate limit.

use crate::support::{assert_error, Backend, TestApp};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

const PASSWORD: &str = "correct horse battery staple";

/// Any 2xx.
const OK: u16 = 0;
/// Expected status for [anonymous, alice (member, owner of the fixtures), bob (another
/// member), admin].
type Expect = [u16; 4];
const PUBLIC: Expect = [OK, OK, OK, OK];
const MEMBERS: Expect = [401, OK, OK, OK];
const OWNER: Expect = [401, OK, 403, OK];
const ADMIN: Expect = [401, 403, 403, OK];

enum Payload {
    None,
    Json(&'static str),
    Csv(&'static str),
}
use Payload::{Csv, Json, None as Empty};

/// One row of the matrix. Placeholders in `path` and `body` name fixtures: `{alice}`,
/// `{topic}` (admins only publish), `{open_topic}` (members may publish), `{subscriber}`,
/// `{subscription}`, `{delivery}`, `{event}` (alice's, not shared), `{chat}` (from the
/// admin to alice), `{feed}`, `{import}`; `{new_*}` is a fresh one per request, for
/// calls that consume it; `{fresh}` a fresh name.
struct Rule {
    method: &'static str,
    path: &'static str,
    body: Payload,
    expect: Expect,
}

const fn rule(method: &'static str, path: &'static str, body: Payload, expect: Expect) -> Rule {
    Rule { method, path, body, expect }
}

const RULES: &[Rule] = &[
    // accounts
    rule("POST", "/api/v1/auth/signup", Json(r#"{"username": "user{fresh}", "password": "correct horse battery staple"}"#), PUBLIC),
    rule("POST", "/api/v1/auth/tokens", Json(r#"{"username": "carol", "password": "correct horse battery staple"}"#), PUBLIC),
    rule("GET", "/api/v1/me", Empty, MEMBERS),
    rule("PATCH", "/api/v1/me", Json(r#"{"display_name": "Renamed"}"#), MEMBERS),
    rule("GET", "/api/v1/me/tokens", Empty, MEMBERS),
    // Tokens are per user: another member's token id is simply not found, admins included.
    rule("DELETE", "/api/v1/me/tokens/{new_token}", Empty, [401, OK, 404, 404]),
    // broker
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
    rule("POST", "/api/v1/subscribers/{subscriber}/subscriptions", Json(r#"{"topic": "{open_topic}"}"#), ADMIN),
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
    // chat, at the root (the original contract) and under /api/v1
    rule("POST", "/chat", Json(r#"{"username": "alice", "text": "hello"}"#), MEMBERS),
    rule("GET", "/chat/{chat}", Empty, OWNER),
    rule("GET", "/chats/{alice}", Empty, OWNER),
    rule("POST", "/api/v1/chat", Json(r#"{"username": "alice", "text": "hello"}"#), MEMBERS),
    rule("GET", "/api/v1/chat/{chat}", Empty, OWNER),
    rule("GET", "/api/v1/chats/{alice}", Empty, OWNER),
    rule("GET", "/api/v1/me/chat/events", Empty, MEMBERS),
    // meetings: intake trusts only Calendly's signature, never a user's credentials
    rule("POST", "/webhooks/calendly", Json(r#"{"event": "invitee.created"}"#), [401, 401, 401, 401]),
    rule("GET", "/api/v1/meetings", Empty, MEMBERS),
    rule("GET", "/api/v1/meetings/events", Empty, MEMBERS),
    // scheduler: alice's calendar is not shared, so bob sees only when she is busy
    rule("GET", "/api/v1/users/{alice}", Empty, MEMBERS),
    rule("GET", "/api/v1/users/{alice}/events", Empty, MEMBERS),
    rule("POST", "/api/v1/users/{alice}/events", Json(r#"{"title": "t", "start": "2031-01-01T09:00:00Z", "end": "2031-01-01T10:00:00Z"}"#), OWNER),
    rule("GET", "/api/v1/events/{event}", Empty, MEMBERS),
    rule("PATCH", "/api/v1/events/{new_event}", Json(r#"{"version": 1, "title": "moved"}"#), OWNER),
    rule("DELETE", "/api/v1/events/{new_event}", Empty, OWNER),
    rule("GET", "/api/v1/events/{event}/ics", Empty, OWNER),
    rule("GET", "/api/v1/me/ical", Empty, MEMBERS),
    rule("POST", "/api/v1/me/ical/rotate", Empty, MEMBERS),
    // The feed's secret address is its credential (calendar apps send no other).
    rule("GET", "/ical/{feed}", Empty, PUBLIC),
    // wages: every member reads, admins import
    rule("GET", "/api/v1/wages", Empty, MEMBERS),
    rule("GET", "/api/v1/wages/stats", Empty, MEMBERS),
    rule("GET", "/api/v1/wages/export.csv", Empty, MEMBERS),
    rule("POST", "/api/v1/wages/imports", Csv("CASE_NUMBER,WAGE_RATE_OF_PAY_FROM\n"), ADMIN),
    rule("GET", "/api/v1/wages/imports", Empty, ADMIN),
    rule("GET", "/api/v1/wages/imports/{import}", Empty, ADMIN),
    rule("GET", "/api/v1/wages/imports/events", Empty, ADMIN),
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
        let app = TestApp::spawn_with(Backend::Sqlite, |s| {
            s.broker.allowed_targets = vec!["127.0.0.1".into()];
            crate::meetings::meetings_app_settings(s);
        })
        .await;
        let admin = app.user_with_token("root").await; // the first account is the admin
        let alice = app.user_with_token("alice").await;
        let bob = app.user_with_token("bob").await;
        let res = app.post_json("/api/v1/auth/signup", &json!({"username": "carol", "password": PASSWORD})).await;
        assert_eq!(res.status(), 201);
        let mut world = Self { app, http: reqwest::Client::new(), tokens: [alice, bob, admin], fixed: HashMap::new(), counter: AtomicUsize::new(0) };
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

    async fn send(&self, who: Option<usize>, method: &str, path: &str, payload: &Payload, json: Option<Value>) -> reqwest::Response {
        let mut req = self.http.request(method.parse().unwrap(), self.app.url(path));
        if let Some(who) = who {
            req = req.bearer_auth(&self.tokens[who]);
        }
        req = match (payload, json) {
            (_, Some(body)) => req.json(&body),
            (Payload::Csv(csv), None) => req.header("content-type", "text/csv").body(*csv),
            _ => req,
        };
        req.send().await.expect("request")
    }

    async fn fixtures(&mut self) {
        let topic = self.ok(2, "POST", "/api/v1/topics", json!({"name": "matrix:closed"})).await;
        let open = self.ok(2, "POST", "/api/v1/topics", json!({"name": "matrix:open", "members_may_publish": true})).await;
        let (subscriber, subscription, delivery) = self.subscribed_delivery("matrix:closed").await;
        let event = self.new_event().await;
        let chat = self.ok(2, "POST", "/chat", json!({"username": "alice", "text": "for alice"})).await;
        let csv = Payload::Csv("CASE_NUMBER\n");
        let res = self.send(Some(2), "POST", "/api/v1/wages/imports", &csv, None).await;
        assert_eq!(res.status(), 202);
        let import = res.json::<Value>().await.unwrap();
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
        ]);
    }

    /// A new subscriber on `topic` and one message published to it: (subscriber,
    /// subscription, delivery) ids. The endpoint refuses connections, so the delivery
    /// stays pending.
    async fn subscribed_delivery(&self, topic: &str) -> (String, String, String) {
        let sub = self.ok(2, "POST", "/api/v1/subscribers", json!({"name": self.fresh(), "url": "http://127.0.0.1:9/hook"})).await;
        let sid = sub["id"].to_string();
        let subscription = self.ok(2, "POST", &format!("/api/v1/subscribers/{sid}/subscriptions"), json!({"topic": topic})).await;
        self.ok(2, "POST", &format!("/api/v1/topics/{topic}/messages"), json!({"payload": {"fixture": true}})).await;
        let deliveries = self.ok(2, "GET", &format!("/api/v1/subscribers/{sid}/deliveries"), Value::Null).await;
        let delivery = deliveries.as_array().and_then(|d| d.last()).map(|d| d["id"].to_string()).expect("a delivery");
        (sid, subscription["id"].to_string(), delivery)
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
                self.subscribed_delivery(&topic).await.2
            }
            "new_event" => self.new_event().await,
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
}

/// `/api/v1/users/{username}` and `/api/v1/users/{alice}` both become `/api/v1/users/{}`.
fn shape(method: &str, path: &str) -> String {
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
    format!("{} {out}", method.to_ascii_uppercase())
}

#[tokio::test]
async fn every_route_answers_each_kind_of_caller_exactly_as_it_should() {
    let world = World::new().await;
    let doc: Value = world.app.get("/api/openapi.json").await.json().await.unwrap();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| shape(m, path)))
        .collect();
    let covered: BTreeSet<String> = RULES.iter().map(|r| shape(r.method, r.path)).collect();
    assert_eq!(documented, covered, "the matrix must cover exactly the documented operations");

    let mut wrong = Vec::new();
    for rule in RULES {
        for (role, expected) in rule.expect.iter().enumerate() {
            let who = role.checked_sub(1); // 0 = anonymous
            let path = world.fill(rule.path).await;
            let json = match rule.body {
                Payload::Json(t) => Some(serde_json::from_str::<Value>(&world.fill(t).await).expect("rule body is JSON")),
                _ => None,
            };
            let res = world.send(who, rule.method, &path, &rule.body, json).await;
            let status = res.status().as_u16();
            let ok = if *expected == OK { res.status().is_success() } else { status == *expected };
            if !ok {
                let body = res.text().await.unwrap_or_default();
                let role = ["anonymous", "alice", "bob", "admin"][role];
                wrong.push(format!("{} {path} as {role}: {status}, expected {expected} (0 = 2xx): {body:.200}", rule.method));
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
        s.wages.upload_max_bytes = 1 << 20;
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

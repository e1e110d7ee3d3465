//! The holes of issue 12, each held shut by a test that failed before the fix: rights a
//! token may carry, the calendar server function, password floods, the first admin,
//! inbox bricking, unbounded statements, broker retention, LIKE wildcards, spreadsheet
//! formulas, secrets at rest, and the hardening of sessions, tokens and sockets.

use crate::broker::Admin;
use crate::receiver::Receiver;
use crate::support::{assert_error, eventually, new_user_token, Backend, TestApp, TestDb, TEST_SECRET_KEY};
use app::accounts::Caller;
use sea_orm::{ConnectionTrait, FromQueryResult, JsonValue, Statement};
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    let db = &app.state.db.conn;
    JsonValue::find_by_statement(Statement::from_string(db.get_database_backend(), sql.to_owned())).all(db).await.unwrap()
}

/// The first column of the first row, a number.
async fn count(app: &TestApp, sql: &str) -> i64 {
    let db = &app.state.db.conn;
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap().expect("a row");
    row.try_get_by_index::<i64>(0).expect("a number")
}

async fn exec(app: &TestApp, sql: &str) {
    app.state.db.conn.execute_unprepared(sql).await.unwrap();
}

fn bearer(app: &TestApp, token: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    app.client.request(method, app.url(path)).bearer_auth(token)
}

// ---------------------------------------------------------------------------------------
// Confirmed by hand: reading every inbox, overwriting anyone's event

#[tokio::test]
async fn a_members_token_can_never_read_other_inboxes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.user_with_token("root").await;
    let victim = app.user_with_token("victim").await;
    let carol = app.user_with_token("carol").await;
    let res = bearer(&app, &admin, reqwest::Method::POST, "/chat").json(&json!({"username": "victim", "text": "secret", "timeout": 3600})).send().await.unwrap();
    assert_eq!(res.status(), 201);

    // Asking for the scope is refused, naming the field.
    let res = app.post_json("/api/v1/auth/tokens", &json!({"username": "carol", "password": PASSWORD, "scopes": ["chat:read"]})).await;
    assert_error(res, 403, "forbidden", Some("scopes")).await;
    // A token that carries it anyway (issued by an earlier version) gains nothing.
    exec(&app, "UPDATE api_tokens SET scopes = 'chat:read' WHERE user_id = (SELECT id FROM users WHERE username = 'carol')").await;
    assert_error(bearer(&app, &carol, reqwest::Method::GET, "/chats/victim").send().await.unwrap(), 403, "forbidden", None).await;
    assert_error(bearer(&app, &carol, reqwest::Method::GET, "/api/v1/chats/victim").send().await.unwrap(), 403, "forbidden", None).await;
    let id = count(&app, "SELECT id FROM chat_messages").await;
    assert_error(bearer(&app, &carol, reqwest::Method::GET, &format!("/chat/{id}")).send().await.unwrap(), 403, "forbidden", None).await;
    // The victim's message was not expired by those attempts: the victim still reads it.
    let inbox: Value = bearer(&app, &victim, reqwest::Method::GET, "/chats/victim").send().await.unwrap().json().await.unwrap();
    assert_eq!(inbox[0]["text"], "secret");
    // Admins may ask for it (it changes nothing for them).
    let res = app.post_json("/api/v1/auth/tokens", &json!({"username": "root", "password": PASSWORD, "scopes": ["chat:read"]})).await;
    assert_eq!(res.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn the_calendar_form_cannot_change_another_members_event() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let _admin = app.user_with_token("root").await;
    let alice = app.user_with_token("alice").await;
    let bob = app.user_with_token("bob").await;
    let body = json!({"title": "alice's", "start": "2031-02-01T09:00:00Z", "end": "2031-02-01T10:00:00Z"});
    let event: Value = bearer(&app, &alice, reqwest::Method::POST, "/api/v1/users/alice/events").json(&body).send().await.unwrap().json().await.unwrap();
    let id = event["id"].to_string();
    for owner in ["", "bob", "alice"] {
        let form = [("id", id.as_str()), ("version", "1"), ("owner", owner), ("title", "hijacked"), ("start_local", "2031-02-01T09:00"), ("end_local", "2031-02-01T10:00")];
        let res = bearer(&app, &bob, reqwest::Method::POST, "/_fn/calendar_save").form(&form).send().await.unwrap();
        assert_eq!(res.status(), 403, "owner={owner:?}");
        let res = bearer(&app, &bob, reqwest::Method::POST, "/_fn/calendar_delete").form(&[("id", id.as_str()), ("version", "1")]).send().await.unwrap();
        assert_eq!(res.status(), 403);
    }
    let now: Value = bearer(&app, &alice, reqwest::Method::GET, &format!("/api/v1/events/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!((now["title"].as_str(), now["version"].as_i64()), (Some("alice's"), Some(1)), "unchanged");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// Sign-up and log-in floods

#[tokio::test]
async fn sign_ups_and_log_ins_are_limited_per_address_before_any_hashing() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.part_mut::<app::accounts::settings::AuthSettings>().signup_per_ip_per_hour = 3;
        s.part_mut::<app::accounts::settings::AuthSettings>().login_per_ip_per_min = 4;
    })
    .await;
    for i in 0..3 {
        let res = app.post_json("/api/v1/auth/signup", &json!({"username": format!("user{i}"), "password": PASSWORD})).await;
        assert_eq!(res.status(), 201);
    }
    let res = app.post_json("/api/v1/auth/signup", &json!({"username": "user3", "password": PASSWORD})).await;
    assert_error(res, 429, "rate_limited", None).await;
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM users").await, 3, "the refused sign-up created nothing");
    // Rotating usernames does not get around the address's limit (password spraying).
    for i in 0..4 {
        let res = app.post_json("/api/v1/auth/tokens", &json!({"username": format!("user{}", i % 3), "password": "wrong password here"})).await;
        assert_eq!(res.status(), 401);
    }
    let res = app.post_json("/api/v1/auth/tokens", &json!({"username": "someone-else", "password": "wrong password here"})).await;
    assert_error(res, 429, "rate_limited", None).await;
    // The same holds for the page's log-in form.
    let res = app.client.post(app.url("/_fn/log_in")).form(&[("username", "user0"), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(res.status(), 429);
    app.stop().await;
}

#[tokio::test]
async fn a_flood_of_password_checks_gets_busy_answers_instead_of_exhausting_memory() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.part_mut::<app::accounts::settings::AuthSettings>().hash_concurrency = 1;
        s.part_mut::<app::accounts::settings::AuthSettings>().hash_wait = Duration::from_millis(1);
    })
    .await;
    let sign_ups = (0..16).map(|i| {
        let req = app.client.post(app.url("/api/v1/auth/signup")).json(&json!({"username": format!("flood{i}"), "password": PASSWORD}));
        async move { req.send().await.unwrap() }
    });
    let answers = futures::future::join_all(sign_ups).await;
    let created = answers.iter().filter(|r| r.status() == 201).count();
    let busy: Vec<_> = answers.into_iter().filter(|r| r.status() == 503).collect();
    assert!(created >= 1 && !busy.is_empty(), "one hashing slot: some wait their turn, the rest are told to retry ({created} created)");
    for res in busy {
        assert_error(res, 503, "busy", None).await;
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM users").await, created as i64, "a busy answer created nothing");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// The first administrator

async fn racing_sign_ups_make_exactly_one_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sign_ups = (0..8).map(|i| {
        let req = app.client.post(app.url("/api/v1/auth/signup")).json(&json!({"username": format!("racer{i}"), "password": PASSWORD}));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    });
    let users = futures::future::join_all(sign_ups).await;
    let admins = users.iter().filter(|u| u["role"] == "admin").count();
    assert_eq!(admins, 1, "{users:?}");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM users WHERE role = 'admin'").await, 1);
    app.stop().await;
}

both_backends!(racing_sign_ups_make_exactly_one_admin);

#[tokio::test]
async fn without_opt_in_the_first_sign_up_is_a_member_and_only_the_setup_token_makes_an_admin() {
    let app = TestApp::spawn_with(Backend::MariaDb, |s| s.part_mut::<app::accounts::settings::AuthSettings>().first_signup_admin = false).await;
    let first: Value = app.post_json("/api/v1/auth/signup", &json!({"username": "early", "password": PASSWORD})).await.json().await.unwrap();
    assert_eq!(first["role"], "member", "squatting the first sign-up gains nothing");
    let token = app::accounts::service::issue_setup_token(&app.state).await.unwrap().expect("no admin yet: a setup token");
    let res = app.post_json("/api/v1/auth/signup", &json!({"username": "guesser", "password": PASSWORD, "setup_token": "not-it"})).await;
    assert_error(res, 403, "forbidden", Some("setup_token")).await;
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM users WHERE username = 'guesser'").await, 0);
    let admin: Value = app.post_json("/api/v1/auth/signup", &json!({"username": "owner", "password": PASSWORD, "setup_token": token})).await.json().await.unwrap();
    assert_eq!(admin["role"], "admin");
    let res = app.post_json("/api/v1/auth/signup", &json!({"username": "second", "password": PASSWORD, "setup_token": token})).await;
    assert_error(res, 403, "forbidden", Some("setup_token")).await;
    assert!(app::accounts::service::issue_setup_token(&app.state).await.unwrap().is_none(), "no token once there is an admin");
    app.stop().await;
}

#[tokio::test]
async fn create_admin_takes_an_existing_name_back_from_whoever_registered_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let url = db.url.clone();
    let app = TestApp::spawn_on(db, |s| s.part_mut::<app::accounts::settings::AuthSettings>().first_signup_admin = false).await;
    // Someone registered "alice" before the operator got to it.
    let squatter = new_user_token(&app.client, &app.base, "alice").await;
    let new_password = "the operator's own passphrase";
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["create-admin", "--username", "alice"])
        .env("DATABASE_URL", &url)
        .env("SB_DATA_DIR", data.path())
        .env("SB_SECRET_KEY", TEST_SECRET_KEY)
        .env("SB_ADMIN_PASSWORD", new_password)
        .env("SB_MIGRATE_ON_START", "false")
        .env("SB_DEMO_DATA", "false")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(bearer(&app, &squatter, reqwest::Method::GET, "/api/v1/me").send().await.unwrap().status(), 401, "the squatter's token is gone");
    let res = app.post_json("/api/v1/auth/tokens", &json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(res.status(), 401, "the squatter's password is gone");
    let res = app.post_json("/api/v1/auth/tokens", &json!({"username": "alice", "password": new_password})).await;
    let token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let me: Value = bearer(&app, &token, reqwest::Method::GET, "/api/v1/me").send().await.unwrap().json().await.unwrap();
    assert_eq!(me["role"], "admin");
    // A weak password is refused, naming the problem.
    let (state, operator) = (&app.state, Caller::operator());
    let err = app::accounts::service::create_admin(state, &operator, "alice", "short").await.unwrap_err();
    assert_eq!(err.field.as_deref(), Some("password"));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// Inbox bricking and unbounded statements

async fn a_flooded_inbox_is_read_in_bounded_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _admin = app.user_with_token("root").await;
    let victim = app.user_with_token("victim").await;
    // 40,000 messages (the bricking took ~33,000 on SQLite), written directly.
    let far = app::platform::time::now_ms() + 3_600_000;
    for chunk in 0..40 {
        let values: Vec<String> = (0..1000).map(|i| format!("('victim', NULL, 'x', 'flood {}', 0, {far})", chunk * 1000 + i)).collect();
        exec(&app, &format!("INSERT INTO chat_messages (username, sender_id, sender, text, created_at, expiration_date) VALUES {}", values.join(","))).await;
    }
    let res = bearer(&app, &victim, reqwest::Method::GET, "/chats/victim").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let link = res.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(link.as_deref(), Some("</chats/victim>; rel=\"next\""));
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page.len(), app::chat::service::INBOX_PAGE as usize);
    assert_eq!(page[0]["text"], "flood 0", "oldest first");
    let next: Vec<Value> = bearer(&app, &victim, reqwest::Method::GET, "/chats/victim").send().await.unwrap().json().await.unwrap();
    assert_eq!(next[0]["text"], "flood 100", "the next read takes the next page");
    assert_eq!(count(&app, &format!("SELECT COUNT(*) AS n FROM chat_messages WHERE expiration_date = {far}")).await, 40_000 - 200);
    app.stop().await;
}

both_backends!(a_flooded_inbox_is_read_in_bounded_pages);

#[tokio::test]
async fn replaying_more_messages_than_one_statement_can_bind_works() {
    let app = TestApp::spawn_quiet(Backend::Sqlite, |s| s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()]).await;
    let admin = Admin::new(&app).await;
    admin.topic("bulk:msg").await;
    let (sid, _) = admin.subscriber("http://127.0.0.1:9/hook", "bulk:msg", json!({})).await;
    let topic = count(&app, "SELECT id FROM broker_topics WHERE name = 'bulk:msg'").await;
    // 12,000 messages × 10 columns of delivery would be 120,000 binds in one statement.
    for chunk in 0..12 {
        let values: Vec<String> = (0..1000).map(|i| format!("({topic}, {}, '{{}}', NULL, NULL, 1000)", chunk * 1000 + i + 1)).collect();
        exec(&app, &format!("INSERT INTO broker_messages (topic_id, seq, payload, idempotency_key, published_by, created_at) VALUES {}", values.join(","))).await;
    }
    let res = admin.post(&format!("/api/v1/subscribers/{sid}/replay"), json!({"since": "1970-01-01T00:00:00Z"})).await;
    assert_eq!(res["replayed"], app::broker::service::REPLAY_LIMIT);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// The broker keeps only what someone is to receive

#[tokio::test]
async fn messages_nobody_subscribes_to_are_not_kept_and_delivered_ones_are_pruned() {
    let app = crate::broker::broker_app(Backend::Sqlite).await;
    let admin = Admin::new(&app).await;
    admin.topic("quiet:topic").await;
    let nobody = admin.post("/api/v1/topics/quiet:topic/messages", json!({"payload": {"private": "text"}})).await;
    assert_eq!((nobody["id"].clone(), nobody["subscriptions"].as_i64()), (Value::Null, Some(0)));
    // Sign-ups and chat posts publish too; with no subscriber nothing of them is stored.
    let _ = app.user_with_token("member").await;
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM broker_messages").await, 0);

    let receiver = Receiver::start().await;
    admin.topic("kept:topic").await;
    admin.subscriber(&receiver.url("/hook"), "kept:topic", json!({})).await;
    // A second subscriber whose delivery is held (paused): its messages wait for it.
    let (held, _) = admin.subscriber("http://127.0.0.1:9/held", "kept:topic", json!({})).await;
    let subscription = admin.get(&format!("/api/v1/subscribers/{held}/subscriptions")).await[0]["id"].clone();
    admin.post(&format!("/api/v1/subscriptions/{subscription}/pause"), json!({})).await;
    admin.publish("kept:topic", json!({"n": 1})).await;
    eventually(Duration::from_secs(30), "the delivery", || {
        let hits = receiver.first_successes("/hook");
        async move { (!hits.is_empty()).then_some(()) }
    })
    .await;
    let delivered_one = admin.publish("kept:topic", json!({"n": 2})).await;
    eventually(Duration::from_secs(30), "the second delivery", || {
        let hits = receiver.first_successes("/hook");
        async move { (hits.len() >= 2).then_some(()) }
    })
    .await;
    // Both messages still wait for the held subscriber: nothing is pruned.
    assert_eq!(app::broker::service::prune(&app.state.db, Duration::ZERO).await.unwrap(), 0);
    // Once its delivery is given up (skipped), the whole message goes, attempts too.
    let waiting = admin.get(&format!("/api/v1/subscribers/{held}/deliveries")).await;
    let skip = waiting.as_array().unwrap().iter().find(|d| d["message_id"] == delivered_one).unwrap()["id"].clone();
    admin.post(&format!("/api/v1/deliveries/{skip}/skip"), json!({})).await;
    assert_eq!(app::broker::service::prune(&app.state.db, Duration::ZERO).await.unwrap(), 1);
    assert_eq!(count(&app, &format!("SELECT COUNT(*) AS n FROM broker_messages WHERE id = {delivered_one}")).await, 0);
    assert_eq!(count(&app, &format!("SELECT COUNT(*) AS n FROM broker_deliveries WHERE message_id = {delivered_one}")).await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM broker_attempts a LEFT JOIN broker_deliveries d ON d.id = a.delivery_id WHERE d.id IS NULL").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM broker_messages").await, 1, "the other message still waits");
    // Young messages are kept whatever their state.
    assert_eq!(app::broker::service::prune(&app.state.db, Duration::from_secs(3600)).await.unwrap(), 0);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// LIKE wildcards

#[tokio::test]
async fn an_underscore_in_a_username_does_not_receive_other_users_changes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.user_with_token("root").await;
    let snoop = app.user_with_token("a_c").await;
    let _abc = app.user_with_token("abc").await;
    let post = |to: &str, text: &str| bearer(&app, &admin, reqwest::Method::POST, "/chat").json(&json!({"username": to, "text": text})).send();
    assert_eq!(post("abc", "not for a_c").await.unwrap().status(), 201);
    // Resuming from the start reads the change log's backlog for this inbox.
    let mut stream = bearer(&app, &snoop, reqwest::Method::GET, "/api/v1/me/chat/events").header("last-event-id", "0").send().await.unwrap();
    assert_eq!(stream.status(), 200);
    // A sentinel for a_c: everything committed before it has reached the stream.
    let sentinel: Value = post("a_c", "for a_c").await.unwrap().json().await.unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(&format!("\"posted\":{}", sentinel["id"])) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("the sentinel arrives").unwrap().expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(seen.matches("\"posted\"").count(), 1, "only a_c's own change: {seen}");
    app.stop().await;
}

#[tokio::test]
async fn wage_filters_treat_percent_and_underscore_as_text() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.user_with_token("root").await;
    let csv = "CASE_NUMBER,CASE_STATUS,DECISION_DATE,EMPLOYER_NAME,JOB_TITLE,SOC_CODE,WORKSITE_CITY,WORKSITE_STATE,WAGE_RATE_OF_PAY_FROM,WAGE_UNIT_OF_PAY\n\
               I-1,Certified,2024-01-10,ACME_CORP,ENGINEER,15-1252,SEATTLE,WA,100000,Year\n\
               I-2,Certified,2024-01-10,ACMEXCORP,ENGINEER,15-1252,SEATTLE,WA,110000,Year\n\
               I-3,Certified,2024-01-10,=HYPERLINK(\"http://evil.example\"),ENGINEER,15-1252,SEATTLE,WA,120000,Year\n";
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), csv).unwrap();
    app::wages::service::import_lca(&app.state.db, file.path(), None, &|_| {}).await.unwrap();
    let names = |query: &'static str| {
        let req = bearer(&app, &admin, reqwest::Method::GET, &format!("/api/v1/wages?{query}")).send();
        async move {
            let page: Value = req.await.unwrap().json().await.unwrap();
            let mut names: Vec<String> = page["records"].as_array().unwrap().iter().map(|r| r["employer_name"].as_str().unwrap().to_owned()).collect();
            names.sort();
            names
        }
    };
    assert_eq!(names("employer=ACME_").await, ["ACME_CORP"], "_ is not a wildcard");
    assert_eq!(names("employer=%25&match=contains").await, Vec::<String>::new(), "% is not a wildcard");
    assert_eq!(names("employer=ACME").await.len(), 2);
    // The export never hands a spreadsheet a formula.
    let csv = bearer(&app, &admin, reqwest::Method::GET, "/api/v1/wages/export.csv").send().await.unwrap().text().await.unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let employers: Vec<String> = reader.records().map(|r| r.unwrap()[3].to_owned()).collect();
    assert!(employers.contains(&"'=HYPERLINK(\"HTTP://EVIL.EXAMPLE\")".to_owned()), "{employers:?}");
    assert!(employers.iter().all(|e| !e.starts_with(['=', '+', '-', '@'])));
    app.stop().await;
}

#[test]
fn spreadsheet_cells_that_start_a_formula_are_marked_as_text() {
    use app::wages::service::spreadsheet_safe;
    for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
        assert_eq!(spreadsheet_safe(bad.into()), format!("'{bad}"));
    }
    assert_eq!(spreadsheet_safe("ACME".into()), "ACME");
}

// ---------------------------------------------------------------------------------------
// Secrets at rest

#[tokio::test]
async fn signing_secrets_and_feed_tokens_are_not_stored_in_clear() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::spawn_on(db, |s| s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()]).await;
    let admin = Admin::new(&app).await;
    admin.topic("fin:purchase").await;
    let receiver = Receiver::start().await;
    let (sid, secret) = admin.subscriber(&receiver.url("/hook"), "fin:purchase", json!({})).await;
    assert!(secret.starts_with("whsec_"));
    let stored = rows(&app, "SELECT secret FROM broker_subscribers").await;
    let stored = stored[0]["secret"].as_str().unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains(&secret[6..]), "sealed: {stored}");
    // Delivery still signs with it (verified by the receiver's side), and admins can see it.
    admin.publish("fin:purchase", json!({"n": 1})).await;
    let hit = eventually(Duration::from_secs(30), "a delivery", || {
        let hits = receiver.first_successes("/hook");
        async move { hits.into_iter().next() }
    })
    .await;
    let ts: i64 = hit.timestamp.parse().unwrap();
    assert!(app::broker::signature::verify(&secret, &hit.webhook_id, ts, &hit.signature, &hit.body, ts, 300));
    assert_eq!(admin.get(&format!("/api/v1/subscribers/{sid}/secret")).await["secret"], secret);

    let feed = admin.get("/api/v1/me/ical").await["url"].as_str().unwrap().to_owned();
    let token = feed.rsplit('/').next().unwrap().trim_end_matches(".ics").to_owned();
    let stored = rows(&app, "SELECT token_hash, token_sealed FROM calendar_feed_tokens").await;
    assert!(!stored[0].to_string().contains(&token), "neither column holds the token: {}", stored[0]);
    assert_eq!(app.get(&format!("/ical/{token}.ics")).await.status(), 200);
    assert_eq!(admin.get("/api/v1/me/ical").await["url"], feed, "the owner sees the same address again");
    app.stop().await;
}

#[tokio::test]
async fn secrets_an_earlier_version_stored_in_clear_are_sealed_at_start_up_and_keep_working() {
    let db = TestDb::new(Backend::Sqlite).await;
    let url = db.url.clone();
    let app = TestApp::spawn_on(db, |s| s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()]).await;
    let admin = Admin::new(&app).await;
    let (sid, _) = admin.subscriber("http://127.0.0.1:9/hook", "*", json!({})).await;
    // What an earlier version left: a clear secret and a clear feed token.
    exec(&app, &format!("UPDATE broker_subscribers SET secret = 'whsec_bGVnYWN5LXNlY3JldC1vZi0yNC1ieXRlcw==' WHERE id = {sid}")).await;
    let user = count(&app, "SELECT id FROM users WHERE username = 'root'").await;
    exec(&app, "DELETE FROM calendar_feed_tokens").await;
    exec(&app, &format!("INSERT INTO calendar_feeds (user_id, token, created_at) VALUES ({user}, 'legacy-feed-token', 0)")).await;
    // A start-up on the same database seals them.
    let data = tempfile::tempdir().unwrap();
    let again = crate::support::ServerProcess::start(&[("DATABASE_URL", url.clone()), ("SB_DATA_DIR", data.path().display().to_string())]).await;
    let stored = rows(&app, "SELECT secret FROM broker_subscribers").await;
    assert!(stored[0]["secret"].as_str().unwrap().starts_with("v1:"));
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM calendar_feeds").await, 0);
    let res = reqwest::get(format!("{}/ical/legacy-feed-token.ics", again.base)).await.unwrap();
    assert_eq!(res.status(), 200, "the old feed address keeps working");
    assert_eq!(admin.get(&format!("/api/v1/subscribers/{sid}/secret")).await["secret"], "whsec_bGVnYWN5LXNlY3JldC1vZi0yNC1ieXRlcw==");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// Hardening: cookies, HSTS, metrics, sockets, passwords, sessions, token lifetimes

#[tokio::test]
async fn behind_https_cookies_are_secure_and_hsts_is_sent() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.public_url = "https://switchboard.example".into();
        s.cookie_secure = true; // what the settings derive from the https URL
    })
    .await;
    let res = app.get("/").await;
    assert_eq!(res.headers()["strict-transport-security"], app::platform::http::STRICT_TRANSPORT_SECURITY);
    app.post_json("/api/v1/auth/signup", &json!({"username": "ada", "password": PASSWORD})).await;
    let res = app.client.post(app.url("/_fn/log_in")).form(&[("username", "ada"), ("password", PASSWORD)]).send().await.unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    app.stop().await;
    let plain = TestApp::spawn(Backend::Sqlite).await;
    assert!(plain.get("/").await.headers().get("strict-transport-security").is_none(), "no HSTS over plain http");
    plain.stop().await;
}

#[test]
fn an_https_public_url_turns_secure_cookies_on_by_default() {
    use app::platform::settings::Settings;
    let https = Settings::from_vars(&|name| (name == "SB_PUBLIC_URL").then(|| "https://switchboard.example".into()));
    assert!(https.cookie_secure);
    assert!(!Settings::from_vars(&|_| None).cookie_secure);
    let forced_off = Settings::from_vars(&|name| match name {
        "SB_PUBLIC_URL" => Some("https://switchboard.example".into()),
        "SB_COOKIE_SECURE" => Some("false".into()),
        _ => None,
    });
    assert!(!forced_off.cookie_secure, "an explicit setting wins");
}

#[tokio::test]
async fn metrics_want_their_token_when_one_is_set() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.metrics_token = Some("m-token".into())).await;
    assert_error(app.get("/metrics").await, 401, "unauthorized", None).await;
    let res = app.client.get(app.url("/metrics")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app.client.get(app.url("/metrics")).bearer_auth("m-token").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_request_duration_seconds"));
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.http.header_read_timeout = Duration::from_secs(1)).await;
    let mut socket = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    socket.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    // The server closes the connection (or answers 408) instead of waiting forever.
    let mut buf = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(15), socket.read(&mut buf)).await.expect("the server hangs up");
    let n = read.unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A connection that sends nothing at all is closed too (no protocol sniffing
    // without a timer), and so is one that says half of the HTTP/2 preface.
    for opening in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut socket = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
        socket.write_all(opening).await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(15), socket.read(&mut buf)).await.expect("the server hangs up");
        let n = read.unwrap_or(0);
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    // A normal client is unaffected.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn another_site_cannot_make_a_signed_in_browser_read_its_inbox() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.user_with_token("root").await;
    app.post_json("/api/v1/auth/signup", &json!({"username": "ada", "password": PASSWORD})).await;
    let ada = browser(&app, PASSWORD).await;
    let res = bearer(&app, &admin, reqwest::Method::POST, "/chat").json(&json!({"username": "ada", "text": "unread", "timeout": 3600})).send().await.unwrap();
    assert_eq!(res.status(), 201);
    // A link or script on another site navigating the browser to the inbox read:
    for site in ["cross-site", "same-site"] {
        let res = ada.get(app.url("/chats/ada")).header("sec-fetch-site", site).send().await.unwrap();
        assert_error(res, 403, "cross_site_request", None).await;
    }
    let res = ada.get(app.url("/api/v1/chats/ada")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(res.status(), 403);
    // A proxy's Basic credentials do not exempt a cookie-carrying request.
    let res = ada.get(app.url("/chats/ada")).header("sec-fetch-site", "cross-site").basic_auth("proxy", Some("pw")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    // Pages stay reachable from other sites' links.
    assert_eq!(ada.get(app.url("/inbox")).header("sec-fetch-site", "cross-site").send().await.unwrap().status(), 200);
    // The message is still unread; from this site the read works.
    let res = ada.get(app.url("/chats/ada")).header("sec-fetch-site", "same-origin").send().await.unwrap();
    let inbox: Value = res.json().await.unwrap();
    assert_eq!(inbox[0]["text"], "unread");
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_minted_only_by_a_browser_that_gives_the_password_again() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.user_with_token("ada").await;
    let form = |password: &str| [("name", "laptop".to_owned()), ("password", password.to_owned())];
    // A stolen session cookie alone mints nothing …
    let ada = browser(&app, PASSWORD).await;
    let res = ada.post(app.url("/_fn/create_my_token")).form(&form("")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = ada.post(app.url("/_fn/create_my_token")).form(&form("a wrong guess here")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    // … nor does a token (so an expiring token cannot outlive itself).
    let res = bearer(&app, &token, reqwest::Method::POST, "/_fn/create_my_token").form(&form(PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM api_tokens").await, 1, "only the first token exists");
    let res = ada.post(app.url("/_fn/create_my_token")).form(&form(PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("sb_"));
    app.stop().await;
}

/// A browser of its own (cookie jar) signed in as ada.
async fn browser(app: &TestApp, password: &str) -> reqwest::Client {
    let client = crate::support::client();
    let res = client.post(app.url("/_fn/log_in")).form(&[("username", "ada"), ("password", password)]).send().await.unwrap();
    assert!(res.status().is_redirection() || res.status().is_success(), "log-in: {}", res.status());
    client
}

#[tokio::test]
async fn changing_the_password_or_signing_out_everywhere_ends_every_session() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.user_with_token("ada").await;
    let (laptop, phone) = (browser(&app, PASSWORD).await, browser(&app, PASSWORD).await);
    assert_eq!(laptop.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    let res = bearer(&app, &token, reqwest::Method::POST, "/api/v1/me/password")
        .json(&json!({"current_password": "wrong one here", "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_field", Some("current_password")).await;
    assert_eq!(laptop.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200, "a failed change ends nothing");
    let res = bearer(&app, &token, reqwest::Method::POST, "/api/v1/me/password")
        .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for b in [&laptop, &phone] {
        assert_eq!(b.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401, "sessions end with the old password");
    }
    assert_eq!(bearer(&app, &token, reqwest::Method::GET, "/api/v1/me").send().await.unwrap().status(), 200, "tokens stay");
    assert_eq!(app.post_json("/api/v1/auth/tokens", &json!({"username": "ada", "password": PASSWORD})).await.status(), 401);

    let (laptop, phone) = (browser(&app, "a brand new passphrase").await, browser(&app, "a brand new passphrase").await);
    assert_eq!(phone.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    let res = laptop.post(app.url("/_fn/sign_out_everywhere")).send().await.unwrap();
    assert!(res.status().is_redirection() || res.status().is_success());
    for b in [&laptop, &phone] {
        assert_eq!(b.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401, "signed out everywhere");
    }

    // The browser that changes the password stays signed in with a fresh session, by the
    // REST route and by the page's server function alike; every other session ends.
    let (laptop, phone) = (browser(&app, "a brand new passphrase").await, browser(&app, "a brand new passphrase").await);
    let res = laptop
        .post(app.url("/api/v1/me/password"))
        .json(&json!({"current_password": "a brand new passphrase", "new_password": "a third good passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.headers().get("set-cookie").is_some_and(|c| c.to_str().unwrap().starts_with("sb_session=")), "a fresh session cookie");
    assert_eq!(laptop.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200, "the changing browser stays signed in");
    assert_eq!(phone.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401, "the other browser does not");
    let phone = browser(&app, "a third good passphrase").await;
    let form = [("current_password", "a third good passphrase"), ("new_password", "a fourth good passphrase")];
    let res = laptop.post(app.url("/_fn/change_my_password")).form(&form).send().await.unwrap();
    assert!(res.status().is_success(), "server function: {}", res.status());
    assert_eq!(laptop.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200, "the page's browser stays signed in");
    assert_eq!(phone.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 1, "only the fresh session is left");
    app.stop().await;
}

#[tokio::test]
async fn tokens_can_expire() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.post_json("/api/v1/auth/signup", &json!({"username": "ada", "password": PASSWORD})).await;
    let res = app.post_json("/api/v1/auth/tokens", &json!({"username": "ada", "password": PASSWORD, "expires_in_days": 0})).await;
    assert_error(res, 400, "invalid_field", Some("expires_in_days")).await;
    let issued: Value = app.post_json("/api/v1/auth/tokens", &json!({"username": "ada", "password": PASSWORD, "expires_in_days": 1})).await.json().await.unwrap();
    assert!(issued["expires_at"].is_string(), "{issued}");
    let token = issued["token"].as_str().unwrap();
    assert_eq!(bearer(&app, token, reqwest::Method::GET, "/api/v1/me").send().await.unwrap().status(), 200);
    // A day later (the expiry moved into the past behind the app's back, as time would
    // move it): refused once the checked credential's second in the cache is over.
    exec(&app, &format!("UPDATE api_tokens SET expires_at = {} WHERE id = {}", app::platform::time::now_ms() - 1, issued["id"])).await;
    let refused = eventually(Duration::from_secs(3), "the expired token to be refused", || async {
        let res = bearer(&app, token, reqwest::Method::GET, "/api/v1/me").send().await.unwrap();
        (res.status() == 401).then_some(res)
    })
    .await;
    assert_error(refused, 401, "unauthorized", None).await;
    app.stop().await;
}

//! Chat: the REST contract, expire-on-read, concurrent readers, hot→cold archiving on the
//! folder store and real S3, crash safety of the archiver, and the broker event.

use crate::support::{assert_error, eventually, Backend, ServerProcess, TestApp, TestDb};
use app::platform::object_store::S3Settings;
use app::platform::settings::StoreSettings;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

struct User<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> User<'a> {
    async fn new(app: &'a TestApp, name: &str) -> Self {
        Self { app, token: app.user_with_token(name).await }
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.app.client.post(self.app.url(path)).bearer_auth(&self.token).json(&body).send().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.app.client.get(self.app.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }

    async fn send(&self, to: &str, text: &str, timeout: Option<i64>) -> i64 {
        let mut body = json!({"username": to, "text": text});
        if let Some(t) = timeout {
            body["timeout"] = json!(t);
        }
        let res = self.post("/chat", body).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    async fn message(&self, id: i64) -> Value {
        let res = self.get(&format!("/chat/{id}")).await;
        assert_eq!(res.status(), 200, "GET /chat/{id}");
        res.json().await.unwrap()
    }
}

fn ms(iso: &Value) -> i64 {
    app::platform::time::parse_rfc3339(iso.as_str().unwrap()).unwrap()
}

async fn the_contract_holds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = User::new(&app, "admin").await; // first account
    let ada = User::new(&app, "ada").await;
    let bob = User::new(&app, "bob").await;

    let before = app::platform::time::now_ms();
    let first = bob.send("ada", "hello ada", Some(30)).await;
    let second = bob.send("ada", "default timeout", None).await;
    let m = ada.message(first).await;
    assert_eq!(m.as_object().unwrap().keys().collect::<Vec<_>>(), ["expiration_date", "text", "username"]);
    assert_eq!((m["username"].as_str(), m["text"].as_str()), (Some("ada"), Some("hello ada")));
    let expires = ms(&m["expiration_date"]);
    assert!((before + 30_000..before + 32_000).contains(&expires), "30 s timeout");
    assert!(m["expiration_date"].as_str().unwrap().ends_with('Z'), "ISO-8601 UTC");
    let default = ms(&ada.message(second).await["expiration_date"]);
    assert!((before + 60_000..before + 62_000).contains(&default), "default timeout is 60 s");

    // Reading the inbox returns unexpired messages oldest first and expires them.
    let inbox: Value = ada.get("/chats/ada").await.json().await.unwrap();
    assert_eq!(inbox, json!([{"id": first, "text": "hello ada"}, {"id": second, "text": "default timeout"}]));
    let again: Value = ada.get("/chats/ada").await.json().await.unwrap();
    assert_eq!(again, json!([]), "a second read returns nothing");
    let read_at = ms(&ada.message(first).await["expiration_date"]);
    assert!(read_at <= app::platform::time::now_ms() && read_at < expires, "the read expired it");

    // The same routes under /api/v1.
    let id = ada.post("/api/v1/chat", json!({"username": "bob", "text": "hi"})).await.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(bob.get(&format!("/api/v1/chat/{id}")).await.status(), 200);
    assert_eq!(bob.get("/api/v1/chats/bob").await.json::<Value>().await.unwrap()[0]["id"], id);

    // Access: own inbox only; a message only if addressed to or sent by you.
    let private = bob.send("ada", "just for ada", None).await;
    assert_error(bob.get("/chats/ada").await, 403, "forbidden", None).await;
    let carol = User::new(&app, "carol").await;
    assert_error(carol.get(&format!("/chat/{private}")).await, 403, "forbidden", None).await;
    assert_eq!(bob.get(&format!("/chat/{private}")).await.status(), 200, "the sender may read it");
    assert_eq!(admin.get(&format!("/chat/{private}")).await.status(), 200, "admins may read any");
    // A member cannot mint a token that reads other inboxes (issue 12: it read and
    // expired the victim's unread messages).
    let res = app.client.post(app.url("/api/v1/auth/tokens")).json(&json!({"username": "carol", "password": "correct horse battery staple", "scopes": ["chat:read"]})).send().await.unwrap();
    assert_error(res, 403, "forbidden", Some("scopes")).await;
    assert_eq!(admin.get("/chats/ada").await.json::<Value>().await.unwrap()[0]["id"], private, "admins read any inbox");

    assert_error(app.client.post(app.url("/chat")).json(&json!({"username": "ada", "text": "x"})).send().await.unwrap(), 401, "unauthorized", None).await;
    assert_error(ada.get("/chat/999999").await, 404, "not_found", None).await;
    app.stop().await;
}

both_backends!(the_contract_holds);

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_written() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = User::new(&app, "ada").await;
    let cases = [
        (json!({"text": "no recipient"}), "username"),
        (json!({"username": "", "text": "x"}), "username"),
        (json!({"username": "ada"}), "text"),
        (json!({"username": "ada", "text": "   "}), "text"),
        (json!({"username": "ada", "text": "x".repeat(4097)}), "text"),
        (json!({"username": "ada", "text": "x", "timeout": -5}), "timeout"),
        (json!({"username": "ada", "text": "x", "timeout": 1.5}), "timeout"),
        (json!({"username": "ada", "text": "x", "timeout": "60"}), "timeout"),
        (json!({"username": "ada", "text": "x", "timeout": 100_000_000}), "timeout"),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (body, field) in cases {
        let res = ada.post("/chat", body.clone()).await;
        assert_error(res, 400, "invalid_field", Some(field)).await;
    }
    let res = app.client.post(app.url("/chat")).bearer_auth(&ada.token).header("content-type", "application/json").body("{\"username\": ").send().await.unwrap();
    assert_error(res, 400, "invalid_field", Some("body")).await;
    assert_eq!(ada.get("/chats/ada").await.json::<Value>().await.unwrap(), json!([]), "nothing was half-written");
    app.stop().await;
}

/// Many parallel readers of two inboxes (their reads share transactions): every message
/// is returned exactly once, to a reader of its own inbox.
async fn concurrent_readers_never_share_a_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bob = User::new(&app, "bob").await;
    let ada = std::sync::Arc::new(User::new(&app, "ada").await.token);
    let cy = std::sync::Arc::new(User::new(&app, "cyd").await.token);
    let (mut to_ada, mut to_cy) = (HashSet::new(), HashSet::new());
    for n in 0..120 {
        to_ada.insert(bob.send("ada", &format!("m{n}"), Some(600)).await);
        if n % 2 == 0 {
            to_cy.insert(bob.send("cyd", &format!("c{n}"), Some(600)).await);
        }
    }
    let mut readers = Vec::new();
    for r in 0..16 {
        let (inbox, token) = if r % 4 == 3 { ("cyd", cy.clone()) } else { ("ada", ada.clone()) };
        let (client, url) = (app.client.clone(), app.url(&format!("/chats/{inbox}")));
        readers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..4 {
                let page: Value = client.get(&url).bearer_auth(token.as_str()).send().await.unwrap().json().await.unwrap();
                got.extend(page.as_array().unwrap().iter().map(|m| (inbox.to_owned(), m["id"].as_i64().unwrap())));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap());
    }
    let unique: HashSet<(String, i64)> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "a message was returned twice");
    let read = |inbox: &str| unique.iter().filter(|(u, _)| u == inbox).map(|(_, id)| *id).collect::<HashSet<i64>>();
    assert_eq!(read("ada"), to_ada, "every message to ada was returned, to ada's readers");
    assert_eq!(read("cyd"), to_cy, "every message to cyd was returned, to cyd's readers");
    app.stop().await;
}

both_backends!(concurrent_readers_never_share_a_message);

/// A reader who hangs up while its read is being written (here: while the writer waits
/// for the database) loses nothing: its page is put back and the next read returns it.
#[tokio::test]
async fn a_reader_gone_before_its_page_arrives_loses_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let bob = User::new(&app, "bob").await;
    let ada = User::new(&app, "ada").await;
    let mut sent = HashSet::new();
    for n in 0..3 {
        sent.insert(bob.send("ada", &format!("m{n}"), Some(600)).await);
    }
    // Hold the database's write lock, so the read's batch waits while its reader gives up.
    let hold = app.state.db.write_txn().await.unwrap();
    let operator = app::accounts::Caller::operator();
    let impatient = tokio::time::timeout(Duration::from_millis(300), app::chat::service::read_inbox(&app.state, &operator, "ada")).await;
    assert!(impatient.is_err(), "the reader gave up");
    drop(hold); // rolls back; the batch goes on, commits, and finds nobody to answer
    let got = eventually(Duration::from_secs(10), "the page put back", || async {
        let page: Value = ada.get("/chats/ada").await.json().await.unwrap();
        let ids: HashSet<i64> = page.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
        (!ids.is_empty()).then_some(ids)
    })
    .await;
    assert_eq!(got, sent, "every message of the abandoned page is read again, once");
    app.stop().await;
}

/// Posts that share a transaction (group commit) still each get their own answer: 200
/// concurrent posts from two senders to four inboxes come back with distinct ids, each id
/// holds exactly the text and recipient its post sent, every inbox holds exactly its own
/// posts, and each post's `chat:message` carries its own id, recipient and text.
async fn concurrent_posts_each_get_their_own_answer(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()]).await;
    let broker = crate::broker::Admin::new(&app).await; // the first account: an admin
    let admin = User { app: &app, token: broker.token.clone() };
    let receiver = crate::receiver::Receiver::start().await;
    broker.subscriber(&receiver.url("/chat"), "chat:message", json!({})).await;
    let senders = [User::new(&app, "ann").await, User::new(&app, "ben").await];
    let posts = (0..200).map(|n| {
        let (sender, to, text) = (&senders[n % 2], format!("inbox{}", n % 4), format!("post {n}"));
        async move { (n, to.clone(), text.clone(), sender.send(&to, &text, Some(600)).await) }
    });
    let sent = futures::future::join_all(posts).await;
    let ids: HashSet<i64> = sent.iter().map(|s| s.3).collect();
    assert_eq!(ids.len(), 200, "every post has its own id");
    for (_, to, text, id) in &sent {
        let m = admin.message(*id).await;
        assert_eq!((m["username"].as_str(), m["text"].as_str()), (Some(to.as_str()), Some(text.as_str())), "message {id}");
    }
    for inbox in 0..4 {
        let read: Value = admin.get(&format!("/chats/inbox{inbox}")).await.json().await.unwrap();
        let got: Vec<i64> = read.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
        let mut expected: Vec<i64> = sent.iter().filter(|s| s.1 == format!("inbox{inbox}")).map(|s| s.3).collect();
        expected.sort();
        assert_eq!(got, expected, "inbox{inbox} holds its 50 posts, oldest first");
    }
    let published: Vec<Value> = eventually(Duration::from_secs(20), "a chat:message for each of the 200 posts", || async {
        let events: Vec<Value> = receiver.first_successes("/chat").iter().map(|hit| hit.json()["data"].clone()).collect();
        (events.len() >= 200).then_some(events)
    })
    .await;
    for (_, to, text, id) in &sent {
        let event = published.iter().find(|e| e["id"].as_i64() == Some(*id)).unwrap_or_else(|| panic!("chat:message for {id}"));
        assert_eq!((event["username"].as_str(), event["text"].as_str()), (Some(to.as_str()), Some(text.as_str())));
    }
}
both_backends!(concurrent_posts_each_get_their_own_answer);

async fn s3_settings() -> S3Settings {
    let (_, settings) = crate::object_store::s3_store().await;
    settings
}

async fn hot_count(app: &TestApp) -> u64 {
    app::chat::store::message::Entity::find().count(&app.state.db.conn).await.unwrap()
}

/// Expired messages move to the object store in batches; their answers by id are
/// byte-for-byte what they were while hot; unexpired ones stay.
async fn archive_round_trip(backend: Backend, s3: bool) {
    let s3 = if s3 { Some(s3_settings().await) } else { None };
    let app = TestApp::spawn_with(backend, |s| {
        if let Some(s3) = s3 {
            s.store = StoreSettings::S3(s3);
        }
        s.part_mut::<app::chat::settings::ChatSettings>().archive_every = Duration::from_secs(3600); // driven by hand below
    })
    .await;
    let bob = User::new(&app, "bob").await;
    let ada = User::new(&app, "ada").await;
    let mut expired = Vec::new();
    for n in 0..23 {
        expired.push(bob.send("ada", &format!("gone {n} ✓"), Some(0)).await);
    }
    let kept = bob.send("ada", "still here", Some(600)).await;
    let mut before = Vec::new();
    for id in &expired {
        before.push(ada.get(&format!("/chat/{id}")).await.text().await.unwrap());
    }
    assert_eq!(hot_count(&app).await, 24);

    let report = app::chat::service::archive_expired(&app.state, 7).await.unwrap();
    assert_eq!((report.messages, report.batches), (23, 4), "23 messages in batches of 7");
    assert_eq!(hot_count(&app).await, 1, "the hot table shrank to the unexpired message");
    let objects = app.state.store.list("chat/", None, 100).await.unwrap();
    assert_eq!(objects.len(), 4, "{objects:?}");
    assert!(objects.iter().all(|k| k.ends_with(".ndjson.gz")));
    let lines = app::chat::cold::decode(&app.state.store.get(&objects[0]).await.unwrap().unwrap()).unwrap();
    assert_eq!(lines.len(), 7);

    for (id, was) in expired.iter().zip(&before) {
        let now = ada.get(&format!("/chat/{id}")).await.text().await.unwrap();
        assert_eq!(&now, was, "message {id} reads the same from cold storage");
    }
    assert_eq!(ada.message(kept).await["text"], "still here");
    assert_eq!(app::chat::service::archive_expired(&app.state, 7).await.unwrap().messages, 0, "nothing twice");

    // Retention: purged batches are gone from the store and the index.
    let purged = app::chat::service::purge_cold(&app.state, Duration::ZERO).await.unwrap();
    assert_eq!(purged, 23);
    assert!(app.state.store.list("chat/", None, 100).await.unwrap().is_empty());
    assert_error(ada.get(&format!("/chat/{}", expired[0])).await, 404, "not_found", None).await;
    app.stop().await;
}

#[tokio::test]
async fn archive_to_the_folder_store_on_sqlite() {
    archive_round_trip(Backend::Sqlite, false).await
}

#[tokio::test]
async fn archive_to_the_folder_store_on_mariadb() {
    archive_round_trip(Backend::MariaDb, false).await
}

#[tokio::test]
async fn archive_to_s3_on_sqlite() {
    archive_round_trip(Backend::Sqlite, true).await
}

#[tokio::test]
async fn archive_to_s3_on_mariadb() {
    archive_round_trip(Backend::MariaDb, true).await
}

#[tokio::test]
async fn the_periodic_job_archives_and_posting_publishes_chat_message() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.part_mut::<app::chat::settings::ChatSettings>().archive_every = Duration::from_millis(200);
        s.part_mut::<app::broker::settings::BrokerSettings>().allowed_targets = vec!["127.0.0.1".into()];
    })
    .await;
    let admin = crate::broker::Admin::new(&app).await;
    let receiver = crate::receiver::Receiver::start().await;
    admin.subscriber(&receiver.url("/chat"), "chat:*", json!({})).await;
    let ada = User::new(&app, "ada").await;
    let id = ada.send("bob", "to the archive", Some(0)).await;

    eventually(Duration::from_secs(20), "the job to archive the message", || async {
        (hot_count(&app).await == 0).then_some(())
    })
    .await;
    assert_eq!(ada.message(id).await["text"], "to the archive");
    let hit = eventually(Duration::from_secs(20), "chat:message to reach the subscriber", || async {
        receiver.first_successes("/chat").into_iter().next()
    })
    .await;
    let event = hit.json();
    assert_eq!((event["type"].as_str(), event["data"]["id"].as_i64()), (Some("chat:message"), Some(id)));
    assert_eq!(event["data"]["username"], "bob");
    app.stop().await;
}

#[tokio::test]
async fn the_inbox_stream_announces_new_messages() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ada = User::new(&app, "ada").await;
    let bob = User::new(&app, "bob").await;
    let res = app.client.get(app.url("/api/v1/me/chat/events")).bearer_auth(&ada.token).send().await.unwrap();
    let mut events = crate::changes::SseReader::new(res);
    let id = bob.send("ada", "ping", None).await;
    let event = events.next(Duration::from_secs(10)).await;
    assert_eq!(serde_json::from_str::<Value>(&event.data).unwrap()["posted"], id);
    app.stop().await;
}

/// SIGKILL the server while it archives thousands of expired messages; after a restart
/// every id is in exactly one place (hot or archived) and reads back.
async fn sigkill_during_archiving_loses_and_duplicates_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let env = |every: &str| {
        vec![
            ("DATABASE_URL", db.url.clone()),
            ("SB_DATA_DIR", data.path().display().to_string()),
            ("SB_CHAT_ARCHIVE_EVERY_SECS", every.to_owned()),
            ("SB_CHAT_ARCHIVE_BATCH", "40".into()),
        ]
    };
    // First run: migrate, create a sender, and fill the hot table with expired messages.
    let mut server = ServerProcess::start(&env("3600")).await;
    let conn = sea_orm::Database::connect(db.url.clone()).await.unwrap();
    let now = app::platform::time::now_ms();
    const N: i64 = 4000;
    for chunk in (1..=N).collect::<Vec<_>>().chunks(500) {
        let rows = chunk.iter().map(|n| app::chat::store::message::ActiveModel {
            username: sea_orm::Set(format!("u{}", n % 7)),
            sender_id: sea_orm::Set(None),
            sender: sea_orm::Set(Some("seed".into())),
            text: sea_orm::Set(format!("message {n}")),
            created_at: sea_orm::Set(now - 1000),
            expiration_date: sea_orm::Set(now - 500),
            ..Default::default()
        });
        app::chat::store::message::Entity::insert_many(rows).exec_without_returning(&conn).await.unwrap();
    }
    server.kill();

    // Second run archives every second; kill it while it is part-way through.
    let mut server = ServerProcess::start(&env("1")).await;
    let archived_count = || async {
        app::chat::store::archived::Entity::find().count(&conn).await.unwrap()
    };
    eventually(Duration::from_secs(60), "archiving to be under way", || async {
        let n = archived_count().await;
        (n > 0 && (n as i64) < N).then_some(())
    })
    .await;
    server.kill();
    let at_kill = archived_count().await;

    let _server = ServerProcess::start(&env("1")).await;
    eventually(Duration::from_secs(120), "archiving to finish after the restart", || async {
        (archived_count().await == N as u64).then_some(())
    })
    .await;
    assert!(at_kill < N as u64);
    let hot = app::chat::store::message::Entity::find().count(&conn).await.unwrap();
    assert_eq!(hot, 0, "no expired message left hot");
    // Every id exactly once in the index (it is the primary key), pointing at a batch
    // that holds it on that very line.
    let index = app::chat::store::archived::Entity::find().all(&conn).await.unwrap();
    let ids: HashSet<i64> = index.iter().map(|a| a.message_id).collect();
    assert_eq!(ids.len(), N as usize);
    let store = app::platform::object_store::LocalFolder::new(data.path().join("objects")).unwrap();
    let mut batches = std::collections::HashMap::new();
    for a in &index {
        if !batches.contains_key(&a.batch_key) {
            use app::platform::object_store::ObjectStore;
            let bytes = store.get(&a.batch_key).await.unwrap().expect("batch object exists");
            batches.insert(a.batch_key.clone(), app::chat::cold::decode(&bytes).unwrap());
        }
        let line = &batches[&a.batch_key][a.line as usize];
        assert_eq!((line.id, line.text.as_str()), (a.message_id, format!("message {}", a.message_id).as_str()));
    }
}

both_backends!(sigkill_during_archiving_loses_and_duplicates_nothing);

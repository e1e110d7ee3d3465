//! Crash recovery of the work that is not the broker's or the archiver's (their SIGKILL
//! tests live in `broker_processes` and `chat`; `scripts/crash.sh` runs all of them): a
//! wage import and webhook intake with the database down, each SIGKILLed mid-way and
//! restarted, and held to what the capability promises.

use crate::meetings::{invitee_event, KEY};
use crate::support::{eventually, new_user_token, Backend, ServerProcess, TcpProxy, TestDb};
use crate::wages::{filing, HEADER};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

async fn get_json(client: &reqwest::Client, url: String, token: &str) -> Option<Value> {
    let res = client.get(url).bearer_auth(token).send().await.ok()?;
    res.status().is_success().then_some(())?;
    res.json().await.ok()
}

/// SIGKILL while an uploaded LCA file is being imported: another start resumes the job
/// once its lease runs out and finishes it; every filing is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_wage_import_then_the_import_completes_exactly_once() {
    const N: usize = 100_000;
    let db = TestDb::new(Backend::MariaDb).await;
    let data = tempfile::tempdir().unwrap();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("SB_DATA_DIR", data.path().display().to_string()),
        ("SB_WAGES_IMPORT_LEASE_SECS", "2".into()),
        ("SB_JOB_POLL_MS", "100".into()),
    ];
    let mut server = ServerProcess::start(&env).await;
    let client = reqwest::Client::new();
    let token = new_user_token(&client, &server.base, "root").await;
    let rows: Vec<String> = (0..N).map(|i| filing(&format!("K-{i}"), "Crash Co", "Analyst", "Austin", "TX", &(80_000 + i).to_string(), "Year")).collect();
    let body = format!("{HEADER}\n{}\n", rows.join("\n"));
    let res = client.post(format!("{}/api/v1/wages/imports?filename=crash.csv", server.base)).bearer_auth(&token).body(body).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let status = |base: String| {
        let (client, token) = (client.clone(), token.clone());
        async move { get_json(&client, format!("{base}/api/v1/wages/imports/{id}"), &token).await }
    };
    let stored = |base: String| {
        let (client, token) = (client.clone(), token.clone());
        async move { get_json(&client, format!("{base}/api/v1/wages?employer=crash&per_page=1"), &token).await.map(|p| p["total"].as_u64().unwrap()) }
    };
    let base = server.base.clone();
    // Rows as the database has them (the read side's copy follows only finished imports).
    let conn = sea_orm::Database::connect(db.url.clone()).await.unwrap();
    use sea_orm::{EntityTrait, PaginatorTrait};
    eventually(Duration::from_secs(60), "the import to be under way", || {
        let s = status(base.clone());
        let n = app::wages::store::record::Entity::find().count(&conn);
        async move {
            let (s, n) = (s.await?, n.await.ok()?);
            (s["state"] == "running" && n > 0).then_some(())
        }
    })
    .await;
    server.kill();
    let at_kill = app::wages::store::record::Entity::find().count(&conn).await.unwrap();
    assert!(at_kill > 0 && at_kill < N as u64, "killed mid-import ({at_kill} of {N} stored)");

    let restarted = ServerProcess::start(&env).await;
    let base = restarted.base.clone();
    let done = eventually(Duration::from_secs(180), "the import to finish after the restart", || {
        let s = status(base.clone());
        async move { s.await.filter(|s| s["state"] == "done") }
    })
    .await;
    assert_eq!(done["rows_bad"], 0, "{done}");
    assert_eq!(stored(base.clone()).await, Some(N as u64), "every filing stored once");
    assert_eq!(app::wages::store::record::Entity::find().count(&conn).await.unwrap(), N as u64, "and nothing else");
}

/// SIGKILL while deliveries arrive with the database down (each accepted one is spooled
/// to the object store): after a restart with the database back, every delivery that
/// was answered 202 is a meeting, exactly once, and the spool is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_spooled_webhook_intake_loses_no_accepted_delivery() {
    let db = TestDb::new(Backend::MariaDb).await;
    let proxy = TcpProxy::start(&db.address()).await;
    let data = tempfile::tempdir().unwrap();
    let env = vec![
        ("DATABASE_URL", db.url_via(&proxy)),
        ("SB_DATA_DIR", data.path().display().to_string()),
        ("CALENDLY_WEBHOOK_SIGNING_KEY", KEY.to_owned()),
    ];
    let mut server = ServerProcess::start(&env).await;
    let client = reqwest::Client::new();
    let token = new_user_token(&client, &server.base, "root").await;

    proxy.cut();
    // A sender that keeps posting; the process dies under it part-way.
    let (base, sender_client) = (server.base.clone(), client.clone());
    let sender = tokio::spawn(async move {
        let mut answers: HashMap<String, u16> = HashMap::new();
        for i in 0..400 {
            let ev = format!("CRASH{i}");
            let delivery = invitee_event("invitee.created", &ev, "I", "2030-06-01T10:00:00.000000Z", json!({}));
            let bytes = serde_json::to_vec(&delivery).unwrap();
            let sig = crate::meetings::signature(KEY, app::platform::time::now_ms() / 1000, &bytes);
            let res = sender_client
                .post(format!("{base}/webhooks/calendly"))
                .header("content-type", "application/json")
                .header("calendly-webhook-signature", sig)
                .body(bytes)
                .send()
                .await;
            match res {
                Ok(r) => answers.insert(ev, r.status().as_u16()),
                Err(_) => break, // the process is gone
            };
        }
        answers
    });
    let spool = data.path().join("objects").join("spool");
    fn spooled(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => spooled(&e.path()),
                _ => usize::from(!e.file_name().to_string_lossy().starts_with(".tmp")),
            })
            .sum()
    }
    eventually(Duration::from_secs(60), "deliveries to be spooled", || {
        let n = spooled(&spool);
        async move { (n >= 20).then_some(()) }
    })
    .await;
    server.kill();
    let answers = sender.await.unwrap();
    let accepted: Vec<&String> = answers.iter().filter(|(_, s)| **s == 202).map(|(ev, _)| ev).collect();
    assert!(accepted.len() >= 20 && answers.len() < 400, "killed mid-stream: {} answered", answers.len());
    assert!(answers.values().all(|s| *s == 202), "with the database down every delivery is spooled: {answers:?}");

    proxy.restore();
    let restarted = ServerProcess::start(&env).await;
    let base = restarted.base.clone();
    let meetings = eventually(Duration::from_secs(90), "every accepted delivery to be replayed", || {
        let (client, token, base) = (client.clone(), token.clone(), base.clone());
        let want = accepted.len();
        async move {
            let list = get_json(&client, format!("{base}/api/v1/meetings?limit=1000"), &token).await?;
            (list.as_array()?.len() >= want).then_some(list)
        }
    })
    .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in meetings.as_array().unwrap() {
        *seen.entry(m["event_uri"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()).or_default() += 1;
    }
    for ev in &accepted {
        assert_eq!(seen.get(ev.as_str()), Some(&1), "{ev} stored exactly once");
    }
    eventually(Duration::from_secs(60), "the spool to empty", || {
        let left = spooled(&spool);
        async move { (left == 0).then_some(()) }
    })
    .await;
}

//! Live changes: recorded with the business write, tailed from the table by every
//! process, resumable by event id.

use crate::support::{Backend, TestApp};
use app::platform::changes;
use futures::StreamExt;
use sea_orm::TransactionTrait;
use std::time::Duration;

/// Reads SSE events (id, event, data) from a streaming response.
pub struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseReader {
    pub fn new(res: reqwest::Response) -> Self {
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Self { stream: res.bytes_stream().boxed(), buf: String::new() }
    }

    /// The next event (comments/keep-alives skipped), or panic after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> SseEvent {
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let mut ev = SseEvent { id: None, event: None, data: String::new() };
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            ev.id = Some(v.trim().to_owned());
                        } else if let Some(v) = line.strip_prefix("event:") {
                            ev.event = Some(v.trim().to_owned());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        }
                    }
                    if ev.id.is_some() || !ev.data.is_empty() {
                        return ev;
                    }
                    continue;
                }
                let chunk = self.stream.next().await.expect("stream open").expect("stream chunk");
                self.buf.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an SSE event in time")
    }
}

async fn changes_are_tailed_in_commit_order_and_resumable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.state.db;

    // A change rolled back with its transaction never appears.
    let txn = db.begin().await.unwrap();
    changes::record(&txn, "test:a", &serde_json::json!({"n": 0})).await.unwrap();
    txn.rollback().await.unwrap();

    // Each channel's followers get its changes, in commit order, and no other channel's.
    let mut on_a = app.state.changes.subscribe("test:a");
    let mut on_b = app.state.changes.subscribe("other:b");
    for n in 1..=3 {
        let txn = db.begin().await.unwrap();
        changes::record(&txn, if n == 2 { "other:b" } else { "test:a" }, &serde_json::json!({"n": n})).await.unwrap();
        txn.commit().await.unwrap();
    }
    async fn next(rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<changes::Change>>) -> (String, String) {
        let change = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        (change.channel.clone(), change.payload.clone())
    }
    assert_eq!(next(&mut on_a).await, ("test:a".into(), r#"{"n":1}"#.into()));
    assert_eq!(next(&mut on_a).await, ("test:a".into(), r#"{"n":3}"#.into()), "n=2 went to other:b only");
    assert_eq!(next(&mut on_b).await, ("other:b".into(), r#"{"n":2}"#.into()));

    // Resume: everything on the channel after a given id, from the table.
    let all = changes::since(db, "test:a", 0, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    let after_first = changes::since(db, "test:a", all[0].id, 100).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].payload, r#"{"n":3}"#);
    app.stop().await;
}

both_backends!(changes_are_tailed_in_commit_order_and_resumable);

/// The SSE helper replays from Last-Event-ID and then follows live changes. A tiny route
/// is mounted for this test only; capabilities mount their own streams the same way.
#[tokio::test]
async fn sse_replays_after_last_event_id_then_streams_live() {
    use axum::extract::State;
    use axum::http::HeaderMap;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let state = app.state.clone();
    for n in 1..=3 {
        changes::record(&state.db.conn, "demo:x", &n).await.unwrap();
    }
    let first_id = changes::since(&state.db, "demo:x", 0, 10).await.unwrap()[0].id;

    async fn stream(State(state): State<app::platform::state::AppState>, headers: HeaderMap) -> impl axum::response::IntoResponse {
        let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        changes::sse(state.db.clone(), state.changes.clone(), "demo:x".into(), last)
    }
    let router = axum::Router::new().route("/stream", axum::routing::get(stream)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let res = reqwest::Client::new()
        .get(format!("http://{addr}/stream"))
        .header("last-event-id", first_id.to_string())
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(res);
    let replayed: Vec<String> = vec![events.next(Duration::from_secs(5)).await.data, events.next(Duration::from_secs(5)).await.data];
    assert_eq!(replayed, ["2", "3"], "replayed after the given id");

    changes::record(&state.db.conn, "other:y", &99).await.unwrap();
    changes::record(&state.db.conn, "demo:x", &4).await.unwrap();
    let live = events.next(Duration::from_secs(10)).await;
    assert_eq!((live.event.as_deref(), live.data.as_str()), (Some("change"), "4"), "live, filtered by channel");
    assert!(live.id.unwrap().parse::<i64>().unwrap() > first_id);

    // A client resuming from a change that was pruned since is told to read afresh
    // (what it missed may be gone), then follows live changes as before.
    tokio::time::sleep(Duration::from_millis(5)).await; // the prune below cuts at "now"
    let pruned = changes::prune(&state.db, Duration::ZERO).await.unwrap();
    assert!(pruned >= 5, "everything recorded so far is older than zero seconds");
    changes::record(&state.db.conn, "demo:x", &5).await.unwrap();
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/stream"))
        .header("last-event-id", first_id.to_string())
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(res);
    let reset = events.next(Duration::from_secs(5)).await;
    assert_eq!((reset.event.as_deref(), reset.data.as_str()), (Some("change"), r#"{"reset":true}"#), "a stale resume point resets the page");
    changes::record(&state.db.conn, "demo:x", &6).await.unwrap();
    // Then live again ("5" may come first, when it was recorded after the reset point).
    let mut after = vec![events.next(Duration::from_secs(10)).await.data];
    if after[0] == "5" {
        after.push(events.next(Duration::from_secs(10)).await.data);
    }
    assert_eq!(after.last().map(String::as_str), Some("6"), "then live again: {after:?}");
    app.stop().await;
}

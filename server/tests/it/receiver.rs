//! A real HTTP webhook receiver on loopback, whose answers a test scripts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The endpoint path (tells subscribers apart: `/hook/a`, `/hook/b`).
    pub path: String,
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
    /// The answer given.
    pub status: u16,
    pub at: Instant,
    /// The n-th request for this (path, webhook-id), from 1.
    pub attempt: u32,
}

impl Hit {
    /// The message id from `webhook-id: msg_<id>`.
    pub fn message_id(&self) -> i64 {
        self.webhook_id.trim_start_matches("msg_").parse().expect("webhook-id is msg_<id>")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Decides the answer to a request: status, optional extra header, delay.
pub type Plan = Arc<dyn Fn(&Hit) -> Reply + Send + Sync>;

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub header: Option<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self { status, header: None, delay: Duration::ZERO }
    }
}

#[derive(Clone)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    counts: Arc<Mutex<HashMap<(String, String), u32>>>,
    in_flight: Arc<Mutex<HashMap<String, i64>>>,
    max_in_flight_per_lane: Arc<AtomicI64>,
    plan: Arc<Mutex<Plan>>,
}

pub struct Receiver {
    pub base: String,
    shared: Shared,
}

impl Receiver {
    pub async fn start() -> Self {
        let shared = Shared {
            hits: Default::default(),
            counts: Default::default(),
            in_flight: Default::default(),
            max_in_flight_per_lane: Arc::new(AtomicI64::new(0)),
            plan: Arc::new(Mutex::new(Arc::new(|_: &Hit| Reply::status(200)))),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn set_plan(&self, plan: impl Fn(&Hit) -> Reply + Send + Sync + 'static) {
        *self.shared.plan.lock().unwrap() = Arc::new(plan);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    pub fn hits_on(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }

    /// Successful deliveries on `path`, first success per message only, in arrival order.
    pub fn first_successes(&self, path: &str) -> Vec<Hit> {
        let mut seen = std::collections::HashSet::new();
        self.hits_on(path).into_iter().filter(|h| h.ok() && seen.insert(h.webhook_id.clone())).collect()
    }

    /// The most requests ever in flight at once for one lane (path + topic).
    pub fn max_in_flight_per_lane(&self) -> i64 {
        self.shared.max_in_flight_per_lane.load(Ordering::SeqCst)
    }
}

async fn handle(State(shared): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let webhook_id = header("webhook-id");
    let path = uri.path().to_owned();
    let topic = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let lane = format!("{path} {topic}");
    {
        let mut in_flight = shared.in_flight.lock().unwrap();
        let n = in_flight.entry(lane.clone()).or_default();
        *n += 1;
        shared.max_in_flight_per_lane.fetch_max(*n, Ordering::SeqCst);
    }
    let attempt = {
        let mut counts = shared.counts.lock().unwrap();
        let n = counts.entry((path.clone(), webhook_id.clone())).or_default();
        *n += 1;
        *n
    };
    let mut hit = Hit {
        path,
        webhook_id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        status: 0,
        at: Instant::now(),
        attempt,
    };
    let plan = shared.plan.lock().unwrap().clone();
    let reply = plan(&hit);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    hit.status = reply.status;
    shared.hits.lock().unwrap().push(hit);
    *shared.in_flight.lock().unwrap().get_mut(&lane).unwrap() -= 1;
    let status = StatusCode::from_u16(reply.status).unwrap();
    let mut res = (status, "ok").into_response();
    if let Some((name, value)) = reply.header {
        res.headers_mut().insert(name, value.parse().unwrap());
    }
    res
}

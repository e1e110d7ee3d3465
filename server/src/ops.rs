//! Operations endpoints: liveness, readiness, Prometheus metrics, and the beacon through
//! which browsers report how fast pages became usable.

use app::platform::secrets::constant_time_eq;
use app::platform::state::AppState;
use app::platform::http::ClientAddr;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Every operations route, in one table (path, method, handler): the router is built
/// from it and the authorization test enumerates it, so a route added here cannot go
/// unchecked.
pub fn table() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("/healthz", "GET", get(healthz)),
        ("/readyz", "GET", get(readyz)),
        ("/metrics", "GET", get(metrics)),
        (BEACON_PATH, "POST", post(beacon)),
    ]
}

pub fn routes() -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, (path, _, method)| router.route(path, method))
}

/// Where pages send their navigation timing.
pub const BEACON_PATH: &str = "/beacon";

/// Navigation timings each client address may report per minute (the rest are dropped
/// with 429: a page load sends one, and an office behind one address loads many).
const BEACONS_PER_MIN: u32 = 600;
/// Longest timing kept; beyond it a value is a stalled tab, not a page load.
const LONGEST_MS: f64 = 600_000.0;

/// Beacons per client address: one limiter per application (composed into its parts).
#[derive(Clone)]
pub struct BeaconLimiter(app::platform::rate_limit::RateLimiter);

impl BeaconLimiter {
    pub fn new() -> Self {
        Self(app::platform::rate_limit::RateLimiter::new(BEACONS_PER_MIN, std::time::Duration::from_secs(60)))
    }
}

impl Default for BeaconLimiter {
    fn default() -> Self {
        Self::new()
    }
}

/// One page load as the browser measured it, in milliseconds since navigation start.
#[derive(serde::Deserialize)]
struct Beacon {
    /// The page's path (`location.pathname`); counted under its route, never as sent.
    path: String,
    /// Time to first byte.
    ttfb_ms: f64,
    /// DOMContentLoaded done.
    dom_ready_ms: f64,
    /// The WASM app took over the page.
    hydrated_ms: f64,
}

/// Records a page load's timings as `browser_navigation_seconds{route, phase}`
/// histograms. The route is the app's route pattern the path matches (or `other`), so
/// the series stay as few as the routes; nothing identifies the visitor. Sent with
/// `navigator.sendBeacon` (a text body), so the body is read as JSON whatever its type.
async fn beacon(State(state): State<AppState>, ClientAddr(client): ClientAddr, body: axum::body::Bytes) -> Response {
    let key = app::platform::guards::address_key(client);
    if let Err(refused) = state.part::<BeaconLimiter>().0.take(&key, "navigation timings from this address") {
        return refused.into_response();
    }
    let sample: Beacon = match serde_json::from_slice(&body) {
        Ok(sample) => sample,
        Err(e) => return app::error::AppError::bad_request(format!("not a navigation timing: {e}")).into_response(),
    };
    let phases = [("ttfb", "ttfb_ms", sample.ttfb_ms), ("dom_ready", "dom_ready_ms", sample.dom_ready_ms), ("hydrated", "hydrated_ms", sample.hydrated_ms)];
    if let Some((_, field, _)) = phases.iter().find(|(_, _, ms)| !(0.0..=LONGEST_MS).contains(ms)) {
        return app::error::AppError::invalid(field, format!("{field} must be between 0 and {LONGEST_MS} ms")).into_response();
    }
    let route = crate::startup::route_of(&sample.path);
    for (phase, _, ms) in phases {
        metrics::histogram!("browser_navigation_seconds", "route" => route, "phase" => phase).record(ms / 1000.0);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The process is alive and serving HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can do its work: the database and the object store answer. Anyone may
/// ask, so the answer says only which part is down; the cause (a driver's message can
/// name hosts, users and buckets) goes to the log.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let ready = state.readiness().await;
    let status = if ready.iter().all(|(_, ok)| *ok) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body: serde_json::Map<String, serde_json::Value> =
        ready.iter().map(|(part, ok)| (part.to_string(), (if *ok { "ok" } else { "unavailable" }).into())).collect();
    (status, Json(body))
}

/// Prometheus metrics; with `SB_METRICS_TOKEN` set, only for `Authorization: Bearer
/// <that token>` (route names, job kinds and queue depths tell an attacker a lot).
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = state.settings.metrics_token.as_deref() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .unwrap_or_default();
        if !constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            return app::error::AppError::unauthorized("send Authorization: Bearer <SB_METRICS_TOKEN>").into_response();
        }
    }
    state.db.record_pool_gauges();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], recorder().render()).into_response()
}

/// The process-wide Prometheus recorder (installed once, even when tests start several
/// applications in one process).
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            )
            .expect("static bucket list is not empty")
            .set_buckets_for_metric(
                Matcher::Full("browser_navigation_seconds".into()),
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            )
            .expect("static bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        // The exporter leaves housekeeping (draining histogram buffers) to its owner.
        let upkeep = handle.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            upkeep.run_upkeep();
        });
        handle
    })
}

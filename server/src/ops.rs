//! Operations endpoints: liveness, readiness and Prometheus metrics.

use app::platform::secrets::constant_time_eq;
use app::platform::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Every operations route, in one table: the router is built from it and the
/// authorization test enumerates it, so a route added here cannot go unchecked.
pub fn table() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/healthz", get(healthz)), ("/readyz", get(readyz)), ("/metrics", get(metrics))]
}

pub fn routes() -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, (path, method)| router.route(path, method))
}

/// The process is alive and serving HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can do its work: the database and the object store answer. Anyone may
/// ask, so the answer says only which part is down; the cause (a driver's message can
/// name hosts, users and buckets) goes to the log.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.db.ping().await.map_err(|e| e.to_string());
    let object_store = state.store.check().await.map_err(|e| e.to_string());
    let status = if database.is_ok() && object_store.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let show = |what: &str, r: Result<(), String>| match r {
        Ok(()) => "ok",
        Err(cause) => {
            tracing::warn!(%cause, "{what} is not ready");
            "unavailable"
        }
    };
    let body = serde_json::json!({ "database": show("database", database), "object_store": show("object store", object_store) });
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
    let (size, idle) = state.db.pool_stats();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle as u32) as f64);
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

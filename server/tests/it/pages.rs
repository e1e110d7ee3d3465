//! Server-rendered pages and operations endpoints.

use crate::support::{Backend, TestApp};
use serde_json::Value;

#[tokio::test]
async fn the_first_response_is_complete_html() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    // Security headers; the CSP lets the WASM app run (the e2e tests fail on any
    // violation, which the browser reports as a console error).
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'") && csp.contains("object-src 'none'"), "{csp}");
    assert_eq!((res.headers()["x-content-type-options"].to_str().unwrap(), res.headers()["x-frame-options"].to_str().unwrap()), ("nosniff", "DENY"));
    let html = res.text().await.unwrap();
    // Content is in the HTML itself (visible with JavaScript off), resources resolved.
    assert!(html.contains("<title>Switchboard</title>"), "{html}");
    assert!(html.contains("SQLite (embedded)"), "system status rendered on the server");
    assert!(html.contains("data-testid=\"system-status\""));
    assert!(html.contains("/pkg/switchboard.js") && html.contains("/pkg/switchboard.css"), "hydration scripts linked");
    assert!(html.contains("rel=\"icon\""));

    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff", "on errors too");
    assert!(res.text().await.unwrap().contains("Not found"));
    app.stop().await;
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz").await.text().await.unwrap(), "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!((body["database"].as_str(), body["object_store"].as_str()), (Some("ok"), Some("ok")));

    // Request ids: generated, or kept when a proxy sent a sane one.
    let res = app.get("/healthz").await;
    assert_eq!(res.headers()["x-request-id"].len(), 16);
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "proxy-abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "proxy-abc-123");

    app.get("/api/v1/me").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains(r#"route="/api/v1/me""#) && metrics.contains(r#"status="401""#), "{metrics}");
    assert!(metrics.contains("db_pool_connections"));
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_object_store_is_gone() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.store = app::platform::settings::StoreSettings::S3(app::platform::object_store::S3Settings {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "gone".into(),
            region: "us-east-1".into(),
            access_key: Some("k".into()),
            secret_key: Some("s".into()),
            path_style: true,
        })
    })
    .await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_ne!(body["object_store"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_covers_the_rest_routes() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/tokens", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/tokens", "get"),
        ("/api/v1/me/tokens/{id}", "delete"),
    ] {
        let op = &paths.get(path).unwrap_or_else(|| panic!("{path} missing"))[method];
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // Named states are documented with the names the API sends, not the Rust variants.
    let schemas = &doc["components"]["schemas"];
    for (schema, names) in [
        ("DeliveryState", &["pending", "delivered", "dead", "skipped"][..]),
        ("FailurePolicy", &["block", "dead_letter"]),
        ("Role", &["admin", "member"]),
        ("MeetingStatus", &["scheduled", "canceled", "rescheduled"]),
    ] {
        let listed: Vec<&str> = schemas[schema]["enum"].as_array().unwrap_or_else(|| panic!("{schema}: {}", schemas[schema])).iter().filter_map(Value::as_str).collect();
        assert_eq!(listed, names, "{schema}");
    }
    app.stop().await;
}

/// The count of `browser_navigation_seconds` samples for (route, phase) in `/metrics`.
async fn navigation_samples(app: &TestApp, route: &str, phase: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("browser_navigation_seconds_count{"))
        .filter(|l| l.contains(&format!("route=\"{route}\"")) && l.contains(&format!("phase=\"{phase}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}

#[tokio::test]
async fn navigation_timings_reach_the_metrics_by_route_and_nothing_else() {
    let running = TestApp::spawn(Backend::Sqlite).await;
    let app = &running;
    let send = |body: Value| async move { app.post_json("/beacon", &body).await };
    let sample = |path: &str| serde_json::json!({"path": path, "ttfb_ms": 12.5, "dom_ready_ms": 80, "hydrated_ms": 340});
    let (login, subscriber, other) = (
        navigation_samples(app, "/login", "hydrated").await,
        navigation_samples(app, "/broker/subscribers/{id}", "ttfb").await,
        navigation_samples(app, "other", "dom_ready").await,
    );
    for path in ["/login", "/broker/subscribers/7", "/no/such/page?x=1", "/wp-admin/../etc"] {
        assert_eq!(send(sample(path)).await.status(), 204, "{path}");
    }
    // Counted under the route pattern: a path with an id, or no page at all, adds no series.
    assert_eq!(navigation_samples(app, "/login", "hydrated").await, login + 1);
    assert_eq!(navigation_samples(app, "/broker/subscribers/{id}", "ttfb").await, subscriber + 1);
    assert!(navigation_samples(app, "other", "dom_ready").await >= other + 2);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains("/broker/subscribers/7") && !text.contains("wp-admin"), "paths as sent never become labels");

    // Bad samples are refused with the field named, and change nothing.
    let mut negative = sample("/login");
    negative["hydrated_ms"] = (-1).into();
    crate::support::assert_error(send(negative).await, 400, "invalid_field", Some("hydrated_ms")).await;
    let res = app.client.post(app.url("/beacon")).body("not json").send().await.unwrap();
    crate::support::assert_error(res, 400, "bad_request", None).await;
    assert_eq!(navigation_samples(app, "/login", "hydrated").await, login + 1);

    // One address cannot flood it: past the per-minute allowance, 429.
    let mut statuses = Vec::new();
    for _ in 0..610 {
        statuses.push(send(sample("/")).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    running.stop().await;
}

//! Building and running the application: state, router, background tasks, shutdown.

use crate::{jobs, openapi::ApiDoc, ops};
use anyhow::Context;
use app::broker::delivery::Dispatcher;
use app::error::AppError;
use app::broker::service::Sequencer;
use app::platform::changes::ChangeHub;
use app::platform::db::Db;
use app::platform::guards::{enforce_limits, reject_cross_site, RequestLimits};
use app::platform::crypto::SecretBox;
use app::platform::http::{request_id, security_headers, server_fn_error_status, track_metrics, HeaderPolicy};
use app::platform::jobs::{JobRegistry, JobRunner};
use app::platform::object_store::{LocalFolder, S3Store, SharedStore};
use app::platform::settings::{Settings, StoreSettings};
use app::platform::state::AppState;
use app::{shell, App};
use axum::routing::get;
use axum::{middleware, Json, Router};
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use migrations::MigratorTrait;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// What to run besides the HTTP server.
#[derive(Clone, Debug)]
pub struct Options {
    pub settings: Settings,
    /// Run the job runner and the webhook dispatcher in this process (the default; tests
    /// may turn them off to drive them by hand).
    pub run_jobs: bool,
}


/// Reads the `LEPTOS_*` variables cargo-leptos sets, with defaults that work when the
/// binary is started directly from the repository root.
pub fn leptos_options(listen: &str) -> LeptosOptions {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    LeptosOptions::builder()
        .output_name(var("LEPTOS_OUTPUT_NAME", "switchboard"))
        .site_root(var("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(var("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(listen.parse::<std::net::SocketAddr>().unwrap_or_else(|_| ([127, 0, 0, 1], 3000).into()))
        .build()
}

#[tracing::instrument(skip_all, fields(store))]
pub async fn open_store(settings: &Settings) -> anyhow::Result<SharedStore> {
    let store: SharedStore = match &settings.store {
        StoreSettings::Folder(dir) => Arc::new(LocalFolder::new(dir).with_context(|| format!("object folder {dir}"))?),
        StoreSettings::S3(s3) => {
            let store = S3Store::new(s3);
            if std::env::var("S3_CREATE_BUCKET").is_ok_and(|v| v == "true" || v == "1") {
                store.ensure_bucket().await.context("creating the S3 bucket")?;
            }
            Arc::new(store)
        }
    };
    tracing::Span::current().record("store", store.describe());
    Ok(store)
}

/// Applies pending migrations over a connection pool of their own. SQLite connections
/// cache the schema they have read, and a statement prepared against a stale cache fails
/// outright (e.g. an upsert that cannot see a unique index created a moment ago), so the
/// application's pool is opened only after the schema is final.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let pool = app::platform::db::PoolSettings { max_connections: Some(2) };
    let db = Db::connect_with(database_url, pool).await.context("connecting to the database")?;
    migrations::Migrator::up(&db.conn, None).await.context("running migrations")?;
    db.conn.close().await.context("closing the migration connection")?;
    Ok(())
}

/// The key that seals the database's secrets. Required: processes sharing a database
/// must share it, so it cannot be made up per process (the embedded run has one
/// generated into its data folder by `Settings::with_dev_secrets`).
fn sealer(settings: &Settings) -> anyhow::Result<SecretBox> {
    let key = settings.secret_key.as_deref().context(
        "SB_SECRET_KEY is not set: it seals webhook signing secrets and calendar feed addresses in the database, \
         and every process on one database needs the same one (generate it with `openssl rand -base64 32`)",
    )?;
    SecretBox::from_config(key).map_err(|e| anyhow::anyhow!(e))
}

/// Connects to the database (migrating it unless told not to) and the object store.
pub async fn open_state(settings: Settings) -> anyhow::Result<AppState> {
    if settings.migrate_on_start {
        migrate(&settings.database_url).await?;
    }
    let sealer = sealer(&settings)?;
    let db = Db::connect_with(&settings.database_url, settings.db_pool).await.context("connecting to the database")?;
    let store = open_store(&settings).await?;
    app::broker::service::install(&db);
    app::broker::service::seed_internal_topics(&db).await.map_err(AppError::into_failure)?;
    let state = AppState {
        leptos_options: leptos_options(&settings.listen),
        parts: Arc::new(crate::compose::parts(&settings, &db)),
        db,
        store,
        changes: ChangeHub::new(),
        sealer,
        settings: Arc::new(settings),
    };
    seal_legacy_secrets(&state).await?;
    Ok(state)
}

/// Secrets earlier versions stored in clear are sealed (a no-op once done).
async fn seal_legacy_secrets(state: &AppState) -> anyhow::Result<()> {
    let secrets = app::broker::service::seal_legacy_secrets(&state.db, &state.sealer).await.map_err(AppError::into_failure)?;
    let feeds = app::scheduler::feeds::seal_legacy_feeds(state).await.map_err(AppError::into_failure)?;
    if secrets + feeds > 0 {
        tracing::info!(secrets, feeds, "sealed secrets an earlier version stored in clear");
    }
    Ok(())
}

/// The REST API (every route documented in the OpenAPI document) and that document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", app::accounts::http::api_routes())
        .nest("/api/v1", app::broker::http::api_routes())
        .nest("/api/v1", app::chat::http::api_routes())
        .nest("/api/v1", app::chat::http::v1_only_routes())
        .nest("/api/v1", app::meetings::http::api_routes())
        .nest("/api/v1", app::scheduler::http::api_routes())
        .nest("/api/v1", app::wages::http::api_routes())
        .merge(app::scheduler::http::feed_routes())
        // The chat contract of the original exercise, unchanged, at the root.
        .merge(app::chat::http::api_routes())
        .merge(app::meetings::http::webhook_routes())
        .merge(app::broker::http::webhook_routes())
        .split_for_parts()
}

/// The OpenAPI document's own address.
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// One way in: an HTTP method and a path pattern (`{param}` for parameters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub method: String,
    pub path: String,
    pub kind: EndpointKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EndpointKind {
    Rest,
    ServerFunction,
    Page,
    Operations,
}

/// Every entry point the router serves, from the same sources [`router`] is built from:
/// the OpenAPI routes, the server functions Leptos registered, the pages and the
/// operations table. The authorization test holds each to a rule, so a new one cannot
/// slip in unchecked. (Everything else the router answers is the static file fallback.)
pub fn endpoints() -> Vec<Endpoint> {
    let (_, openapi) = api();
    let mut out: Vec<Endpoint> = openapi
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let item = serde_json::to_value(item).unwrap_or_default();
            let methods: Vec<String> = item.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            let path = path.clone();
            methods
                .into_iter()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| Endpoint { method: m.to_ascii_uppercase(), path: path.clone(), kind: EndpointKind::Rest })
        })
        .collect();
    out.push(Endpoint { method: "GET".into(), path: OPENAPI_PATH.into(), kind: EndpointKind::Operations });
    out.extend(ops::table().into_iter().map(|(path, method, _)| Endpoint { method: method.into(), path: path.into(), kind: EndpointKind::Operations }));
    out.extend(leptos::server_fn::axum::server_fn_paths().map(|(path, method)| Endpoint {
        method: method.to_string(),
        path: path.to_owned(),
        kind: EndpointKind::ServerFunction,
    }));
    out.extend(page_routes().iter().map(|r| Endpoint { method: "GET".into(), path: r.path().to_owned(), kind: EndpointKind::Page }));
    out.sort();
    out.dedup();
    out
}

/// The app's page routes, generated once per process. Generating them renders the app
/// with a process-wide flag set that makes every resource created meanwhile wait
/// forever (leptos issue #4773): a page rendered by any server of this process while
/// another router was being built hung until the request timeout (seen as a rare 503
/// in the test suite, where many apps start in one process). Once, before any router
/// exists, no render can overlap it.
fn page_routes() -> &'static [leptos_axum::AxumRouteListing] {
    static ROUTES: std::sync::LazyLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::LazyLock::new(|| generate_route_list(App));
    &ROUTES
}

/// The route pattern of a page path, for metrics: `/broker/subscribers/7` is
/// `/broker/subscribers/:id`; a path no page has is `other`. As few values as routes.
pub fn route_of(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    page_routes()
        .iter()
        .map(|r| r.path())
        .find(|pattern| {
            let want: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
            want.len() == segments.len() && want.iter().zip(&segments).all(|(w, s)| w.starts_with(':') || w.starts_with('{') || w == s)
        })
        .unwrap_or("other")
}

/// Every route: REST (documented in `/api/openapi.json`), operations, server functions
/// and the server-rendered pages, with request ids, tracing and metrics around them.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    let routes = page_routes().to_vec();
    let options = state.leptos_options.clone();
    let limits = RequestLimits {
        max_body_bytes: state.settings.http.max_body_bytes,
        max_upload_bytes: state.settings.part::<app::wages::settings::WagesSettings>().upload_max_bytes,
        timeout: state.settings.http.request_timeout,
    };
    let headers = HeaderPolicy { hsts: state.settings.public_url.starts_with("https://") };

    Router::new()
        .merge(api)
        .route(OPENAPI_PATH, get(move || async move { Json(openapi.as_ref().clone()) }))
        .merge(ops::routes())
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Inner first: metrics see the status after server-function errors are mapped.
        .route_layer(middleware::from_fn(server_fn_error_status))
        .route_layer(middleware::from_fn(track_metrics))
        .layer(middleware::from_fn_with_state(limits, enforce_limits))
        .layer(middleware::from_fn(reject_cross_site))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn_with_state(headers, security_headers))
        .with_state(state)
}

/// Queues the demo of every capability (wages: OEWS market + labelled synthetic sample;
/// the demo calendar, sample meetings and the broker's demo topic): jobs, so serving starts at once
/// while they load. Each seed does nothing when its part is already there.
async fn queue_demo(state: &AppState) -> anyhow::Result<()> {
    let present = async {
        Ok::<_, app::error::AppError>(
            app::wages::service::has_market_data(&state.db).await? && app::wages::service::has_synthetic(&state.db).await?,
        )
    };
    if !present.await.map_err(AppError::into_failure)? {
        let job = app::wages::demo::SEED_JOB;
        app::platform::jobs::enqueue_unique(&state.db.conn, job, &serde_json::json!({}), &format!("demo:{job}")).await?;
        tracing::info!("wage portal demo data queued");
    }
    // Never two at a time (several processes may start at once); one that died is
    // queued again at the next start.
    for job in [app::broker::demo::SEED_JOB, app::scheduler::demo::SEED_JOB, app::meetings::demo::SEED_JOB] {
        app::platform::jobs::enqueue_unique(&state.db.conn, job, &serde_json::json!({}), &format!("demo:{job}")).await?;
    }
    Ok(())
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    run_jobs: bool,
    registry: JobRegistry,
}

impl Application {
    pub async fn build(mut options: Options) -> anyhow::Result<Self> {
        ops::recorder();
        let listener = TcpListener::bind(&options.settings.listen)
            .await
            .with_context(|| format!("binding {}", options.settings.listen))?;
        if options.settings.demo_data {
            // The demo's receiver is this server itself, at the address it really got.
            let base = app::broker::demo::receiver_base(listener.local_addr()?);
            options.settings.part_mut::<app::broker::settings::BrokerSettings>().demo_receiver = Some(base);
        }
        let registry = jobs::registry(&options.settings);
        let state = open_state(options.settings).await?;
        // Everything that needs the database happens here, before serving: once running,
        // the server rides out database outages (webhooks spool, loops retry).
        state.changes.prime(&state.db).await.context("reading the change log position")?;
        if options.run_jobs {
            JobRunner::new(state.clone(), registry.clone()).seed_periodic().await.context("seeding periodic jobs")?;
            if state.settings.demo_data {
                queue_demo(&state).await?;
            }
        }
        if let Some(token) = app::accounts::service::issue_setup_token(&state).await.map_err(AppError::into_failure)? {
            tracing::warn!(
                setup_token = %token,
                "this installation has no administrator: run `server create-admin --username NAME`, \
                 or sign up with this one-time setup token (it works until an administrator exists)"
            );
        }
        Ok(Self { listener, state, run_jobs: options.run_jobs, registry })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("bound listener").port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `stop` resolves, then drains: open streams end, in-flight requests
    /// and jobs finish (jobs cut short are retried by another runner after their lease).
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, state, run_jobs, registry } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut background = Vec::new();
        // Pages of this process see a change within one poll of its commit, wherever it
        // was written: 50 ms keeps a webhook → open page well under 100 ms.
        background.push(tokio::spawn(state.changes.clone().run_poller(state.db.clone(), Duration::from_millis(50))));
        // Builds the wage copy now and again whenever an import finishes anywhere.
        background.push(tokio::spawn(state.part::<app::wages::analytics::WageCopy>().clone().follow(state.clone())));
        // The System page's last hour of this process's metrics.
        background.push(tokio::spawn(state.part::<app::system::sampling::History>().clone().run(state.clone(), stop_rx.clone())));
        // Forgets checked credentials when any process revokes one.
        background.push(tokio::spawn(state.part::<app::accounts::service::AuthGuard>().credentials.clone().follow(state.changes.clone())));
        if run_jobs {
            let runner = JobRunner::new(state.clone(), registry);
            background.push(tokio::spawn(runner.run(stop_rx.clone())));
            background.push(tokio::spawn(Sequencer::new(state.db.clone()).run(stop_rx.clone())));
            background.push(tokio::spawn(app::meetings::service::Folder::new(state.clone()).run(stop_rx.clone())));
            background.push(tokio::spawn(Dispatcher::new(state.clone()).run(stop_rx)));
        }
        tracing::info!(addr = %listener.local_addr()?, store = %state.store.describe(), "Switchboard listening");

        let hub = state.changes.clone();
        let limits = crate::serve::Limits {
            header_read_timeout: state.settings.http.header_read_timeout,
            max_connections: state.settings.http.max_connections,
            drain: state.settings.http.request_timeout + Duration::from_secs(5),
        };
        let app = router(state);
        crate::serve::serve(listener, app, limits, async move {
            stop.await;
            tracing::info!("shutting down");
            hub.close();
            let _ = stop_tx.send(true);
        })
        .await?;
        for task in background {
            let _ = tokio::time::timeout(Duration::from_secs(35), task).await;
        }
        Ok(())
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

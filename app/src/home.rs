//! The overview page: what Switchboard is, and the live state of this installation.

use crate::accounts::Auth;
use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::A;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstallationStatus {
    pub database: String,
    pub object_store: String,
    pub jobs_due: u64,
    pub version: String,
    /// The installation holds demo data (`SB_DEMO_DATA`).
    pub demo: bool,
}

#[server(prefix = "/_fn", endpoint = "system_status")]
pub async fn system_status() -> Result<InstallationStatus, AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let caller = crate::accounts::caller().await.ok().flatten();
    Ok(InstallationStatus {
        database: if state.db.is_mysql() { "MySQL / MariaDB" } else { "SQLite (embedded)" }.into(),
        object_store: object_store_for(&state, caller.as_ref()),
        jobs_due: crate::platform::jobs::queue_depth(&state.db).await?,
        version: env!("CARGO_PKG_VERSION").into(),
        demo: state.settings.demo_data,
    })
}

/// Where objects live, in as much detail as the caller may know: the S3 endpoint and
/// bucket or the folder path only for admins (they help an attacker aim), the kind for
/// everyone else.
#[cfg(feature = "ssr")]
fn object_store_for(state: &crate::platform::state::AppState, caller: Option<&crate::accounts::Caller>) -> String {
    use crate::platform::settings::StoreSettings;
    if caller.is_some_and(|c| c.is_admin()) {
        return state.store.describe();
    }
    match state.settings.store {
        StoreSettings::S3(_) => "S3-compatible".into(),
        StoreSettings::Folder(_) => "local folder".into(),
    }
}

/// Where the demo data is (`SB_DEMO_DATA`, on by default on the embedded run): every
/// capability has something to look at without a single curl command.
#[component]
fn DemoTour() -> impl IntoView {
    view! {
        <section class="card" data-testid="demo-tour">
            <h2>"Demo data: where to look"</h2>
            <p class="hint">"This installation holds sample data, each piece marked “(demo)” or “synthetic”."</p>
            <ul>
                <li><A href="/calendar?user=demo">"The demo calendar"</A>": a shared calendar with events around today."</li>
                <li><A href="/meetings">"Meetings"</A>": sample bookings from signed Calendly webhooks; “Send a test booking” adds one live."</li>
                <li><A href="/broker">"Webhook broker"</A>" (admins): topic " <code>"demo:ping"</code>
                    " delivers to a receiver built into the app; open its subscriber to watch deliveries, a retry and the log, and use “Send test message”."</li>
                <li><A href="/wages">"Wage portal"</A>": real BLS market data and a labelled synthetic sample of filings."</li>
                <li><A href="/inbox">"Chat"</A>": the installation's first administrator finds two messages from " <code>"demo"</code>
                    " (one expires in minutes and moves to cold storage); leave an expiring message for anyone."</li>
                <li><A href="/system">"System"</A>" (admins): request rates and latency by route, jobs, broker and archive activity over the last hour."</li>
            </ul>
        </section>
    }
}

#[component]
pub fn HomePage() -> impl IntoView {
    let auth = Auth::expect();
    let status = Resource::new(|| (), |_| system_status());
    view! {
        <main class="page">
            <h1>"Switchboard"</h1>
            <p class="lead">
                "One place for a small company's calendar, bookings, chat, webhooks and wage data."
            </p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match auth.viewer.await {
                        Ok(Some(v)) => view! {
                            <p class="alert ok" data-testid="welcome">"Signed in as " {v.display_name} "."</p>
                        }.into_any(),
                        _ => view! {
                            <p class="alert warn">
                                <A href="/login">"Sign in"</A> " or " <A href="/signup">"create an account"</A>
                                " to start."
                            </p>
                        }.into_any(),
                    }
                })}
            </Transition>

            <h2>"This installation"</h2>
            <Suspense fallback=|| view! { <p>"Checking…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(s) => view! {
                            <div class="grid" data-testid="system-status">
                                <div class="card"><div class="stat-label">"Database"</div><div class="stat-text">{s.database}</div></div>
                                <div class="card"><div class="stat-label">"Object store"</div><div class="stat-text mono">{s.object_store}</div></div>
                                <div class="card"><div class="stat-label">"Jobs due now"</div><div class="stat">{s.jobs_due}</div></div>
                                <div class="card"><div class="stat-label">"Version"</div><div class="stat-text">{s.version}</div></div>
                            </div>
                            {s.demo.then(|| view! { <DemoTour/> })}
                        }.into_any(),
                        Err(e) => view! { <p class="alert error">{e.message}</p> }.into_any(),
                    }
                })}
            </Suspense>

            <h2>"For scripts"</h2>
            <div class="card">
                <p>
                    "Every capability has a REST API under " <code>"/api/v1"</code> ", described by "
                    <a href="/api/openapi.json">"the OpenAPI document"</a> ". Authenticate with a personal token from "
                    <A href="/account">"your account page"</A> " (" <code>"Authorization: Bearer …"</code> ")."
                </p>
                <p class="hint">"Operations: " <a href="/healthz">"/healthz"</a> ", " <a href="/readyz">"/readyz"</a> ", "
                    <a href="/metrics">"/metrics"</a> "."</p>
            </div>
        </main>
    }
}

//! Switchboard's isomorphic crate: one module per capability, each holding its shared
//! types, server functions and views, and — behind the `ssr` feature — its tables,
//! queries, REST routes and jobs. The browser build (`hydrate`) never sees the latter.

#![recursion_limit = "256"]

/// Declares a capability's server-only modules (tables, queries, REST routes, jobs): each
/// gets `#[cfg(feature = "ssr")]`, so the browser build never sees them.
macro_rules! ssr_modules {
    ($($vis:vis mod $name:ident;)*) => { $( #[cfg(feature = "ssr")] $vis mod $name; )* };
}

pub mod accounts;
pub mod broker;
pub mod chat;
pub mod error;
pub mod home;
pub mod meetings;
pub mod named;
pub mod scheduler;
pub mod system;
pub mod ui;
pub mod wages;

#[cfg(feature = "ssr")]
pub mod platform;

use accounts::{AccountPage, Auth, LoginPage, SignupPage, UserMenu};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

/// Pages are rendered whole before the first byte is sent: the first response is
/// complete HTML that reads correctly with JavaScript off, and a page may still set its
/// status code while rendering. (Out-of-order streaming would leave Suspense content to
/// inline scripts.)
pub const SSR: SsrMode = SsrMode::Async;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Auth::provide();
    mark_hydrated();

    view! {
        <Stylesheet id="leptos" href="/pkg/switchboard.css"/>
        <Title text="Switchboard"/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand"><span class="brand-mark"></span>"Switchboard"</A>
                <NavLinks/>
                <UserMenu/>
            </header>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=home::HomePage ssr=SSR/>
                <Route path=path!("/login") view=LoginPage ssr=SSR/>
                <Route path=path!("/signup") view=SignupPage ssr=SSR/>
                <Route path=path!("/account") view=AccountPage ssr=SSR/>
                <Route path=path!("/calendar") view=scheduler::CalendarScreen ssr=SSR/>
                <Route path=path!("/settings") view=SettingsPage ssr=SSR/>
                <Route path=path!("/meetings") view=meetings::MeetingsPage ssr=SSR/>
                <Route path=path!("/inbox") view=chat::InboxPage ssr=SSR/>
                <Route path=path!("/inbox/message") view=chat::MessagePage ssr=SSR/>
                <Route path=path!("/wages") view=wages::WagesPage ssr=SSR/>
                <Route path=path!("/broker") view=broker::BrokerPage ssr=SSR/>
                <Route path=path!("/system") view=system::SystemPage ssr=SSR/>
                <Route path=path!("/broker/subscribers/:id") view=broker::SubscriberPage ssr=SSR/>
                <Route path=path!("/book/cancel/:token") view=scheduler::CancelBookingScreen ssr=SSR/>
                <Route path=path!("/book/:username") view=scheduler::BookingScreen ssr=SSR/>
            </Routes>
        </Router>
    }
}

/// Links to the capabilities this viewer can use (admin pages only for admins).
#[component]
fn NavLinks() -> impl IntoView {
    let auth = Auth::expect();
    view! {
        <nav class="nav">
            <A href="/" exact=true>"Overview"</A>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let viewer = auth.viewer.await.ok().flatten();
                    let admin = viewer.as_ref().is_some_and(|v| v.is_admin());
                    view! {
                        {viewer.is_some().then(|| view! {
                            <A href="/calendar">"Calendar"</A>
                            <A href="/meetings">"Meetings"</A>
                            <A href="/inbox">"Inbox"</A>
                            <A href="/wages">"Wages"</A>
                        })}
                        {admin.then(|| view! { <A href="/broker">"Broker"</A> <A href="/system">"System"</A> })}
                    }
                })}
            </Transition>
        </nav>
    }
}

/// Settings: the profile (accounts), the calendar's feed address, booking page and other
/// calendars (scheduler), side by side; composed here so neither capability needs the other.
#[component]
fn SettingsPage() -> impl IntoView {
    view! {
        <main class="page">
            <h1>"Settings"</h1>
            <accounts::ProfileCard/>
            <scheduler::FeedCard/>
            <scheduler::BookingCard/>
            <scheduler::SubscriptionsCard/>
        </main>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="page">
            <h1>"Not found"</h1>
            <p class="lead">"There is nothing at this address."</p>
            <A href="/">"Back to the overview"</A>
        </main>
    }
}

/// Sets `data-hydrated="true"` on `<body>` once the WASM app has taken over the page.
/// Effects never run during server rendering, so the attribute proves hydration.
/// It then reports this page load's navigation timing to the server (see
/// [`browser::report_navigation`]).
fn mark_hydrated() {
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
            let _ = body.set_attribute("data-hydrated", "true");
            browser::report_navigation("/beacon");
        }
    });
}

#[cfg(feature = "hydrate")]
mod browser {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = r#"
export function report_navigation(url) {
  // Once per page load, on the first hydration: time to first byte, DOM ready and
  // hydrated, in ms since navigation start. sendBeacon survives the page going away and
  // never delays it; a browser without it reports nothing.
  const nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
  if (!nav || !navigator.sendBeacon) return;
  const sample = {
    path: location.pathname,
    ttfb_ms: nav.responseStart,
    dom_ready_ms: nav.domContentLoadedEventEnd || performance.now(),
    hydrated_ms: performance.now(),
  };
  navigator.sendBeacon(url, JSON.stringify(sample));
}
"#)]
    extern "C" {
        /// Sends this page load's navigation timing to `url` (the server's beacon):
        /// the page's path and three durations, nothing about the visitor.
        pub fn report_navigation(url: &str);
    }
}

//! Small view pieces shared by every capability's pages.

use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::A;
use serde::{de::DeserializeOwned, Serialize};

/// Who a page is for, which decides what a failed load shows.
#[derive(Clone, Copy, Debug)]
pub enum Audience {
    /// Errors are shown as they are.
    Anyone,
    /// Signed-in people: a 401 offers to sign in and come back to `next`; `to` finishes
    /// the sentence ("Sign in" + " to use your inbox.").
    SignedIn { next: &'static str, to: &'static str },
    /// Admins: a 401 or 403 shows the admin notice.
    Admins,
    /// Signed-in people, on a part of a page beside another that already asks a visitor
    /// to sign in: a 401 shows nothing.
    SignedInSilently,
}

/// The scaffolding around a page's data, the same on every page: "Loading…" until it
/// arrives, then `page` with it; when loading failed, what the audience calls for, else
/// the error as an alert (naming the field it concerns, for tests and styles).
#[component]
pub fn Loaded<T, V, F>(data: Resource<Result<T, AppError>>, audience: Audience, page: F) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let page = page.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(value) => page(value).into_any(),
                        Err(e) => load_failure(e, audience),
                    }
                })
            }}
        </Suspense>
    }
}

fn load_failure(e: AppError, audience: Audience) -> AnyView {
    match audience {
        Audience::SignedIn { next, to } if e.status == 401 => {
            view! { <p class="alert warn"><A href=format!("/login?next={next}")>"Sign in"</A>{to}</p> }.into_any()
        }
        Audience::Admins if e.status == 401 || e.status == 403 => view! { <AdminOnly/> }.into_any(),
        Audience::SignedInSilently if e.status == 401 => ().into_any(),
        _ => view! { <p class="alert error" role="alert" data-field=e.field.clone()>{e.message}</p> }.into_any(),
    }
}

/// The error of the last action, unless it belongs beside a field (`unless_field`).
#[component]
pub fn ErrorAlert(
    #[prop(into)] error: Signal<Option<AppError>>,
    #[prop(optional)] unless_field: bool,
) -> impl IntoView {
    move || {
        error
            .get()
            .filter(|e| !(unless_field && e.field.is_some()))
            .map(|e| view! { <p class="alert error" role="alert">{e.message}</p> })
    }
}

/// The error of the last action if it concerns `field`.
#[component]
pub fn FieldError(#[prop(into)] error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || {
        error
            .get()
            .filter(|e| e.field.as_deref() == Some(field))
            .map(|e| view! { <span class="field-error" role="alert">{e.message}</span> })
    }
}

/// A required text input with its label, and beside it the action's error for its field
/// (`name`).
#[component]
pub fn TextField(
    id: &'static str,
    name: &'static str,
    label: &'static str,
    #[prop(into)] error: Signal<Option<AppError>>,
    /// The input's `type` (default `text`).
    #[prop(optional)]
    kind: Option<&'static str>,
    #[prop(optional)] maxlength: Option<u32>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] narrow: bool,
) -> impl IntoView {
    view! {
        <div class="field" class:narrow=narrow>
            <label for=id>{label}</label>
            <input id=id name=name type=kind.unwrap_or("text") required maxlength=maxlength autocomplete=autocomplete placeholder=placeholder/>
            <FieldError error field=name/>
        </div>
    }
}

/// A polite live region (`role="status"`): screen readers announce its text when it
/// changes, without moving focus. The element stays while its text re-renders inside it
/// (a region that is itself replaced is not announced), so put the `Transition` inside.
#[component]
pub fn LiveStatus(children: Children) -> impl IntoView {
    view! { <p class="sr-only" role="status" aria-live="polite" data-testid="live-status">{children()}</p> }
}

/// A timestamp (ms since the epoch), rendered identically on the server and in the
/// browser (UTC) so hydration never disagrees; the ISO value is in `datetime`.
#[component]
pub fn When(ms: i64) -> impl IntoView {
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let iso = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = at.format("%Y-%m-%d %H:%M UTC").to_string();
    view! { <time datetime=iso>{text}</time> }
}

/// Ticks whenever the server pushes a change on the SSE stream at `url`;
/// pages key their resources on it to refresh without a reload. Bursts are coalesced
/// into one tick per 300 ms. Only the browser connects (SSR renders the first state),
/// and the connection closes when the page goes away. The browser's EventSource
/// reconnects by itself, sending Last-Event-ID, so nothing is missed across drops.
pub fn live_ticks(url: String) -> ReadSignal<u64> {
    let (ticks, set_ticks) = signal(0u64);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let url = url.clone();
        leptos::task::spawn_local_scoped_with_cancellation(async move {
            use futures::StreamExt;
            use std::{cell::Cell, rc::Rc};
            let Ok(mut source) = gloo_net::eventsource::futures::EventSource::new(&url) else { return };
            // Every change event is named "change" (platform::changes::EVENT).
            let Ok(mut events) = source.subscribe("change") else { return };
            let scheduled = Rc::new(Cell::new(false));
            while let Some(item) = events.next().await {
                if item.is_err() || scheduled.replace(true) {
                    continue;
                }
                let scheduled = scheduled.clone();
                set_timeout(
                    move || {
                        scheduled.set(false);
                        set_ticks.update(|n| *n += 1);
                    },
                    std::time::Duration::from_millis(300),
                );
            }
            drop(source); // kept alive until here: dropping it closes the stream
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, set_ticks);
    ticks
}

/// A page body for people who may not see it.
#[component]
pub fn AdminOnly() -> impl IntoView {
    view! {
        <p class="alert warn">
            "This page is for administrators. "
            <leptos_router::components::A href="/login">"Sign in"</leptos_router::components::A>
            " with an admin account."
        </p>
    }
}

/// The current time in ms, starting from the server's `start` and advanced every second
/// in the browser (the server renders `start`, so hydration sees the same text).
pub fn ticking_clock(start: i64) -> ReadSignal<i64> {
    let (now, set_now) = signal(start);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let began = js_sys::Date::now();
        if let Ok(handle) = set_interval_with_handle(
            move || set_now.set(start + (js_sys::Date::now() - began) as i64),
            std::time::Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_now;
    now
}

/// "42 s", "3 min 05 s", "2 h 10 min", "3 d 4 h".
pub fn duration_text(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Sends a file the user chose as a request body to a REST route (the browser streams
/// it; no form encoding) and returns the JSON answer, or the error message the route
/// answered with.
#[cfg(feature = "hydrate")]
pub async fn post_file(url: &str, content_type: &str, file: web_sys::File) -> Result<serde_json::Value, String> {
    let res = gloo_net::http::Request::post(url)
        .header("content-type", content_type)
        .body(file)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    if res.ok() {
        return Ok(body);
    }
    Err(body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| format!("upload failed ({})", res.status())))
}

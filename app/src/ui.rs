//! Small view pieces shared by every capability's pages.

use crate::error::AppError;
use leptos::prelude::*;

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

/// A timestamp (ms since the epoch), rendered identically on the server and in the
/// browser (UTC) so hydration never disagrees; the ISO value is in `datetime`.
#[component]
pub fn When(ms: i64) -> impl IntoView {
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let iso = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = at.format("%Y-%m-%d %H:%M UTC").to_string();
    view! { <time datetime=iso>{text}</time> }
}

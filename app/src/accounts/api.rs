//! Accounts' server functions (what the pages call) and the caller of a request. Each parses its input, calls one service function
//! and maps the result; the REST handlers in `http.rs` call the same services.

use super::*;

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The actions and the signed-in viewer, shared by the whole app through context.
#[derive(Clone, Copy)]
pub struct Auth {
    pub log_in: ServerAction<LogIn>,
    pub sign_up: ServerAction<SignUp>,
    pub log_out: ServerAction<LogOut>,
    pub viewer: Resource<Result<Option<Viewer>, AppError>>,
}

impl Auth {
    /// Creates the actions and a viewer resource that reloads after each of them.
    pub fn provide() -> Self {
        let log_in = ServerAction::<LogIn>::new();
        let sign_up = ServerAction::<SignUp>::new();
        let log_out = ServerAction::<LogOut>::new();
        let viewer = Resource::new(
            move || (log_in.version().get(), sign_up.version().get(), log_out.version().get()),
            |_| current_viewer(),
        );
        let auth = Self { log_in, sign_up, log_out, viewer };
        provide_context(auth);
        auth
    }

    pub fn expect() -> Self {
        expect_context::<Self>()
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use crate::platform::state::AppState;
    use axum::http::request::Parts;

    pub fn request_parts() -> Result<Parts, AppError> {
        leptos::prelude::use_context::<Parts>().ok_or_else(|| AppError::internal_because("the request parts are missing from the Leptos context"))
    }

    /// Adds a `Set-Cookie` for the session (`None` clears it).
    pub fn set_session_cookie(state: &AppState, token: Option<&str>) {
        let cookie = super::http::session_cookie(state, token);
        if let (Some(options), Ok(value)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            axum::http::HeaderValue::from_str(&cookie),
        ) {
            options.append_header(axum::http::header::SET_COOKIE, value);
        }
    }

    /// The signed-in caller of a server function, if any.
    pub async fn caller() -> Result<Option<super::Caller>, AppError> {
        let state = AppState::from_context()?;
        super::http::resolve_caller(&state, &request_parts()?.headers).await
    }

    /// The signed-in caller of a server function, or 401.
    pub async fn require_caller() -> Result<super::Caller, AppError> {
        caller().await?.ok_or_else(|| AppError::unauthorized("please sign in"))
    }

    /// The client's address (for rate limits) of a server function's request.
    pub fn client() -> Result<Option<std::net::IpAddr>, AppError> {
        let state = AppState::from_context()?;
        Ok(crate::platform::http::client_addr(&request_parts()?, &state))
    }
}

#[cfg(feature = "ssr")]
pub use ssr::{caller, client, require_caller};

/// Only local paths are followed after log-in, so a crafted link cannot bounce a user
/// to another site. Browsers drop tabs and newlines from URLs and read `\` as `/`, so
/// `/\t/evil.example` would become `//evil.example`: any control character, space or
/// backslash makes the target the home page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/')
            && !n.starts_with("//")
            && !n.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[server(prefix = "/_fn", endpoint = "current_viewer")]
pub async fn current_viewer() -> Result<Option<Viewer>, AppError> {
    Ok(caller().await?.map(|c| c.viewer))
}

#[server(prefix = "/_fn", endpoint = "log_in")]
pub async fn log_in(username: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let token = service::log_in(&state, ssr::client()?, &username, &password).await?;
    ssr::set_session_cookie(&state, Some(&token));
    leptos_axum::redirect(&safe_next(next.as_deref()));
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "sign_up")]
pub async fn sign_up(username: String, password: String, display_name: Option<String>, setup_token: Option<String>) -> Result<(), AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let form = service::SignUp { username: &username, password: &password, display_name: display_name.as_deref(), setup_token: setup_token.as_deref() };
    let token = service::sign_up_and_log_in(&state, ssr::client()?, form).await?;
    ssr::set_session_cookie(&state, Some(&token));
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "log_out")]
pub async fn log_out() -> Result<(), AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    if let Some(token) = http::session_token(&ssr::request_parts()?.headers) {
        service::close_session(&state, &token).await?;
    }
    ssr::set_session_cookie(&state, None);
    leptos_axum::redirect("/");
    Ok(())
}

/// An API token as the account page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub id: i64,
    pub name: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
}

#[server(prefix = "/_fn", endpoint = "my_tokens")]
pub async fn my_tokens() -> Result<Vec<TokenSummary>, AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let caller = require_caller().await?;
    Ok(service::list_api_tokens(&state.db, &caller)
        .await?
        .into_iter()
        .map(|t| TokenSummary { id: t.id, name: t.name, scopes: t.scopes, created_at: t.created_at, last_used_at: t.last_used_at, expires_at: t.expires_at })
        .collect())
}

/// Issues a token for the signed-in user, who gives the password again, and returns its
/// clear text (shown once). `expires_in_days` empty: until revoked.
#[server(prefix = "/_fn", endpoint = "create_my_token")]
pub async fn create_my_token(name: String, password: String, expires_in_days: Option<String>) -> Result<String, AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let caller = require_caller().await?;
    let days = match expires_in_days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => Some(d.parse::<u32>().map_err(|_| AppError::invalid("expires_in_days", "expires_in_days is a whole number of days"))?),
    };
    Ok(service::issue_api_token_again(&state, &caller, ssr::client()?, &password, &name, days).await?.token)
}

#[server(prefix = "/_fn", endpoint = "revoke_my_token")]
pub async fn revoke_my_token(id: i64) -> Result<(), AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let caller = require_caller().await?;
    service::revoke_api_token(&state, &caller, id).await
}

/// Changes the password; every session ends, and this browser gets a fresh one.
#[server(prefix = "/_fn", endpoint = "change_my_password")]
pub async fn change_my_password(current_password: String, new_password: String) -> Result<(), AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let caller = require_caller().await?;
    if let Some(token) = service::change_password(&state, &caller, &current_password, &new_password).await? {
        ssr::set_session_cookie(&state, Some(&token));
    }
    Ok(())
}

/// Ends every browser session of the account, this one included.
#[server(prefix = "/_fn", endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    use crate::platform::state::AppState;
    let state = AppState::from_context()?;
    let caller = require_caller().await?;
    service::close_all_sessions(&state, &caller).await?;
    ssr::set_session_cookie(&state, None);
    leptos_axum::redirect("/login");
    Ok(())
}

/// The settings page's profile: what others see of the caller, and the zone pages use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    pub display_name: String,
    pub time_zone: String,
    pub calendar_shared: bool,
}

#[server(prefix = "/_fn", endpoint = "settings_load")]
pub async fn load_preferences() -> Result<Preferences, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let me = service::profile_by_id(&state.db.conn, caller.id()).await?.ok_or_else(|| AppError::not_found("user"))?;
    Ok(Preferences { display_name: me.display_name, time_zone: me.time_zone, calendar_shared: me.calendar_shared })
}

#[server(prefix = "/_fn", endpoint = "settings_save")]
pub async fn save_preferences(display_name: String, time_zone: String, calendar_shared: Option<String>) -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    service::update_profile(&state.db, &caller, Some(&display_name), Some(&time_zone), Some(calendar_shared.is_some())).await?;
    Ok(())
}

/// Time zones offered in the settings menu (any IANA name may be typed too).
pub const COMMON_ZONES: &[&str] = &[
    "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Warsaw", "Europe/Helsinki",
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
    "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
];

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_after_log_in() {
        assert_eq!(super::safe_next(Some("/meetings?x=1")), "/meetings?x=1");
        for bad in [
            Some("https://evil.example"),
            Some("//evil.example"),
            Some("/\\evil"),
            Some("/\t/evil.example"),
            Some("/\n/evil.example"),
            Some("/\r//evil.example"),
            Some("/ /evil.example"),
            Some("/\u{7f}/evil.example"),
            None,
        ] {
            assert_eq!(super::safe_next(bad), "/");
        }
    }
}

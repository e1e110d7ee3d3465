//! Who is calling (session cookie or bearer token) and the account REST routes. The
//! extractors here only *build* the caller; what it may do is decided by the services.

use super::domain::{Caller, Role, Viewer};
use super::service::{self, SignUp};
use crate::platform::http::ClientAddr;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::platform::http::ApiJson;
use crate::platform::state::AppState;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub const SESSION_COOKIE: &str = "sb_session";

pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value that hands a browser its session (`None` clears it).
pub fn session_cookie(state: &AppState, token: Option<&str>) -> String {
    let secure = if state.settings.cookie_secure { "; Secure" } else { "" };
    match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            state.settings.session_ttl.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves the caller from the headers. A bearer token that does not check out is an
/// error even when a cookie is present: a script must learn its token is wrong.
pub async fn resolve_caller(state: &AppState, headers: &HeaderMap) -> AppResult<Option<Caller>> {
    if let Some(token) = bearer_token(headers) {
        return match service::caller_for_bearer(state, token).await? {
            Some(caller) => Ok(Some(caller)),
            None => Err(AppError::unauthorized("invalid, expired or revoked API token")),
        };
    }
    match session_token(headers) {
        Some(token) => service::caller_for_session(state, &token).await,
        None => Ok(None),
    }
}

/// Authentication only: a request without valid credentials gets 401 here; everything
/// else is the service's to decide.
impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve_caller(state, &parts.headers)
            .await?
            .ok_or_else(|| AppError::unauthorized("sign in or send Authorization: Bearer <token>"))
    }
}


// ---------------------------------------------------------------------------------------
// REST

#[derive(Deserialize, ToSchema)]
pub struct SignUpRequest {
    /// 3–32 characters: letters, digits, `_`, `.`, `-`.
    username: String,
    /// At least 10 characters, not easily guessed.
    password: String,
    display_name: Option<String>,
    /// The one-time setup token the server logs while the installation has no
    /// administrator: the account that presents it becomes the first one.
    setup_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: i64,
    username: String,
    display_name: String,
    role: Role,
    time_zone: String,
}

impl From<Viewer> for UserView {
    fn from(v: Viewer) -> Self {
        Self { id: v.id, username: v.username, display_name: v.display_name, role: v.role, time_zone: v.time_zone }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    username: String,
    password: String,
    /// A label for the token (default `api token`).
    name: Option<String>,
    /// Extra rights, only those the account's role has (`chat:read`: admins).
    #[serde(default)]
    scopes: Vec<String>,
    /// Days until the token stops working (1–3650); absent: until revoked.
    expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct IssuedTokenView {
    id: i64,
    /// The token itself: shown once, store it now. Send as `Authorization: Bearer <token>`.
    token: String,
    name: String,
    scopes: Vec<String>,
    expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: i64,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
}

/// Create an account. The first administrator comes from the installation's setup (see
/// `setup_token`); everyone else is a member.
#[utoipa::path(post, path = "/auth/signup", tag = "accounts", request_body = SignUpRequest,
    responses(
        (status = 201, description = "account created", body = UserView),
        (status = 400, description = "invalid field", body = ErrorEnvelope),
        (status = 403, description = "invalid setup token", body = ErrorEnvelope),
        (status = 409, description = "username taken, or an administrator exists already", body = ErrorEnvelope),
        (status = 429, description = "too many sign-ups from this address", body = ErrorEnvelope),
        (status = 503, description = "too many password checks at once; retry", body = ErrorEnvelope),
    ))]
async fn signup(State(state): State<AppState>, ClientAddr(client): ClientAddr, ApiJson(req): ApiJson<SignUpRequest>) -> AppResult<(StatusCode, Json<UserView>)> {
    let form = SignUp { username: &req.username, password: &req.password, display_name: req.display_name.as_deref(), setup_token: req.setup_token.as_deref() };
    let viewer = service::sign_up(&state, client, form).await?;
    Ok((StatusCode::CREATED, Json(viewer.into())))
}

/// Exchange a username and password for a personal API token.
#[utoipa::path(post, path = "/auth/tokens", tag = "accounts", request_body = TokenRequest,
    responses(
        (status = 201, description = "token issued", body = IssuedTokenView),
        (status = 400, description = "invalid field", body = ErrorEnvelope),
        (status = 401, description = "wrong username or password", body = ErrorEnvelope),
        (status = 403, description = "a scope the account does not have", body = ErrorEnvelope),
        (status = 429, description = "too many attempts", body = ErrorEnvelope),
        (status = 503, description = "too many password checks at once; retry", body = ErrorEnvelope),
    ))]
async fn create_token(State(state): State<AppState>, ClientAddr(client): ClientAddr, ApiJson(req): ApiJson<TokenRequest>) -> AppResult<(StatusCode, Json<IssuedTokenView>)> {
    use crate::platform::time::to_rfc3339;
    let viewer = service::authenticate(&state, client, &req.username, &req.password).await?;
    let issued = service::issue_api_token(&state.db, &viewer, req.name.as_deref().unwrap_or(""), &req.scopes, req.expires_in_days).await?;
    let body = IssuedTokenView { id: issued.id, token: issued.token, name: issued.name, scopes: issued.scopes, expires_at: issued.expires_at.map(to_rfc3339) };
    Ok((StatusCode::CREATED, Json(body)))
}

/// The calling account.
#[utoipa::path(get, path = "/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorEnvelope)))]
async fn me(caller: Caller) -> Json<UserView> {
    Json(caller.viewer.into())
}

#[derive(Deserialize, ToSchema)]
pub struct ProfileBody {
    display_name: Option<String>,
    /// IANA zone, e.g. `Europe/Paris`: calendars are shown in it.
    time_zone: Option<String>,
    /// Let others see your events in full (else only as free/busy).
    calendar_shared: Option<bool>,
}

/// Change your display name, time zone or calendar sharing.
#[utoipa::path(patch, path = "/me", tag = "accounts", security(("bearer" = [])), request_body = ProfileBody,
    responses((status = 200, body = UserView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)))]
async fn update_me(State(state): State<AppState>, caller: Caller, ApiJson(body): ApiJson<ProfileBody>) -> AppResult<Json<UserView>> {
    let u = service::update_profile(&state.db, &caller, body.display_name.as_deref(), body.time_zone.as_deref(), body.calendar_shared).await?;
    Ok(Json(Viewer::from(u).into()))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: String,
    /// At least 10 characters, not easily guessed.
    new_password: String,
}

/// Change your password. Every browser session of the account ends (sign in again);
/// API tokens keep working.
#[utoipa::path(post, path = "/me/password", tag = "accounts", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 204, description = "changed"), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope), (status = 503, description = "too many password checks at once; retry", body = ErrorEnvelope)))]
async fn change_password(State(state): State<AppState>, caller: Caller, ApiJson(body): ApiJson<PasswordChange>) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let fresh = service::change_password(&state, &caller, &body.current_password, &body.new_password).await?;
    // A browser (cookie) caller gets the fresh session the service opened; a token
    // caller has none to receive.
    Ok(match fresh {
        Some(token) => (StatusCode::NO_CONTENT, [(header::SET_COOKIE, session_cookie(&state, Some(&token)))]).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Sign out everywhere: end every browser session of your account.
#[utoipa::path(delete, path = "/me/sessions", tag = "accounts", security(("bearer" = [])),
    responses((status = 204, description = "every session ended"), (status = 401, body = ErrorEnvelope)))]
async fn end_sessions(State(state): State<AppState>, caller: Caller) -> AppResult<StatusCode> {
    service::close_all_sessions(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's API tokens (never the secrets).
#[utoipa::path(get, path = "/me/tokens", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorEnvelope)))]
async fn list_tokens(State(state): State<AppState>, caller: Caller) -> AppResult<Json<Vec<TokenView>>> {
    use crate::platform::time::to_rfc3339;
    let tokens = service::list_api_tokens(&state.db, &caller).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                scopes: t.scopes.split_whitespace().map(str::to_owned).collect(),
                created_at: to_rfc3339(t.created_at),
                last_used_at: t.last_used_at.map(to_rfc3339),
                expires_at: t.expires_at.map(to_rfc3339),
            })
            .collect(),
    ))
}

/// Revoke one of the caller's API tokens.
#[utoipa::path(delete, path = "/me/tokens/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn revoke_token(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<StatusCode> {
    service::revoke_api_token(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(create_token))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(end_sessions))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
}

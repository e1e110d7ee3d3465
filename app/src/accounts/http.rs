//! Who is calling (session cookie or bearer token) and the account REST routes.

use super::domain::Viewer;
use super::service;
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

/// An authenticated caller. `scopes` is `None` for a browser session (the user's own
/// rights) and the token's scopes for a bearer token.
#[derive(Clone, Debug)]
pub struct Caller {
    pub viewer: Viewer,
    pub scopes: Option<Vec<String>>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.viewer.is_admin()
    }

    /// Admins have every scope; a token has those it was issued with.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.is_admin() || self.scopes.as_ref().is_some_and(|s| s.iter().any(|x| x == scope))
    }

    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() { Ok(()) } else { Err(AppError::forbidden("this needs an admin account")) }
    }
}

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

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves the caller from the headers. A bearer token that does not check out is an
/// error even when a cookie is present: a script must learn its token is wrong.
pub async fn resolve_caller(state: &AppState, headers: &HeaderMap) -> AppResult<Option<Caller>> {
    if let Some(token) = bearer_token(headers) {
        return match service::viewer_for_api_token(&state.db, token).await? {
            Some((viewer, scopes)) => Ok(Some(Caller { viewer, scopes: Some(scopes) })),
            None => Err(AppError::unauthorized("invalid or revoked API token")),
        };
    }
    match session_token(headers) {
        Some(token) => Ok(service::viewer_for_session(&state.db, &token)
            .await?
            .map(|viewer| Caller { viewer, scopes: None })),
        None => Ok(None),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve_caller(state, &parts.headers)
            .await?
            .ok_or_else(|| AppError::unauthorized("sign in or send Authorization: Bearer <token>"))
    }
}

/// The caller if there is one; anonymous requests pass.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(MaybeCaller(resolve_caller(state, &parts.headers).await?))
    }
}

/// An authenticated admin; members get 403.
pub struct AdminCaller(pub Caller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(AdminCaller(caller))
    }
}

/// Refuses a log-in attempt when this username was tried too often recently.
pub fn check_login_rate(state: &AppState, username: &str) -> AppResult<()> {
    state.login_limiter.check(&username.trim().to_ascii_lowercase()).map_err(|wait| {
        AppError::too_many_requests(format!("too many log-in attempts; retry in {} s", wait.as_secs().max(1)))
    })
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
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: i64,
    username: String,
    display_name: String,
    /// `admin` or `member`.
    role: String,
    time_zone: String,
}

impl From<Viewer> for UserView {
    fn from(v: Viewer) -> Self {
        Self { id: v.id, username: v.username, display_name: v.display_name, role: v.role.as_str().into(), time_zone: v.time_zone }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    username: String,
    password: String,
    /// A label for the token (default `api token`).
    name: Option<String>,
    /// Extra scopes, e.g. `["chat:read"]`.
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IssuedTokenView {
    id: i64,
    /// The token itself: shown once, store it now. Send as `Authorization: Bearer <token>`.
    token: String,
    name: String,
    scopes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: i64,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
}

/// Create an account. The first account of an installation becomes admin.
#[utoipa::path(post, path = "/auth/signup", tag = "accounts", request_body = SignUpRequest,
    responses(
        (status = 201, description = "account created", body = UserView),
        (status = 400, description = "invalid field", body = ErrorEnvelope),
        (status = 409, description = "username taken", body = ErrorEnvelope),
    ))]
async fn signup(State(state): State<AppState>, ApiJson(req): ApiJson<SignUpRequest>) -> AppResult<(StatusCode, Json<UserView>)> {
    let viewer = service::sign_up(&state.db, &req.username, &req.password, req.display_name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(viewer.into())))
}

/// Exchange a username and password for a personal API token.
#[utoipa::path(post, path = "/auth/tokens", tag = "accounts", request_body = TokenRequest,
    responses(
        (status = 201, description = "token issued", body = IssuedTokenView),
        (status = 400, description = "invalid field", body = ErrorEnvelope),
        (status = 401, description = "wrong username or password", body = ErrorEnvelope),
        (status = 429, description = "too many attempts", body = ErrorEnvelope),
    ))]
async fn create_token(State(state): State<AppState>, ApiJson(req): ApiJson<TokenRequest>) -> AppResult<(StatusCode, Json<IssuedTokenView>)> {
    check_login_rate(&state, &req.username)?;
    let viewer = service::authenticate(&state.db, &req.username, &req.password).await?;
    let issued = service::issue_api_token(&state.db, viewer.id, req.name.as_deref().unwrap_or(""), &req.scopes).await?;
    let body = IssuedTokenView { id: issued.id, token: issued.token, name: issued.name, scopes: issued.scopes };
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
    let u = service::update_profile(&state.db, caller.viewer.id, body.display_name.as_deref(), body.time_zone.as_deref(), body.calendar_shared).await?;
    Ok(Json(Viewer::from(u).into()))
}

/// The caller's API tokens (never the secrets).
#[utoipa::path(get, path = "/me/tokens", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorEnvelope)))]
async fn list_tokens(State(state): State<AppState>, caller: Caller) -> AppResult<Json<Vec<TokenView>>> {
    use crate::platform::time::to_rfc3339;
    let tokens = service::list_api_tokens(&state.db, caller.viewer.id).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                scopes: t.scopes.split_whitespace().map(str::to_owned).collect(),
                created_at: to_rfc3339(t.created_at),
                last_used_at: t.last_used_at.map(to_rfc3339),
            })
            .collect(),
    ))
}

/// Revoke one of the caller's API tokens.
#[utoipa::path(delete, path = "/me/tokens/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn revoke_token(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<StatusCode> {
    service::revoke_api_token(&state.db, caller.viewer.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(create_token))
        .routes(routes!(me, update_me))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
}

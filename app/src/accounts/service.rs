//! Account use cases: sign-up, log-in, sessions, passwords and personal API tokens. Called
//! by the server functions (UI), the REST handlers and the CLI alike, and the one place
//! that decides who may try a password how often and who becomes an administrator.

use crate::db_write;
use super::domain::{Caller, Credential, NewPassword, Profile, Role, Scope, Username, Viewer};
use super::store::{api_token, claim, session, setup_token, user};
use crate::error::{AppError, AppResult};
use crate::platform::db::{is_unique_violation, Db, WriteTxn};
use crate::platform::guards::address_key;
use crate::platform::rate_limit::RateLimiter;
use crate::platform::secrets::{random_token, sha256_hex};
use super::settings::AuthSettings;
use crate::platform::state::AppState;
use crate::platform::time::now_ms;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

pub const DISPLAY_NAME_MAX: usize = 100;
pub const TOKEN_PREFIX: &str = "sb_";
/// The claim whose holder is the installation's first administrator (one row at most).
const FIRST_ADMIN: &str = "first_admin";
/// Longest lifetime a token may be given.
pub const MAX_TOKEN_DAYS: u32 = 3650;

impl From<user::Model> for Viewer {
    fn from(u: user::Model) -> Self {
        Viewer {
            id: u.id,
            role: u.role,
            username: u.username,
            display_name: u.display_name,
            time_zone: u.time_zone,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Who may try a password how often

/// Limits on everything that costs a password hash. Each hash takes ~19 MiB and tens of
/// milliseconds of a core, so an unlimited sign-up or log-in endpoint is a memory and CPU
/// exhaustion tool, and a per-username limit alone lets one client spray passwords over
/// many accounts. Attempts are counted per username *and* per client address before any
/// hashing, and hashes run a bounded number at a time.
#[derive(Clone)]
pub struct AuthGuard {
    login_by_user: RateLimiter,
    login_by_ip: RateLimiter,
    signup_by_ip: RateLimiter,
    hashing: Arc<Semaphore>,
    hash_wait: Duration,
    pub credentials: CredentialCache,
}

impl AuthGuard {
    pub fn new(s: &AuthSettings) -> Self {
        Self {
            login_by_user: RateLimiter::new(s.login_per_user_per_min, Duration::from_secs(60)),
            login_by_ip: RateLimiter::new(s.login_per_ip_per_min, Duration::from_secs(60)),
            signup_by_ip: RateLimiter::new(s.signup_per_ip_per_hour, Duration::from_secs(3600)),
            hashing: Arc::new(Semaphore::new(s.hash_concurrency)),
            hash_wait: s.hash_wait,
            credentials: CredentialCache::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Recently checked credentials

/// How long a checked token or session is trusted without asking the database again:
/// the bound on how late a revocation takes effect. A revocation in this process clears
/// the cache at once; one in another process reaches it through the change log (one
/// poll) well within the bound.
const CREDENTIAL_TTL: Duration = Duration::from_secs(1);
const CREDENTIAL_CACHE_MAX: usize = 10_000;
/// The change-log channel every revocation, sign-out and password change is announced on.
pub const CREDENTIALS_CHANNEL: &str = "accounts/credentials/";

/// Callers by credential digest, for a second: a client sending a burst of requests
/// with one token or cookie costs one lookup a second instead of two queries each.
/// Only valid credentials are kept, never past their own expiry; an unknown token is
/// looked up every time.
#[derive(Clone, Default)]
pub struct CredentialCache(Arc<std::sync::Mutex<std::collections::HashMap<String, CachedCaller>>>);

/// A checked credential: good until the monotonic deadline (a wall clock stepped back
/// cannot stretch it) and, as stored, until its own expiry.
struct CachedCaller {
    until: std::time::Instant,
    expires_at: Option<i64>,
    caller: Caller,
}

impl CachedCaller {
    fn fresh(&self) -> bool {
        self.until > std::time::Instant::now() && self.expires_at.is_none_or(|at| at > now_ms())
    }
}

impl CredentialCache {
    fn get(&self, key: &str) -> Option<Caller> {
        let entries = self.0.lock().expect("credential cache lock");
        entries.get(key).filter(|c| c.fresh()).map(|c| c.caller.clone())
    }

    /// Keeps `caller` for [`CREDENTIAL_TTL`], or until the credential expires if sooner.
    fn put(&self, key: String, caller: Caller, expires_at: Option<i64>) {
        let cached = CachedCaller { until: std::time::Instant::now() + CREDENTIAL_TTL, expires_at, caller };
        let mut entries = self.0.lock().expect("credential cache lock");
        if entries.len() >= CREDENTIAL_CACHE_MAX {
            entries.retain(|_, c| c.fresh());
            if entries.len() >= CREDENTIAL_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(key, cached);
    }

    pub fn clear(&self) {
        self.0.lock().expect("credential cache lock").clear();
    }

    /// Clears the cache whenever any process announces a credential change, until the
    /// hub closes (shutdown).
    pub async fn follow(self, hub: crate::platform::changes::ChangeHub) {
        let mut rx = hub.subscribe(CREDENTIALS_CHANNEL);
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.clear(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = hub.closed() => return,
            }
        }
    }
}

/// The caller a bearer token stands for, from the cache or the database.
pub async fn caller_for_bearer(state: &AppState, token: &str) -> AppResult<Option<Caller>> {
    let key = format!("token:{}", sha256_hex(token));
    if let Some(caller) = state.part::<AuthGuard>().credentials.get(&key) {
        return Ok(Some(caller));
    }
    let Some((caller, expires_at)) = caller_for_api_token(&state.db, token).await? else { return Ok(None) };
    state.part::<AuthGuard>().credentials.put(key, caller.clone(), expires_at);
    Ok(Some(caller))
}

/// The caller a session cookie stands for, from the cache or the database.
pub async fn caller_for_session(state: &AppState, token: &str) -> AppResult<Option<Caller>> {
    let key = format!("session:{}", sha256_hex(token));
    if let Some(caller) = state.part::<AuthGuard>().credentials.get(&key) {
        return Ok(Some(caller));
    }
    let Some((viewer, expires_at)) = viewer_for_session(&state.db, token).await? else { return Ok(None) };
    let caller = Caller::session(viewer);
    state.part::<AuthGuard>().credentials.put(key, caller.clone(), Some(expires_at));
    Ok(Some(caller))
}

/// After a revocation: other processes hear of it through the change log, this one
/// forgets at once. Inside a transaction, the caller clears the cache again once it
/// committed (a request in between may have cached what was still stored).
async fn credentials_changed<C: ConnectionTrait>(state: &AppState, conn: &C, user_id: i64) -> AppResult<()> {
    crate::platform::changes::record(conn, CREDENTIALS_CHANNEL, &serde_json::json!({"user": user_id})).await?;
    state.part::<AuthGuard>().credentials.clear();
    Ok(())
}

/// Runs `work` (a hash or a verification) on a blocking thread once a hashing slot is
/// free; a flood that keeps every slot busy gets 503 quickly instead of queueing without
/// bound.
async fn with_hash_slot<T: Send + 'static>(guard: &AuthGuard, work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let permit = tokio::time::timeout(guard.hash_wait, guard.hashing.clone().acquire_owned())
        .await
        .map_err(|_| {
            tracing::warn!("every password hashing slot is busy");
            AppError::new(503, "busy", "too many sign-ins at once; retry in a few seconds")
        })?
        .map_err(|_| AppError::internal_because("the hashing semaphore was closed"))?;
    let out = tokio::task::spawn_blocking(move || {
        let out = work();
        drop(permit);
        out
    })
    .await
    .map_err(|e| AppError::internal_because(format!("password hashing task failed: {e}")))?;
    Ok(out)
}

/// Argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1, as OWASP recommends).
async fn hash_password(guard: &AuthGuard, password: &NewPassword) -> AppResult<String> {
    let password = password.expose().to_owned();
    with_hash_slot(guard, move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await?
    .map_err(|e| AppError::internal_because(format!("password hashing failed: {e}")))
}

async fn verify_password(guard: &AuthGuard, password: &str, hash: String) -> AppResult<bool> {
    let password = password.to_owned();
    with_hash_slot(guard, move || match PasswordHash::new(&hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        // An account no one may sign in to (`!`) takes as long to refuse as any other,
        // so timing does not tell which accounts those are.
        Err(_) => {
            let decoy = decoy_hash();
            let _ = PasswordHash::new(&decoy).map(|d| Argon2::default().verify_password(password.as_bytes(), &d));
            false
        }
    })
    .await
}

/// A hash to verify against when the username is unknown, so that "no such user" takes
/// as long as "wrong password" and response times do not reveal which usernames exist.
fn decoy_hash() -> String {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(random_token(24).as_bytes(), &salt)
                .expect("hashing a random password")
                .to_string()
        })
        .clone()
}

// ---------------------------------------------------------------------------------------
// Sign-up and the first administrator

fn parse_display_name(raw: Option<&str>, username: &Username) -> AppResult<String> {
    let name = raw.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(username.as_str());
    if name.chars().count() > DISPLAY_NAME_MAX {
        return Err(AppError::invalid("display_name", "display name must be at most 100 characters"));
    }
    Ok(name.to_owned())
}

/// What a sign-up form or request carries.
pub struct SignUp<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub display_name: Option<&'a str>,
    /// The one-time setup token the server logs while the installation has no
    /// administrator: whoever presents it becomes the first one.
    pub setup_token: Option<&'a str>,
}

/// Creates an account. It becomes the administrator only if it is the first to claim
/// that (one row, taken by a unique key, so two racing sign-ups cannot both win) and
/// either the installation lets the first sign-up claim it (`SB_FIRST_SIGNUP_ADMIN`, the
/// embedded default) or it presents the logged setup token. Everyone else is a member.
#[tracing::instrument(skip(state, req), fields(username = req.username))]
pub async fn sign_up(state: &AppState, client: Option<IpAddr>, req: SignUp<'_>) -> AppResult<Viewer> {
    state.part::<AuthGuard>().signup_by_ip.take(&address_key(client), "sign-ups from this address")?;
    let username = Username::parse(req.username)?;
    let password = NewPassword::parse(req.password, &username)?;
    let display_name = parse_display_name(req.display_name, &username)?;
    let setup_token = req.setup_token.map(str::trim).filter(|t| !t.is_empty());
    let hash = hash_password(state.part::<AuthGuard>(), &password).await?;
    let created = db_write!(state.db, |txn| {
        let created = insert_user(&*txn, &username, &display_name, hash.clone(), Role::Member).await?;
        let becomes_admin = match setup_token {
            Some(token) => {
                if !consume_setup_token(&*txn, token).await? {
                    return Err(AppError::forbidden("that setup token is not valid (it works once, until an administrator exists)").on_field("setup_token"));
                }
                if !claim_first_admin(&*txn, created.id).await? {
                    return Err(AppError::conflict("admin_exists", "this installation already has an administrator").on_field("setup_token"));
                }
                true
            }
            None => state.settings.part::<AuthSettings>().first_signup_admin && claim_first_admin(&*txn, created.id).await?,
        };
        let role = if becomes_admin { set_role(&*txn, created.id, Role::Admin).await?; Role::Admin } else { Role::Member };
        if becomes_admin && state.settings.demo_data {
            // The first administrator of a demo installation is the newcomer trying it.
            for job in &state.settings.part::<AuthSettings>().demo_welcome_jobs {
                crate::platform::jobs::enqueue(&*txn, job, &serde_json::json!({"user_id": created.id})).await?;
            }
        }
        let created = user::Model { role, ..created };
        announce_user(&txn, &created).await?;
        Ok(created)
    })?;
    tracing::info!(user.id = created.id, role = created.role.as_str(), "account created");
    Ok(created.into())
}

async fn insert_user<C: ConnectionTrait>(conn: &C, username: &Username, display_name: &str, hash: String, role: Role) -> AppResult<user::Model> {
    let row = user::ActiveModel {
        username: Set(username.to_string()),
        display_name: Set(display_name.to_owned()),
        password_hash: Set(hash),
        role: Set(role),
        time_zone: Set("UTC".into()),
        created_at: Set(now_ms()),
        calendar_shared: Set(false),
        ..Default::default()
    };
    match user::Entity::insert(row).exec_with_returning(conn).await {
        Ok(model) => Ok(model),
        Err(err) if is_unique_violation(&err) => {
            Err(AppError::conflict("username_taken", "that username is already taken").on_field("username"))
        }
        Err(err) => Err(err.into()),
    }
}

async fn announce_user(txn: &WriteTxn, u: &user::Model) -> AppResult<()> {
    let event = serde_json::json!({"id": u.id, "username": u.username, "display_name": u.display_name, "role": u.role});
    txn.publish("user:new", &event).await?;
    Ok(())
}

async fn set_role<C: ConnectionTrait>(conn: &C, user_id: i64, role: Role) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::Role, Expr::value(role))
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes the first-administrator claim for `user_id` unless someone holds it. Insert-if-
/// absent on a primary key: of two racing transactions, the second waits for the first
/// and then finds the row, so exactly one ever succeeds. Winning ends setup: any
/// outstanding setup tokens are deleted.
async fn claim_first_admin<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<bool> {
    // A plain insert whose unique violation means "taken": the duplicate-key error ends
    // only this statement, on both engines, and the transaction goes on. (An upsert's
    // affected-row count would depend on MySQL's CLIENT_FOUND_ROWS flag.)
    let row = claim::ActiveModel { claim: Set(FIRST_ADMIN.into()), user_id: Set(user_id), created_at: Set(now_ms()) };
    match claim::Entity::insert(row).exec_without_returning(conn).await {
        Ok(_) => {
            // The table holds one row per server start at most: a handful.
            setup_token::Entity::delete_many().exec(conn).await?;
            Ok(true)
        }
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn consume_setup_token<C: ConnectionTrait>(conn: &C, token: &str) -> AppResult<bool> {
    let res = setup_token::Entity::delete_many().filter(setup_token::Column::TokenHash.eq(sha256_hex(token))).exec(conn).await?;
    Ok(res.rows_affected == 1)
}

/// Whether the installation has its first administrator.
pub async fn has_admin(db: &Db) -> AppResult<bool> {
    Ok(claim::Entity::find_by_id(FIRST_ADMIN.to_owned()).one(&db.conn).await?.is_some())
}

/// While there is no administrator and the first sign-up may not simply claim it, issues
/// a one-time setup token (stored as its digest) for the operator to find in the log.
pub async fn issue_setup_token(state: &AppState) -> AppResult<Option<String>> {
    if state.settings.part::<AuthSettings>().first_signup_admin || has_admin(&state.db).await? {
        return Ok(None);
    }
    let token = random_token(24);
    let row = setup_token::ActiveModel { token_hash: Set(sha256_hex(&token)), created_at: Set(now_ms()) };
    setup_token::Entity::insert(row).exec_without_returning(&state.db.conn).await?;
    Ok(Some(token))
}

/// The `create-admin` command: creates an admin account with this password, or — when
/// the account exists — sets its password, makes it an admin and ends every session and
/// token it had, so whoever registered the name first keeps nothing. Returns the account
/// and whether it existed.
#[tracing::instrument(skip(state, caller, password))]
pub async fn create_admin(state: &AppState, caller: &Caller, username: &str, password: &str) -> AppResult<(Viewer, bool)> {
    caller.require_admin()?;
    let username = Username::parse(username)?;
    let password = NewPassword::parse(password, &username)?;
    let hash = hash_password(state.part::<AuthGuard>(), &password).await?;
    let (account, existed) = db_write!(state.db, |txn| {
        let existing = user::Entity::find().filter(user::Column::Username.eq(username.as_str())).one(&*txn).await?;
        let (account, existed) = match existing {
            Some(found) => {
                user::Entity::update_many()
                    .col_expr(user::Column::PasswordHash, Expr::value(hash.clone()))
                    .col_expr(user::Column::Role, Expr::value(Role::Admin))
                    .filter(user::Column::Id.eq(found.id))
                    .exec(&*txn)
                    .await?;
                revoke_everything(&*txn, found.id).await?;
                credentials_changed(state, &*txn, found.id).await?;
                (user::Model { role: Role::Admin, ..found }, true)
            }
            None => {
                let created = insert_user(&*txn, &username, username.as_str(), hash.clone(), Role::Admin).await?;
                announce_user(&txn, &created).await?;
                (created, false)
            }
        };
        claim_first_admin(&*txn, account.id).await?;
        Ok((account, existed))
    })?;
    state.part::<AuthGuard>().credentials.clear();
    tracing::info!(user.id = account.id, existed, "administrator set by the operator");
    Ok((account.into(), existed))
}

/// Every session and API token of an account.
async fn revoke_everything<C: ConnectionTrait>(conn: &C, user_id: i64) -> AppResult<()> {
    session::Entity::delete_many().filter(session::Column::UserId.eq(user_id)).exec(conn).await?;
    api_token::Entity::delete_many().filter(api_token::Column::UserId.eq(user_id)).exec(conn).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Log-in, sessions, passwords

async fn find_user(db: &Db, username: &Username) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find().filter(user::Column::Username.eq(username.as_str())).one(&db.conn).await?)
}

/// Checks a username and password. Unknown user and wrong password get the same
/// answer, so the endpoint cannot be used to discover accounts. Attempts count against
/// the username and the client address before any hashing.
#[tracing::instrument(skip(state, password))]
pub async fn authenticate(state: &AppState, client: Option<IpAddr>, username: &str, password: &str) -> AppResult<Viewer> {
    let denied = || AppError::unauthorized("invalid username or password");
    if password.is_empty() {
        return Err(AppError::invalid("password", "password is required"));
    }
    state.part::<AuthGuard>().login_by_ip.take(&address_key(client), "log-in attempts from this address")?;
    // Only names that could be accounts get a bucket: junk cannot fill the map.
    let name = Username::parse(username).ok();
    if let Some(name) = &name {
        state.part::<AuthGuard>().login_by_user.take(name.as_str(), "log-in attempts for this account")?;
    }
    let found = match &name {
        Some(name) => find_user(&state.db, name).await?,
        None => None,
    };
    match found {
        Some(found) if verify_password(state.part::<AuthGuard>(), password, found.password_hash.clone()).await? => Ok(found.into()),
        Some(_) => Err(denied()),
        None => {
            verify_password(state.part::<AuthGuard>(), password, decoy_hash()).await?;
            Err(denied())
        }
    }
}

/// Log-in from a browser: checks the password and opens a session; returns the cookie
/// value.
pub async fn log_in(state: &AppState, client: Option<IpAddr>, username: &str, password: &str) -> AppResult<String> {
    let viewer = authenticate(state, client, username, password).await?;
    open_session(&state.db, viewer.id, state.settings.session_ttl).await
}

/// Sign-up from a browser: creates the account and signs it in; returns the cookie value.
pub async fn sign_up_and_log_in(state: &AppState, client: Option<IpAddr>, req: SignUp<'_>) -> AppResult<String> {
    let viewer = sign_up(state, client, req).await?;
    open_session(&state.db, viewer.id, state.settings.session_ttl).await
}

/// Opens a server-side session; returns the cookie value (stored only as its digest).
#[tracing::instrument(skip(db))]
pub async fn open_session(db: &Db, user_id: i64, ttl: Duration) -> AppResult<String> {
    insert_session(&db.conn, user_id, ttl).await
}

async fn insert_session(conn: &impl ConnectionTrait, user_id: i64, ttl: Duration) -> AppResult<String> {
    let token = random_token(32);
    let now = now_ms();
    let row = session::ActiveModel {
        token_hash: Set(sha256_hex(&token)),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(now + ttl.as_millis() as i64),
        ..Default::default()
    };
    session::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(token)
}

#[tracing::instrument(skip_all)]
/// The account a session cookie stands for, with when the session expires.
async fn viewer_for_session(db: &Db, token: &str) -> AppResult<Option<(Viewer, i64)>> {
    let found = session::Entity::find()
        .filter(session::Column::TokenHash.eq(sha256_hex(token)))
        .filter(session::Column::ExpiresAt.gt(now_ms()))
        .one(&db.conn)
        .await?;
    let Some(found) = found else { return Ok(None) };
    Ok(user::Entity::find_by_id(found.user_id).one(&db.conn).await?.map(|u| (Viewer::from(u), found.expires_at)))
}

#[tracing::instrument(skip_all)]
pub async fn close_session(state: &AppState, token: &str) -> AppResult<()> {
    let hash = sha256_hex(token);
    let found = session::Entity::find().filter(session::Column::TokenHash.eq(hash.as_str())).one(&state.db.conn).await?;
    let Some(found) = found else { return Ok(()) };
    session::Entity::delete_many().filter(session::Column::Id.eq(found.id)).exec(&state.db.conn).await?;
    credentials_changed(state, &state.db.conn, found.user_id).await
}

/// Signs the caller out of every browser session ("sign out everywhere"); API tokens
/// stay (they are revoked one by one). Returns how many sessions ended.
#[tracing::instrument(skip_all, fields(user.id = caller.id()))]
pub async fn close_all_sessions(state: &AppState, caller: &Caller) -> AppResult<u64> {
    let res = session::Entity::delete_many().filter(session::Column::UserId.eq(caller.id())).exec(&state.db.conn).await?;
    credentials_changed(state, &state.db.conn, caller.id()).await?;
    Ok(res.rows_affected)
}

/// Changes the caller's password after checking the current one, and ends every browser
/// session of the account (a stolen session does not survive the change). A caller signed
/// in by a session gets a fresh one, opened in the same transaction (returned as the
/// cookie value), so the browser that changed the password stays signed in.
#[tracing::instrument(skip_all, fields(user.id = caller.id()))]
pub async fn change_password(state: &AppState, caller: &Caller, current: &str, new: &str) -> AppResult<Option<String>> {
    state.part::<AuthGuard>().login_by_user.take(caller.username(), "password attempts for this account")?;
    let row = user::Entity::find_by_id(caller.id()).one(&state.db.conn).await?.ok_or_else(|| AppError::not_found("user"))?;
    if current.is_empty() || !verify_password(state.part::<AuthGuard>(), current, row.password_hash.clone()).await? {
        return Err(AppError::invalid("current_password", "the current password is not right"));
    }
    let username = Username::parse(&row.username)?;
    let new = NewPassword::parse(new, &username).map_err(|e| e.on_field("new_password"))?;
    let hash = hash_password(state.part::<AuthGuard>(), &new).await?;
    let fresh = db_write!(state.db, |txn| {
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash.clone()))
            .filter(user::Column::Id.eq(row.id))
            .exec(&*txn)
            .await?;
        session::Entity::delete_many().filter(session::Column::UserId.eq(row.id)).exec(&*txn).await?;
        credentials_changed(state, &*txn, row.id).await?;
        match caller.credential {
            Credential::Session => Ok(Some(insert_session(&*txn, row.id, state.settings.session_ttl).await?)),
            Credential::Token { .. } | Credential::Operator => Ok(None),
        }
    })?;
    state.part::<AuthGuard>().credentials.clear();
    tracing::info!("password changed; sessions ended");
    Ok(fresh)
}

/// Deletes expired sessions (periodic job), walking the `expires_at` index.
pub async fn sweep_sessions(db: &Db) -> AppResult<u64> {
    let res = session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lte(now_ms()))
        .exec(&db.conn)
        .await?;
    Ok(res.rows_affected)
}

// ---------------------------------------------------------------------------------------
// Personal API tokens

pub struct IssuedToken {
    pub id: i64,
    pub token: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
}

/// Issues a personal API token to `owner` (who has just proved who they are). A scope
/// the owner's role does not allow is refused: a token never carries more rights than
/// its owner. The clear text is returned once and never stored.
#[tracing::instrument(skip(db, owner), fields(user.id = owner.id))]
pub async fn issue_api_token(db: &Db, owner: &Viewer, name: &str, scopes: &[String], expires_in_days: Option<u32>) -> AppResult<IssuedToken> {
    let name = name.trim();
    let name = if name.is_empty() { "api token" } else { name };
    if name.chars().count() > 100 {
        return Err(AppError::invalid("name", "token name must be at most 100 characters"));
    }
    let mut parsed = Vec::new();
    for raw in scopes {
        let known = Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        let scope = Scope::parse(raw).ok_or_else(|| AppError::invalid("scopes", format!("unknown scope {raw:?}; known: {known}")))?;
        if !scope.allowed_for(owner.role) {
            return Err(AppError::forbidden(format!("a token cannot carry {raw}: your account does not have that right")).on_field("scopes"));
        }
        if !parsed.contains(&scope) {
            parsed.push(scope);
        }
    }
    let expires_at = match expires_in_days {
        None => None,
        Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => Some(now_ms() + d as i64 * 86_400_000),
        Some(_) => return Err(AppError::invalid("expires_in_days", format!("expires_in_days must be 1 to {MAX_TOKEN_DAYS}"))),
    };
    let scopes: Vec<String> = parsed.iter().map(|s| s.as_str().to_owned()).collect();
    let token = format!("{TOKEN_PREFIX}{}", random_token(32));
    let row = api_token::ActiveModel {
        user_id: Set(owner.id),
        name: Set(name.to_owned()),
        token_hash: Set(sha256_hex(&token)),
        scopes: Set(scopes.join(" ")),
        created_at: Set(now_ms()),
        last_used_at: Set(None),
        expires_at: Set(expires_at),
        ..Default::default()
    };
    let id = api_token::Entity::insert(row).exec(&db.conn).await?.last_insert_id;
    Ok(IssuedToken { id, token, name: name.to_owned(), scopes, expires_at })
}

/// Issues a token from the account page: only to a browser session (a token never mints
/// tokens, so an expiring one cannot outlive itself) and only after the password is
/// given again (a stolen session cookie cannot mint a token that would survive a password
/// change or "sign out everywhere").
#[tracing::instrument(skip(state, caller, password), fields(user.id = caller.id()))]
pub async fn issue_api_token_again(state: &AppState, caller: &Caller, client: Option<IpAddr>, password: &str, name: &str, expires_in_days: Option<u32>) -> AppResult<IssuedToken> {
    if caller.credential != Credential::Session {
        return Err(AppError::forbidden("API tokens are issued to a signed-in browser or for a username and password, not to another token"));
    }
    let owner = authenticate(state, client, caller.username(), password).await.map_err(|e| match e.status {
        401 => AppError::invalid("password", "the password is not right"),
        _ => e,
    })?;
    issue_api_token(&state.db, &owner, name, &[], expires_in_days).await
}

/// The caller a bearer token stands for, if it is valid and unexpired, with when it
/// expires.
#[tracing::instrument(skip_all)]
async fn caller_for_api_token(db: &Db, token: &str) -> AppResult<Option<(Caller, Option<i64>)>> {
    let now = now_ms();
    let found = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(sha256_hex(token)))
        .one(&db.conn)
        .await?;
    let Some(found) = found.filter(|t| t.expires_at.is_none_or(|at| at > now)) else { return Ok(None) };
    // Record use at most once a minute: no write on every request.
    if found.last_used_at.is_none_or(|at| now - at > 60_000) {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
            .filter(api_token::Column::Id.eq(found.id))
            .exec(&db.conn)
            .await?;
    }
    let scopes = found.scopes.split_whitespace().filter_map(Scope::parse).collect();
    Ok(user::Entity::find_by_id(found.user_id).one(&db.conn).await?.map(|u| (Caller::token(u.into(), scopes), found.expires_at)))
}

/// The caller's own tokens, newest first (never the secrets).
pub async fn list_api_tokens(db: &Db, caller: &Caller) -> AppResult<Vec<api_token::Model>> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(caller.id()))
        .order_by_desc(api_token::Column::Id)
        .limit(1000)
        .all(&db.conn)
        .await?)
}

/// Revokes one of the caller's own tokens; another account's token is simply not found.
pub async fn revoke_api_token(state: &AppState, caller: &Caller, token_id: i64) -> AppResult<()> {
    let res = api_token::Entity::delete_many()
        .filter(api_token::Column::Id.eq(token_id))
        .filter(api_token::Column::UserId.eq(caller.id()))
        .exec(&state.db.conn)
        .await?;
    if res.rows_affected == 0 {
        return Err(AppError::not_found("token"));
    }
    credentials_changed(state, &state.db.conn, caller.id()).await
}

impl From<user::Model> for Profile {
    fn from(u: user::Model) -> Self {
        Profile { id: u.id, username: u.username, display_name: u.display_name, time_zone: u.time_zone, calendar_shared: u.calendar_shared }
    }
}

/// The profile of `username`, if there is such a user (a name that cannot be a username
/// is simply nobody).
pub async fn profile_by_name(conn: &impl ConnectionTrait, username: &str) -> AppResult<Option<Profile>> {
    let Ok(name) = Username::parse(username) else { return Ok(None) };
    let found = user::Entity::find().filter(user::Column::Username.eq(name.as_str())).one(conn).await?;
    Ok(found.map(Profile::from))
}

/// The profile of the user with this id (inside the caller's transaction when given one).
pub async fn profile_by_id(conn: &impl ConnectionTrait, id: i64) -> AppResult<Option<Profile>> {
    Ok(user::Entity::find_by_id(id).one(conn).await?.map(Profile::from))
}

/// Whether the user with this id is an admin (now: a role taken away counts at once).
pub async fn is_admin(conn: &impl ConnectionTrait, id: i64) -> AppResult<bool> {
    Ok(user::Entity::find_by_id(id).one(conn).await?.is_some_and(|u| u.role == crate::accounts::domain::Role::Admin))
}

/// Holds the account's row until the transaction ends (MySQL: `FOR UPDATE`; SQLite's
/// write gate already lets one writer in at a time), so that transactions which count a
/// user's things before adding one — a per-user limit — take turns instead of all
/// counting the same number and all adding.
pub async fn hold_account(conn: &impl ConnectionTrait, id: i64) -> AppResult<()> {
    crate::platform::db::for_update(user::Entity::find_by_id(id), conn.get_database_backend())
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    Ok(())
}

/// The password hash of an account no one can sign in to: not a PHC string, so no
/// password ever verifies against it (the Unix `!` convention).
const NO_PASSWORD: &str = "!";

/// The demo's account (`demo`): the owner of the demo calendar and the sender of the
/// demo's chat messages. `None` when someone registered that name.
pub async fn demo_account(db: &Db) -> AppResult<Option<Profile>> {
    ensure_unattended_account(db, DEMO_ACCOUNT, "Demo (sample data)").await
}

/// The demo account's username.
pub const DEMO_ACCOUNT: &str = "demo";

/// An account the app itself keeps content in (the demo calendar's `demo`), which no one
/// can sign in to. Created on first call with a shared calendar. A name someone already
/// registered with a password is theirs: that answers `None`, and nothing is put in it.
#[tracing::instrument(skip(db))]
pub async fn ensure_unattended_account(db: &Db, username: &str, display_name: &str) -> AppResult<Option<Profile>> {
    let name = Username::parse(username)?;
    let find = || user::Entity::find().filter(user::Column::Username.eq(name.as_str())).one(&db.conn);
    let found = match find().await? {
        Some(u) => u,
        None => {
            let created = db_write!(db, |txn| {
                let u = insert_user(&*txn, &name, display_name, NO_PASSWORD.into(), Role::Member).await?;
                let u = user::Entity::update(user::ActiveModel { calendar_shared: Set(true), ..user::ActiveModel::from(u) }).exec(&*txn).await?;
                announce_user(&txn, &u).await?;
                Ok(u)
            });
            match created {
                Ok(u) => u,
                // Created meanwhile by another call: judge that one.
                Err(e) if e.status == 409 => find().await?.ok_or_else(|| AppError::internal_because("an account reported taken cannot be read"))?,
                Err(e) => return Err(e),
            }
        }
    };
    Ok((found.password_hash == NO_PASSWORD).then(|| Profile::from(found)))
}

/// Changes the caller's own profile: display name, time zone, calendar sharing.
pub async fn update_profile(db: &Db, caller: &Caller, display_name: Option<&str>, time_zone: Option<&str>, shared: Option<bool>) -> AppResult<user::Model> {
    let mut row: user::ActiveModel = user::Entity::find_by_id(caller.id()).one(&db.conn).await?.ok_or_else(|| AppError::not_found("user"))?.into();
    if let Some(name) = display_name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > DISPLAY_NAME_MAX {
            return Err(AppError::invalid("display_name", "display name must be 1 to 100 characters"));
        }
        row.display_name = Set(name.to_owned());
    }
    if let Some(zone) = time_zone.map(str::trim) {
        crate::platform::time::zones::parse_zone("time_zone", zone)?;
        row.time_zone = Set(zone.to_owned());
    }
    if let Some(s) = shared {
        row.calendar_shared = Set(s);
    }
    Ok(user::Entity::update(row).exec(&db.conn).await?)
}

//! Account use cases: sign-up, log-in, sessions and personal API tokens. Called by the
//! server functions (UI), the REST handlers and the CLI alike.

use super::domain::{NewPassword, Role, Username, Viewer};
use super::store::{api_token, session, user};
use crate::error::{AppError, AppResult};
use crate::platform::db::{is_unique_violation, Db};
use crate::platform::secrets::{random_token, sha256_hex};
use crate::platform::time::now_ms;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use std::sync::OnceLock;
use std::time::Duration;

pub const DISPLAY_NAME_MAX: usize = 100;
pub const TOKEN_PREFIX: &str = "sb_";

impl From<user::Model> for Viewer {
    fn from(u: user::Model) -> Self {
        Viewer {
            id: u.id,
            role: Role::parse(&u.role).unwrap_or(Role::Member),
            username: u.username,
            display_name: u.display_name,
            time_zone: u.time_zone,
        }
    }
}

fn parse_display_name(raw: Option<&str>, username: &Username) -> AppResult<String> {
    let name = raw.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(username.as_str());
    if name.chars().count() > DISPLAY_NAME_MAX {
        return Err(AppError::invalid("display_name", "display name must be at most 100 characters"));
    }
    Ok(name.to_owned())
}

/// Argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1, as OWASP recommends), run
/// off the async threads because it is deliberately slow.
async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|_| AppError::internal())?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        AppError::internal()
    })
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
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

/// Creates an account. The very first account becomes `admin`; later ones `member`.
#[tracing::instrument(skip(db, password))]
pub async fn sign_up(db: &Db, username: &str, password: &str, display_name: Option<&str>) -> AppResult<Viewer> {
    let username = Username::parse(username)?;
    let password = NewPassword::parse(password, &username)?;
    let display_name = parse_display_name(display_name, &username)?;
    let hash = hash_password(password.expose().to_owned()).await?;

    let txn = db.write_txn().await?;
    let first = user::Entity::find().one(&*txn).await?.is_none();
    let role = if first { Role::Admin } else { Role::Member };
    let row = user::ActiveModel {
        username: Set(username.to_string()),
        display_name: Set(display_name),
        password_hash: Set(hash),
        role: Set(role.as_str().into()),
        time_zone: Set("UTC".into()),
        created_at: Set(now_ms()),
        calendar_shared: Set(false),
        ..Default::default()
    };
    let created = match user::Entity::insert(row).exec_with_returning(&*txn).await {
        Ok(model) => model,
        Err(err) if is_unique_violation(&err) => {
            return Err(AppError::conflict("username_taken", "that username is already taken").on_field("username"))
        }
        Err(err) => return Err(err.into()),
    };
    let event = serde_json::json!({"id": created.id, "username": created.username, "display_name": created.display_name, "role": created.role});
    crate::broker::service::publish_event(&*txn, "user:new", &event).await?;
    txn.commit().await?;
    tracing::info!(user.id = created.id, role = role.as_str(), "account created");
    Ok(created.into())
}

/// Creates an admin account, or promotes an existing one (the `create-admin` command).
#[tracing::instrument(skip(db, password))]
pub async fn create_admin(db: &Db, username: &str, password: &str) -> AppResult<Viewer> {
    let name = Username::parse(username)?;
    if let Some(existing) = find_user(db, &name).await? {
        let mut row: user::ActiveModel = existing.into();
        row.role = Set(Role::Admin.as_str().into());
        let updated = user::Entity::update(row).exec(&db.conn).await?;
        return Ok(updated.into());
    }
    let viewer = sign_up(db, username, password, None).await?;
    if viewer.role != Role::Admin {
        user::Entity::update_many()
            .col_expr(user::Column::Role, Expr::value(Role::Admin.as_str()))
            .filter(user::Column::Id.eq(viewer.id))
            .exec(&db.conn)
            .await?;
    }
    Ok(Viewer { role: Role::Admin, ..viewer })
}

pub async fn find_user(db: &Db, username: &Username) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find().filter(user::Column::Username.eq(username.as_str())).one(&db.conn).await?)
}

/// Checks a username and password. Unknown user and wrong password get the same
/// answer, so the endpoint cannot be used to discover accounts.
#[tracing::instrument(skip(db, password))]
pub async fn authenticate(db: &Db, username: &str, password: &str) -> AppResult<Viewer> {
    let denied = || AppError::unauthorized("invalid username or password");
    if password.is_empty() {
        return Err(AppError::invalid("password", "password is required"));
    }
    let Ok(name) = Username::parse(username) else {
        verify_password(password.to_owned(), decoy_hash()).await;
        return Err(denied());
    };
    match find_user(db, &name).await? {
        Some(found) if verify_password(password.to_owned(), found.password_hash.clone()).await => Ok(found.into()),
        Some(_) => Err(denied()),
        None => {
            verify_password(password.to_owned(), decoy_hash()).await;
            Err(denied())
        }
    }
}

/// Opens a server-side session; returns the cookie value (stored only as its digest).
#[tracing::instrument(skip(db))]
pub async fn open_session(db: &Db, user_id: i64, ttl: Duration) -> AppResult<String> {
    let token = random_token(32);
    let now = now_ms();
    let row = session::ActiveModel {
        token_hash: Set(sha256_hex(&token)),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(now + ttl.as_millis() as i64),
        ..Default::default()
    };
    session::Entity::insert(row).exec_without_returning(&db.conn).await?;
    Ok(token)
}

#[tracing::instrument(skip_all)]
pub async fn viewer_for_session(db: &Db, token: &str) -> AppResult<Option<Viewer>> {
    let found = session::Entity::find()
        .filter(session::Column::TokenHash.eq(sha256_hex(token)))
        .filter(session::Column::ExpiresAt.gt(now_ms()))
        .one(&db.conn)
        .await?;
    let Some(found) = found else { return Ok(None) };
    Ok(user::Entity::find_by_id(found.user_id).one(&db.conn).await?.map(Viewer::from))
}

#[tracing::instrument(skip_all)]
pub async fn close_session(db: &Db, token: &str) -> AppResult<()> {
    session::Entity::delete_many()
        .filter(session::Column::TokenHash.eq(sha256_hex(token)))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Deletes expired sessions (periodic job), walking the `expires_at` index.
pub async fn sweep_sessions(db: &Db) -> AppResult<u64> {
    let res = session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lte(now_ms()))
        .exec(&db.conn)
        .await?;
    Ok(res.rows_affected)
}

/// Scopes a personal API token may carry beyond acting as its owner.
pub const KNOWN_SCOPES: &[&str] = &["chat:read"];

pub struct IssuedToken {
    pub id: i64,
    pub token: String,
    pub name: String,
    pub scopes: Vec<String>,
}

/// Issues a personal API token. The clear text is returned once and never stored.
#[tracing::instrument(skip(db))]
pub async fn issue_api_token(db: &Db, user_id: i64, name: &str, scopes: &[String]) -> AppResult<IssuedToken> {
    let name = name.trim();
    let name = if name.is_empty() { "api token" } else { name };
    if name.chars().count() > 100 {
        return Err(AppError::invalid("name", "token name must be at most 100 characters"));
    }
    if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(AppError::invalid("scopes", format!("unknown scope {bad:?}; known: {}", KNOWN_SCOPES.join(", "))));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_token(32));
    let row = api_token::ActiveModel {
        user_id: Set(user_id),
        name: Set(name.to_owned()),
        token_hash: Set(sha256_hex(&token)),
        scopes: Set(scopes.join(" ")),
        created_at: Set(now_ms()),
        last_used_at: Set(None),
        ..Default::default()
    };
    let id = api_token::Entity::insert(row).exec(&db.conn).await?.last_insert_id;
    Ok(IssuedToken { id, token, name: name.to_owned(), scopes: scopes.to_vec() })
}

/// The owner and scopes of a bearer token.
#[tracing::instrument(skip_all)]
pub async fn viewer_for_api_token(db: &Db, token: &str) -> AppResult<Option<(Viewer, Vec<String>)>> {
    let found = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(sha256_hex(token)))
        .one(&db.conn)
        .await?;
    let Some(found) = found else { return Ok(None) };
    // Record use at most once a minute: no write on every request.
    let now = now_ms();
    if found.last_used_at.is_none_or(|at| now - at > 60_000) {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
            .filter(api_token::Column::Id.eq(found.id))
            .exec(&db.conn)
            .await?;
    }
    let scopes = found.scopes.split_whitespace().map(str::to_owned).collect();
    Ok(user::Entity::find_by_id(found.user_id).one(&db.conn).await?.map(|u| (u.into(), scopes)))
}

pub async fn list_api_tokens(db: &Db, user_id: i64) -> AppResult<Vec<api_token::Model>> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(user_id))
        .order_by_desc(api_token::Column::Id)
        .all(&db.conn)
        .await?)
}

pub async fn revoke_api_token(db: &Db, user_id: i64, token_id: i64) -> AppResult<()> {
    let res = api_token::Entity::delete_many()
        .filter(api_token::Column::Id.eq(token_id))
        .filter(api_token::Column::UserId.eq(user_id))
        .exec(&db.conn)
        .await?;
    if res.rows_affected == 0 {
        return Err(AppError::not_found("token"));
    }
    Ok(())
}

/// Changes the caller's own profile: display name, time zone, calendar sharing.
pub async fn update_profile(db: &Db, user_id: i64, display_name: Option<&str>, time_zone: Option<&str>, shared: Option<bool>) -> AppResult<user::Model> {
    let mut row: user::ActiveModel = user::Entity::find_by_id(user_id).one(&db.conn).await?.ok_or_else(|| AppError::not_found("user"))?.into();
    if let Some(name) = display_name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > DISPLAY_NAME_MAX {
            return Err(AppError::invalid("display_name", "display name must be 1 to 100 characters"));
        }
        row.display_name = Set(name.to_owned());
    }
    if let Some(zone) = time_zone {
        crate::scheduler::zones::parse_zone("time_zone", zone)?;
        row.time_zone = Set(zone.to_owned());
    }
    if let Some(s) = shared {
        row.calendar_shared = Set(s);
    }
    Ok(user::Entity::update(row).exec(&db.conn).await?)
}

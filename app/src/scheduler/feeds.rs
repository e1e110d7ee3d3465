//! Secret iCalendar feed addresses (capability URLs, like Google's "secret address in
//! iCal format") and what a feed holds.

use super::occurrences;
use super::store::{event, feed, legacy_feed};
use crate::accounts::domain::Profile;
use crate::accounts::service::profile_by_id;
use crate::accounts::Caller;
use crate::db_write;
use crate::error::{AppError, AppResult};
use crate::platform::db::{is_unique_violation, Db};
use crate::platform::secrets::{random_token, sha256_hex};
use crate::platform::state::AppState;
use crate::platform::time::now_ms;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

const DAY_MS: i64 = 86_400_000;

/// What a sealed feed address is bound to (see `platform::crypto`).
const FEED_CONTEXT: &str = "calendar_feed_tokens.token_sealed";

/// The caller's secret feed address: the existing one, a new one on first call, or
/// (rotate) a replacement that revokes the old address at once. The token is stored as
/// its digest (what the feed is looked up by) and sealed (so its owner can see the
/// address again): a copy of the database alone opens no calendar.
pub async fn feed_url(state: &AppState, caller: &Caller, rotate: bool) -> AppResult<String> {
    let token = feed_token(state, caller.id(), rotate).await?;
    Ok(format!("{}/ical/{token}.ics", state.settings.public_url.trim_end_matches('/')))
}

async fn feed_token(state: &AppState, user_id: i64, rotate: bool) -> AppResult<String> {
    let db = &state.db;
    if !rotate {
        if let Some(f) = feed::Entity::find_by_id(user_id).one(&db.conn).await? {
            return state.sealer.open(FEED_CONTEXT, &f.token_sealed).map_err(AppError::internal_because);
        }
    }
    let token = random_token(24);
    let txn = db.write_txn().await?;
    feed::Entity::delete_many().filter(feed::Column::UserId.eq(user_id)).exec(&*txn).await?;
    let row = feed::ActiveModel {
        user_id: Set(user_id),
        token_hash: Set(sha256_hex(&token)),
        token_sealed: Set(state.sealer.seal(FEED_CONTEXT, &token)),
        created_at: Set(now_ms()),
    };
    match feed::Entity::insert(row).exec_without_returning(&*txn).await {
        Ok(_) => {}
        // Two first calls at once (the settings page and the API, on MySQL where nothing
        // serialises them): the other one's token stands, and both callers get it.
        Err(e) if is_unique_violation(&e) => {
            drop(txn);
            let f = feed::Entity::find_by_id(user_id).one(&db.conn).await?.ok_or_else(|| AppError::internal_because(e))?;
            return state.sealer.open(FEED_CONTEXT, &f.token_sealed).map_err(AppError::internal_because);
        }
        Err(e) => return Err(e.into()),
    }
    txn.commit().await?;
    Ok(token)
}

/// Moves feed tokens stored in clear by earlier versions (`calendar_feeds`) into the
/// hashed and sealed table, a batch at a time, at start-up. Their addresses keep working.
pub async fn seal_legacy_feeds(state: &AppState) -> AppResult<u64> {
    let mut moved = 0;
    loop {
        let batch = legacy_feed::Entity::find().limit(500).all(&state.db.conn).await?;
        if batch.is_empty() {
            return Ok(moved);
        }
        db_write!(state.db, |txn| {
            for old in &batch {
                // A user who has a new-style token already keeps it.
                if feed::Entity::find_by_id(old.user_id).one(&*txn).await?.is_some() {
                    continue;
                }
                let row = feed::ActiveModel {
                    user_id: Set(old.user_id),
                    token_hash: Set(sha256_hex(&old.token)),
                    token_sealed: Set(state.sealer.seal(FEED_CONTEXT, &old.token)),
                    created_at: Set(old.created_at),
                };
                feed::Entity::insert(row).exec_without_returning(&*txn).await?;
            }
            let ids: Vec<i64> = batch.iter().map(|f| f.user_id).collect();
            legacy_feed::Entity::delete_many().filter(legacy_feed::Column::UserId.is_in(ids)).exec(&*txn).await?;
            Ok(())
        })?;
        moved += batch.len() as u64;
    }
}

/// The calendar behind a feed token: its owner, and its single events and changed
/// occurrences from 180 days ago to two years ahead (at most 5,000) with the series
/// running in that time (each once, with its rule: calendar apps expand it themselves).
pub async fn feed(db: &Db, token: &str) -> AppResult<(Profile, Vec<event::Model>)> {
    let f = feed::Entity::find().filter(feed::Column::TokenHash.eq(sha256_hex(token))).one(&db.conn).await?.ok_or_else(|| AppError::not_found("calendar"))?;
    let owner = profile_by_id(&db.conn, f.user_id).await?.ok_or_else(|| AppError::not_found("calendar"))?;
    let (from, to) = (now_ms() - 180 * DAY_MS, now_ms() + 730 * DAY_MS);
    let mut events = occurrences::series(&db.conn, owner.id, from, to).await?;
    events.extend(
        event::Entity::find()
            .filter(event::Column::OwnerId.eq(owner.id))
            .filter(event::Column::StartAt.gte(from))
            .filter(event::Column::StartAt.lt(to))
            .filter(event::Column::Recurring.eq(false))
            .order_by_asc(event::Column::StartAt)
            .limit(5000)
            .all(&db.conn)
            .await?,
    );
    Ok((owner, events))
}

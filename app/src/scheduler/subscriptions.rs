//! Subscribed calendars: another calendar's iCalendar address, or an uploaded `.ics`
//! file, shown read-only beside a user's own events and counted as busy on their booking
//! page. An address is fetched when it is added and then by a background job every
//! `SB_CALENDAR_REFRESH_MINUTES`, asking with `ETag`/`If-Modified-Since` for a changed
//! feed only; a fetch is bounded in size and time and goes only to public addresses
//! (`platform::targets`), or, for an admin's subscription, also where
//! `BROKER_ALLOWED_TARGETS` lets webhooks go. A feed that cannot be read keeps the
//! events of the last one that could, and says why on the settings page.
//!
//! A refresh never holds a row lock across the fetch: it claims the subscription by
//! setting `claimed_until` (a conditional update, so no two refreshes — the job's in
//! two processes, or the job's and a user's — fetch one feed at once), fetches with no
//! transaction open, and writes the result in one short transaction, if it still holds
//! the claim. Parsing runs off the async threads, two files at a time per process, and
//! adding, uploading and importing are limited per user and hour.

use super::domain::{SubscriptionKind, SubscriptionView};
use super::ical_read::{self, Occurrence};
use super::service::{calendar_channel, may_edit};
use super::settings::SchedulerSettings;
use super::store::{subscribed_event, subscription};
use crate::accounts::service::profile_by_id;
use crate::accounts::Caller;
use crate::db_write;
use crate::error::{AppError, AppResult};
use crate::platform::changes;
use crate::platform::db::for_update;
use crate::platform::rate_limit::RateLimiter;
use crate::platform::state::AppState;
use crate::platform::targets::{guarded_client, guarded_redirects, TargetPolicy};
use crate::platform::time::{now_ms, to_rfc3339};
use chrono_tz::Tz;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait};
use std::sync::Arc;
use std::time::Duration;

/// Subscribed calendars one user may have.
pub const MAX_PER_USER: u64 = 20;
/// The largest `.ics` upload (it arrives in a request body, which is capped at 1 MiB).
pub const MAX_UPLOAD_BYTES: usize = 768 << 10;
/// How far back and ahead a feed's events are kept (a repeating event is stored once per
/// occurrence; the window moves with each refresh).
const WINDOW_PAST_MS: i64 = 366 * DAY_MS;
const WINDOW_AHEAD_MS: i64 = 731 * DAY_MS;
/// Occurrences kept per subscription.
pub const MAX_OCCURRENCES: usize = 5000;
/// A refresh claimed but not finished is taken again after this long (a process died).
const CLAIM_MS: i64 = 10 * 60_000;
/// "Refresh now" fetches at most this often per subscription.
const MANUAL_EVERY_MS: i64 = 30_000;
/// Subscriptions the job refreshes per run, one after the other.
const PER_RUN: u64 = 20;
/// A feed that keeps answering 304 is still read in full this often, so the window of
/// occurrences kept moves with time.
const REEXPAND_MS: i64 = 7 * DAY_MS;
/// Files parsed at once per process (parsing is CPU work off the async threads).
static PARSING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
const DAY_MS: i64 = 86_400_000;
/// What a sealed feed address is bound to (see `platform::crypto`).
const URL_CONTEXT: &str = "calendar_subscriptions.url_sealed";

fn settings(state: &AppState) -> &SchedulerSettings {
    state.settings.part::<SchedulerSettings>()
}

/// Adds, uploads and imports per user and hour (`SB_CALENDAR_FILES_PER_HOUR`).
#[derive(Clone)]
pub struct FileLimiter(pub RateLimiter);

impl FileLimiter {
    pub fn new(settings: &SchedulerSettings) -> Self {
        Self(RateLimiter::new(settings.files_per_hour, Duration::from_secs(3600)))
    }
}

/// Takes one of the caller's files for the hour, or 429.
pub(super) fn take_file(state: &AppState, caller: &Caller) -> AppResult<()> {
    state.part::<FileLimiter>().0.take(&format!("user:{}", caller.id()), "calendar files and subscriptions this hour")
}

fn view(row: &subscription::Model) -> SubscriptionView {
    SubscriptionView {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind,
        source: row.url_host.clone(),
        event_count: row.event_count,
        fetched_at: row.fetched_at.map(to_rfc3339),
        last_error: row.last_error.clone(),
        warnings: row.warnings.clone(),
        next_refresh: row.refresh_at.map(to_rfc3339),
    }
}

fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::invalid("name", "name must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

/// The caller's subscribed calendars.
pub async fn list(state: &AppState, caller: &Caller) -> AppResult<Vec<SubscriptionView>> {
    let rows = subscription::Entity::find()
        .filter(subscription::Column::OwnerId.eq(caller.id()))
        .order_by_asc(subscription::Column::Id)
        .limit(MAX_PER_USER)
        .all(&state.db.conn)
        .await?;
    Ok(rows.iter().map(view).collect())
}

/// A new subscription (its address or file in `field`) keeps the owner within
/// [`MAX_PER_USER`]; concurrent adds of one owner take turns (see
/// [`hold_account`](crate::accounts::service::hold_account)).
async fn limit_per_user(conn: &impl ConnectionTrait, owner_id: i64, field: &str) -> AppResult<()> {
    crate::accounts::service::hold_account(conn, owner_id).await?;
    let count = subscription::Entity::find().filter(subscription::Column::OwnerId.eq(owner_id)).count(conn).await?;
    if count >= MAX_PER_USER {
        return Err(AppError::invalid(field, format!("a calendar may show at most {MAX_PER_USER} subscribed calendars; remove one first")));
    }
    Ok(())
}

/// `webcal://` (what calendar sites link) is the same address over https.
fn normalise_url(raw: &str) -> String {
    let raw = raw.trim();
    match raw.get(..9) {
        Some(scheme) if scheme.eq_ignore_ascii_case("webcal://") => format!("https://{}", &raw[9..]),
        _ => raw.to_owned(),
    }
}

/// Subscribes the caller to the calendar at `url` and fetches it at once, so the answer
/// says whether it could be read.
#[tracing::instrument(skip(state, caller, url), fields(caller = %caller.username()))]
pub async fn add_url(state: &AppState, caller: &Caller, name: &str, url: &str) -> AppResult<SubscriptionView> {
    let name = check_name(name)?;
    let url = settings(state).feed_policy(caller.is_admin()).check_url(&normalise_url(url), "url")?;
    take_file(state, caller)?;
    let host = url.host_str().unwrap_or_default().chars().take(255).collect::<String>();
    let now = now_ms();
    let row = db_write!(state.db, |txn| {
        limit_per_user(&*txn, caller.id(), "url").await?;
        let row = subscription::ActiveModel {
            url_sealed: Set(Some(state.sealer.seal(URL_CONTEXT, url.as_str()))),
            url_host: Set(host.clone()),
            refresh_at: Set(Some(now)),
            ..new_row(caller, &name, SubscriptionKind::Url, 0, now)
        };
        Ok(subscription::Entity::insert(row).exec_with_returning(&*txn).await?)
    })?;
    // Fetched at once, unless the refresh job took it meanwhile.
    let row = match claim(state, &row, Claim::Due).await? {
        Some(claimed) => refresh_claimed(state, claimed).await?,
        None => row,
    };
    Ok(view(&row))
}

/// Shows an uploaded `.ics` file as a subscribed calendar (read once; it is not
/// fetched again). A file that is not iCalendar at all is refused (400 on `file`).
#[tracing::instrument(skip(state, caller, text), fields(caller = %caller.username(), bytes = text.len()))]
pub async fn add_upload(state: &AppState, caller: &Caller, name: &str, text: String) -> AppResult<SubscriptionView> {
    let name = check_name(name)?;
    check_size(&text)?;
    take_file(state, caller)?;
    let zone = owner_zone(state, caller.id()).await?;
    let (occurrences, warnings) = read_occurrences(text, zone, now_ms()).await.map_err(|why| AppError::invalid("file", why))?;
    let now = now_ms();
    let row = db_write!(state.db, |txn| {
        limit_per_user(&*txn, caller.id(), "file").await?;
        let row = subscription::ActiveModel {
            url_host: Set("uploaded file".into()),
            fetched_at: Set(Some(now)),
            expanded_at: Set(Some(now)),
            warnings: Set(warnings.clone()),
            ..new_row(caller, &name, SubscriptionKind::Upload, occurrences.len() as i32, now)
        };
        let row = subscription::Entity::insert(row).exec_with_returning(&*txn).await?;
        replace_events(&*txn, &row, &occurrences).await?;
        changes::record(&*txn, &calendar_channel(row.owner_id), &serde_json::json!({"subscription": row.id})).await?;
        Ok(row)
    })?;
    Ok(view(&row))
}

/// An uploaded or imported file's text is within [`MAX_UPLOAD_BYTES`].
pub(super) fn check_size(text: &str) -> AppResult<()> {
    if text.len() > MAX_UPLOAD_BYTES {
        return Err(AppError::invalid("file", format!("the file is larger than {} KiB", MAX_UPLOAD_BYTES >> 10)));
    }
    Ok(())
}

/// What every new subscription row starts with.
fn new_row(caller: &Caller, name: &str, kind: SubscriptionKind, event_count: i32, now: i64) -> subscription::ActiveModel {
    subscription::ActiveModel {
        owner_id: Set(caller.id()),
        name: Set(name.to_owned()),
        kind: Set(kind),
        event_count: Set(event_count),
        created_at: Set(now),
        ..Default::default()
    }
}

async fn owner_zone(state: &AppState, owner_id: i64) -> AppResult<Tz> {
    let owner = profile_by_id(&state.db.conn, owner_id).await?.ok_or_else(|| AppError::not_found("user"))?;
    Ok(owner.time_zone.parse().unwrap_or(Tz::UTC))
}

/// A subscription `caller` manages (its owner, or an admin), by the stored row.
async fn managed(state: &AppState, caller: &Caller, id: i64) -> AppResult<subscription::Model> {
    let row = subscription::Entity::find_by_id(id).one(&state.db.conn).await?.ok_or_else(|| AppError::not_found("subscription"))?;
    if !may_edit(caller, row.owner_id) {
        return Err(AppError::forbidden("you may change only your own subscribed calendars"));
    }
    Ok(row)
}

/// Removes a subscribed calendar and its events.
#[tracing::instrument(skip(state, caller), fields(caller = %caller.username()))]
pub async fn remove(state: &AppState, caller: &Caller, id: i64) -> AppResult<()> {
    let row = managed(state, caller, id).await?;
    db_write!(state.db, |txn| {
        // The subscription row first, as a refresh's write takes it (one lock order).
        if for_update(subscription::Entity::find_by_id(row.id), state.db.backend()).one(&*txn).await?.is_none() {
            return Ok(());
        }
        subscribed_event::Entity::delete_many().filter(subscribed_event::Column::SubscriptionId.eq(row.id)).exec(&*txn).await?;
        subscription::Entity::delete_by_id(row.id).exec(&*txn).await?;
        changes::record(&*txn, &calendar_channel(row.owner_id), &serde_json::json!({"subscription": row.id})).await?;
        Ok(())
    })
}

/// Fetches a subscribed calendar now (at most every 30 s; an upload has nothing to
/// fetch and is returned as it is).
#[tracing::instrument(skip(state, caller), fields(caller = %caller.username()))]
pub async fn refresh(state: &AppState, caller: &Caller, id: i64) -> AppResult<SubscriptionView> {
    let row = managed(state, caller, id).await?;
    if row.kind != SubscriptionKind::Url {
        return Ok(view(&row));
    }
    match claim(state, &row, Claim::Manual).await? {
        Some(claimed) => Ok(view(&refresh_claimed(state, claimed).await?)),
        // Being refreshed by someone else right now.
        None => Ok(view(&row)),
    }
}

/// Which refreshes may take a subscription.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// The job's (or a new subscription's first): only when it is due.
    Due,
    /// A user's "Refresh": at most every [`MANUAL_EVERY_MS`].
    Manual,
}

/// Takes `row` for one refresh until the claim runs out: on the condition that no other
/// refresh holds it, and that it is due (or, asked by a user, was not fetched in the last
/// 30 s). None when it may not be taken now.
async fn claim(state: &AppState, row: &subscription::Model, kind: Claim) -> AppResult<Option<subscription::Model>> {
    use sea_orm::Condition;
    use subscription::Column as C;
    let now = now_ms();
    let until = now + CLAIM_MS;
    let when = match kind {
        Claim::Due => Condition::all().add(C::RefreshAt.lte(now)),
        Claim::Manual => Condition::any().add(C::FetchedAt.is_null()).add(C::FetchedAt.lt(now - MANUAL_EVERY_MS)),
    };
    let done = state
        .db
        .retrying(|| async {
            let mut update = subscription::Entity::update_many().col_expr(C::ClaimedUntil, Expr::value(until));
            if kind == Claim::Due {
                // A refresh that dies or keeps failing goes to the back of the queue.
                update = update.col_expr(C::RefreshAt, Expr::value(until));
            }
            Ok(update
                .filter(C::Id.eq(row.id))
                .filter(C::Kind.eq(SubscriptionKind::Url))
                .filter(Condition::any().add(C::ClaimedUntil.is_null()).add(C::ClaimedUntil.lt(now)))
                .filter(when.clone())
                .exec(&state.db.conn)
                .await?)
        })
        .await?;
    Ok((done.rows_affected == 1).then(|| subscription::Model { claimed_until: Some(until), ..row.clone() }))
}

/// The refresh job: every subscription due, oldest first, up to [`PER_RUN`] per run.
pub async fn refresh_due(state: &AppState) -> AppResult<usize> {
    let now = now_ms();
    let due = subscription::Entity::find()
        .filter(subscription::Column::RefreshAt.lte(now))
        // Not those a refresh under way holds (they would fill the run).
        .filter(sea_orm::Condition::any().add(subscription::Column::ClaimedUntil.is_null()).add(subscription::Column::ClaimedUntil.lt(now)))
        .order_by_asc(subscription::Column::RefreshAt)
        .limit(PER_RUN)
        .all(&state.db.conn)
        .await?;
    let mut refreshed = 0;
    for row in due {
        let claimed = match claim(state, &row, Claim::Due).await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(subscription = row.id, error = %e, cause = ?e.source, "claiming a subscription failed");
                continue;
            }
        };
        match refresh_claimed(state, claimed).await {
            Ok(_) => refreshed += 1,
            // Removed while it was being fetched.
            Err(e) if e.status == 404 => {}
            // The claim runs out and a later run tries again; the others go on.
            Err(e) => tracing::warn!(subscription = row.id, error = %e, cause = ?e.source, "recording a refresh failed"),
        }
    }
    Ok(refreshed)
}

/// What one reading of a feed came to.
enum Reading {
    Events { occurrences: Vec<Occurrence>, warnings: Option<String>, etag: Option<String>, last_modified: Option<String> },
    Unchanged,
    Failed(String),
}

/// Fetches and reads a claimed subscription, and records what came of it.
#[tracing::instrument(skip(state, row), fields(subscription = row.id, host = %row.url_host))]
async fn refresh_claimed(state: &AppState, row: subscription::Model) -> AppResult<subscription::Model> {
    let reading = match fetch_and_read(state, &row).await {
        Ok(reading) => reading,
        Err(why) => Reading::Failed(why),
    };
    if let Reading::Failed(why) = &reading {
        tracing::info!(error = %why, "a subscribed calendar could not be refreshed");
    }
    record(state, &row, reading).await
}

async fn fetch_and_read(state: &AppState, row: &subscription::Model) -> Result<Reading, String> {
    let sealed = row.url_sealed.as_deref().ok_or("the subscription has no address")?;
    let url = state.sealer.open(URL_CONTEXT, sealed).map_err(|e| {
        tracing::error!(error = %e, "a subscribed calendar's address does not open");
        "the address cannot be read (the server's sealing key changed?)".to_owned()
    })?;
    let settings = settings(state);
    // The allow-list, and the owner's role, may have changed since the address was added.
    let admin = crate::accounts::service::is_admin(&state.db.conn, row.owner_id).await.map_err(|e| e.message)?;
    let policy = settings.feed_policy(admin);
    policy.check_url(&url, "url").map_err(|e| e.message)?;
    // Asked conditionally only while the occurrences kept are recent: a feed that never
    // changes is still read in full weekly, so the window kept moves on.
    let recent = row.expanded_at.is_some_and(|t| now_ms() - t < REEXPAND_MS);
    let (etag, since) = if recent { (row.etag.as_deref(), row.last_modified.as_deref()) } else { (None, None) };
    let fetched = fetch(settings, policy, &url, etag, since).await?;
    let Fetched::Body { text, etag, last_modified } = fetched else {
        return Ok(Reading::Unchanged);
    };
    let zone = owner_zone(state, row.owner_id).await.map_err(|e| e.message)?;
    let (occurrences, warnings) = read_occurrences(text, zone, now_ms()).await?;
    Ok(Reading::Events { occurrences, warnings, etag, last_modified })
}

/// Reads a feed's occurrences within the kept window, off the async threads (a large
/// feed takes a while to parse).
async fn read_occurrences(text: String, zone: Tz, now: i64) -> Result<(Vec<Occurrence>, Option<String>), String> {
    parse_off_thread(move || {
        let feed = ical_read::read(&text, zone)?;
        let mut warnings = feed.warnings.clone();
        let occurrences = ical_read::occurrences(&feed, now - WINDOW_PAST_MS, now + WINDOW_AHEAD_MS, MAX_OCCURRENCES, &mut warnings);
        Ok((occurrences, warnings.summary()))
    })
    .await
}

/// Runs a parse on a blocking thread, at most [`PARSING`] at once per process.
pub(super) async fn parse_off_thread<T: Send + 'static>(parse: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    let _permit = PARSING.acquire().await.map_err(|e| format!("reading the file failed: {e}"))?;
    tokio::task::spawn_blocking(parse).await.map_err(|e| format!("reading the file failed: {e}"))?
}

/// Writes what a refresh came to, if the subscription still exists and this refresh
/// still holds it (a claim that ran out may have been taken by a newer refresh).
async fn record(state: &AppState, claimed: &subscription::Model, reading: Reading) -> AppResult<subscription::Model> {
    let next = now_ms() + settings(state).feed_refresh.as_millis() as i64;
    let digest = match &reading {
        Reading::Events { occurrences, .. } => Some(digest(occurrences)),
        _ => None,
    };
    db_write!(state.db, |txn| {
        let current = for_update(subscription::Entity::find_by_id(claimed.id), state.db.backend())
            .one(&*txn)
            .await?
            .ok_or_else(|| AppError::not_found("subscription"))?;
        if current.claimed_until != claimed.claimed_until {
            return Ok(current);
        }
        let now = now_ms();
        let mut row: subscription::ActiveModel = current.clone().into();
        row.fetched_at = Set(Some(now));
        row.refresh_at = Set(Some(next));
        row.claimed_until = Set(None);
        match &reading {
            Reading::Events { occurrences, warnings, etag, last_modified } => {
                // Most feeds stamp every answer anew: rewrite only what really changed.
                if current.digest != digest {
                    replace_events(&*txn, &current, occurrences).await?;
                    changes::record(&*txn, &calendar_channel(current.owner_id), &serde_json::json!({"subscription": current.id})).await?;
                }
                row.event_count = Set(occurrences.len() as i32);
                row.warnings = Set(warnings.clone());
                row.etag = Set(etag.clone());
                row.last_modified = Set(last_modified.clone());
                row.expanded_at = Set(Some(now));
                row.digest = Set(digest.clone());
                row.last_error = Set(None);
            }
            Reading::Unchanged => row.last_error = Set(None),
            Reading::Failed(why) => row.last_error = Set(Some(why.chars().take(1000).collect())),
        }
        Ok(subscription::Entity::update(row).exec(&*txn).await?)
    })
}

/// A digest of occurrences as stored.
fn digest(occurrences: &[Occurrence]) -> String {
    let fields: Vec<_> = occurrences.iter().map(|o| (o.start, o.end, o.all_day, o.busy, &o.title, &o.location)).collect();
    crate::platform::secrets::sha256_hex(&serde_json::to_string(&fields).unwrap_or_default())
}

/// Replaces a subscription's stored occurrences.
async fn replace_events(conn: &impl ConnectionTrait, row: &subscription::Model, occurrences: &[Occurrence]) -> AppResult<()> {
    subscribed_event::Entity::delete_many().filter(subscribed_event::Column::SubscriptionId.eq(row.id)).exec(conn).await?;
    for chunk in occurrences.chunks(500) {
        let rows = chunk.iter().map(|o| subscribed_event::ActiveModel {
            subscription_id: Set(row.id),
            owner_id: Set(row.owner_id),
            title: Set(o.title.clone()),
            location: Set(o.location.clone()),
            start_at: Set(o.start),
            end_at: Set(o.end),
            all_day: Set(o.all_day),
            busy: Set(o.busy),
            ..Default::default()
        });
        subscribed_event::Entity::insert_many(rows).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// What a fetch brought.
enum Fetched {
    /// 304: the feed is as it was.
    Unchanged,
    Body { text: String, etag: Option<String>, last_modified: Option<String> },
}

/// Fetches a feed: only where the policy allows (checked again on every redirect and
/// resolved address), within the size and time limits, conditionally when an earlier
/// answer gave a validator. Errors are said without the address (it may be a secret).
async fn fetch(settings: &SchedulerSettings, policy: TargetPolicy, url: &str, etag: Option<&str>, last_modified: Option<&str>) -> Result<Fetched, String> {
    use reqwest::header::{ACCEPT, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
    let policy = Arc::new(policy);
    let client = guarded_client(policy.clone(), settings.feed_timeout)
        .redirect(guarded_redirects(policy, 5))
        // The address may hold a secret: never tell a redirect's target where it came from.
        .referer(false)
        .user_agent(concat!("Switchboard-Calendar/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("the HTTP client could not start: {e}"))?;
    let mut request = client.get(url).header(ACCEPT, "text/calendar, */*;q=0.5");
    if let Some(tag) = etag {
        request = request.header(IF_NONE_MATCH, tag);
    }
    if let Some(since) = last_modified {
        request = request.header(IF_MODIFIED_SINCE, since);
    }
    let timeout = settings.feed_timeout;
    let mut response = request.send().await.map_err(|e| describe(e, timeout))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::Unchanged);
    }
    if !status.is_success() {
        return Err(format!("the server answered HTTP {}", status.as_u16()));
    }
    let max = settings.feed_max_bytes;
    let too_big = || format!("the feed is larger than {} KiB", max >> 10);
    if response.content_length().is_some_and(|len| len > max) {
        return Err(too_big());
    }
    let header = |name, max_len: usize| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned).filter(|v| !v.is_empty() && v.len() <= max_len)
    };
    let (etag, last_modified) = (header(ETAG, 255), header(LAST_MODIFIED, 64));
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(e, timeout))? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body { text: String::from_utf8_lossy(&body).into_owned(), etag, last_modified })
}

/// A failed request in words, without its URL.
fn describe(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no complete answer within {} s", timeout.as_secs_f64());
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Occurrences of `owner_id`'s subscribed calendars overlapping `[from, to)`, by start,
/// with the name of the calendar each is from: one range of the `(owner, start)` index,
/// as no stored occurrence is longer than an event may be.
pub async fn shown_between(conn: &impl ConnectionTrait, owner_id: i64, from: i64, to: i64, limit: u64) -> AppResult<Vec<(subscribed_event::Model, String)>> {
    let rows = between(conn, owner_id, from, to, limit, None).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let names: std::collections::HashMap<i64, String> = subscription::Entity::find()
        .filter(subscription::Column::OwnerId.eq(owner_id))
        .limit(MAX_PER_USER)
        .all(conn)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    Ok(rows.into_iter().filter_map(|e| names.get(&e.subscription_id).cloned().map(|name| (e, name))).collect())
}

/// The times `owner_id`'s subscribed calendars make them busy within `[from, to)`.
pub async fn busy_between(conn: &impl ConnectionTrait, owner_id: i64, from: i64, to: i64, limit: u64) -> AppResult<Vec<(i64, i64)>> {
    let busy = subscribed_event::Column::Busy.eq(true);
    Ok(between(conn, owner_id, from, to, limit, Some(busy)).await?.into_iter().map(|e| (e.start_at, e.end_at)).collect())
}

async fn between(conn: &impl ConnectionTrait, owner_id: i64, from: i64, to: i64, limit: u64, also: Option<sea_orm::sea_query::SimpleExpr>) -> AppResult<Vec<subscribed_event::Model>> {
    let longest = super::domain::MAX_EVENT_DAYS * DAY_MS;
    Ok(subscribed_event::Entity::find()
        .filter(subscribed_event::Column::OwnerId.eq(owner_id))
        .apply_if(also, QueryFilter::filter)
        .filter(subscribed_event::Column::StartAt.gte(from - longest))
        .filter(subscribed_event::Column::StartAt.lt(to))
        .filter(subscribed_event::Column::EndAt.gt(from))
        .order_by_asc(subscribed_event::Column::StartAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// The job that refreshes due subscriptions.
pub const REFRESH_JOB: &str = "scheduler.refresh_subscriptions";

pub fn register(jobs: &mut crate::platform::jobs::JobRegistry) {
    jobs.periodic(REFRESH_JOB, Duration::from_secs(60), Duration::from_secs(600), |state, _| async move {
        refresh_due(&state).await.map(|_| ()).map_err(AppError::into_failure)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webcal_addresses_are_fetched_over_https() {
        assert_eq!(normalise_url(" webcal://example.com/cal.ics "), "https://example.com/cal.ics");
        assert_eq!(normalise_url("WEBCAL://example.com/x"), "https://example.com/x");
        assert_eq!(normalise_url("http://example.com/x"), "http://example.com/x");
    }
}

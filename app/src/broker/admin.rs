//! Broker administration (admins): topics, subscribers with their signing secrets, and
//! subscriptions.

use crate::db_write;
use super::domain::{DeliveryState, FailurePolicy, SubscriptionState};
use super::domain::*;
use super::service::{channel, CHUNK, ROTATION_GRACE_MS};
use super::signature::generate_secret;
use super::store::{attempt, delivery, ensure_lanes, lane, set_lanes_active, subscriber, subscription, topic};
use crate::platform::state::AppState;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::changes;
use crate::platform::crypto::SecretBox;
use crate::platform::db::{for_update, is_unique_violation, Db};
use crate::platform::time::now_ms;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Topics the app itself publishes to; created at start-up so subscribers can find them.
pub const INTERNAL_TOPICS: &[(&str, &str)] = &[("user:new", "an account was created")];

// ---------------------------------------------------------------------------------------
// Topics

/// A topic by name, if it exists.
pub async fn topic_named<C: ConnectionTrait>(conn: &C, name: &TopicName) -> AppResult<Option<topic::Model>> {
    Ok(topic::Entity::find().filter(topic::Column::Name.eq(name.as_str())).one(conn).await?)
}

pub async fn ensure_topic<C: ConnectionTrait>(conn: &C, name: &TopicName, description: &str) -> AppResult<topic::Model> {
    if let Some(t) = topic_named(conn, name).await? {
        return Ok(t);
    }
    match insert_topic(conn, name, description, false).await {
        Err(e) if e.status == 409 => Ok(topic::Entity::find()
            .filter(topic::Column::Name.eq(name.as_str()))
            .one(conn)
            .await?
            .ok_or_else(|| AppError::internal_because(format!("topic {name} was reported taken but cannot be read")))?),
        other => other,
    }
}

async fn insert_topic<C: ConnectionTrait>(conn: &C, name: &TopicName, description: &str, members_may_publish: bool) -> AppResult<topic::Model> {
    if description.chars().count() > 500 {
        return Err(AppError::invalid("description", "description must be at most 500 characters"));
    }
    let row = topic::ActiveModel {
        name: Set(name.to_string()),
        description: Set(description.to_owned()),
        members_may_publish: Set(members_may_publish),
        last_seq: Set(0),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    match topic::Entity::insert(row).exec_with_returning(conn).await {
        Ok(t) => {
            let subs = subscription::Entity::find()
                .filter(subscription::Column::Pattern.is_in(name.matching_patterns()))
                .all(conn)
                .await?;
            ensure_lanes(conn, t.id, &subs, now_ms()).await?;
            Ok(t)
        }
        Err(e) if is_unique_violation(&e) => Err(AppError::conflict("topic_exists", "a topic with that name exists").on_field("name")),
        Err(e) => Err(e.into()),
    }
}

#[tracing::instrument(skip(db, caller))]
pub async fn create_topic(db: &Db, caller: &Caller, name: &str, description: &str, members_may_publish: bool) -> AppResult<topic::Model> {
    caller.require_admin()?;
    insert_topic(&db.conn, &TopicName::parse(name.trim())?, description.trim(), members_may_publish).await
}

pub async fn seed_internal_topics(db: &Db) -> AppResult<()> {
    for (name, description) in INTERNAL_TOPICS {
        ensure_topic(&db.conn, &TopicName::parse(name)?, description).await?;
    }
    Ok(())
}

/// One topic (any signed-in member may look).
pub async fn topic_for(db: &Db, _caller: &Caller, name: &str) -> AppResult<topic::Model> {
    find_topic(db, name).await
}

async fn find_topic(db: &Db, name: &str) -> AppResult<topic::Model> {
    let name = TopicName::parse(name).map_err(|_| AppError::not_found("topic"))?;
    topic::Entity::find()
        .filter(topic::Column::Name.eq(name.as_str()))
        .one(&db.conn)
        .await?
        .ok_or_else(|| AppError::not_found("topic"))
}

pub fn topic_summary(t: topic::Model) -> TopicSummary {
    TopicSummary { id: t.id, name: t.name, description: t.description, members_may_publish: t.members_may_publish, messages: t.last_seq }
}

/// All topics, by name. (Topics are a short list an admin curates.)
pub async fn list_topics(db: &Db, _caller: &Caller) -> AppResult<Vec<TopicSummary>> {
    Ok(topic::Entity::find().order_by_asc(topic::Column::Name).limit(1000).all(&db.conn).await?.into_iter().map(topic_summary).collect())
}

pub async fn update_topic(db: &Db, caller: &Caller, name: &str, description: Option<&str>, members_may_publish: Option<bool>) -> AppResult<topic::Model> {
    caller.require_admin()?;
    let t = find_topic(db, name).await?;
    let description = description.map(str::trim);
    if description.is_some_and(|d| d.chars().count() > 500) {
        return Err(AppError::invalid("description", "description must be at most 500 characters"));
    }
    let mut row: topic::ActiveModel = t.into();
    if let Some(d) = description {
        row.description = Set(d.to_owned());
    }
    if let Some(m) = members_may_publish {
        row.members_may_publish = Set(m);
    }
    Ok(topic::Entity::update(row).exec(&db.conn).await?)
}

/// Deletes a topic that never carried a message (history stays intact). One
/// transaction with the topic row locked: the sequencer takes the same row to number a
/// message, so a message it is moving from the outbox to the topic is seen in one place
/// or the other, never missed between two reads.
pub async fn delete_topic(db: &Db, caller: &Caller, name: &str) -> AppResult<()> {
    caller.require_admin()?;
    let name = TopicName::parse(name).map_err(|_| AppError::not_found("topic"))?;
    db_write!(db, |txn| {
        let query = topic::Entity::find().filter(topic::Column::Name.eq(name.as_str()));
        let t = for_update(query, db.backend()).one(&*txn).await?.ok_or_else(|| AppError::not_found("topic"))?;
        // Published but not yet sequenced counts too: it waits in the outbox.
        let waiting = super::store::outbox::Entity::find()
            .select_only()
            .column(super::store::outbox::Column::Id)
            .filter(super::store::outbox::Column::TopicId.eq(t.id))
            .into_tuple::<i64>()
            .one(&*txn)
            .await?;
        if t.last_seq > 0 || waiting.is_some() {
            return Err(AppError::conflict("topic_has_messages", "a topic that carried messages cannot be deleted"));
        }
        topic::Entity::delete_by_id(t.id).exec(&*txn).await?;
        Ok(())
    })
}

/// Ids of the topics a set of subscriptions covers (wildcards expanded over the topic list).
pub(super) async fn topics_matching<C: ConnectionTrait>(conn: &C, subs: &[subscription::Model]) -> AppResult<Vec<i64>> {
    let patterns: Vec<TopicPattern> = subs.iter().filter_map(|s| TopicPattern::parse(&s.pattern).ok()).collect();
    Ok(topic::Entity::find()
        .limit(1000)
        .all(conn)
        .await?
        .into_iter()
        .filter(|t| TopicName::parse(&t.name).is_ok_and(|n| patterns.iter().any(|p| p.matches(&n))))
        .map(|t| t.id)
        .collect())
}

// ---------------------------------------------------------------------------------------
// Subscribers

/// Where this installation delivers (`BROKER_ALLOWED_TARGETS`, the demo receiver).
fn target_policy(state: &AppState) -> crate::platform::targets::TargetPolicy {
    state.settings.part::<super::settings::BrokerSettings>().target_policy()
}

fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::invalid("name", "name must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

/// What a sealed signing secret is bound to (see `platform::crypto`).
const SECRET_CONTEXT: &str = "broker_subscribers.secret";

/// Creates a subscriber; returns it with its signing secret in clear (shown to the caller
/// once; the database keeps it sealed).
/// The endpoint is checked against the installation's delivery target policy.
#[tracing::instrument(skip(state, caller))]
pub async fn create_subscriber(state: &AppState, caller: &Caller, name: &str, url: &str) -> AppResult<(subscriber::Model, String)> {
    let (db, sealer) = (&state.db, &state.sealer);
    caller.require_admin()?;
    let name = check_name(name)?;
    let url = target_policy(state).check_url(url.trim(), "url")?;
    let secret = generate_secret();
    let row = subscriber::ActiveModel {
        name: Set(name),
        url: Set(url.to_string()),
        secret: Set(sealer.seal(SECRET_CONTEXT, &secret)),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    Ok((subscriber::Entity::insert(row).exec_with_returning(&db.conn).await?, secret))
}

/// One subscriber, for admins.
pub async fn subscriber(db: &Db, caller: &Caller, id: i64) -> AppResult<subscriber::Model> {
    caller.require_admin()?;
    find_subscriber(db, id).await
}

async fn find_subscriber(db: &Db, id: i64) -> AppResult<subscriber::Model> {
    subscriber::Entity::find_by_id(id).one(&db.conn).await?.ok_or_else(|| AppError::not_found("subscriber"))
}

pub fn subscriber_summary(s: &subscriber::Model) -> SubscriberSummary {
    SubscriberSummary { id: s.id, name: s.name.clone(), url: s.url.clone(), created_at: s.created_at }
}

pub async fn list_subscribers(db: &Db, caller: &Caller) -> AppResult<Vec<subscriber::Model>> {
    caller.require_admin()?;
    Ok(subscriber::Entity::find().order_by_asc(subscriber::Column::Id).limit(1000).all(&db.conn).await?)
}

pub async fn update_subscriber(state: &AppState, caller: &Caller, id: i64, name: Option<&str>, url: Option<&str>) -> AppResult<subscriber::Model> {
    let db = &state.db;
    let mut row: subscriber::ActiveModel = subscriber(db, caller, id).await?.into();
    if let Some(n) = name {
        row.name = Set(check_name(n)?);
    }
    if let Some(u) = url {
        row.url = Set(target_policy(state).check_url(u.trim(), "url")?.to_string());
    }
    Ok(subscriber::Entity::update(row).exec(&db.conn).await?)
}

/// A stored secret in clear. Values from before secrets were sealed are still clear
/// text until [`seal_legacy_secrets`] has run.
fn open_secret(sealer: &SecretBox, stored: &str) -> AppResult<String> {
    if !SecretBox::is_sealed(stored) {
        return Ok(stored.to_owned());
    }
    sealer.open(SECRET_CONTEXT, stored).map_err(|e| {
        AppError::internal_because(format!("a subscriber's signing secret cannot be opened ({e}); was SB_SECRET_KEY changed?"))
    })
}

/// The secrets a delivery is signed with now: the current one, and the previous one
/// during its grace period after a rotation.
pub(super) fn signing_secrets(sealer: &SecretBox, s: &subscriber::Model, now: i64) -> AppResult<Vec<String>> {
    let mut secrets = vec![open_secret(sealer, &s.secret)?];
    if let (Some(prev), Some(until)) = (&s.previous_secret, s.previous_secret_until) {
        if until > now {
            secrets.push(open_secret(sealer, prev)?);
        }
    }
    Ok(secrets)
}

/// A subscriber's signing secret as its admin sees it.
pub struct SecretInfo {
    pub secret: String,
    /// Until when the previous secret also signs (after a rotation).
    pub previous_valid_until: Option<i64>,
}

/// Reveals a subscriber's signing secret (admins).
pub async fn reveal_secret(db: &Db, sealer: &SecretBox, caller: &Caller, id: i64) -> AppResult<SecretInfo> {
    let s = subscriber(db, caller, id).await?;
    Ok(SecretInfo {
        secret: open_secret(sealer, &s.secret)?,
        previous_valid_until: s.previous_secret_until.filter(|t| *t > now_ms()),
    })
}

/// Seals signing secrets stored in clear by earlier versions; run at start-up. The
/// subscriber list is short (an admin curates it), read a page at a time.
pub async fn seal_legacy_secrets(db: &Db, sealer: &SecretBox) -> AppResult<u64> {
    let mut sealed = 0;
    let mut after = 0;
    loop {
        let page = subscriber::Entity::find().filter(subscriber::Column::Id.gt(after)).order_by_asc(subscriber::Column::Id).limit(CHUNK as u64).all(&db.conn).await?;
        let Some(last) = page.last() else { return Ok(sealed) };
        after = last.id;
        for s in page.into_iter().filter(|s| !SecretBox::is_sealed(&s.secret) || s.previous_secret.as_deref().is_some_and(|p| !SecretBox::is_sealed(p))) {
            let seal = |v: &str| if SecretBox::is_sealed(v) { v.to_owned() } else { sealer.seal(SECRET_CONTEXT, v) };
            subscriber::Entity::update_many()
                .col_expr(subscriber::Column::Secret, Expr::value(seal(&s.secret)))
                .col_expr(subscriber::Column::PreviousSecret, Expr::value(s.previous_secret.as_deref().map(seal)))
                .filter(subscriber::Column::Id.eq(s.id))
                .filter(subscriber::Column::Secret.eq(s.secret.clone()))
                .exec(&db.conn)
                .await?;
            sealed += 1;
        }
    }
}

/// Deletes a subscriber with its subscriptions, lanes and delivery log (a chunk of
/// deliveries at a time, so no statement grows with the log).
pub async fn delete_subscriber(db: &Db, caller: &Caller, id: i64) -> AppResult<()> {
    subscriber(db, caller, id).await?;
    db_write!(db, |txn| {
        loop {
            let deliveries: Vec<i64> = delivery::Entity::find()
                .select_only()
                .column(delivery::Column::Id)
                .filter(delivery::Column::SubscriberId.eq(id))
                .limit(CHUNK as u64)
                .into_tuple()
                .all(&*txn)
                .await?;
            if deliveries.is_empty() {
                break;
            }
            attempt::Entity::delete_many().filter(attempt::Column::DeliveryId.is_in(deliveries.clone())).exec(&*txn).await?;
            delivery::Entity::delete_many().filter(delivery::Column::Id.is_in(deliveries)).exec(&*txn).await?;
        }
        lane::Entity::delete_many().filter(lane::Column::SubscriberId.eq(id)).exec(&*txn).await?;
        subscription::Entity::delete_many().filter(subscription::Column::SubscriberId.eq(id)).exec(&*txn).await?;
        subscriber::Entity::delete_by_id(id).exec(&*txn).await?;
        Ok(())
    })
}

/// Issues a new secret; the previous one keeps signing for 24 h so receivers can switch.
#[tracing::instrument(skip(db, sealer, caller))]
pub async fn rotate_secret(db: &Db, sealer: &SecretBox, caller: &Caller, id: i64) -> AppResult<SecretInfo> {
    let current = subscriber(db, caller, id).await?;
    let secret = generate_secret();
    let until = now_ms() + ROTATION_GRACE_MS;
    let previous = sealer.seal(SECRET_CONTEXT, &open_secret(sealer, &current.secret)?);
    let mut row: subscriber::ActiveModel = current.into();
    row.previous_secret = Set(Some(previous));
    row.previous_secret_until = Set(Some(until));
    row.secret = Set(sealer.seal(SECRET_CONTEXT, &secret));
    subscriber::Entity::update(row).exec(&db.conn).await?;
    Ok(SecretInfo { secret, previous_valid_until: Some(until) })
}

// ---------------------------------------------------------------------------------------
// Subscriptions

#[derive(Default)]
pub struct SubscriptionOptions {
    pub policy: Option<FailurePolicy>,
    pub max_attempts: Option<i32>,
    pub retry_base_ms: Option<i64>,
    pub retry_max_ms: Option<i64>,
}

fn check_options(o: &SubscriptionOptions) -> AppResult<()> {
    if o.max_attempts.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(AppError::invalid("max_attempts", "max_attempts must be 1 to 1000"));
    }
    if o.retry_base_ms.is_some_and(|n| !(1..=86_400_000).contains(&n)) {
        return Err(AppError::invalid("retry_base_ms", "retry_base_ms must be 1 ms to 24 h"));
    }
    if o.retry_max_ms.is_some_and(|n| !(1..=7 * 86_400_000).contains(&n)) {
        return Err(AppError::invalid("retry_max_ms", "retry_max_ms must be 1 ms to 7 days"));
    }
    Ok(())
}

#[tracing::instrument(skip(db, caller, options))]
pub async fn subscribe(db: &Db, caller: &Caller, subscriber_id: i64, pattern: &str, options: SubscriptionOptions, default_max_attempts: i32) -> AppResult<SubscriptionSummary> {
    subscriber(db, caller, subscriber_id).await?;
    let pattern = TopicPattern::parse(pattern.trim())?;
    check_options(&options)?;
    let created = db_write!(db, |txn| {
        let existing = subscription::Entity::find().filter(subscription::Column::SubscriberId.eq(subscriber_id)).all(&*txn).await?;
        if let Some(clash) = existing.iter().find(|s| TopicPattern::parse(&s.pattern).is_ok_and(|p| p.overlaps(&pattern))) {
            return Err(AppError::conflict(
                "subscription_overlaps",
                format!("this subscriber already receives these topics through {:?}", clash.pattern),
            )
            .on_field("topic"));
        }
        let row = subscription::ActiveModel {
            subscriber_id: Set(subscriber_id),
            pattern: Set(pattern.as_str().to_owned()),
            state: Set(SubscriptionState::Active),
            policy: Set(options.policy.unwrap_or(FailurePolicy::Block)),
            max_attempts: Set(options.max_attempts.unwrap_or(default_max_attempts)),
            retry_base_ms: Set(options.retry_base_ms),
            retry_max_ms: Set(options.retry_max_ms),
            disabled_reason: Set(None),
            created_at: Set(now_ms()),
            ..Default::default()
        };
        let created = subscription::Entity::insert(row).exec_with_returning(&*txn).await?;
        for topic_id in topics_matching(&*txn, std::slice::from_ref(&created)).await? {
            ensure_lanes(&*txn, topic_id, std::slice::from_ref(&created), now_ms()).await?;
        }
        Ok(created)
    })?;
    summary_of(db, subscriber_id, created.id).await
}

async fn find_subscription(db: &Db, id: i64) -> AppResult<subscription::Model> {
    subscription::Entity::find_by_id(id).one(&db.conn).await?.ok_or_else(|| AppError::not_found("subscription"))
}

pub async fn update_subscription(db: &Db, caller: &Caller, id: i64, options: SubscriptionOptions) -> AppResult<SubscriptionSummary> {
    caller.require_admin()?;
    check_options(&options)?;
    let mut row: subscription::ActiveModel = find_subscription(db, id).await?.into();
    if let Some(p) = options.policy {
        row.policy = Set(p);
    }
    if let Some(n) = options.max_attempts {
        row.max_attempts = Set(n);
    }
    if options.retry_base_ms.is_some() {
        row.retry_base_ms = Set(options.retry_base_ms);
    }
    if options.retry_max_ms.is_some() {
        row.retry_max_ms = Set(options.retry_max_ms);
    }
    let sub = subscription::Entity::update(row).exec(&db.conn).await?;
    summary_of(db, sub.subscriber_id, sub.id).await
}

/// What the API answers about a subscription after a change: it with its lag.
async fn summary_of(db: &Db, subscriber_id: i64, id: i64) -> AppResult<SubscriptionSummary> {
    summaries(db, subscriber_id).await?.into_iter().find(|s| s.id == id).ok_or_else(|| AppError::not_found("subscription"))
}

/// Subscriptions of a subscriber with their lag (messages waiting) and blocked state.
pub async fn list_subscriptions(db: &Db, caller: &Caller, subscriber_id: i64) -> AppResult<Vec<SubscriptionSummary>> {
    subscriber(db, caller, subscriber_id).await?;
    summaries(db, subscriber_id).await
}

async fn summaries(db: &Db, subscriber_id: i64) -> AppResult<Vec<SubscriptionSummary>> {
    let subs = subscription::Entity::find()
        .filter(subscription::Column::SubscriberId.eq(subscriber_id))
        .order_by_asc(subscription::Column::Id)
        .all(&db.conn)
        .await?;
    let lanes = lane::Entity::find().filter(lane::Column::SubscriberId.eq(subscriber_id)).all(&db.conn).await?;
    Ok(subs
        .into_iter()
        .map(|s| {
            let mine = lanes.iter().filter(|l| l.subscription_id == s.id);
            let (lag, blocked) = mine.fold((0, false), |(n, b), l| (n + l.pending, b || l.blocked));
            SubscriptionSummary {
                id: s.id,
                subscriber_id: s.subscriber_id,
                topic: s.pattern,
                state: s.state,
                policy: s.policy,
                max_attempts: s.max_attempts,
                disabled_reason: s.disabled_reason,
                lag,
                blocked,
            }
        })
        .collect())
}

/// Pauses (nothing is delivered, messages keep queueing) or resumes a subscription.
/// Resuming also re-enables one the broker disabled after a 410.
#[tracing::instrument(skip(db, caller))]
pub async fn set_paused(db: &Db, caller: &Caller, id: i64, paused: bool) -> AppResult<SubscriptionSummary> {
    caller.require_admin()?;
    let sub = find_subscription(db, id).await?;
    db_write!(db, |txn| {
        let state = if paused { SubscriptionState::Paused } else { SubscriptionState::Active };
        subscription::Entity::update_many()
            .col_expr(subscription::Column::State, Expr::value(state))
            .col_expr(subscription::Column::DisabledReason, Expr::value(Option::<String>::None))
            .filter(subscription::Column::Id.eq(id))
            .exec(&*txn)
            .await?;
        set_lanes_active(&*txn, id, !paused).await?;
        changes::record(&*txn, &channel(sub.subscriber_id), &serde_json::json!({"subscription": id, "state": state})).await?;
        Ok(())
    })?;
    summary_of(db, sub.subscriber_id, id).await
}


/// Deletes a subscription; messages already delivered stay in the subscriber's log,
/// pending ones are dropped.
pub async fn unsubscribe(db: &Db, caller: &Caller, id: i64) -> AppResult<()> {
    caller.require_admin()?;
    let sub = find_subscription(db, id).await?;
    db_write!(db, |txn| {
        let lane_ids: Vec<i64> = lane::Entity::find()
            .select_only()
            .column(lane::Column::Id)
            .filter(lane::Column::SubscriptionId.eq(id))
            .into_tuple()
            .all(&*txn)
            .await?;
        for lanes in lane_ids.chunks(CHUNK) {
            delivery::Entity::update_many()
                .col_expr(delivery::Column::State, Expr::value(DeliveryState::Skipped))
                .col_expr(delivery::Column::FinishedAt, Expr::value(now_ms()))
                .col_expr(delivery::Column::LastError, Expr::value("subscription deleted"))
                .filter(delivery::Column::LaneId.is_in(lanes.to_vec()))
                .filter(delivery::Column::State.eq(DeliveryState::Pending))
                .exec(&*txn)
                .await?;
            lane::Entity::delete_many().filter(lane::Column::Id.is_in(lanes.to_vec())).exec(&*txn).await?;
        }
        subscription::Entity::delete_by_id(sub.id).exec(&*txn).await?;
        Ok(())
    })
}

//! Broker REST routes (`/api/v1`). Management needs an admin; publishing needs an admin,
//! or a member when the topic allows members to publish.

use super::settings::BrokerSettings;
use super::domain::*;
use super::service::{self, Published, Replay, SubscriptionOptions};
use super::store::subscriber;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::platform::http::{ApiJson, ApiQuery};
use crate::platform::state::AppState;
use crate::platform::time::{parse_rfc3339, to_rfc3339};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

// ---- topics ----------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
pub struct CreateTopic {
    /// `domain:event`, e.g. `fin:purchase`.
    name: String,
    #[serde(default)]
    description: String,
    /// Whether members (not only admins) may publish to it.
    #[serde(default)]
    members_may_publish: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateTopic {
    description: Option<String>,
    members_may_publish: Option<bool>,
}

/// List topics.
#[utoipa::path(get, path = "/topics", tag = "broker", security(("bearer" = [])),
    responses((status = 200, body = Vec<TopicSummary>), (status = 401, body = ErrorEnvelope)))]
async fn list_topics(State(state): State<AppState>, caller: Caller) -> AppResult<Json<Vec<TopicSummary>>> {
    Ok(Json(service::list_topics(&state.db, &caller).await?))
}

/// Create a topic.
#[utoipa::path(post, path = "/topics", tag = "broker", security(("bearer" = [])), request_body = CreateTopic,
    responses((status = 201, body = TopicSummary), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn create_topic(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateTopic>) -> AppResult<(StatusCode, Json<TopicSummary>)> {
    let t = service::create_topic(&state.db, &caller, &req.name, &req.description, req.members_may_publish).await?;
    Ok((StatusCode::CREATED, Json(service::topic_summary(t))))
}

/// One topic.
#[utoipa::path(get, path = "/topics/{topic}", tag = "broker", security(("bearer" = [])),
    params(("topic" = String, Path, description = "topic name, e.g. fin:purchase")),
    responses((status = 200, body = TopicSummary), (status = 404, body = ErrorEnvelope)))]
async fn get_topic(State(state): State<AppState>, caller: Caller, Path(topic): Path<String>) -> AppResult<Json<TopicSummary>> {
    Ok(Json(service::topic_summary(service::topic_for(&state.db, &caller, &topic).await?)))
}

/// Change a topic's description or who may publish.
#[utoipa::path(patch, path = "/topics/{topic}", tag = "broker", security(("bearer" = [])), request_body = UpdateTopic,
    params(("topic" = String, Path)),
    responses((status = 200, body = TopicSummary), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn update_topic(State(state): State<AppState>, caller: Caller, Path(topic): Path<String>, ApiJson(req): ApiJson<UpdateTopic>) -> AppResult<Json<TopicSummary>> {
    let t = service::update_topic(&state.db, &caller, &topic, req.description.as_deref(), req.members_may_publish).await?;
    Ok(Json(service::topic_summary(t)))
}

/// Delete a topic that never carried a message.
#[utoipa::path(delete, path = "/topics/{topic}", tag = "broker", security(("bearer" = [])),
    params(("topic" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn delete_topic(State(state): State<AppState>, caller: Caller, Path(topic): Path<String>) -> AppResult<StatusCode> {
    service::delete_topic(&state.db, &caller, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct PublishRequest {
    /// Any JSON value; delivered as `data` of the Standard Webhooks envelope.
    payload: serde_json::Value,
    /// Publishing the same key twice on a topic returns the first message, delivered once.
    idempotency_key: Option<String>,
}

/// Publish a message to a topic.
#[utoipa::path(post, path = "/topics/{topic}/messages", tag = "broker", security(("bearer" = [])), request_body = PublishRequest,
    params(("topic" = String, Path)),
    responses(
        (status = 202, description = "accepted for delivery", body = Published),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn publish(State(state): State<AppState>, caller: Caller, Path(topic): Path<String>, ApiJson(req): ApiJson<PublishRequest>) -> AppResult<(StatusCode, Json<Published>)> {
    let published = service::publish_as(&state, &caller, &topic, &req.payload, req.idempotency_key.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(published)))
}

// ---- subscribers -----------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
pub struct CreateSubscriber {
    name: String,
    /// http(s) endpoint that receives POSTs.
    url: String,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateSubscriber {
    name: Option<String>,
    url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedSubscriber {
    id: i64,
    name: String,
    url: String,
    /// The signing secret (`whsec_…`): shown here once; admins can reveal it later.
    secret: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriberView {
    id: i64,
    name: String,
    url: String,
    created_at: String,
}

fn subscriber_view(s: &subscriber::Model) -> SubscriberView {
    SubscriberView { id: s.id, name: s.name.clone(), url: s.url.clone(), created_at: to_rfc3339(s.created_at) }
}

#[derive(Serialize, ToSchema)]
pub struct SecretView {
    secret: String,
    /// Until when the previous secret also signs (after a rotation).
    previous_valid_until: Option<String>,
}

/// List subscribers.
#[utoipa::path(get, path = "/subscribers", tag = "broker", security(("bearer" = [])),
    responses((status = 200, body = Vec<SubscriberView>), (status = 403, body = ErrorEnvelope)))]
async fn list_subscribers(State(state): State<AppState>, caller: Caller) -> AppResult<Json<Vec<SubscriberView>>> {
    Ok(Json(service::list_subscribers(&state.db, &caller).await?.iter().map(subscriber_view).collect()))
}

/// Register a subscriber; the response carries its signing secret once.
#[utoipa::path(post, path = "/subscribers", tag = "broker", security(("bearer" = [])), request_body = CreateSubscriber,
    responses((status = 201, body = CreatedSubscriber), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
async fn create_subscriber(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateSubscriber>) -> AppResult<(StatusCode, Json<CreatedSubscriber>)> {
    let (s, secret) = service::create_subscriber(&state, &caller, &req.name, &req.url).await?;
    let body = CreatedSubscriber { id: s.id, name: s.name, url: s.url, secret, created_at: to_rfc3339(s.created_at) };
    Ok((StatusCode::CREATED, Json(body)))
}

/// One subscriber.
#[utoipa::path(get, path = "/subscribers/{id}", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = SubscriberView), (status = 404, body = ErrorEnvelope)))]
async fn get_subscriber(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<SubscriberView>> {
    Ok(Json(subscriber_view(&service::subscriber(&state.db, &caller, id).await?)))
}

/// Rename a subscriber or change its endpoint.
#[utoipa::path(patch, path = "/subscribers/{id}", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = UpdateSubscriber,
    responses((status = 200, body = SubscriberView), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn update_subscriber(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, ApiJson(req): ApiJson<UpdateSubscriber>) -> AppResult<Json<SubscriberView>> {
    let s = service::update_subscriber(&state, &caller, id, req.name.as_deref(), req.url.as_deref()).await?;
    Ok(Json(subscriber_view(&s)))
}

/// Delete a subscriber, its subscriptions and its delivery log.
#[utoipa::path(delete, path = "/subscribers/{id}", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope)))]
async fn delete_subscriber(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<StatusCode> {
    service::delete_subscriber(&state.db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn secret_view(s: service::SecretInfo) -> SecretView {
    SecretView { secret: s.secret, previous_valid_until: s.previous_valid_until.map(to_rfc3339) }
}

/// Reveal the signing secret.
#[utoipa::path(get, path = "/subscribers/{id}/secret", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = SecretView), (status = 404, body = ErrorEnvelope)))]
async fn reveal_secret(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<SecretView>> {
    Ok(Json(secret_view(service::reveal_secret(&state.db, &state.sealer, &caller, id).await?)))
}

/// Issue a new signing secret; the old one keeps signing for 24 h.
#[utoipa::path(post, path = "/subscribers/{id}/secret/rotate", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = SecretView), (status = 404, body = ErrorEnvelope)))]
async fn rotate_secret(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<SecretView>> {
    Ok(Json(secret_view(service::rotate_secret(&state.db, &state.sealer, &caller, id).await?)))
}

// ---- subscriptions ---------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
pub struct CreateSubscription {
    /// A topic (`user:new`), a domain wildcard (`user:*`) or `*`.
    topic: String,
    /// `block` (default) or `dead_letter`: what happens when the attempts are used up.
    policy: Option<String>,
    max_attempts: Option<i32>,
    retry_base_ms: Option<i64>,
    retry_max_ms: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateSubscription {
    policy: Option<String>,
    max_attempts: Option<i32>,
    retry_base_ms: Option<i64>,
    retry_max_ms: Option<i64>,
}

fn options(policy: Option<String>, max_attempts: Option<i32>, retry_base_ms: Option<i64>, retry_max_ms: Option<i64>) -> AppResult<SubscriptionOptions> {
    let policy = policy.as_deref().map(FailurePolicy::from_field).transpose()?;
    Ok(SubscriptionOptions { policy, max_attempts, retry_base_ms, retry_max_ms })
}

/// A subscriber's subscriptions, with lag (messages waiting) and blocked state.
#[utoipa::path(get, path = "/subscribers/{id}/subscriptions", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Vec<SubscriptionSummary>), (status = 404, body = ErrorEnvelope)))]
async fn list_subscriptions(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<Vec<SubscriptionSummary>>> {
    Ok(Json(service::list_subscriptions(&state.db, &caller, id).await?))
}

/// Subscribe to a topic or wildcard.
#[utoipa::path(post, path = "/subscribers/{id}/subscriptions", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = CreateSubscription,
    responses((status = 201, body = SubscriptionSummary), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn create_subscription(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, ApiJson(req): ApiJson<CreateSubscription>) -> AppResult<(StatusCode, Json<SubscriptionSummary>)> {
    let opts = options(req.policy, req.max_attempts, req.retry_base_ms, req.retry_max_ms)?;
    Ok((StatusCode::CREATED, Json(service::subscribe(&state.db, &caller, id, &req.topic, opts, state.settings.part::<BrokerSettings>().max_attempts).await?)))
}

/// Change a subscription's failure policy or retry schedule.
#[utoipa::path(patch, path = "/subscriptions/{id}", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = UpdateSubscription,
    responses((status = 200, body = SubscriptionSummary), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn update_subscription(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, ApiJson(req): ApiJson<UpdateSubscription>) -> AppResult<Json<SubscriptionSummary>> {
    Ok(Json(service::update_subscription(&state.db, &caller, id, options(req.policy, req.max_attempts, req.retry_base_ms, req.retry_max_ms)?).await?))
}

/// Delete a subscription (its pending deliveries are dropped).
#[utoipa::path(delete, path = "/subscriptions/{id}", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope)))]
async fn delete_subscription(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<StatusCode> {
    service::unsubscribe(&state.db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause delivery; messages keep queueing.
#[utoipa::path(post, path = "/subscriptions/{id}/pause", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = SubscriptionSummary), (status = 404, body = ErrorEnvelope)))]
async fn pause(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<SubscriptionSummary>> {
    Ok(Json(service::set_paused(&state.db, &caller, id, true).await?))
}

/// Resume delivery (also re-enables a subscription disabled by a 410).
#[utoipa::path(post, path = "/subscriptions/{id}/resume", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = SubscriptionSummary), (status = 404, body = ErrorEnvelope)))]
async fn resume(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<SubscriptionSummary>> {
    Ok(Json(service::set_paused(&state.db, &caller, id, false).await?))
}

// ---- deliveries ------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
pub struct DeliveryParams {
    /// `pending`, `delivered`, `dead` or `skipped`.
    state: Option<String>,
    /// Only deliveries with a smaller id (paging backwards).
    before: Option<i64>,
    /// At most this many (default 50, max 500).
    limit: Option<u64>,
}

/// A subscriber's deliveries, newest first.
#[utoipa::path(get, path = "/subscribers/{id}/deliveries", tag = "broker", security(("bearer" = [])),
    params(("id" = i64, Path), DeliveryParams),
    responses((status = 200, body = Vec<DeliverySummary>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn list_deliveries(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, ApiQuery(q): ApiQuery<DeliveryParams>) -> AppResult<Json<Vec<DeliverySummary>>> {
    let query = service::DeliveryQuery { state: q.state, before: q.before, limit: q.limit.unwrap_or(50) };
    Ok(Json(service::list_deliveries(&state.db, &caller, id, query).await?))
}

/// Every attempt of a delivery: status, latency, truncated response.
#[utoipa::path(get, path = "/deliveries/{id}/attempts", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AttemptSummary>), (status = 404, body = ErrorEnvelope)))]
async fn list_attempts(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<Vec<AttemptSummary>>> {
    Ok(Json(service::list_attempts(&state.db, &caller, id).await?))
}

/// Skip a pending delivery (e.g. a blocked head), letting the lane go on.
#[utoipa::path(post, path = "/deliveries/{id}/skip", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn skip(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<StatusCode> {
    service::skip_delivery(&state.db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Retry a blocked head from scratch.
#[utoipa::path(post, path = "/deliveries/{id}/retry", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn retry(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<StatusCode> {
    service::retry_delivery(&state.db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct ReplayRequest {
    /// Send this one message again …
    message_id: Option<i64>,
    /// … or everything published since this time (ISO-8601), at most 10 000 messages.
    since: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    replayed: u64,
}

/// Send one message, or everything since a time, to a subscriber again.
#[utoipa::path(post, path = "/subscribers/{id}/replay", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ReplayRequest,
    responses((status = 202, body = Replayed), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn replay(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, ApiJson(req): ApiJson<ReplayRequest>) -> AppResult<(StatusCode, Json<Replayed>)> {
    let what = match (req.message_id, req.since.as_deref()) {
        (Some(m), None) => Replay::Message(m),
        (None, Some(since)) => Replay::Since(
            parse_rfc3339(since).ok_or_else(|| AppError::invalid("since", "since must be an ISO-8601 timestamp"))?,
        ),
        _ => return Err(AppError::invalid("message_id", "give either message_id or since")),
    };
    let replayed = service::replay(&state.db, &caller, id, what).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed })))
}

/// Live delivery events of a subscriber (Server-Sent Events; resumable with Last-Event-ID).
#[utoipa::path(get, path = "/subscribers/{id}/events", tag = "broker", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "text/event-stream of delivery changes", content_type = "text/event-stream", body = crate::platform::changes::ChangeEvent),
        (status = 404, body = ErrorEnvelope)))]
async fn events(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, headers: HeaderMap) -> AppResult<impl IntoResponse> {
    let channel = service::subscriber_channel(&state.db, &caller, id).await?;
    Ok(crate::platform::changes::sse(state.db.clone(), state.changes.clone(), channel, crate::platform::changes::last_event_id(&headers)))
}

// ---- the built-in demo receiver ----------------------------------------------------------

/// The demo's built-in webhook receiver (on when `SB_DEMO_DATA` is): verifies the
/// Standard Webhooks signature with the subscriber's secret and answers a receipt, or 503
/// for an attempt the message asked to be refused (`"refuse_attempts": n`).
#[utoipa::path(post, path = "/webhooks/demo-receiver/{id}", tag = "broker", request_body(content = String, content_type = "application/json"),
    params(("id" = i64, Path, description = "the demo subscriber"),
        ("webhook-id" = String, Header), ("webhook-timestamp" = String, Header), ("webhook-signature" = String, Header)),
    responses(
        (status = 200, body = super::demo::Receipt),
        (status = 401, description = "a header is missing or the signature does not verify", body = ErrorEnvelope),
        (status = 400, description = "webhook-id longer than 256 bytes", body = ErrorEnvelope),
        (status = 404, description = "the demo is off, or that subscriber is not the demo receiver", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope),
        (status = 429, description = "too many requests from this address", body = ErrorEnvelope),
        (status = 503, description = "refused on purpose, as the message asked", body = ErrorEnvelope)))]
async fn demo_receiver(
    State(state): State<AppState>,
    crate::platform::http::ClientAddr(client): crate::platform::http::ClientAddr,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> AppResult<Json<super::demo::Receipt>> {
    Ok(Json(super::demo::receive(&state, client, id, &headers, &body).await?))
}

/// Mounted at the root, beside the other webhook receivers.
pub fn webhook_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(demo_receiver))
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_topics, create_topic))
        .routes(routes!(get_topic, update_topic, delete_topic))
        .routes(routes!(publish))
        .routes(routes!(list_subscribers, create_subscriber))
        .routes(routes!(get_subscriber, update_subscriber, delete_subscriber))
        .routes(routes!(reveal_secret))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_subscriptions, create_subscription))
        .routes(routes!(update_subscription, delete_subscription))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(list_deliveries))
        .routes(routes!(list_attempts))
        .routes(routes!(skip))
        .routes(routes!(retry))
        .routes(routes!(replay))
        .routes(routes!(events))
}

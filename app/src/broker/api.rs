//! The broker pages' server functions. Each parses its input, calls one service function
//! and maps the result; the REST handlers in `http.rs` call the same services.

use super::*;

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The admin overview: topics and subscribers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub topics: Vec<TopicSummary>,
    pub subscribers: Vec<SubscriberSummary>,
}

/// One subscriber with its subscriptions and latest deliveries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriberDetail {
    pub subscriber: SubscriberSummary,
    pub subscriptions: Vec<SubscriptionSummary>,
    pub deliveries: Vec<DeliverySummary>,
}

#[cfg(feature = "ssr")]
async fn context() -> Result<(crate::accounts::Caller, crate::platform::state::AppState), AppError> {
    Ok((crate::accounts::require_caller().await?, crate::platform::state::AppState::from_context()?))
}

#[server(prefix = "/_fn", endpoint = "broker_overview")]
pub async fn broker_overview() -> Result<Overview, AppError> {
    let (caller, state) = context().await?;
    let subscribers = service::list_subscribers(&state.db, &caller).await?.iter().map(service::subscriber_summary).collect();
    Ok(Overview { topics: service::list_topics(&state.db, &caller).await?, subscribers })
}

#[server(prefix = "/_fn", endpoint = "broker_create_topic")]
pub async fn create_topic(name: String, description: String, members_may_publish: Option<String>) -> Result<(), AppError> {
    let (caller, state) = context().await?;
    service::create_topic(&state.db, &caller, &name, &description, members_may_publish.is_some()).await?;
    Ok(())
}

/// Publishes a message typed into the admin page (a JSON payload). Answers the message
/// id, or `None` when no subscription wanted it.
#[server(prefix = "/_fn", endpoint = "broker_publish")]
pub async fn publish_message(topic: String, payload: String) -> Result<Option<i64>, AppError> {
    let (caller, state) = context().await?;
    let payload: serde_json::Value = serde_json::from_str(&payload)
        .map_err(|e| AppError::invalid("payload", format!("the payload is not valid JSON: {e}")))?;
    let name = TopicName::parse(&topic).map_err(|e| e.on_field("topic"))?;
    Ok(service::publish_as(&state, &caller, name.as_str(), &payload, None).await?.id)
}

/// "Send test message" for a topic; answers the message id (`None`: nobody subscribes).
#[server(prefix = "/_fn", endpoint = "broker_send_test")]
pub async fn send_test_message(topic: String) -> Result<Option<i64>, AppError> {
    let (caller, state) = context().await?;
    let name = TopicName::parse(&topic).map_err(|e| e.on_field("topic"))?;
    Ok(service::send_test_message(&state, &caller, name.as_str()).await?.id)
}

/// The new subscriber's id and its secret (shown once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSubscriber {
    pub id: i64,
    pub secret: String,
}

#[server(prefix = "/_fn", endpoint = "broker_create_subscriber")]
pub async fn create_subscriber(name: String, url: String) -> Result<NewSubscriber, AppError> {
    let (caller, state) = context().await?;
    let (s, secret) = service::create_subscriber(&state, &caller, &name, &url).await?;
    Ok(NewSubscriber { id: s.id, secret })
}

#[server(prefix = "/_fn", endpoint = "broker_subscriber")]
pub async fn load_subscriber(id: i64) -> Result<SubscriberDetail, AppError> {
    let (caller, state) = context().await?;
    let s = service::subscriber(&state.db, &caller, id).await?;
    let query = service::DeliveryQuery { state: None, before: None, limit: 50 };
    Ok(SubscriberDetail {
        subscriber: service::subscriber_summary(&s),
        subscriptions: service::list_subscriptions(&state.db, &caller, id).await?,
        deliveries: service::list_deliveries(&state.db, &caller, id, query).await?,
    })
}

#[server(prefix = "/_fn", endpoint = "broker_reveal_secret")]
pub async fn reveal_secret(id: i64) -> Result<String, AppError> {
    let (caller, state) = context().await?;
    Ok(service::reveal_secret(&state.db, &state.sealer, &caller, id).await?.secret)
}

#[server(prefix = "/_fn", endpoint = "broker_rotate_secret")]
pub async fn rotate_secret(id: i64) -> Result<String, AppError> {
    let (caller, state) = context().await?;
    Ok(service::rotate_secret(&state.db, &state.sealer, &caller, id).await?.secret)
}

#[server(prefix = "/_fn", endpoint = "broker_subscribe")]
pub async fn subscribe(subscriber_id: i64, topic: String, policy: String) -> Result<(), AppError> {
    let (caller, state) = context().await?;
    let options = service::SubscriptionOptions { policy: Some(FailurePolicy::from_field(&policy)?), ..Default::default() };
    service::subscribe(&state.db, &caller, subscriber_id, &topic, options, state.settings.part::<super::settings::BrokerSettings>().max_attempts).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "broker_set_paused")]
pub async fn set_paused(subscription_id: i64, paused: bool) -> Result<(), AppError> {
    let (caller, state) = context().await?;
    service::set_paused(&state.db, &caller, subscription_id, paused).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "broker_unsubscribe")]
pub async fn unsubscribe(subscription_id: i64) -> Result<(), AppError> {
    let (caller, state) = context().await?;
    service::unsubscribe(&state.db, &caller, subscription_id).await
}

/// `skip`, `retry` or `replay` one delivery.
#[server(prefix = "/_fn", endpoint = "broker_delivery_action")]
pub async fn delivery_action(delivery_id: i64, action: String) -> Result<(), AppError> {
    let (caller, state) = context().await?;
    match action.as_str() {
        "skip" => service::skip_delivery(&state.db, &caller, delivery_id).await,
        "retry" => service::retry_delivery(&state.db, &caller, delivery_id).await,
        "replay" => service::replay_delivery(&state.db, &caller, delivery_id).await.map(|_| ()),
        _ => Err(AppError::invalid("action", "action is skip, retry or replay")),
    }
}

#[server(prefix = "/_fn", endpoint = "broker_attempts")]
pub async fn delivery_attempts(delivery_id: i64) -> Result<Vec<AttemptSummary>, AppError> {
    let (caller, state) = context().await?;
    service::list_attempts(&state.db, &caller, delivery_id).await
}

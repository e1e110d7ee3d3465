//! Admin pages of the broker: topics and subscribers, and per subscriber its secret,
//! subscriptions and a live delivery log.

use super::*;
use crate::ui::{live_ticks, Audience, ErrorAlert, Loaded, When};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

fn subscription_badge(state: SubscriptionState) -> &'static str {
    match state {
        SubscriptionState::Active => "badge ok",
        SubscriptionState::Paused => "badge warn",
        SubscriptionState::Disabled => "badge danger",
    }
}

fn delivery_badge(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Delivered => "badge ok",
        DeliveryState::Pending => "badge warn",
        DeliveryState::Dead => "badge danger",
        DeliveryState::Skipped => "badge",
    }
}

#[component]
pub fn BrokerPage() -> impl IntoView {
    let create_topic = ServerAction::<CreateTopic>::new();
    let create_subscriber = ServerAction::<CreateSubscriber>::new();
    let publish = ServerAction::<PublishMessage>::new();
    let test = ServerAction::<SendTestMessage>::new();
    let overview = Resource::new(
        move || (create_topic.version().get(), create_subscriber.version().get(), publish.version().get(), test.version().get()),
        |_| broker_overview(),
    );
    view! {
        <main class="page">
            <h1>"Webhook broker"</h1>
            <p class="lead">
                "Systems publish events to topics; every subscriber receives them signed "
                "(Standard Webhooks), in publish order per topic, with retries."
            </p>
            <Loaded data=overview audience={Audience::Admins} page=move |o| {
                view! {
                    <div class="columns">
                        <TopicsCard topics=o.topics.clone() create=create_topic test/>
                        <SubscribersCard subscribers=o.subscribers create=create_subscriber/>
                    </div>
                    <PublishCard topics=o.topics publish/>
                }.into_any()
            }/>
        </main>
    }
}

#[component]
fn TopicsCard(topics: Vec<TopicSummary>, create: ServerAction<CreateTopic>, test: ServerAction<SendTestMessage>) -> impl IntoView {
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    let test_error = Signal::derive(move || test.value().get().and_then(Result::err));
    view! {
        <section class="card" data-testid="topics">
            <h2>"Topics"</h2>
            {if topics.is_empty() {
                view! { <p class="empty">"No topics yet."</p> }.into_any()
            } else {
                view! {
                    <table class="data">
                        <thead><tr><th>"Topic"</th><th class="num">"Messages"</th><th>"Who publishes"</th><th><span class="sr-only">"Test"</span></th></tr></thead>
                        <tbody>
                            {topics.into_iter().map(|t| { let (name, row, label) = (t.name.clone(), t.name.clone(), format!("Send test message to {}", t.name)); view! {
                                <tr data-topic=row>
                                    <td><code>{t.name}</code><div class="hint">{t.description}</div></td>
                                    <td class="num" data-testid="topic-messages">{t.messages}</td>
                                    <td>{if t.members_may_publish { "members" } else { "admins" }}</td>
                                    <td>
                                        <ActionForm action=test>
                                            <input type="hidden" name="topic" value=name/>
                                            <button type="submit" class="secondary small" aria-label=label>"Send test message"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }}).collect_view()}
                        </tbody>
                    </table>
                    <ErrorAlert error=test_error/>
                    {move || test.value().get().and_then(Result::ok).map(|id| view! {
                        <p class="alert ok" role="status" data-testid="test-sent">{match id {
                            Some(id) => format!("Test message #{id} published."),
                            None => "Test message published; no subscription wanted it.".to_owned(),
                        }}</p>
                    })}
                }.into_any()
            }}
            <h3>"New topic"</h3>
            <ActionForm action=create attr:class="form wide">
                <div class="row">
                    <input type="text" name="name" placeholder="domain:event, e.g. fin:purchase" required aria-label="Topic name"/>
                    <input type="text" name="description" placeholder="What it means" aria-label="Description"/>
                </div>
                <label class="row"><input type="checkbox" name="members_may_publish" value="on"/>"Members may publish"</label>
                <ErrorAlert error/>
                <div><button type="submit">"Create topic"</button></div>
            </ActionForm>
        </section>
    }
}

#[component]
fn SubscribersCard(subscribers: Vec<SubscriberSummary>, create: ServerAction<CreateSubscriber>) -> impl IntoView {
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    view! {
        <section class="card" data-testid="subscribers">
            <h2>"Subscribers"</h2>
            {if subscribers.is_empty() {
                view! { <p class="empty">"No subscribers yet."</p> }.into_any()
            } else {
                view! {
                    <table class="data">
                        <thead><tr><th>"Name"</th><th>"Endpoint"</th></tr></thead>
                        <tbody>
                            {subscribers.into_iter().map(|s| view! {
                                <tr>
                                    <td><A href=format!("/broker/subscribers/{}", s.id)>{s.name}</A></td>
                                    <td class="mono truncate">{s.url}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <h3>"New subscriber"</h3>
            <ActionForm action=create attr:class="form wide">
                <div class="row">
                    <input type="text" name="name" placeholder="Name, e.g. billing" required aria-label="Subscriber name"/>
                    <input type="url" name="url" placeholder="https://example.com/webhooks" required aria-label="Endpoint URL"/>
                </div>
                <ErrorAlert error/>
                <div><button type="submit">"Add subscriber"</button></div>
            </ActionForm>
            {move || create.value().get().and_then(Result::ok).map(|s| view! {
                <div class="alert ok">
                    "Subscriber created. Its signing secret is shown once here (admins can reveal it later):"
                    <div class="secret" data-testid="new-secret">{s.secret}</div>
                    <A href=format!("/broker/subscribers/{}", s.id)>"Open the subscriber →"</A>
                </div>
            })}
        </section>
    }
}

#[component]
fn PublishCard(topics: Vec<TopicSummary>, publish: ServerAction<PublishMessage>) -> impl IntoView {
    let error = Signal::derive(move || publish.value().get().and_then(Result::err));
    view! {
        <section class="card">
            <h2>"Publish a message"</h2>
            <ActionForm action=publish attr:class="form wide">
                <div class="row">
                    <select name="topic" aria-label="Topic" required>
                        {topics.into_iter().map(|t| view! { <option value=t.name.clone()>{t.name.clone()}</option> }).collect_view()}
                    </select>
                </div>
                <textarea name="payload" rows="4" aria-label="Payload" class="mono">"{\"hello\": \"world\"}"</textarea>
                <ErrorAlert error/>
                <div><button type="submit">"Publish"</button></div>
            </ActionForm>
            {move || publish.value().get().and_then(Result::ok).map(|id| match id {
                Some(id) => view! { <p class="alert ok" data-testid="published">"Published message " {id} "."</p> }.into_any(),
                None => view! {
                    <p class="alert warn" data-testid="published">"No subscription matches this topic, so nothing was stored or sent."</p>
                }.into_any(),
            })}
        </section>
    }
}

#[component]
pub fn SubscriberPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or_default();
    let subscribe = ServerAction::<Subscribe>::new();
    let set_paused = ServerAction::<SetPaused>::new();
    let unsubscribe = ServerAction::<Unsubscribe>::new();
    let act = ServerAction::<DeliveryAction>::new();
    let ticks = live_ticks(format!("/api/v1/subscribers/{}/events", id()));
    let detail = Resource::new(
        move || {
            (id(), ticks.get(), subscribe.version().get(), set_paused.version().get(), unsubscribe.version().get(), act.version().get())
        },
        |(id, ..)| load_subscriber(id),
    );
    let action_error = Signal::derive(move || {
        act.value().get().and_then(Result::err).or_else(|| set_paused.value().get().and_then(Result::err))
    });
    view! {
        <main class="page">
            <p><A href="/broker">"← Broker"</A></p>
            <crate::ui::LiveStatus>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        detail.await.ok().and_then(|d| d.deliveries.first().map(|l| format!("Latest delivery: message {}, {}", l.message_id, l.state)))
                    })}
                </Transition>
            </crate::ui::LiveStatus>
            <Loaded data=detail audience={Audience::Admins} page=move |d| {
                view! {
                    <h1>{d.subscriber.name.clone()}</h1>
                    <p class="lead mono">{d.subscriber.url.clone()}</p>
                    <SecretCard id=d.subscriber.id/>
                    <SubscriptionsCard detail=d.clone() subscribe set_paused unsubscribe/>
                    <ErrorAlert error=action_error/>
                    <DeliveryLog deliveries=d.deliveries act/>
                }.into_any()
            }/>
        </main>
    }
}

#[component]
fn SecretCard(id: i64) -> impl IntoView {
    let reveal = ServerAction::<RevealSecret>::new();
    let rotate = ServerAction::<RotateSecret>::new();
    let shown = move || rotate.value().get().or_else(|| reveal.value().get()).and_then(Result::ok);
    view! {
        <section class="card">
            <h2>"Signing secret"</h2>
            <p class="hint">
                "Requests carry " <code>"webhook-id"</code> ", " <code>"webhook-timestamp"</code> " and "
                <code>"webhook-signature"</code> " (HMAC-SHA256, Standard Webhooks). After a rotation the old secret "
                "keeps signing for 24 hours."
            </p>
            <div class="row">
                <ActionForm action=reveal><input type="hidden" name="id" value=id/><button type="submit" class="secondary">"Reveal"</button></ActionForm>
                <ActionForm action=rotate><input type="hidden" name="id" value=id/><button type="submit" class="secondary">"Rotate"</button></ActionForm>
            </div>
            {move || shown().map(|s| view! { <div class="secret" data-testid="secret">{s}</div> })}
        </section>
    }
}

#[component]
fn SubscriptionsCard(
    detail: SubscriberDetail,
    subscribe: ServerAction<Subscribe>,
    set_paused: ServerAction<SetPaused>,
    unsubscribe: ServerAction<Unsubscribe>,
) -> impl IntoView {
    let error = Signal::derive(move || subscribe.value().get().and_then(Result::err));
    view! {
        <section class="card" data-testid="subscriptions">
            <h2>"Subscriptions"</h2>
            {if detail.subscriptions.is_empty() {
                view! { <p class="empty">"Not subscribed to anything yet."</p> }.into_any()
            } else {
                view! {
                    <table class="data">
                        <thead><tr><th>"Topic"</th><th>"State"</th><th>"When attempts run out"</th><th class="num">"Waiting"</th><th></th></tr></thead>
                        <tbody>
                            {detail.subscriptions.into_iter().map(|s| {
                                let paused = s.state != SubscriptionState::Active;
                                view! {
                                    <tr>
                                        <td><code>{s.topic}</code></td>
                                        <td>
                                            <span class=subscription_badge(s.state)>{s.state.as_str()}</span>
                                            {s.blocked.then(|| view! { <span class="badge danger">"blocked"</span> })}
                                            {s.disabled_reason.map(|r| view! { <div class="hint">{r}</div> })}
                                        </td>
                                        <td>{if s.policy == FailurePolicy::Block { "block the lane" } else { "dead-letter, go on" }}
                                            <span class="hint">" after " {s.max_attempts} " attempts"</span></td>
                                        <td class="num" data-testid="lag">{s.lag}</td>
                                        <td class="row">
                                            <ActionForm action=set_paused>
                                                <input type="hidden" name="subscription_id" value=s.id/>
                                                <input type="hidden" name="paused" value=(!paused).to_string()/>
                                                <button type="submit" class="secondary small">{if paused { "Resume" } else { "Pause" }}</button>
                                            </ActionForm>
                                            <ActionForm action=unsubscribe>
                                                <input type="hidden" name="subscription_id" value=s.id/>
                                                <button type="submit" class="danger small">"Delete"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <ActionForm action=subscribe attr:class="row">
                <input type="hidden" name="subscriber_id" value=detail.subscriber.id/>
                <input type="text" name="topic" placeholder="user:new, user:* or *" required aria-label="Topic or pattern"/>
                <select name="policy" aria-label="Failure policy">
                    <option value="block">"block the lane"</option>
                    <option value="dead_letter">"dead-letter and go on"</option>
                </select>
                <button type="submit">"Subscribe"</button>
            </ActionForm>
            <ErrorAlert error/>
        </section>
    }
}

#[component]
fn DeliveryLog(deliveries: Vec<DeliverySummary>, act: ServerAction<DeliveryAction>) -> impl IntoView {
    view! {
        <section class="card" data-testid="deliveries">
            <h2>"Delivery log " <span class="badge accent">"live"</span></h2>
            {if deliveries.is_empty() {
                view! { <p class="empty">"Nothing delivered yet."</p> }.into_any()
            } else {
                view! {
                    <table class="data">
                        <thead><tr><th>"Message"</th><th>"State"</th><th class="num">"Attempts"</th><th>"Last answer"</th><th>"Created"</th><th></th></tr></thead>
                        <tbody>
                            {deliveries.into_iter().map(|d| view! { <DeliveryRow d act/> }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn DeliveryRow(d: DeliverySummary, act: ServerAction<DeliveryAction>) -> impl IntoView {
    let open = RwSignal::new(false);
    let id = d.id;
    let attempts = Resource::new(move || open.get().then_some(id), |id| async move {
        match id {
            Some(id) => delivery_attempts(id).await,
            None => Ok(Vec::new()),
        }
    });
    let actions: &[&str] = if d.state == DeliveryState::Pending { &["skip", "retry"] } else { &["replay"] };
    let last = match (d.last_status, d.last_error.clone()) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => e,
        (None, None) => "—".into(),
    };
    view! {
        <tr data-testid="delivery" data-state=d.state.as_str()>
            <td><code>{d.topic}</code>" #"{d.seq}</td>
            <td><span class=delivery_badge(d.state)>{d.state.as_str()}</span></td>
            <td class="num">{d.attempts}</td>
            <td class="truncate" title=d.last_error.clone().unwrap_or_default()>{last}</td>
            <td><When ms=d.created_at/></td>
            <td class="row">
                <button type="button" class="link small" on:click=move |_| open.update(|o| *o = !*o)>"attempts"</button>
                {actions.iter().map(|a| view! {
                    <ActionForm action=act>
                        <input type="hidden" name="delivery_id" value=id/>
                        <input type="hidden" name="action" value=*a/>
                        <button type="submit" class="secondary small">{*a}</button>
                    </ActionForm>
                }).collect_view()}
            </td>
        </tr>
        <Show when=move || open.get()>
            <tr class="detail"><td colspan="6">
                <Suspense fallback=|| view! { "…" }>
                    {move || Suspend::new(async move {
                        let list = attempts.await.unwrap_or_default();
                        view! {
                            <ol class="attempts">
                                {list.into_iter().map(|a| view! {
                                    <li>
                                        <When ms=a.started_at/> " · " {a.duration_ms} " ms · "
                                        {a.status_code.map(|s| format!("HTTP {s}")).unwrap_or_else(|| a.error.clone().unwrap_or_default())}
                                        " · " <span class="hint">{a.worker}</span>
                                        {a.response_body.filter(|b| !b.is_empty()).map(|b| view! { <pre class="body">{b}</pre> })}
                                    </li>
                                }).collect_view()}
                            </ol>
                        }
                    })}
                </Suspense>
            </td></tr>
        </Show>
    }
}

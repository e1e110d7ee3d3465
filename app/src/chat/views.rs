//! The inbox: compose, see messages arrive live with a countdown, read (which expires
//! them), and open any message by id.

use super::*;
use crate::error::AppError;
use crate::ui::{duration_text, live_ticks, ticking_clock, Audience, ErrorAlert, FieldError, LiveStatus, Loaded, When};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

#[component]
pub fn InboxPage() -> impl IntoView {
    let send = ServerAction::<SendMessage>::new();
    let read = ServerAction::<ReadMyInbox>::new();
    let ticks = live_ticks("/api/v1/me/chat/events".into());
    let inbox = Resource::new(move || (ticks.get(), send.version().get(), read.version().get()), |_| load_inbox());
    view! {
        <main class="page">
            <h1>"Inbox"</h1>
            <p class="lead">
                "Leave a message for anyone; it expires after its timeout. Reading your messages expires them at once. "
                "Expired messages move to cold storage and stay readable by id."
            </p>
            <LiveStatus>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        inbox.await.ok().map(|s| format!("{} message(s) waiting", s.waiting.len()))
                    })}
                </Transition>
            </LiveStatus>
            <Loaded data=inbox audience={Audience::SignedIn { next: "/inbox", to: " to use your inbox." }} page=move |state| {
                view! {
                    <div class="columns">
                        <Compose send/>
                        <Waiting state read/>
                    </div>
                    <OpenById/>
                }.into_any()
            }/>
        </main>
    }
}

#[component]
fn Compose(send: ServerAction<SendMessage>) -> impl IntoView {
    let error = Signal::derive(move || send.value().get().and_then(Result::err));
    view! {
        <section class="card">
            <h2>"Send a message"</h2>
            <ActionForm action=send attr:class="form wide">
                <div class="field">
                    <label for="to">"To"</label>
                    <input id="to" name="to" type="text" placeholder="username" required maxlength="32"/>
                    <FieldError error field="to"/>
                </div>
                <div class="field">
                    <label for="text">"Message"</label>
                    <textarea id="text" name="text" rows="3" required maxlength="4096"></textarea>
                    <FieldError error field="text"/>
                </div>
                <div class="field">
                    <label for="timeout">"Expires after (seconds)"</label>
                    <input id="timeout" name="timeout" type="number" min="0" max="31536000" value="60"/>
                    <FieldError error field="timeout"/>
                </div>
                <ErrorAlert error unless_field=true/>
                <div><button type="submit">"Send"</button></div>
            </ActionForm>
            {move || send.value().get().and_then(Result::ok).map(|id| view! {
                <p class="alert ok" data-testid="sent">
                    "Sent message " <A href=format!("/inbox/message?id={id}")>{format!("#{id}")}</A> "."
                </p>
            })}
        </section>
    }
}

#[component]
fn Waiting(state: InboxState, read: ServerAction<ReadMyInbox>) -> impl IntoView {
    let now = ticking_clock(state.now);
    let count = state.waiting.len();
    let read_error = Signal::derive(move || read.value().get().and_then(Result::err));
    view! {
        <section class="card" data-testid="waiting">
            <h2>"Waiting for " {state.me.clone()} " " <span class="badge accent">"live"</span></h2>
            {if state.waiting.is_empty() {
                view! { <p class="empty">"No unexpired messages."</p> }.into_any()
            } else {
                view! {
                    <ul class="messages">
                        {state.waiting.into_iter().map(|w| view! {
                            <li data-testid="waiting-message">
                                <span class="who">{w.sender.unwrap_or_else(|| "someone".into())}</span>
                                <span class="hint">" · sent " <When ms=w.created_at/></span>
                                <span class="countdown" data-testid="countdown">
                                    {move || {
                                        let left = w.expiration_date - now.get();
                                        if left > 0 { format!("expires in {}", duration_text(left)) } else { "expired".into() }
                                    }}
                                </span>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <ActionForm action=read>
                <button type="submit" disabled=count == 0>{format!("Read {count} message(s)")}</button>
            </ActionForm>
            <ErrorAlert error=read_error/>
            {move || read.value().get().and_then(Result::ok).map(|page| view! {
                <h3>"Just read (now expired)"</h3>
                <ul class="messages read" data-testid="read">
                    {page.messages.into_iter().map(|m| view! {
                        <li>
                            <span class="who">{m.sender.unwrap_or_default()}</span>
                            <p class="text">{m.text}</p>
                            <A href=format!("/inbox/message?id={}", m.id)>{format!("#{}", m.id)}</A>
                        </li>
                    }).collect_view()}
                </ul>
                {page.has_more.then(|| view! {
                    <p class="hint" data-testid="more-waiting">"More messages are waiting: read again for the next ones."</p>
                })}
            })}
        </section>
    }
}

#[component]
fn OpenById() -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Open a message by id"</h2>
            <form method="get" action="/inbox/message" class="row">
                <input type="number" name="id" min="1" required aria-label="Message id" placeholder="id"/>
                <button type="submit" class="secondary">"Open"</button>
            </form>
        </section>
    }
}

/// One message by id (`/inbox/message?id=…`), expired or not.
#[component]
pub fn MessagePage() -> impl IntoView {
    let query = use_query_map();
    let id = move || query.read().get("id").and_then(|v| v.parse::<i64>().ok());
    let message = Resource::new(id, |id| async move {
        match id {
            Some(id) => open_message(id).await,
            None => Err(AppError::invalid("id", "give a message id")),
        }
    });
    view! {
        <main class="page">
            <p><A href="/inbox">"← Inbox"</A></p>
            <Loaded data=message audience={Audience::Anyone} page=move |m| {
                let expired = m.expired;
                view! {
                    <article class="card" data-testid="message" data-storage=m.storage.as_str()>
                        <h1>{format!("Message #{}", m.id)}</h1>
                        <p class="row">
                            {if m.storage == StoredIn::Archived {
                                view! { <span class="badge">"archived"</span> }.into_any()
                            } else {
                                view! { <span class="badge ok">"in the database"</span> }.into_any()
                            }}
                            {expired.then(|| view! { <span class="badge warn">"expired"</span> })}
                        </p>
                        <p class="text">{m.text}</p>
                        <dl class="facts">
                            <dt>"To"</dt><dd>{m.username}</dd>
                            <dt>"From"</dt><dd>{m.sender.unwrap_or_else(|| "—".into())}</dd>
                            <dt>"Sent"</dt><dd><When ms=m.created_at/></dd>
                            <dt>"Expires"</dt><dd><When ms=m.expiration_date/></dd>
                        </dl>
                    </article>
                }.into_any()
            }/>
        </main>
    }
}

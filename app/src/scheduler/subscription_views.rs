//! The settings page's card for other calendars: subscribe by address, show an uploaded
//! `.ics` file, import one into one's own calendar, and see how each subscription's last
//! refresh went.

use super::*;
use crate::ui::{Audience, ErrorAlert, Loaded, TextField, When};
use leptos::prelude::*;

#[component]
pub fn SubscriptionsCard() -> impl IntoView {
    let subscribe = ServerAction::<SubscribeCalendar>::new();
    let remove = ServerAction::<UnsubscribeCalendar>::new();
    let refresh = ServerAction::<RefreshCalendar>::new();
    let (uploaded, set_uploaded) = signal(0u32);
    let list = Resource::new(
        move || (subscribe.version().get(), remove.version().get(), refresh.version().get(), uploaded.get()),
        |_| load_subscriptions(),
    );
    let error = Signal::derive(move || subscribe.value().get().and_then(Result::err));
    view! {
        <Loaded data=list audience={Audience::SignedInSilently} page={move |subs: Vec<SubscriptionView>| view! {
            <section class="card" data-testid="subscriptions-card">
                <h2>"Other calendars"</h2>
                <p class="hint">"Shown beside your own events, read-only, and counted as busy on your booking page. Addresses are fetched again regularly (hourly unless the server is set otherwise)."</p>
                <ul class="subscriptions">
                    {subs.is_empty().then(|| view! { <li class="hint">"None yet."</li> })}
                    {subs.into_iter().map(|s| view! { <SubscriptionLine s remove refresh/> }).collect_view()}
                </ul>
                <h3>"Subscribe by address"</h3>
                <ActionForm action=subscribe attr:class="form wide">
                    <div class="row">
                        <TextField id="sub-name" name="name" label="Name" maxlength=100 placeholder="Team holidays" narrow=true error/>
                        <TextField id="sub-url" name="url" label="iCalendar address (https:// or webcal://)" maxlength=2048
                            placeholder="https://example.com/calendar.ics" error/>
                    </div>
                    <ErrorAlert error unless_field=true/>
                    <button type="submit">"Subscribe"</button>
                </ActionForm>
                <UploadForm done=set_uploaded/>
                <ImportForm/>
            </section>
        }}/>
    }
}

#[component]
fn SubscriptionLine(s: SubscriptionView, remove: ServerAction<UnsubscribeCalendar>, refresh: ServerAction<RefreshCalendar>) -> impl IntoView {
    let fetched = s.fetched_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp_millis());
    view! {
        <li data-testid="subscription" data-name=s.name.clone() data-events=s.event_count>
            <div class="row">
                <strong>{s.name.clone()}</strong>
                <span class="hint">{s.source.clone()}</span>
                <span class="hint">{format!("{} events", s.event_count)}</span>
                {fetched.map(|ms| view! { <span class="hint">"read "<When ms/></span> })}
                <span class="spacer"></span>
                {(s.kind == SubscriptionKind::Url).then(|| view! {
                    <ActionForm action=refresh>
                        <input type="hidden" name="id" value=s.id/>
                        <button type="submit" class="secondary">"Refresh"</button>
                    </ActionForm>
                })}
                <ActionForm action=remove>
                    <input type="hidden" name="id" value=s.id/>
                    <button type="submit" class="secondary">"Remove"</button>
                </ActionForm>
            </div>
            {s.last_error.clone().map(|e| view! {
                <p class="alert error" role="alert" data-testid="subscription-error">{format!("The last refresh failed: {e}. The events read before are still shown.")}</p>
            })}
            {s.warnings.clone().map(|w| view! {
                <details data-testid="subscription-warnings"><summary>"Some events could not be shown"</summary><p class="hint">{w}</p></details>
            })}
        </li>
    }
}

/// Shows an `.ics` file as a subscribed calendar.
#[component]
fn UploadForm(done: WriteSignal<u32>) -> impl IntoView {
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let name_input = NodeRef::<leptos::html::Input>::new();
    let file_input = NodeRef::<leptos::html::Input>::new();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            let name = name_input.get().map(|i| i.value()).unwrap_or_default();
            let Some(file) = chosen(file_input) else {
                set_error.set(Some("Choose an .ics file first.".into()));
                return;
            };
            set_busy.set(true);
            set_error.set(None);
            leptos::task::spawn_local(async move {
                let url = format!("/api/v1/me/calendar-subscriptions/upload?name={}", js_sys::encode_uri_component(&name));
                match crate::ui::post_file(&url, "text/calendar", file).await {
                    Ok(_) => done.update(|n| *n += 1),
                    Err(e) => set_error.set(Some(e)),
                }
                set_busy.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (name_input, file_input, set_busy, set_error, done);
    };
    view! {
        <h3>"Show a file"</h3>
        <form class="form wide" on:submit=on_submit data-testid="subscription-upload">
            <div class="row">
                <div class="field narrow">
                    <label for="sub-file-name">"Name"</label>
                    <input id="sub-file-name" type="text" required maxlength="100" node_ref=name_input/>
                </div>
                <div class="field">
                    <label for="sub-file">".ics file (shown as it is; not fetched again)"</label>
                    <input id="sub-file" type="file" accept=".ics,text/calendar" node_ref=file_input/>
                </div>
            </div>
            {move || error.get().map(|e| view! { <p class="alert error" role="alert">{e}</p> })}
            <button type="submit" disabled=move || busy.get()>"Show beside my calendar"</button>
        </form>
    }
}

/// Imports an `.ics` file into the caller's own calendar.
#[component]
fn ImportForm() -> impl IntoView {
    let (outcome, set_outcome) = signal(None::<Result<ImportReport, String>>);
    let (busy, set_busy) = signal(false);
    let file_input = NodeRef::<leptos::html::Input>::new();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            let Some(file) = chosen(file_input) else {
                set_outcome.set(Some(Err("Choose an .ics file first.".into())));
                return;
            };
            set_busy.set(true);
            leptos::task::spawn_local(async move {
                let report = crate::ui::post_file("/api/v1/me/calendar-import", "text/calendar", file)
                    .await
                    .and_then(|v| serde_json::from_value::<ImportReport>(v).map_err(|e| e.to_string()));
                set_outcome.set(Some(report));
                set_busy.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (file_input, set_busy, set_outcome);
    };
    view! {
        <h3>"Import into my calendar"</h3>
        <form class="form wide" on:submit=on_submit data-testid="calendar-import">
            <div class="field">
                <label for="import-file">".ics file (its events become your own; importing it again adds nothing twice)"</label>
                <input id="import-file" type="file" accept=".ics,text/calendar" node_ref=file_input/>
            </div>
            <button type="submit" disabled=move || busy.get()>"Import"</button>
        </form>
        {move || outcome.get().map(|r| match r {
            Ok(r) => view! {
                <div class="alert ok" role="status" data-testid="import-report">
                    <p>{format!("Imported {} events; {} were already in your calendar.", r.created, r.already_imported)}</p>
                    {r.warnings.map(|w| view! { <p class="hint">{format!("Left out: {w}")}</p> })}
                </div>
            }.into_any(),
            Err(e) => view! { <p class="alert error" role="alert">{e}</p> }.into_any(),
        })}
    }
}

/// The file chosen in a file input, if any.
#[cfg(feature = "hydrate")]
fn chosen(input: NodeRef<leptos::html::Input>) -> Option<web_sys::File> {
    input.get().and_then(|i| i.files()).and_then(|f| f.get(0))
}

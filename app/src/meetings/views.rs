//! The meetings page: upcoming and past meetings, filters mirrored in the URL, live.

use super::*;
use crate::ui::{live_ticks, Audience, ErrorAlert, LiveStatus, Loaded, When};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

fn badge(status: MeetingStatus) -> &'static str {
    match status {
        MeetingStatus::Scheduled => "badge ok",
        MeetingStatus::Canceled => "badge danger",
        MeetingStatus::Rescheduled => "badge warn",
    }
}

#[component]
pub fn MeetingsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        MeetingFilter { status: get("status"), host: get("host"), from: get("from"), to: get("to"), limit: None }
    };
    let ticks = live_ticks("/api/v1/meetings/events".into());
    let data = Resource::new(move || (filter(), ticks.get()), |(f, _)| load_meetings(f.status, f.host, f.from, f.to));
    let test_booking = ServerAction::<SendTestBooking>::new();
    view! {
        <main class="page">
            <h1>"Meetings"</h1>
            <p class="lead">"Bookings from the booking site, as they happen. This page updates by itself."</p>
            <form method="get" action="/meetings" class="card row filters">
                <select name="status" aria-label="Status">
                    <option value="" selected=move || filter().status.is_none()>"any status"</option>
                    {MeetingStatus::ALL.iter().map(|s| view! {
                        <option value=s.as_str() selected=move || filter().status.as_deref() == Some(s.as_str())>{s.as_str()}</option>
                    }).collect_view()}
                </select>
                <input type="email" name="host" placeholder="host email" aria-label="Host" value=move || filter().host.unwrap_or_default()/>
                <label class="row">"from" <input type="date" name="from" value=move || filter().from.unwrap_or_default()/></label>
                <label class="row">"to" <input type="date" name="to" value=move || filter().to.unwrap_or_default()/></label>
                <button type="submit" class="secondary">"Filter"</button>
                <A href="/meetings">"Clear"</A>
            </form>
            <LiveStatus>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        data.await.ok().map(|d| {
                            let upcoming = d.meetings.iter().filter(|m| m.end_time >= d.now).count();
                            format!("{upcoming} upcoming and {} past meeting(s)", d.meetings.len() - upcoming)
                        })
                    })}
                </Transition>
            </LiveStatus>
            <Loaded data=data audience={Audience::SignedIn { next: "/meetings", to: " to see the meetings." }} page=move |d| {
                let (upcoming, past): (Vec<_>, Vec<_>) = d.meetings.into_iter().partition(|m| m.end_time >= d.now);
                view! {
                    {d.test_bookings.then(|| view! { <TestBooking action=test_booking/> })}
                    <MeetingList title="Upcoming" testid="upcoming" meetings=upcoming/>
                    <MeetingList title="Past" testid="past" meetings=past.into_iter().rev().collect()/>
                }.into_any()
            }/>
        </main>
    }
}

/// The embedded run's "Send a test booking": the new meeting arrives like any other, live.
#[component]
fn TestBooking(action: ServerAction<SendTestBooking>) -> impl IntoView {
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    view! {
        <section class="card row" data-testid="test-booking">
            <p class="hint">"Demo: a sample booking, signed with this installation's development key and sent through the real webhook intake."</p>
            <ActionForm action=action>
                <button type="submit" class="secondary">"Send a test booking"</button>
            </ActionForm>
            <ErrorAlert error/>
        </section>
    }
}

#[component]
fn MeetingList(title: &'static str, testid: &'static str, meetings: Vec<MeetingView>) -> impl IntoView {
    view! {
        <section class="card" data-testid=testid>
            <h2>{title} " " <span class="badge">{meetings.len()}</span></h2>
            {if meetings.is_empty() {
                view! { <p class="empty">"None."</p> }.into_any()
            } else {
                view! {
                    <table class="data">
                        <thead><tr><th>"When"</th><th>"Meeting"</th><th>"Invitee"</th><th>"Host"</th><th>"Status"</th></tr></thead>
                        <tbody>
                            {meetings.into_iter().map(|m| view! {
                                <tr data-testid="meeting" data-status=m.status.as_str() data-event=m.event_uri.clone()>
                                    <td><When ms=m.start_time/></td>
                                    <td>
                                        <strong>{m.name}</strong>
                                        <div class="hint">{m.location}</div>
                                    </td>
                                    <td>{m.invitee_name}<div class="hint">{m.invitee_email}</div></td>
                                    <td class="hint">{m.host_email}</td>
                                    <td>
                                        <span class=badge(m.status)>{m.status.as_str()}</span>
                                        {m.no_show.then(|| view! { <span class="badge danger">"no-show"</span> })}
                                        {m.cancel_reason.map(|r| view! { <div class="hint">{format!("“{r}”")}{m.canceled_by.map(|b| format!(" — {b}"))}</div> })}
                                        {m.rescheduled_to.map(|l| view! {
                                            <div class="hint">"moved to "
                                                {match l.start_time { Some(t) => view! { <When ms=t/> }.into_any(), None => "a new time".into_any() }}
                                            </div>
                                        })}
                                        {m.rescheduled_from.map(|l| view! {
                                            <div class="hint">"moved from "
                                                {match l.start_time { Some(t) => view! { <When ms=t/> }.into_any(), None => "an earlier booking".into_any() }}
                                            </div>
                                        })}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

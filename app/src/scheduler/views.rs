//! The calendar (week and month grids, an agenda list on small screens, a click-to-edit
//! dialog) and the settings page's feed card.

use super::*;
use crate::ui::{Audience, ErrorAlert, FieldError, Loaded};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

/// Height of one hour in the week grid, in pixels.
const HOUR_PX: i32 = 44;
/// The hour the week view opens at.
const WORKDAY_STARTS: i32 = 7;

/// What the event dialog edits.
#[derive(Clone, Debug, PartialEq)]
struct Draft {
    id: Option<i64>,
    version: Option<i32>,
    title: String,
    start: String,
    end: String,
    all_day: bool,
    location: String,
    description: String,
}

impl Draft {
    fn new(day: &str, hour: i32) -> Self {
        let h = hour.clamp(0, 22);
        Self {
            id: None,
            version: None,
            title: String::new(),
            start: format!("{day}T{h:02}:00"),
            end: format!("{day}T{:02}:00", h + 1),
            all_day: false,
            location: String::new(),
            description: String::new(),
        }
    }

    fn of(p: &Placed) -> Self {
        // All-day events end at the next midnight; the form shows the last day.
        let end = if p.all_day { p.local_start.clone().max(shift_back_a_minute(&p.local_end)) } else { p.local_end.clone() };
        Self {
            id: Some(p.id),
            version: Some(p.version),
            title: p.title.clone(),
            start: p.local_start.clone(),
            end,
            all_day: p.all_day,
            location: p.location.clone(),
            description: p.description.clone(),
        }
    }
}

/// `2026-11-23T00:00` → `2026-11-22T23:59` (string arithmetic on the local form value).
fn shift_back_a_minute(local: &str) -> String {
    match chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M") {
        Ok(t) => (t - chrono::Duration::minutes(1)).format("%Y-%m-%dT%H:%M").to_string(),
        Err(_) => local.to_owned(),
    }
}

fn hhmm(local: &str) -> &str {
    local.get(11..16).unwrap_or("")
}

fn nav_href(page: &CalendarLayout, view: CalendarView, date: &str) -> String {
    format!("/calendar?view={view}&date={date}&user={}", page.owner.username)
}

#[component]
pub fn CalendarScreen() -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        (q.get("user"), q.get("view"), q.get("date"))
    };
    let save = ServerAction::<SaveEvent>::new();
    let remove = ServerAction::<RemoveEvent>::new();
    let editing: RwSignal<Option<Draft>> = RwSignal::new(None);
    let page = Resource::new(move || (params(), save.version().get(), remove.version().get()), |((user, view, date), ..)| {
        load_calendar(user, view, date)
    });
    // Close the dialog once a save or delete went through.
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) || matches!(remove.value().get(), Some(Ok(_))) {
            editing.set(None);
        }
    });
    view! {
        <main class="page wide">
            <Loaded data=page audience={Audience::SignedIn { next: "/calendar", to: " to see your calendar." }} page=move |p| {
                view! { <Calendar page=p editing/> }.into_any()
            }/>
            {move || editing.get().map(|draft| view! { <EventDialog draft save remove editing/> })}
        </main>
    }
}

#[component]
fn Calendar(page: CalendarLayout, editing: RwSignal<Option<Draft>>) -> impl IntoView {
    let month = page.view == CalendarView::Month;
    let header = view! {
        <div class="cal-head">
            <div>
                <h1>{page.title.clone()}</h1>
                <p class="hint">
                    {match (page.mine, page.editable) {
                        (true, _) => "Your calendar".to_owned(),
                        (false, true) => format!("{}'s calendar (you may change it as an admin)", page.owner.display_name),
                        (false, false) => format!("{}'s calendar", page.owner.display_name),
                    }}
                    " · times in " {page.viewer_zone.clone()}
                    {(!page.editable && page.events.iter().any(|e| e.busy_only)).then(|| " · free/busy only")}
                </p>
            </div>
            <div class="row">
                {page.editable.then(|| {
                    // The keyboard's way to a new event (a slot is clicked with a mouse).
                    let day = if page.days.contains(&page.today) { page.today.clone() } else { page.days[0].clone() };
                    view! {
                        <button type="button" class="small" on:click=move |_| editing.set(Some(Draft::new(&day, 9)))>"New event"</button>
                    }
                })}
                <A href=nav_href(&page, page.view, &page.prev) attr:class="btn secondary small" attr:aria-label="Previous">"‹"</A>
                <A href=nav_href(&page, page.view, &page.today) attr:class="btn secondary small">"Today"</A>
                <A href=nav_href(&page, page.view, &page.next) attr:class="btn secondary small" attr:aria-label="Next">"›"</A>
                <span class="segmented">
                    <A href=nav_href(&page, CalendarView::Week, &page.days[0]) attr:class=if month { "seg" } else { "seg on" }>"Week"</A>
                    <A href=nav_href(&page, CalendarView::Month, &page.days[page.days.len() / 2]) attr:class=if month { "seg on" } else { "seg" }>"Month"</A>
                </span>
            </div>
        </div>
    };
    view! {
        {header}
        {if month {
            view! { <MonthGrid page=page.clone() editing/> }.into_any()
        } else {
            view! { <WeekGrid page=page.clone() editing/> }.into_any()
        }}
        <Agenda page editing/>
    }
}

fn day_label(day: &str) -> String {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map(|d| d.format("%a %-d").to_string()).unwrap_or_default()
}

/// Side-by-side columns for overlapping segments of one day, as calendar apps lay them
/// out: each segment gets the first free column; a cluster of overlapping segments
/// shares its width by the most columns it needed. Input sorted by start.
fn columns(spans: &[(i32, i32)]) -> Vec<(usize, usize)> {
    let mut out = vec![(0, 1); spans.len()];
    let mut cluster: Vec<usize> = Vec::new();
    let mut ends: Vec<i32> = Vec::new(); // per column, where its last segment ends
    let mut cluster_end = i32::MIN;
    let close = |cluster: &mut Vec<usize>, ends: &mut Vec<i32>, out: &mut Vec<(usize, usize)>| {
        for &i in cluster.iter() {
            out[i].1 = ends.len();
        }
        cluster.clear();
        ends.clear();
    };
    for (i, &(from, to)) in spans.iter().enumerate() {
        if from >= cluster_end {
            close(&mut cluster, &mut ends, &mut out);
        }
        let col = ends.iter().position(|&end| end <= from).unwrap_or(ends.len());
        if col == ends.len() {
            ends.push(to);
        } else {
            ends[col] = to;
        }
        out[i].0 = col;
        cluster.push(i);
        cluster_end = cluster_end.max(to);
    }
    close(&mut cluster, &mut ends, &mut out);
    out
}

fn chip_class(e: &Placed) -> &'static str {
    match (e.conflict, e.busy_only) {
        (true, _) => "ev conflict",
        (_, true) => "ev busy",
        _ => "ev",
    }
}

#[component]
fn WeekGrid(page: CalendarLayout, editing: RwSignal<Option<Draft>>) -> impl IntoView {
    let editable = page.editable;
    let days = page.days.clone();
    let events = page.events.clone();
    let today = page.today.clone();
    // Opens at the working day, as calendar apps do, not at midnight (the grid is in the
    // viewer's zone). Only in the browser: an effect never runs during SSR.
    let body = NodeRef::<leptos::html::Div>::new();
    Effect::new(move || {
        if let Some(el) = body.get() {
            el.set_scroll_top(WORKDAY_STARTS * HOUR_PX);
        }
    });
    view! {
        <div class="week" data-testid="week">
            <div class="week-head">
                <div class="gutter"></div>
                {days.iter().map(|d| view! {
                    <div class="day-head" class:today=*d == today>{day_label(d)}</div>
                }).collect_view()}
            </div>
            <div class="week-allday">
                <div class="gutter hint">"all day"</div>
                {days.iter().enumerate().map(|(i, _)| {
                    let chips: Vec<Placed> = events.iter().filter(|e| e.all_day && e.first_day <= i && i <= e.last_day).cloned().collect();
                    view! {
                        <div class="allday-cell">
                            {chips.into_iter().map(|e| {
                                let draft = Draft::of(&e);
                                view! {
                                    <button type="button" class=chip_class(&e) data-testid="event" data-event-id=e.id
                                        on:click=move |_| if editable { editing.set(Some(draft.clone())) }>
                                        {e.title.clone()}
                                        <ConflictFlag conflict=e.conflict/>
                                    </button>
                                }
                            }).collect_view()}
                        </div>
                    }
                }).collect_view()}
            </div>
            // Scrolls on its own: focusable, so the keyboard can scroll it too.
            <div class="week-body" node_ref=body tabindex="0" role="region" aria-label="The week, hour by hour">
                <div class="gutter">
                    {(0..24).map(|h| view! { <div class="hour-label" style=format!("height:{HOUR_PX}px")>{format!("{h:02}:00")}</div> }).collect_view()}
                </div>
                {days.iter().enumerate().map(|(i, day)| {
                    let day = day.clone();
                    let mut segments: Vec<(Placed, i32, i32)> = events
                        .iter()
                        .filter(|e| !e.all_day && e.first_day <= i && i <= e.last_day)
                        .map(|e| {
                            let from = if i == e.first_day { e.start_minute } else { 0 };
                            let to = if i == e.last_day { e.end_minute } else { 1440 };
                            (e.clone(), from, to.max(from + 15))
                        })
                        .collect();
                    segments.sort_by_key(|(e, from, _)| (*from, e.id));
                    let placement = columns(&segments.iter().map(|(_, a, b)| (*a, *b)).collect::<Vec<_>>());
                    view! {
                        <div class="day-col" data-day=day.clone()>
                            {(0..24).map(|h| {
                                let day = day.clone();
                                view! {
                                    <div class="slot" style=format!("height:{HOUR_PX}px") data-testid="slot" data-slot=format!("{day}T{h:02}")
                                        on:click=move |_| if editable { editing.set(Some(Draft::new(&day, h))) }></div>
                                }
                            }).collect_view()}
                            {segments.into_iter().zip(placement).map(|((e, from, to), (col, cols))| {
                                let draft = Draft::of(&e);
                                let style = format!(
                                    "top:{}px;height:{}px;left:calc({}% + 2px);width:calc({}% - 4px)",
                                    from * HOUR_PX / 60,
                                    ((to - from) * HOUR_PX / 60).max(16),
                                    col * 100 / cols,
                                    100 / cols
                                );
                                let class = if to - from < 45 { format!("{} short", chip_class(&e)) } else { chip_class(&e).to_owned() };
                                view! {
                                    <button type="button" class=class style=style data-testid="event" data-event-id=e.id
                                        title=e.location.clone()
                                        on:click=move |ev| { ev.stop_propagation(); if editable { editing.set(Some(draft.clone())) } }>
                                        <span class="ev-time">{hhmm(&e.local_start).to_owned()}</span>
                                        <span class="ev-title">{e.title.clone()}</span>
                                        <ConflictFlag conflict=e.conflict/>
                                    </button>
                                }
                            }).collect_view()}
                        </div>
                    }
                }).collect_view()}
            </div>
        </div>
    }
}

#[component]
fn MonthGrid(page: CalendarLayout, editing: RwSignal<Option<Draft>>) -> impl IntoView {
    let editable = page.editable;
    let month = page.days[page.days.len() / 2].get(..7).unwrap_or("").to_owned();
    let today = page.today.clone();
    view! {
        <div class="month" data-testid="month">
            {["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map(|d| view! { <div class="day-head">{d}</div> }).collect_view()}
            {page.days.iter().enumerate().map(|(i, day)| {
                let chips: Vec<Placed> = page.events.iter().filter(|e| e.first_day <= i && i <= e.last_day).cloned().collect();
                let (day_c, outside) = (day.clone(), !day.starts_with(&month));
                view! {
                    <div class="month-cell" class:outside=outside class:today=*day == today data-testid="slot" data-slot=day.clone()
                        on:click=move |_| if editable { editing.set(Some(Draft::new(&day_c, 9))) }>
                        <div class="date">{day.get(8..10).unwrap_or("").trim_start_matches('0').to_owned()}</div>
                        {chips.into_iter().map(|e| {
                            let draft = Draft::of(&e);
                            view! {
                                <button type="button" class=chip_class(&e) data-testid="event" data-event-id=e.id
                                    on:click=move |ev| { ev.stop_propagation(); if editable { editing.set(Some(draft.clone())) } }>
                                    {(!e.all_day).then(|| view! { <span class="ev-time">{hhmm(&e.local_start).to_owned()}</span> })}
                                    {e.title.clone()}
                                    <ConflictFlag conflict=e.conflict/>
                                </button>
                            }
                        }).collect_view()}
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

/// The same events as a list: what small screens show instead of the grid.
#[component]
fn Agenda(page: CalendarLayout, editing: RwSignal<Option<Draft>>) -> impl IntoView {
    let editable = page.editable;
    let mut events = page.events.clone();
    events.sort_by(|a, b| a.local_start.cmp(&b.local_start));
    view! {
        <ul class="agenda" data-testid="agenda">
            {if events.is_empty() { Some(view! { <li class="empty">"Nothing scheduled."</li> }) } else { None }}
            {events.into_iter().map(|e| {
                let draft = Draft::of(&e);
                let class = chip_class(&e);
                view! {
                    <li class=class>
                        <button type="button" class="agenda-item" on:click=move |_| if editable { editing.set(Some(draft.clone())) }>
                            <span class="when">{e.local_start.replace('T', " ")}{if e.all_day { " (all day)" } else { "" }}</span>
                            <strong>{e.title}</strong>
                            <span class="hint">{e.location}</span>
                            <ConflictFlag conflict=e.conflict/>
                        </button>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// Marks an event that overlaps another: a sign for the eye (not only its colour) and
/// words for a screen reader.
#[component]
fn ConflictFlag(conflict: bool) -> impl IntoView {
    conflict.then(|| view! {
        <span class="ev-flag" aria-hidden="true" title="overlaps another event">"⚠"</span>
        <span class="sr-only">" (overlaps another event)"</span>
    })
}

#[component]
fn EventDialog(draft: Draft, save: ServerAction<SaveEvent>, remove: ServerAction<RemoveEvent>, editing: RwSignal<Option<Draft>>) -> impl IntoView {
    let query = use_query_map();
    let owner = move || query.read().get("user").unwrap_or_default();
    let error = Signal::derive(move || save.value().get().and_then(Result::err).or_else(|| remove.value().get().and_then(Result::err)));
    let all_day = RwSignal::new(draft.all_day);
    let existing = draft.id.zip(draft.version);
    // Keyboard users land in the form and leave it with Escape.
    let title_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(input) = title_input.get() {
            let _ = input.focus();
        }
    });
    view! {
        <div class="dialog-backdrop" on:click=move |_| editing.set(None)
            on:keydown=move |ev| if ev.key() == "Escape" { editing.set(None) }>
            <div class="dialog card" role="dialog" aria-modal="true" aria-labelledby="ev-dialog-title" on:click=|ev| ev.stop_propagation()>
                <h2 id="ev-dialog-title">{if existing.is_some() { "Edit event" } else { "New event" }}</h2>
                <ActionForm action=save attr:class="form wide">
                    {draft.id.map(|id| view! { <input type="hidden" name="id" value=id/> })}
                    {draft.version.map(|v| view! { <input type="hidden" name="version" value=v/> })}
                    <input type="hidden" name="owner" value=owner/>
                    <div class="field">
                        <label for="ev-title">"Title"</label>
                        <input id="ev-title" name="title" type="text" required maxlength="200" value=draft.title.clone() node_ref=title_input/>
                        <FieldError error field="title"/>
                    </div>
                    <label class="row"><input type="checkbox" name="all_day" value="on" checked=draft.all_day
                        on:change=move |ev| all_day.set(event_target_checked(&ev))/>"All day"</label>
                    <div class="row">
                        <div class="field">
                            <label for="ev-start">"Starts"</label>
                            <input id="ev-start" name="start_local" type="datetime-local" required value=draft.start.clone()/>
                            <FieldError error field="start"/>
                        </div>
                        <div class="field">
                            <label for="ev-end">{move || if all_day.get() { "Last day" } else { "Ends" }}</label>
                            <input id="ev-end" name="end_local" type="datetime-local" required value=draft.end.clone()/>
                            <FieldError error field="end"/>
                        </div>
                    </div>
                    <div class="field">
                        <label for="ev-location">"Location"</label>
                        <input id="ev-location" name="location" type="text" maxlength="500" value=draft.location.clone()/>
                    </div>
                    <div class="field">
                        <label for="ev-description">"Description"</label>
                        <textarea id="ev-description" name="description" rows="3" maxlength="5000">{draft.description.clone()}</textarea>
                    </div>
                    <ErrorAlert error unless_field=true/>
                    <div class="row">
                        <button type="submit">"Save"</button>
                        <button type="button" class="secondary" on:click=move |_| editing.set(None)>"Cancel"</button>
                        <span class="spacer"></span>
                        {existing.map(|(id, version)| view! {
                            <button type="button" class="danger" on:click=move |_| { remove.dispatch(RemoveEvent { id, version }); }>"Delete"</button>
                        })}
                    </div>
                </ActionForm>
            </div>
        </div>
    }
}

/// The settings page's card for the caller's secret iCal feed address. Says nothing to a
/// visitor who is not signed in (the profile card beside it asks them to sign in).
#[component]
pub fn FeedCard() -> impl IntoView {
    let rotate = ServerAction::<RotateFeed>::new();
    let feed = Resource::new(move || rotate.version().get(), |_| load_feed());
    view! {
        <Loaded data=feed audience={Audience::SignedInSilently} page=move |url| {
            view! {
                <section class="card">
                    <h2>"Subscribe from another calendar app"</h2>
                    <p class="hint">"Anyone with this secret address can read your calendar. Replace it to revoke the old one."</p>
                    <div class="secret" data-testid="feed-url">{url}</div>
                    <ActionForm action=rotate><button type="submit" class="secondary">"Replace the address"</button></ActionForm>
                </section>
            }
        }/>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn overlapping_events_share_the_width_side_by_side() {
        // 9–10 and 9:30–11 overlap; 11–12 stands alone; 13–14, 13–15, 14–15 need two columns.
        let spans = [(540, 600), (570, 660), (660, 720), (780, 840), (780, 900), (840, 900)];
        assert_eq!(super::columns(&spans), [(0, 2), (1, 2), (0, 1), (0, 2), (1, 2), (0, 2)]);
    }
}

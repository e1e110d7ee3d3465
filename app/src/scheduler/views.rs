//! The calendar (week and month grids, an agenda list on small screens, a click-to-edit
//! dialog) and the settings page's feed card.

use super::*;
use crate::ui::{live_ticks, Audience, ErrorAlert, FieldError, Loaded};
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
    /// An occurrence of a series: which, and the series' rule.
    series: Option<SeriesRef>,
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
            series: None,
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
            series: p.series.clone(),
        }
    }

    /// Offers "this", "following" and "all": an occurrence not changed on its own.
    fn offers_scope(&self) -> bool {
        self.series.as_ref().is_some_and(|s| !s.changed)
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

/// The calendar page's actions and dialogs, shared by its parts.
#[derive(Clone, Copy)]
struct Ctx {
    save: ServerAction<SaveEvent>,
    remove: ServerAction<RemoveEvent>,
    mover: ServerAction<MoveEvent>,
    editing: RwSignal<Option<Draft>>,
    /// A moved occurrence of a series, waiting for "this, following or all".
    asking: RwSignal<Option<Move>>,
    /// The chip being dragged: live changes wait until it is dropped (a page refreshed
    /// under the pointer would lose the drag).
    drag: RwSignal<Option<Drag>>,
    /// What a refresh (a save here, a change made elsewhere) must keep: how far the hour
    /// grid is scrolled, and which part of the page had the keyboard focus.
    scroll: RwSignal<i32>,
    focus: RwSignal<Option<String>>,
}

impl Ctx {
    fn open(&self, draft: Draft, editable: bool) {
        if editable {
            self.editing.set(Some(draft));
        }
    }
}

/// An event dragged (or moved with the keyboard) to new local times.
#[derive(Clone, Debug, PartialEq)]
struct Move {
    placed: Placed,
    start: String,
    end: String,
}

impl Move {
    fn dispatch(&self, mover: ServerAction<MoveEvent>, scope: Option<EditScope>) {
        let occurrence = scope.and(self.placed.series.as_ref()).map(|s| s.occurrence.clone());
        mover.dispatch(MoveEvent {
            id: self.placed.id,
            version: self.placed.version,
            scope: scope.map(|s| s.to_string()),
            occurrence,
            start_local: self.start.clone(),
            end_local: self.end.clone(),
        });
    }

    /// Saves it, asking first which occurrences it is for when it is one of a series.
    fn commit(self, ctx: Ctx) {
        if self.placed.series.as_ref().is_some_and(|s| !s.changed) {
            ctx.asking.set(Some(self));
        } else {
            self.dispatch(ctx.mover, None);
        }
    }
}

#[component]
pub fn CalendarScreen() -> impl IntoView {
    let query = use_query_map();
    // One page per calendar shown: moving to another user's calendar follows its stream.
    let user = Memo::new(move |_| query.read().get("user").unwrap_or_default());
    move || view! { <CalendarOf user=user.get()/> }
}

fn params_untracked(query: Memo<leptos_router::params::ParamsMap>) -> (Option<String>, Option<String>, Option<String>) {
    let q = query.read_untracked();
    (q.get("user"), q.get("view"), q.get("date"))
}

#[component]
fn CalendarOf(user: String) -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        let q = query.read();
        (q.get("user"), q.get("view"), q.get("date"))
    };
    let ctx = Ctx {
        save: ServerAction::<SaveEvent>::new(),
        remove: ServerAction::<RemoveEvent>::new(),
        mover: ServerAction::<MoveEvent>::new(),
        editing: RwSignal::new(None),
        asking: RwSignal::new(None),
        drag: RwSignal::new(None),
        scroll: RwSignal::new(WORKDAY_STARTS * HOUR_PX),
        focus: RwSignal::new(None),
    };
    // Changes made elsewhere (another tab, the REST API, a booking) arrive live, but not
    // under a drag.
    let ticks = live_ticks(format!("/api/v1/calendar/events?user={user}"));
    let settled_ticks = Memo::new(move |shown: Option<&u64>| match (ctx.drag.with(Option::is_some), shown) {
        (true, Some(shown)) => *shown,
        _ => ticks.get(),
    });
    // The page as first loaded (rendered on the server, then hydrated); then refreshed
    // after every save here and every change elsewhere, re-rendered only when what it
    // shows changed: a refresh that finds the same calendar (the change stream's echo
    // of our own save) must not replace the grid under the user's keyboard and scroll.
    let page = Resource::new(params, |(user, view, date)| load_calendar(user, view, date));
    let refreshed: RwSignal<Option<CalendarLayout>> = RwSignal::new(None);
    Effect::new(move |_| {
        params();
        refreshed.set(None);
    });
    Effect::new(move |first_run: Option<()>| {
        (ctx.save.version().get(), ctx.remove.version().get(), ctx.mover.version().get(), settled_ticks.get());
        if first_run.is_none() {
            return;
        }
        let (user, view, date) = params_untracked(query);
        leptos::task::spawn_local(async move {
            let Ok(fresh) = load_calendar(user, view, date).await else { return };
            let shown = refreshed.get_untracked().or_else(|| page.get_untracked().and_then(Result::ok));
            if shown.as_ref() != Some(&fresh) {
                refreshed.set(Some(fresh));
            }
        });
    });
    // Close the dialog once a save or delete went through.
    Effect::new(move |_| {
        if matches!(ctx.save.value().get(), Some(Ok(_))) || matches!(ctx.remove.value().get(), Some(Ok(_))) {
            ctx.editing.set(None);
        }
    });
    let move_error = Signal::derive(move || ctx.mover.value().get().and_then(Result::err));
    view! {
        <main class="page wide" on:focusin=move |ev| if let Some(key) = focus_key(&ev) { ctx.focus.set(Some(key)) }>
            <ErrorAlert error=move_error/>
            <Loaded data=page audience={Audience::SignedIn { next: "/calendar", to: " to see your calendar." }} page=move |first| {
                (move || view! { <Calendar page=refreshed.get().unwrap_or_else(|| first.clone()) ctx/> }).into_any()
            }/>
            {move || ctx.editing.get().map(|draft| view! { <EventDialog draft ctx/> })}
            {move || ctx.asking.get().map(|pending| view! { <MovePrompt pending ctx/> })}
        </main>
    }
}

/// A chip's name for focus keeping: its row, and for an occurrence its place in the
/// series — so a chip moved with the keyboard keeps the focus after the save.
fn focus_name(view: &str, e: &Placed) -> String {
    match (&e.series, &e.calendar) {
        (Some(s), _) => format!("{view}-{}-{}", e.id, s.occurrence),
        (None, Some(_)) => format!("{view}-subscribed-{}", e.id),
        (None, None) => format!("{view}-{}", e.id),
    }
}

/// The `data-focus` name of what took the keyboard focus, if it has one.
fn focus_key(ev: &leptos::ev::FocusEvent) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        ev.target()?.dyn_into::<web_sys::Element>().ok()?.get_attribute("data-focus")
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        None
    }
}

/// Gives the focus back to what had it before a refresh replaced it (only when the
/// focus was lost, never taking it from somewhere the user moved it).
fn restore_focus(key: Option<String>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let (Some(key), Some(doc)) = (key, web_sys::window().and_then(|w| w.document())) else { return };
        if doc.active_element().is_some_and(|a| a.tag_name() != "BODY") {
            return;
        }
        if let Ok(Some(el)) = doc.query_selector(&format!("[data-focus=\"{key}\"]")) {
            if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
                let _ = el.focus();
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = key;
}

#[component]
fn Calendar(page: CalendarLayout, ctx: Ctx) -> impl IntoView {
    let month = page.view == CalendarView::Month;
    // After the frame that swaps the refreshed page in (the old one may still be there now).
    Effect::new(move |_| {
        let key = ctx.focus.get_untracked();
        request_animation_frame(move || restore_focus(key));
    });
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
                        <button type="button" class="small" data-focus="new-event" on:click=move |_| ctx.editing.set(Some(Draft::new(&day, 9)))>"New event"</button>
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
            view! { <MonthGrid page=page.clone() ctx/> }.into_any()
        } else {
            view! { <WeekGrid page=page.clone() ctx/> }.into_any()
        }}
        <Agenda page ctx/>
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
    match (e.conflict, e.busy_only, e.calendar.is_some()) {
        (true, _, _) => "ev conflict",
        (_, true, _) => "ev busy",
        (_, _, true) => "ev external",
        _ => "ev",
    }
}

/// Whether clicking an event opens it for editing: on a calendar the viewer manages,
/// and not one from a subscribed calendar (those are read-only here).
fn opens(e: &Placed, editable: bool) -> bool {
    editable && e.calendar.is_none()
}

/// A chip's tooltip: where it is, and which subscribed calendar it comes from.
fn chip_tip(e: &Placed) -> String {
    match &e.calendar {
        Some(name) if e.location.is_empty() => format!("From {name} (read-only)"),
        Some(name) => format!("{} · from {name} (read-only)", e.location),
        None => e.location.clone(),
    }
}

/// A chip being dragged, or moved with the keyboard: by how much so far.
#[derive(Clone, Debug, PartialEq)]
struct Drag {
    /// Which chip (an occurrence of a series shares its id with the others).
    key: (i64, String),
    /// Dragging the bottom edge: the end moves, the start stays.
    resize: bool,
    from_x: f64,
    from_y: f64,
    day_width: f64,
    minutes: i32,
    days: i32,
    /// Far enough to be a drag, not a click.
    moved: bool,
}

const SNAP_MINUTES: i32 = 15;

fn snap(minutes: f64) -> i32 {
    (minutes / SNAP_MINUTES as f64).round() as i32 * SNAP_MINUTES
}

fn chip_key(e: &Placed) -> (i64, String) {
    // Ids of subscribed events are of another table: keep their keys apart.
    let id = if e.calendar.is_some() { -e.id } else { e.id };
    (id, e.local_start.clone())
}

/// Where a drag puts `e`: new local start and end (`YYYY-MM-DDTHH:MM`). A resize keeps at
/// least a quarter of an hour.
fn dragged_times(e: &Placed, d: &Drag) -> Option<(String, String)> {
    let parse = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").ok();
    let (start, end) = (parse(&e.local_start)?, parse(&e.local_end)?);
    let (start, end) = if d.resize {
        (start, (end + chrono::Duration::minutes(d.minutes as i64)).max(start + chrono::Duration::minutes(SNAP_MINUTES as i64)))
    } else {
        let by = chrono::Duration::days(d.days as i64) + chrono::Duration::minutes(d.minutes as i64);
        (start + by, end + by)
    };
    let format = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M").to_string();
    Some((format(start), format(end)))
}

/// Ends a drag: saves the new times if they changed. Returns whether it moved anything.
fn finish_drag(e: &Placed, drag: RwSignal<Option<Drag>>, ctx: Ctx) -> bool {
    let Some(d) = drag.get_untracked() else { return false };
    drag.set(None);
    match dragged_times(e, &d) {
        // Never one from a subscribed calendar (its id is of another table).
        Some((start, end)) if d.moved && e.calendar.is_none() && (start != e.local_start || end != e.local_end) => {
            Move { placed: e.clone(), start, end }.commit(ctx);
            true
        }
        _ => false,
    }
}

/// Captures the pointer for the chip a drag starts on (so the drag follows it outside
/// the chip) and measures a day column's width. Only in the browser.
#[cfg(feature = "hydrate")]
fn grab(ev: &leptos::ev::PointerEvent) -> Option<f64> {
    use wasm_bindgen::JsCast;
    let target = ev.current_target()?.dyn_into::<web_sys::Element>().ok()?;
    let _ = target.set_pointer_capture(ev.pointer_id());
    Some(target.closest(".day-col").ok().flatten().map(|c| c.client_width() as f64).unwrap_or(100.0))
}

#[cfg(not(feature = "hydrate"))]
fn grab(_: &leptos::ev::PointerEvent) -> Option<f64> {
    None
}

#[component]
fn WeekGrid(page: CalendarLayout, ctx: Ctx) -> impl IntoView {
    let editable = page.editable;
    let days = page.days.clone();
    let events = page.events.clone();
    let today = page.today.clone();
    let drag = ctx.drag;
    // The click that ends a drag must not also open the dialog.
    let dragged = RwSignal::new(false);
    // Opens at the working day, as calendar apps do, not at midnight (the grid is in the
    // viewer's zone). Only in the browser: an effect never runs during SSR.
    let body = NodeRef::<leptos::html::Div>::new();
    Effect::new(move || {
        if let Some(el) = body.get() {
            el.set_scroll_top(ctx.scroll.get_untracked());
        }
    });
    view! {
        <div class="week" data-testid="week">
            <p id="ev-keys" class="sr-only">"Alt and the arrow keys move an event, Alt, Shift and up or down change its length; Enter saves, Escape cancels."</p>
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
                                let (draft, editable) = (Draft::of(&e), opens(&e, editable));
                                view! {
                                    <button type="button" class=chip_class(&e) data-testid="event" data-event-id=e.calendar.is_none().then_some(e.id) data-focus=focus_name("day", &e)
                                        data-calendar=e.calendar.clone() title=chip_tip(&e)
                                        on:click=move |_| ctx.open(draft.clone(), editable)>
                                        {e.title.clone()}
                                        <SeriesFlag e=e.clone()/>
                                        <ConflictFlag conflict=e.conflict/>
                                    </button>
                                }
                            }).collect_view()}
                        </div>
                    }
                }).collect_view()}
            </div>
            // Scrolls on its own: focusable, so the keyboard can scroll it too.
            <div class="week-body" node_ref=body tabindex="0" role="region" aria-label="The week, hour by hour" data-focus="week-body"
                on:scroll=move |_| if let Some(el) = body.get_untracked() { ctx.scroll.set(el.scroll_top()) }>
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
                    let columns_left = days.len() as i32 - 1 - i as i32;
                    view! {
                        <div class="day-col" data-day=day.clone()>
                            {(0..24).map(|h| {
                                let day = day.clone();
                                view! {
                                    <div class="slot" style=format!("height:{HOUR_PX}px") data-testid="slot" data-slot=format!("{day}T{h:02}")
                                        on:click=move |_| if editable { ctx.editing.set(Some(Draft::new(&day, h))) }></div>
                                }
                            }).collect_view()}
                            {segments.into_iter().zip(placement).map(|((e, from, to), (col, cols))| {
                                let (draft, editable) = (Draft::of(&e), opens(&e, editable));
                                // Only a whole event, on its first day, moves by dragging.
                                let draggable = editable && !e.busy_only && e.first_day == i && e.last_day == i;
                                let (key, height) = (chip_key(&e), ((to - from) * HOUR_PX / 60).max(16));
                                let base = format!(
                                    "top:{}px;height:{}px;left:calc({}% + 2px);width:calc({}% - 4px)",
                                    from * HOUR_PX / 60,
                                    height,
                                    col * 100 / cols,
                                    100 / cols
                                );
                                let style = {
                                    let key = key.clone();
                                    move || match drag.get().filter(|d| d.key == key) {
                                        Some(d) if d.resize => format!("{base};height:{}px;z-index:5", (height + d.minutes * HOUR_PX / 60).max(HOUR_PX / 4)),
                                        Some(d) => format!("{base};transform:translate({}px,{}px);z-index:5;opacity:.85", d.days as f64 * d.day_width, d.minutes * HOUR_PX / 60),
                                        None => base.clone(),
                                    }
                                };
                                let class = if to - from < 45 { format!("{} short", chip_class(&e)) } else { chip_class(&e).to_owned() };
                                let start_drag = {
                                    let key = key.clone();
                                    move |ev: leptos::ev::PointerEvent, resize: bool| {
                                        if !draggable || ev.button() != 0 {
                                            return;
                                        }
                                        let Some(width) = grab(&ev) else { return };
                                        drag.set(Some(Drag { key: key.clone(), resize, from_x: ev.client_x() as f64, from_y: ev.client_y() as f64, day_width: width, minutes: 0, days: 0, moved: false }));
                                    }
                                };
                                let start_resize = start_drag.clone();
                                let (e_up, e_key, key_keys) = (e.clone(), e.clone(), key.clone());
                                let key_move = key.clone();
                                view! {
                                    <button type="button" class=class style=style data-testid="event" data-event-id=e.calendar.is_none().then_some(e.id) data-focus=focus_name("week", &e)
                                        title=chip_tip(&e) data-calendar=e.calendar.clone() aria-describedby=draggable.then_some("ev-keys")
                                        on:pointerdown=move |ev| { start_drag(ev, false) }
                                        on:pointermove=move |ev| drag.update(|d| {
                                            if let Some(d) = d.as_mut().filter(|d| d.key == key_move) {
                                                let (dx, dy) = (ev.client_x() as f64 - d.from_x, ev.client_y() as f64 - d.from_y);
                                                d.moved |= dx.abs() > 4.0 || dy.abs() > 4.0;
                                                d.minutes = snap(dy / HOUR_PX as f64 * 60.0);
                                                d.days = if d.resize { 0 } else { ((dx / d.day_width).round() as i32).clamp(-(i as i32), columns_left) };
                                            }
                                        })
                                        on:pointerup=move |_| dragged.set(finish_drag(&e_up, drag, ctx))
                                        on:pointercancel=move |_| drag.set(None)
                                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                            if !draggable {
                                                return;
                                            }
                                            let key = ev.key();
                                            let arrow = matches!(key.as_str(), "ArrowUp" | "ArrowDown" | "ArrowLeft" | "ArrowRight");
                                            if ev.alt_key() && arrow {
                                                ev.prevent_default();
                                                let resize = ev.shift_key();
                                                drag.update(|d| {
                                                    let d = d.get_or_insert_with(|| Drag { key: key_keys.clone(), resize, from_x: 0.0, from_y: 0.0, day_width: 0.0, minutes: 0, days: 0, moved: true });
                                                    match key.as_str() {
                                                        "ArrowUp" => d.minutes -= SNAP_MINUTES,
                                                        "ArrowDown" => d.minutes += SNAP_MINUTES,
                                                        "ArrowLeft" if !d.resize => d.days = (d.days - 1).max(-(i as i32)),
                                                        "ArrowRight" if !d.resize => d.days = (d.days + 1).min(columns_left),
                                                        _ => {}
                                                    }
                                                });
                                            } else if key == "Enter" && drag.get_untracked().is_some() {
                                                ev.prevent_default();
                                                finish_drag(&e_key, drag, ctx);
                                            } else if key == "Escape" {
                                                drag.set(None);
                                            }
                                        }
                                        on:click=move |ev| {
                                            ev.stop_propagation();
                                            if !dragged.get_untracked() {
                                                ctx.open(draft.clone(), editable);
                                            }
                                            dragged.set(false);
                                        }>
                                        <span class="ev-time">{hhmm(&e.local_start).to_owned()}<SeriesFlag e=e.clone()/></span>
                                        <span class="ev-title">{e.title.clone()}</span>
                                        <ConflictFlag conflict=e.conflict/>
                                        {draggable.then(|| view! {
                                            <span class="ev-resize" aria-hidden="true" data-testid="resize"
                                                on:pointerdown=move |ev| { ev.stop_propagation(); start_resize(ev, true) }></span>
                                        })}
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
fn MonthGrid(page: CalendarLayout, ctx: Ctx) -> impl IntoView {
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
                        on:click=move |_| if editable { ctx.editing.set(Some(Draft::new(&day_c, 9))) }>
                        <div class="date">{day.get(8..10).unwrap_or("").trim_start_matches('0').to_owned()}</div>
                        {chips.into_iter().map(|e| {
                            let (draft, editable) = (Draft::of(&e), opens(&e, editable));
                            view! {
                                <button type="button" class=chip_class(&e) data-testid="event" data-event-id=e.calendar.is_none().then_some(e.id) data-focus=focus_name("month", &e)
                                    data-calendar=e.calendar.clone() title=chip_tip(&e)
                                    on:click=move |ev| { ev.stop_propagation(); ctx.open(draft.clone(), editable) }>
                                    {(!e.all_day).then(|| view! { <span class="ev-time">{hhmm(&e.local_start).to_owned()}</span> })}
                                    {e.title.clone()}
                                    <SeriesFlag e=e.clone()/>
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
fn Agenda(page: CalendarLayout, ctx: Ctx) -> impl IntoView {
    let editable = page.editable;
    let mut events = page.events.clone();
    events.sort_by(|a, b| a.local_start.cmp(&b.local_start));
    view! {
        <ul class="agenda" data-testid="agenda">
            {if events.is_empty() { Some(view! { <li class="empty">"Nothing scheduled."</li> }) } else { None }}
            {events.into_iter().map(|e| {
                let (draft, editable) = (Draft::of(&e), opens(&e, editable));
                let class = chip_class(&e);
                view! {
                    <li class=class>
                        <button type="button" class="agenda-item" on:click=move |_| ctx.open(draft.clone(), editable)>
                            <span class="when">{e.local_start.replace('T', " ")}{if e.all_day { " (all day)" } else { "" }}</span>
                            <strong>{e.title.clone()}</strong>
                            <span class="hint">{chip_tip(&e)}</span>
                            <SeriesFlag e=e.clone()/>
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

/// Marks an occurrence of a series, with the rule in words.
#[component]
fn SeriesFlag(e: Placed) -> impl IntoView {
    e.series.map(|s| {
        let words = if s.changed { "changed occurrence of a series".to_owned() } else { repeat::describe(&s.rule) };
        view! {
            <span class="ev-repeat" aria-hidden="true" title=words.clone()>"↻"</span>
            <span class="sr-only">{format!(" ({words})")}</span>
        }
    })
}

/// Asks which occurrences a moved occurrence of a series is for.
#[component]
fn MovePrompt(pending: Move, ctx: Ctx) -> impl IntoView {
    let pending = StoredValue::new(pending);
    let choose = move |scope: Option<EditScope>| {
        if let Some(scope) = scope {
            pending.with_value(|p| p.dispatch(ctx.mover, Some(scope)));
        }
        ctx.asking.set(None);
    };
    view! {
        <div class="dialog-backdrop" on:keydown=move |ev| if ev.key() == "Escape" { ctx.asking.set(None) }>
            <div class="dialog card" role="dialog" aria-modal="true" aria-labelledby="move-title">
                <h2 id="move-title">"Move a repeating event"</h2>
                <p>"Which occurrences should move?"</p>
                <div class="row">
                    <button type="button" on:click=move |_| choose(Some(EditScope::This))>"This event"</button>
                    <button type="button" class="secondary" on:click=move |_| choose(Some(EditScope::Following))>"This and following events"</button>
                    <button type="button" class="secondary" on:click=move |_| choose(Some(EditScope::All))>"All events"</button>
                    <button type="button" class="secondary" on:click=move |_| choose(None)>"Cancel"</button>
                </div>
            </div>
        </div>
    }
}

/// The dialog's "Repeats" controls. The form sends `recurrence` — the rule they make,
/// or the one it opened with while they are untouched — and `rule_read`, the latter.
#[component]
fn RepeatControls(rule_read: String, start: RwSignal<String>, hidden: Signal<bool>) -> impl IntoView {
    let read = repeat::Repeat::read(&rule_read);
    // A rule the controls cannot show is edited as its text.
    let custom = !rule_read.is_empty() && read.is_none();
    let controls: RwSignal<Option<repeat::Repeat>> = RwSignal::new(read);
    let text = RwSignal::new(rule_read.clone());
    let touched = RwSignal::new(false);
    let start_day = move || {
        let value = start.get();
        chrono::NaiveDate::parse_from_str(value.get(..10).unwrap_or(""), "%Y-%m-%d").unwrap_or_default()
    };
    let rule = {
        let rule_read = rule_read.clone();
        move || match (touched.get(), custom) {
            (false, _) => rule_read.clone(),
            (true, true) => text.get(),
            (true, false) => controls.get().map(|r| r.rule(start_day())).unwrap_or_default(),
        }
    };
    let edit = move |f: &dyn Fn(&mut repeat::Repeat)| {
        touched.set(true);
        controls.update(|c| {
            if let Some(c) = c.as_mut() {
                f(c)
            }
        });
    };
    let freq = move || controls.get().map(|r| r.freq).unwrap_or_default();
    let unit = move || match freq().as_str() {
        "DAILY" => "day(s)",
        "WEEKLY" => "week(s)",
        "MONTHLY" => "month(s)",
        _ => "year(s)",
    };
    let described = {
        let rule = rule.clone();
        move || repeat::describe(&rule())
    };
    view! {
        <input type="hidden" name="recurrence" prop:value=rule.clone()/>
        <input type="hidden" name="rule_read" value=rule_read.clone()/>
        <fieldset class="repeat" hidden=move || hidden.get()>
            <legend>"Repetition"</legend>
            {if custom {
                view! {
                    <div class="field">
                        <label for="ev-rule">"Rule (RFC 5545)"</label>
                        <input id="ev-rule" type="text" value=rule_read.clone() on:input=move |ev| { touched.set(true); text.set(event_target_value(&ev)) }/>
                    </div>
                }.into_any()
            } else {
                view! {
                    <div class="row">
                        <div class="field">
                            <label for="ev-repeat">"Repeats"</label>
                            <select id="ev-repeat" on:change=move |ev| {
                                touched.set(true);
                                let value = event_target_value(&ev);
                                controls.set((!value.is_empty()).then(|| repeat::Repeat { freq: value, ..repeat::Repeat::starting(start_day()) }));
                            }>
                                <option value="" selected=move || freq().is_empty()>"Does not repeat"</option>
                                <option value="DAILY" selected=move || freq() == "DAILY">"Daily"</option>
                                <option value="WEEKLY" selected=move || freq() == "WEEKLY">"Weekly"</option>
                                <option value="MONTHLY" selected=move || freq() == "MONTHLY">"Monthly"</option>
                                <option value="YEARLY" selected=move || freq() == "YEARLY">"Yearly"</option>
                            </select>
                        </div>
                        <Show when=move || controls.with(Option::is_some)>
                            <div class="field narrow">
                                <label for="ev-interval">"Every"</label>
                                <span class="row tight">
                                    <input id="ev-interval" type="number" min="1" max="99" prop:value=move || controls.get().map(|r| r.interval).unwrap_or(1).to_string()
                                        on:input=move |ev| { let n = event_target_value(&ev).parse().unwrap_or(1); edit(&|r| r.interval = n) }/>
                                    <span class="hint">{unit}</span>
                                </span>
                            </div>
                            <div class="field">
                                <label for="ev-ends">"End of series"</label>
                                <select id="ev-ends" on:change=move |ev| {
                                    let choice = event_target_value(&ev);
                                    let day = start_day().format("%Y-%m-%d").to_string();
                                    edit(&|r| r.ends = match choice.as_str() {
                                        "after" => repeat::Ends::After(10),
                                        "on" => repeat::Ends::On(day.clone()),
                                        _ => repeat::Ends::Never,
                                    })
                                }>
                                    <option value="never" selected=move || controls.get().is_some_and(|r| r.ends == repeat::Ends::Never)>"Never"</option>
                                    <option value="after" selected=move || controls.get().is_some_and(|r| matches!(r.ends, repeat::Ends::After(_)))>"After a number of times"</option>
                                    <option value="on" selected=move || controls.get().is_some_and(|r| matches!(r.ends, repeat::Ends::On(_)))>"On a date"</option>
                                </select>
                            </div>
                        </Show>
                    </div>
                    <Show when=move || freq() == "WEEKLY">
                        <fieldset class="weekdays">
                            <legend>"On"</legend>
                            {repeat::WEEKDAYS.iter().map(|(code, name)| {
                                let code = code.to_string();
                                let checked = { let code = code.clone(); move || controls.get().is_some_and(|r| r.weekdays.contains(&code)) };
                                view! {
                                    <label class="day"><input type="checkbox" prop:checked=checked on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        let code = code.clone();
                                        edit(&move |r| { r.weekdays.retain(|d| *d != code); if on { r.weekdays.push(code.clone()) } })
                                    }/>{*name}</label>
                                }
                            }).collect_view()}
                        </fieldset>
                    </Show>
                    <Show when=move || freq() == "MONTHLY">
                        <div class="field">
                            <label for="ev-monthly">"Day of the month"</label>
                            <select id="ev-monthly" on:change=move |ev| { let by = event_target_value(&ev) == "weekday"; edit(&|r| r.by_weekday = by) }>
                                <option value="day" selected=move || controls.get().is_some_and(|r| !r.by_weekday)>{move || format!("day {}", chrono::Datelike::day(&start_day()))}</option>
                                <option value="weekday" selected=move || controls.get().is_some_and(|r| r.by_weekday)>"the same weekday of the month"</option>
                            </select>
                        </div>
                    </Show>
                    <Show when=move || controls.get().is_some_and(|r| matches!(r.ends, repeat::Ends::After(_)))>
                        <div class="field narrow">
                            <label for="ev-count">"Times"</label>
                            <input id="ev-count" type="number" min="1" max="1000"
                                prop:value=move || match controls.get().map(|r| r.ends) { Some(repeat::Ends::After(n)) => n, _ => 10 }.to_string()
                                on:input=move |ev| { let n = event_target_value(&ev).parse().unwrap_or(1); edit(&|r| r.ends = repeat::Ends::After(n)) }/>
                        </div>
                    </Show>
                    <Show when=move || controls.get().is_some_and(|r| matches!(r.ends, repeat::Ends::On(_)))>
                        <div class="field">
                            <label for="ev-until">"Until"</label>
                            <input id="ev-until" type="date"
                                prop:value=move || match controls.get().map(|r| r.ends) { Some(repeat::Ends::On(d)) => d, _ => String::new() }
                                on:input=move |ev| { let d = event_target_value(&ev); edit(&|r| r.ends = repeat::Ends::On(d.clone())) }/>
                        </div>
                    </Show>
                }.into_any()
            }}
            <p class="hint" data-testid="repeat-summary">{described}</p>
        </fieldset>
    }
}

#[component]
fn EventDialog(draft: Draft, ctx: Ctx) -> impl IntoView {
    let (save, remove, editing) = (ctx.save, ctx.remove, ctx.editing);
    let query = use_query_map();
    let owner = move || query.read().get("user").unwrap_or_default();
    let error = Signal::derive(move || save.value().get().and_then(Result::err).or_else(|| remove.value().get().and_then(Result::err)));
    let all_day = RwSignal::new(draft.all_day);
    let start = RwSignal::new(draft.start.clone());
    let existing = draft.id.zip(draft.version);
    let offers_scope = draft.offers_scope();
    let changed = draft.series.as_ref().is_some_and(|s| s.changed);
    let scope = RwSignal::new(EditScope::This);
    let occurrence = draft.series.as_ref().filter(|_| offers_scope).map(|s| s.occurrence.clone());
    let rule_read = draft.series.as_ref().filter(|_| offers_scope).map(|s| s.rule.clone()).unwrap_or_default();
    // One occurrence cannot repeat: the controls are for a series or a single event.
    let repeat_hidden = Signal::derive(move || changed || (offers_scope && scope.get() == EditScope::This));
    // Keyboard users land in the form and leave it with Escape.
    let title_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(input) = title_input.get() {
            let _ = input.focus();
        }
    });
    let heading = match (existing.is_some(), draft.series.is_some()) {
        (false, _) => "New event",
        (true, false) => "Edit event",
        (true, true) => "Edit repeating event",
    };
    let occurrence_for_delete = occurrence.clone();
    view! {
        <div class="dialog-backdrop" on:click=move |_| editing.set(None)
            on:keydown=move |ev| if ev.key() == "Escape" { editing.set(None) }>
            <div class="dialog card" role="dialog" aria-modal="true" aria-labelledby="ev-dialog-title" on:click=|ev| ev.stop_propagation()>
                <h2 id="ev-dialog-title">{heading}</h2>
                <ActionForm action=save attr:class="form wide">
                    {draft.id.map(|id| view! { <input type="hidden" name="id" value=id/> })}
                    {draft.version.map(|v| view! { <input type="hidden" name="version" value=v/> })}
                    {occurrence.map(|o| view! { <input type="hidden" name="occurrence" value=o/> })}
                    <input type="hidden" name="owner" value=owner/>
                    {offers_scope.then(|| view! {
                        <fieldset class="scope" data-testid="scope">
                            <legend>"Apply to"</legend>
                            <label><input type="radio" name="scope" value="this" checked on:change=move |_| scope.set(EditScope::This)/>"This event"</label>
                            <label><input type="radio" name="scope" value="following" on:change=move |_| scope.set(EditScope::Following)/>"This and following events"</label>
                            <label><input type="radio" name="scope" value="all" on:change=move |_| scope.set(EditScope::All)/>"All events"</label>
                        </fieldset>
                    })}
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
                            <input id="ev-start" name="start_local" type="datetime-local" required value=draft.start.clone()
                                on:input=move |ev| start.set(event_target_value(&ev))/>
                            <FieldError error field="start"/>
                        </div>
                        <div class="field">
                            <label for="ev-end">{move || if all_day.get() { "Last day" } else { "Ends" }}</label>
                            <input id="ev-end" name="end_local" type="datetime-local" required value=draft.end.clone()/>
                            <FieldError error field="end"/>
                        </div>
                    </div>
                    <RepeatControls rule_read start hidden=repeat_hidden/>
                    <FieldError error field="recurrence"/>
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
                            <button type="button" class="danger" on:click=move |_| {
                                let scope = offers_scope.then(|| scope.get_untracked().to_string());
                                remove.dispatch(RemoveEvent { id, version, scope, occurrence: occurrence_for_delete.clone() });
                            }>"Delete"</button>
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

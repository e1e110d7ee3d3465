//! The public booking page (`/book/{username}`: a week of free slots in the visitor's
//! zone, a form to book one, the confirmation with its cancel link), the cancel page, and
//! the settings card where an owner sets their page up.

use super::*;
use crate::ui::{Audience, ErrorAlert, FieldError, Loaded, TextField};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

/// The browser's own IANA zone (`Europe/Paris`), if it says.
#[cfg(feature = "hydrate")]
fn browser_zone() -> Option<String> {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new()).resolved_options();
    js_sys::Reflect::get(&options, &"timeZone".into()).ok()?.as_string()
}

fn week_href(username: &str, zone: &str, from: &str) -> String {
    format!("/book/{username}?tz={}&from={from}", zone.replace('+', "%2B"))
}

#[component]
pub fn BookingScreen() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let username = move || params.read().get("username").unwrap_or_default();
    let book = ServerAction::<BookSlot>::new();
    let chosen: RwSignal<Option<(String, Slot)>> = RwSignal::new(None);
    let page = Resource::new(
        move || (username(), query.read().get("tz"), query.read().get("from"), book.version().get()),
        |(user, zone, from, _)| load_booking_page(user, zone, from),
    );
    // The server renders the page in the owner's zone (it cannot know the visitor's);
    // the browser then asks for its own.
    let navigate = use_navigate();
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if query.read().get("tz").is_none() {
            if let Some(zone) = browser_zone() {
                let from = query.read().get("from").unwrap_or_default();
                navigate(&week_href(&username(), &zone, &from), leptos_router::NavigateOptions { replace: true, ..Default::default() });
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &navigate;
    });
    // A booking made (or refused because the slot went) closes the form.
    Effect::new(move |_| {
        if book.value().get().is_some() {
            chosen.set(None);
        }
    });
    view! {
        <main class="page">
            <Loaded data=page audience=Audience::Anyone page=move |p| view! { <BookingWeek page=p chosen/> }.into_any()/>
            {move || chosen.get().map(|(day, slot)| view! { <BookingForm day offered=slot book username=username()/> })}
            <ErrorAlert error=Signal::derive(move || book.value().get().and_then(Result::err))/>
            {move || book.value().get().and_then(Result::ok).map(|b| view! {
                <section class="card" data-testid="booked" role="status">
                    <h2>"Booked"</h2>
                    <p><strong>{b.title}</strong>" · "{b.when}</p>
                    <p class="hint">"To cancel, keep this link: "<a href=b.cancel_url.clone()>{b.cancel_url.clone()}</a></p>
                </section>
            })}
        </main>
    }
}

#[component]
fn BookingWeek(page: BookingPageView, chosen: RwSignal<Option<(String, Slot)>>) -> impl IntoView {
    let nav = |label: &'static str, from: Option<String>| {
        from.map(|f| view! { <A href=week_href(&page.username, &page.time_zone, &f) attr:class="btn secondary small">{label}</A> })
    };
    let (earlier, later) = (nav("‹ Earlier", page.prev.clone()), nav("Later ›", page.next.clone()));
    let free = page.days.iter().map(|d| d.slots.len()).sum::<usize>();
    let about = format!("with {} · {} minutes · times in {}", page.owner_name, page.slot_minutes, page.time_zone);
    let (title, days) = (page.title, page.days);
    view! {
        <h1>{title}</h1>
        <p class="hint">{about}</p>
        <div class="row">{earlier}{later}</div>
        {(free == 0).then(|| view! { <p class="alert info">"No free times this week."</p> })}
        <div class="slot-days" data-testid="slot-days">
            {days.into_iter().map(|day| {
                let (heading, label) = (day.label.clone(), day.label.clone());
                view! {
                    <section class="slot-day" aria-label=label>
                        <h2>{heading}</h2>
                        {day.slots.into_iter().map(|slot| {
                            let date = day.label.clone();
                            let picked = slot.clone();
                            view! {
                                <button type="button" class="secondary small slot-button" data-testid="slot-button" data-start=slot.start.clone()
                                    on:click=move |_| chosen.set(Some((date.clone(), picked.clone())))>{slot.label.clone()}</button>
                            }
                        }).collect_view()}
                    </section>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
fn BookingForm(day: String, offered: Slot, book: ServerAction<BookSlot>, username: String) -> impl IntoView {
    let slot = offered;
    let query = use_query_map();
    let zone = move || query.read().get("tz").unwrap_or_default();
    let error = Signal::derive(move || book.value().get().and_then(Result::err));
    view! {
        <section class="card" data-testid="booking-form">
            <h2>{format!("Book {day}, {}", slot.label)}</h2>
            <ActionForm action=book attr:class="form">
                <input type="hidden" name="username" value=username/>
                <input type="hidden" name="start" value=slot.start/>
                <input type="hidden" name="time_zone" value=zone/>
                <TextField id="book-name" name="name" label="Your name" maxlength=100 autocomplete="name" error/>
                <TextField id="book-email" name="email" label="E-mail" kind="email" maxlength=254 autocomplete="email" error/>
                <button type="submit">"Book"</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn CancelBookingScreen() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let cancel = ServerAction::<CancelBooking>::new();
    view! {
        <main class="page">
            <h1>"Cancel a booking"</h1>
            {move || match cancel.value().get() {
                Some(Ok(())) => view! { <p class="alert info" role="status" data-testid="canceled">"Your booking is canceled."</p> }.into_any(),
                _ => view! {
                    <ActionForm action=cancel>
                        <input type="hidden" name="token" value=token/>
                        <button type="submit" class="danger">"Cancel this booking"</button>
                    </ActionForm>
                }.into_any(),
            }}
            <ErrorAlert error=Signal::derive(move || cancel.value().get().and_then(Result::err))/>
        </main>
    }
}

const WEEKDAY_NAMES: [(&str, &str); 7] = [("MO", "Monday"), ("TU", "Tuesday"), ("WE", "Wednesday"), ("TH", "Thursday"), ("FR", "Friday"), ("SA", "Saturday"), ("SU", "Sunday")];

/// The settings page's card for the caller's booking page. Says nothing to a visitor who
/// is not signed in.
#[component]
pub fn BookingCard() -> impl IntoView {
    let save = ServerAction::<SaveBookingSettings>::new();
    let settings = Resource::new(move || save.version().get(), |_| load_booking_settings());
    let error = Signal::derive(move || save.value().get().and_then(Result::err));
    view! {
        <Loaded data=settings audience={Audience::SignedInSilently} page=move |s: BookingSettings| {
            let number = move |id: &'static str, name: &'static str, label: &'static str, value: u32| view! {
                <div class="field narrow">
                    <label for=id>{label}</label>
                    <input id=id name=name type="number" min="0" required value=value.to_string()/>
                    <FieldError error field=name/>
                </div>
            };
            view! {
                <section class="card" data-testid="booking-card">
                    <h2>"Booking page"</h2>
                    <p class="hint">{format!("Visitors book free times within these hours, in your time zone ({}). Busy events — repeating ones too — are left out.", s.time_zone)}</p>
                    {s.enabled.then(|| view! { <p>"Your page: "<a href=s.url.clone() data-testid="booking-url">{s.url.clone()}</a></p> })}
                    <ActionForm action=save attr:class="form wide">
                        <label class="row"><input type="checkbox" name="enabled" value="on" checked=s.enabled/>"Publish my booking page"</label>
                        <div class="field">
                            <label for="booking-title">"Title"</label>
                            <input id="booking-title" name="title" type="text" required maxlength="100" value=s.title.clone()/>
                            <FieldError error field="title"/>
                        </div>
                        <fieldset class="repeat">
                            <legend>"Hours (e.g. 09:00-12:00, 13:00-17:00)"</legend>
                            {WEEKDAY_NAMES.iter().map(|(code, day)| {
                                let id = format!("hours-{}", code.to_ascii_lowercase());
                                let value = s.hours.get(*code).cloned().unwrap_or_default();
                                let field: &'static str = match *code { "MO" => "hours.MO", "TU" => "hours.TU", "WE" => "hours.WE", "TH" => "hours.TH", "FR" => "hours.FR", "SA" => "hours.SA", _ => "hours.SU" };
                                view! {
                                    <div class="field narrow">
                                        <label for=id.clone()>{*day}</label>
                                        <input id=id.clone() name=format!("hours_{}", code.to_ascii_lowercase()) type="text" value=value/>
                                        <FieldError error field/>
                                    </div>
                                }
                            }).collect_view()}
                        </fieldset>
                        <div class="row">
                            {number("booking-slot", "slot_minutes", "Slot length (minutes)", s.slot_minutes)}
                            {number("booking-before", "buffer_before_minutes", "Free before (minutes)", s.buffer_before_minutes)}
                            {number("booking-after", "buffer_after_minutes", "Free after (minutes)", s.buffer_after_minutes)}
                            {number("booking-notice", "min_notice_minutes", "Minimum notice (minutes)", s.min_notice_minutes)}
                            {number("booking-horizon", "horizon_days", "Days ahead", s.horizon_days)}
                        </div>
                        <ErrorAlert error unless_field=true/>
                        <button type="submit">"Save booking page"</button>
                    </ActionForm>
                </section>
            }
        }/>
    }
}

//! Reading other people's iCalendar files (RFC 5545): a subscribed calendar's feed, an
//! uploaded `.ics`, a file imported into one's own calendar. The `icalendar` crate
//! splits the text into components and properties (unfolding lines, unescaping text);
//! here the properties a calendar shows are read — times with their zone, all-day
//! dates, durations, repeat rules, skipped and changed occurrences — and whatever cannot
//! be read is said in a warning naming the event, never a failure of the whole file.
//! Nothing here touches the database.

use super::domain::{DESCRIPTION_MAX, LOCATION_MAX, MAX_EVENT_DAYS, TITLE_MAX};
use super::recurrence::{Anchor, Rule};
use crate::platform::time::zones;
use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use icalendar::parser::{Component, Property};
use std::collections::{BinaryHeap, HashMap, HashSet};

/// Events one file may hold; the rest is left out, with a warning.
pub const MAX_EVENTS: usize = 5000;
/// How deep components may nest (`VCALENDAR` › `VEVENT` › `VALARM` is 3). The parser
/// recurses once per level: a file nested thousands deep would overflow its stack.
const MAX_DEPTH: usize = 6;
/// Occurrences one file is expanded to at most, whatever is kept of them: thousands of
/// daily events must not take the server's memory or minutes of its time.
const MAX_EXPANDED: usize = 100_000;
/// Warnings kept for the settings page (the count of the rest is added).
const MAX_WARNINGS: usize = 5;

/// One `VEVENT` as read.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEvent {
    pub uid: String,
    pub title: String,
    pub description: String,
    pub location: String,
    pub start: i64,
    pub end: i64,
    pub all_day: bool,
    /// The zone its times were given in (or the reader's default for floating times and
    /// dates): a repeating event repeats in it.
    pub zone: Tz,
    /// `RRULE` as written (without the `RRULE:` prefix).
    pub rule: Option<String>,
    /// `EXDATE`: starts the series skips.
    pub skipped: Vec<i64>,
    /// `RECURRENCE-ID`: this event replaces the occurrence of its series starting then.
    pub replaces: Option<i64>,
    /// `TRANSP:TRANSPARENT` shows but does not make anyone busy.
    pub busy: bool,
    /// `STATUS:CANCELLED`.
    pub cancelled: bool,
}

/// A file as read: its events and what could not be read in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Feed {
    pub events: Vec<FeedEvent>,
    pub warnings: Warnings,
}

/// What a reader could not use, said per event, the first few kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Warnings {
    pub first: Vec<String>,
    pub total: usize,
}

impl Warnings {
    pub fn add(&mut self, text: String) {
        if self.first.len() < MAX_WARNINGS {
            self.first.push(text);
        }
        self.total += 1;
    }

    /// One paragraph for the settings page; none when there is nothing to say.
    pub fn summary(&self) -> Option<String> {
        if self.total == 0 {
            return None;
        }
        let mut text = self.first.join("; ");
        if self.total > self.first.len() {
            text.push_str(&format!("; and {} more", self.total - self.first.len()));
        }
        Some(truncate(&text, 1000))
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Reads an iCalendar file. Fails only when the text is not an iCalendar file at all;
/// an event that cannot be read is left out with a warning. All-day dates are read in
/// `reader_zone` (the reader's own), floating times in the calendar's `X-WR-TIMEZONE`
/// or else the reader's.
pub fn read(text: &str, reader_zone: Tz) -> Result<Feed, String> {
    let text = text.trim_start_matches('\u{feff}');
    if !text.trim_start().get(..15).is_some_and(|head| head.eq_ignore_ascii_case("BEGIN:VCALENDAR")) {
        return Err("not an iCalendar file: it does not begin with BEGIN:VCALENDAR".into());
    }
    // The parser looks for CRLF first: on a file with bare LF line ends (common) each
    // line would cost a scan of the rest of the file.
    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let unfolded = icalendar::parser::unfold(&text);
    // On the lines as the parser will see them (a `BEGIN:` may be folded in two).
    check_nesting(&unfolded)?;
    let calendar = icalendar::parser::read_calendar(&unfolded).map_err(|e| format!("not a readable iCalendar file: {}", first_lines(&e)))?;
    let mut feed = Feed::default();
    let zones = Zones { dates: reader_zone, floating: calendar_zone(&calendar.properties).unwrap_or(reader_zone) };
    let events: Vec<&Component> = calendar.components.iter().filter(|c| c.name.as_str().eq_ignore_ascii_case("VEVENT")).collect();
    if events.len() > MAX_EVENTS {
        feed.warnings.add(format!("the file has {} events; the first {MAX_EVENTS} are shown", events.len()));
    }
    for (n, component) in events.into_iter().take(MAX_EVENTS).enumerate() {
        let mut notes = Vec::new();
        match read_event(component, zones, &mut notes) {
            Ok(event) => feed.events.push(event),
            Err(why) => notes.push(format!("left out: {why}")),
        }
        for note in notes {
            feed.warnings.add(format!("event {} ({}) {note}", n + 1, describe(component)));
        }
    }
    Ok(feed)
}

/// Refuses a file whose components nest deeper than [`MAX_DEPTH`], before it is parsed
/// (on its unfolded lines). Errs on the safe side: a `BEGIN:` counts even after blanks,
/// an `END:` only at the very start of a line.
fn check_nesting(unfolded: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for (n, line) in unfolded.lines().enumerate() {
        if line.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("BEGIN:")) {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(format!("not a readable iCalendar file: line {} nests components more than {MAX_DEPTH} deep", n + 1));
            }
        } else if line.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("END:")) {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

/// The zones values without their own `TZID` are read in: dates (all-day) in the
/// reader's, so a holiday is that day where the reader is; floating times in the
/// calendar's `X-WR-TIMEZONE`, else the reader's.
#[derive(Clone, Copy)]
struct Zones {
    dates: Tz,
    floating: Tz,
}

/// The parser's error, trimmed to what a settings page can show.
fn first_lines(error: &str) -> String {
    truncate(&error.lines().filter(|l| !l.trim().is_empty()).take(3).collect::<Vec<_>>().join(" "), 300)
}

/// How a warning names an event: its title, else its UID.
fn describe(c: &Component) -> String {
    let name = prop(c, "SUMMARY").or_else(|| prop(c, "UID")).map(|p| p.val.as_str().to_owned()).unwrap_or_else(|| "no title".into());
    format!("{:?}", truncate(&name, 60))
}

fn prop<'a>(c: &'a Component<'a>, name: &str) -> Option<&'a Property<'a>> {
    c.properties.iter().find(|p| p.name.as_str().eq_ignore_ascii_case(name))
}

fn param<'a>(p: &'a Property<'a>, key: &str) -> Option<&'a str> {
    p.params.iter().find(|x| x.key.as_str().eq_ignore_ascii_case(key)).and_then(|x| x.val.as_ref()).map(|v| v.as_str().trim_matches('"'))
}

/// `X-WR-TIMEZONE`, the zone Google and Apple name for a whole calendar's floating times.
fn calendar_zone(props: &[Property]) -> Option<Tz> {
    props.iter().find(|p| p.name.as_str().eq_ignore_ascii_case("X-WR-TIMEZONE")).and_then(|p| zone_named(p.val.as_str()))
}

fn read_event(c: &Component, zones: Zones, notes: &mut Vec<String>) -> Result<FeedEvent, String> {
    let start_prop = prop(c, "DTSTART").ok_or("it has no start (DTSTART)")?;
    let start = read_time(start_prop, zones, notes)?;
    let end = match (prop(c, "DTEND"), prop(c, "DURATION")) {
        (Some(p), _) => read_time(p, zones, notes)?.at,
        (None, Some(p)) => start.at + read_duration(p.val.as_str())?,
        // RFC 5545 §3.6.1: a date lasts the day; a time, no time at all.
        (None, None) if start.all_day => zones::start_of_day(start.zone, zones::to_local(start.zone, start.at).date_naive() + Duration::days(1)),
        (None, None) => start.at,
    };
    if end < start.at {
        return Err("it ends before it starts".into());
    }
    if end - start.at > MAX_EVENT_DAYS * 86_400_000 {
        return Err(format!("it lasts more than {MAX_EVENT_DAYS} days"));
    }
    let text = |name: &str, max: usize| prop(c, name).map(|p| truncate(p.val.as_str().trim(), max)).unwrap_or_default();
    // A series' skipped and replaced starts are in its own zone.
    let own = Zones { dates: start.zone, floating: start.zone };
    let mut skipped = Vec::new();
    for p in c.properties.iter().filter(|p| p.name.as_str().eq_ignore_ascii_case("EXDATE")) {
        for value in p.val.as_str().split(',').filter(|v| !v.trim().is_empty()) {
            skipped.push(read_value(value.trim(), p, own, notes)?.at);
        }
    }
    if prop(c, "RDATE").is_some() {
        notes.push("has extra dates (RDATE), which are not shown".into());
    }
    let title = text("SUMMARY", TITLE_MAX);
    Ok(FeedEvent {
        uid: text("UID", 255),
        title: if title.is_empty() { "(no title)".into() } else { title },
        description: text("DESCRIPTION", DESCRIPTION_MAX),
        location: text("LOCATION", LOCATION_MAX),
        start: start.at,
        end,
        all_day: start.all_day,
        zone: start.zone,
        rule: prop(c, "RRULE").map(|p| p.val.as_str().trim().to_owned()),
        skipped,
        replaces: prop(c, "RECURRENCE-ID").map(|p| read_time(p, own, notes)).transpose()?.map(|t| t.at),
        busy: !prop(c, "TRANSP").is_some_and(|p| p.val.as_str().trim().eq_ignore_ascii_case("TRANSPARENT")),
        cancelled: prop(c, "STATUS").is_some_and(|p| p.val.as_str().trim().eq_ignore_ascii_case("CANCELLED")),
    })
}

/// A DATE or DATE-TIME property value, with the zone it is in.
struct Time {
    at: i64,
    all_day: bool,
    zone: Tz,
}

fn read_time(p: &Property, zones: Zones, notes: &mut Vec<String>) -> Result<Time, String> {
    read_value(p.val.as_str().trim(), p, zones, notes)
}

fn read_value(value: &str, p: &Property, zones: Zones, notes: &mut Vec<String>) -> Result<Time, String> {
    let name = p.name.as_str().to_ascii_uppercase();
    let date = value.len() == 8 || param(p, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    let zone = match param(p, "TZID") {
        Some(tzid) => zone_named(tzid).unwrap_or_else(|| {
            let note = format!("is in a time zone this calendar does not know ({tzid:?}); read in {}", zones.floating);
            if !notes.contains(&note) {
                notes.push(note);
            }
            zones.floating
        }),
        None if date => zones.dates,
        None => zones.floating,
    };
    if date {
        let date = NaiveDate::parse_from_str(value, "%Y%m%d").map_err(|_| format!("{name} is not a date like 20261207 ({value:?})"))?;
        return Ok(Time { at: zones::start_of_day(zone, date), all_day: true, zone });
    }
    let (local, utc) = match value.strip_suffix('Z').or_else(|| value.strip_suffix('z')) {
        Some(v) => (v, true),
        None => (value, false),
    };
    let local = NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S").map_err(|_| format!("{name} is not a time like 20261207T090000 ({value:?})"))?;
    if utc {
        return Ok(Time { at: local.and_utc().timestamp_millis(), all_day: false, zone: if param(p, "TZID").is_some() { zone } else { Tz::UTC } });
    }
    Ok(Time { at: local_instant(zone, local), all_day: false, zone })
}

/// A wall-clock time in `zone`; one the clocks skip is read with the offset before the
/// jump (RFC 5545 §3.3.5), so 02:30 on a spring-forward night is 03:30.
fn local_instant(zone: Tz, local: NaiveDateTime) -> i64 {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        LocalResult::None => match zone.from_local_datetime(&(local + Duration::hours(1))) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
            LocalResult::None => local.and_utc().timestamp_millis(),
        },
    }
}

/// An IANA name (also behind a prefix, as `/mozilla.org/20050126_1/Europe/Paris`), or
/// one of the Windows names Outlook and Exchange write.
fn zone_named(tzid: &str) -> Option<Tz> {
    let tzid = tzid.trim();
    if let Ok(zone) = tzid.parse::<Tz>() {
        return Some(zone);
    }
    let segments: Vec<&str> = tzid.split('/').collect();
    for from in 1..segments.len() {
        if let Ok(zone) = segments[from..].join("/").parse::<Tz>() {
            return Some(zone);
        }
    }
    let windows = match tzid {
        "UTC" | "Coordinated Universal Time" | "GMT" => "UTC",
        "GMT Standard Time" => "Europe/London",
        "W. Europe Standard Time" => "Europe/Berlin",
        "Romance Standard Time" => "Europe/Paris",
        "Central Europe Standard Time" => "Europe/Budapest",
        "Central European Standard Time" => "Europe/Warsaw",
        "E. Europe Standard Time" => "Europe/Chisinau",
        "FLE Standard Time" => "Europe/Kiev",
        "Russian Standard Time" => "Europe/Moscow",
        "Eastern Standard Time" => "America/New_York",
        "Central Standard Time" => "America/Chicago",
        "Mountain Standard Time" => "America/Denver",
        "US Mountain Standard Time" => "America/Phoenix",
        "Pacific Standard Time" => "America/Los_Angeles",
        "Alaskan Standard Time" => "America/Anchorage",
        "Hawaiian Standard Time" => "Pacific/Honolulu",
        "Atlantic Standard Time" => "America/Halifax",
        "E. South America Standard Time" => "America/Sao_Paulo",
        "India Standard Time" => "Asia/Kolkata",
        "China Standard Time" => "Asia/Shanghai",
        "Tokyo Standard Time" => "Asia/Tokyo",
        "Singapore Standard Time" => "Asia/Singapore",
        "AUS Eastern Standard Time" => "Australia/Sydney",
        "New Zealand Standard Time" => "Pacific/Auckland",
        _ => return None,
    };
    windows.parse().ok()
}

/// `DURATION` (RFC 5545 §3.3.6): `P1D`, `PT1H30M`, `P2W`, in milliseconds.
fn read_duration(raw: &str) -> Result<i64, String> {
    let bad = || format!("DURATION is not a duration like PT1H30M ({raw:?})");
    let text = raw.trim().trim_start_matches('+');
    if text.starts_with('-') {
        return Err("it has a negative duration".into());
    }
    let text = text.strip_prefix('P').ok_or_else(bad)?;
    let (mut total, mut number, mut in_time) = (0i64, String::new(), false);
    for ch in text.chars() {
        match ch {
            'T' => in_time = true,
            '0'..='9' => number.push(ch),
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                let seconds = match (unit, in_time) {
                    ('W', false) => 7 * 86_400,
                    ('D', false) => 86_400,
                    ('H', true) => 3_600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return Err(bad()),
                };
                total = n.checked_mul(seconds * 1000).and_then(|ms| total.checked_add(ms)).ok_or_else(bad)?;
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// One occurrence of a feed's event, as a subscribed calendar shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Occurrence {
    pub title: String,
    pub location: String,
    pub start: i64,
    pub end: i64,
    pub all_day: bool,
    pub busy: bool,
}

/// The occurrences of `feed`'s events overlapping `[from, to)`, by start, at most `cap`:
/// repeating events expanded in their own zone, less skipped starts and the starts a
/// changed occurrence replaces; cancelled events and occurrences left out. Adds a
/// warning for a rule this calendar cannot expand (its first occurrence is shown) and
/// for occurrences beyond `cap`.
pub fn occurrences(feed: &Feed, from: i64, to: i64, cap: usize, warnings: &mut Warnings) -> Vec<Occurrence> {
    let replaced: HashMap<&str, HashSet<i64>> = feed.events.iter().filter(|e| e.replaces.is_some()).fold(HashMap::new(), |mut map, e| {
        map.entry(e.uid.as_str()).or_default().insert(e.replaces.expect("filtered"));
        map
    });
    // The `cap` earliest seen so far, as (start, end, event): a max-heap, so what is kept
    // never grows past `cap` however many a file expands to.
    let mut kept: BinaryHeap<(i64, i64, usize)> = BinaryHeap::new();
    let (mut expanded, mut dropped, mut cut_short) = (0usize, false, false);
    for (i, e) in feed.events.iter().enumerate().filter(|(_, e)| !e.cancelled) {
        let budget = MAX_EXPANDED - expanded;
        if budget == 0 {
            cut_short = true;
            break;
        }
        let spans: Vec<(i64, i64)> = match (&e.rule, e.replaces) {
            (Some(text), None) => match series_rule(e, text) {
                Ok((rule, anchor)) => {
                    let mut skipped = e.skipped.clone();
                    skipped.extend(replaced.get(e.uid.as_str()).into_iter().flatten());
                    // Once `cap` are kept, only earlier starts than the latest kept matter
                    // (whether there are later ones is all that is asked of the rest).
                    let until = match kept.peek() {
                        Some(&(latest, _, _)) if kept.len() >= cap => (latest + 1).min(to),
                        _ => to,
                    };
                    if until < to && !dropped {
                        // (Those overlapping `until` from before it come first: skip them.)
                        dropped = rule.occurrences(&anchor, &skipped, until, to, 64).iter().any(|s| s.start >= until);
                    }
                    let wanted = (cap + 1).min(budget);
                    let spans: Vec<(i64, i64)> = rule.occurrences(&anchor, &skipped, from, until, wanted).iter().map(|s| (s.start, s.end)).collect();
                    cut_short |= wanted <= cap && spans.len() == wanted;
                    spans
                }
                Err(why) => {
                    warnings.add(format!("{:?} repeats by a rule this calendar cannot show ({why}); only its first occurrence is shown", e.title));
                    vec![(e.start, e.end)]
                }
            },
            _ => vec![(e.start, e.end)],
        };
        expanded += spans.len();
        for (start, end) in spans.into_iter().filter(|&(s, end)| s < to && (end > from || (end == s && s >= from))) {
            kept.push((start, end, i));
            if kept.len() > cap {
                kept.pop();
                dropped = true;
            }
        }
    }
    if dropped {
        warnings.add(format!("more than {cap} occurrences in the window shown; the first {cap} are shown"));
    }
    if cut_short && expanded >= MAX_EXPANDED {
        // The budget ran out: before an event, or within the last one expanded.
        warnings.add(format!("the file expands to more than {MAX_EXPANDED} occurrences; the rest are left out"));
    }
    let mut out: Vec<Occurrence> = kept
        .into_iter()
        .map(|(start, end, i)| {
            let e = &feed.events[i];
            Occurrence { title: e.title.clone(), location: e.location.clone(), start, end, all_day: e.all_day, busy: e.busy }
        })
        .collect();
    out.sort_by(|a, b| (a.start, a.end, &a.title).cmp(&(b.start, b.end, &b.title)));
    out
}

/// A feed event's rule read as this calendar's own series read theirs.
pub fn series_rule(e: &FeedEvent, text: &str) -> Result<(Rule, Anchor), String> {
    let anchor = Anchor { zone: e.zone, start: e.start, end: e.end.max(e.start + 1), all_day: e.all_day };
    let rule = Rule::parse(text, &anchor).map_err(|err| err.message)?;
    Ok((rule, anchor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn ics(events: &str) -> String {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n")
    }

    #[test]
    fn times_dates_zones_and_durations_are_read() {
        let text = ics(concat!(
            "BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Paris standup\r\nDTSTART;TZID=Europe/Paris:20261207T090000\r\nDTEND;TZID=Europe/Paris:20261207T091500\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:b\r\nSUMMARY:Holiday\r\nDTSTART;VALUE=DATE:20261225\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:c\r\nSUMMARY:Call\\, with comma\r\nDTSTART:20261208T150000Z\r\nDURATION:PT1H30M\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:d\r\nSUMMARY:Outlook\r\nDTSTART;TZID=\"Pacific Standard Time\":20261207T090000\r\nDTEND;TZID=\"Pacific Standard Time\":20261207T100000\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:e\r\nSUMMARY:Floating\r\nDTSTART:20261207T080000\r\nDTEND:20261207T083000\r\nEND:VEVENT\r\n",
        ));
        let feed = read(&text, "Asia/Tokyo".parse().unwrap()).unwrap();
        assert_eq!(feed.warnings.total, 0, "{:?}", feed.warnings);
        let by_uid = |uid: &str| feed.events.iter().find(|e| e.uid == uid).unwrap();
        assert_eq!((by_uid("a").start, by_uid("a").end), (utc("2026-12-07T08:00:00Z"), utc("2026-12-07T08:15:00Z")));
        let holiday = by_uid("b");
        assert!(holiday.all_day);
        assert_eq!((holiday.start, holiday.end), (utc("2026-12-24T15:00:00Z"), utc("2026-12-25T15:00:00Z")), "a date is a day in the reader's zone");
        let call = by_uid("c");
        assert_eq!((call.title.as_str(), call.end - call.start, call.busy), ("Call, with comma", 90 * 60_000, false));
        assert_eq!(by_uid("d").start, utc("2026-12-07T17:00:00Z"), "a Windows zone name");
        assert_eq!(by_uid("e").start, utc("2026-12-06T23:00:00Z"), "a floating time is in the reader's zone");
    }

    #[test]
    fn a_bad_event_is_left_out_with_a_warning_and_a_bad_file_is_refused() {
        let text = ics(concat!(
            "BEGIN:VEVENT\r\nUID:ok\r\nSUMMARY:Fine\r\nDTSTART:20261207T090000Z\r\nDTEND:20261207T100000Z\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:x\r\nSUMMARY:No start\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:y\r\nSUMMARY:Bad zone\r\nDTSTART;TZID=Mars/Olympus:20261207T090000\r\nEND:VEVENT\r\n",
        ));
        let feed = read(&text, Tz::UTC).unwrap();
        assert_eq!(feed.events.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(), ["ok", "y"]);
        let summary = feed.warnings.summary().unwrap();
        assert!(summary.contains("\"No start\"") && summary.contains("DTSTART"), "{summary}");
        assert!(summary.contains("\"Mars/Olympus\"); read in UTC"), "an unknown zone is read in the floating one, and said: {summary}");
        assert!(read("<html>not a calendar</html>", Tz::UTC).unwrap_err().contains("BEGIN:VCALENDAR"));
        let err = read("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\n", Tz::UTC).unwrap_err();
        assert!(err.starts_with("not a readable iCalendar file"), "{err}");
    }

    #[test]
    fn a_series_expands_in_its_zone_less_skipped_and_replaced_occurrences() {
        // Weekly on Tuesdays 09:00 New York across the March DST change; one skipped, one
        // moved to 11:00, one cancelled.
        let text = ics(concat!(
            "BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Weekly\r\nDTSTART;TZID=America/New_York:20270302T090000\r\nDTEND;TZID=America/New_York:20270302T100000\r\n",
            "RRULE:FREQ=WEEKLY;COUNT=5\r\nEXDATE;TZID=America/New_York:20270309T090000\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Weekly (moved)\r\nRECURRENCE-ID;TZID=America/New_York:20270316T090000\r\nDTSTART;TZID=America/New_York:20270316T110000\r\nDTEND;TZID=America/New_York:20270316T120000\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Weekly\r\nRECURRENCE-ID;TZID=America/New_York:20270323T090000\r\nDTSTART;TZID=America/New_York:20270323T090000\r\nDTEND;TZID=America/New_York:20270323T100000\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n",
        ));
        let feed = read(&text, Tz::UTC).unwrap();
        let mut warnings = Warnings::default();
        let got: Vec<(String, i64)> = occurrences(&feed, 0, i64::MAX / 2, 100, &mut warnings).into_iter().map(|o| (o.title, o.start)).collect();
        assert_eq!(
            got,
            vec![
                ("Weekly".to_owned(), utc("2027-03-02T14:00:00Z")),
                ("Weekly (moved)".to_owned(), utc("2027-03-16T15:00:00Z")),
                ("Weekly".to_owned(), utc("2027-03-30T13:00:00Z")),
            ],
            "09:00 local before and after the change; the 9th skipped, the 16th moved, the 23rd cancelled"
        );
        assert_eq!(warnings.total, 0);
    }

    #[test]
    fn an_unsupported_rule_shows_its_first_occurrence_and_says_so() {
        let text = ics("BEGIN:VEVENT\r\nUID:h\r\nSUMMARY:Hourly\r\nDTSTART:20261207T090000Z\r\nDTEND:20261207T091000Z\r\nRRULE:FREQ=HOURLY\r\nEND:VEVENT\r\n");
        let feed = read(&text, Tz::UTC).unwrap();
        let mut warnings = Warnings::default();
        let got = occurrences(&feed, 0, i64::MAX / 2, 100, &mut warnings);
        assert_eq!(got.len(), 1);
        assert!(warnings.summary().unwrap().contains("HOURLY"), "{warnings:?}");
    }

    #[test]
    fn occurrences_are_capped_with_a_warning() {
        let text = ics("BEGIN:VEVENT\r\nUID:d\r\nSUMMARY:Daily\r\nDTSTART:20261207T090000Z\r\nDTEND:20261207T091000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n");
        let feed = read(&text, Tz::UTC).unwrap();
        let mut warnings = Warnings::default();
        let got = occurrences(&feed, utc("2026-12-01T00:00:00Z"), utc("2027-12-01T00:00:00Z"), 10, &mut warnings);
        assert_eq!(got.len(), 10);
        assert!(warnings.summary().unwrap().contains("first 10"), "{warnings:?}");
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("BEGIN:VCALENDAR\r\n{}", "BEGIN:X\r\n".repeat(100_000));
        let err = read(&deep, Tz::UTC).unwrap_err();
        assert!(err.contains("line 7 nests components more than 6 deep"), "{err}");
        // Folded in two, or hidden behind an END the parser reads as a value: still counted.
        for trick in ["BEG\r\n IN:X\r\n", "BEGIN:X\r\nX-A:b\r\n END:X\r\n"] {
            let deep = format!("BEGIN:VCALENDAR\r\n{}", trick.repeat(100_000));
            assert!(read(&deep, Tz::UTC).unwrap_err().contains("more than 6 deep"), "{trick:?}");
        }
        let alarm = ics("BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20261207T090000Z\r\nBEGIN:VALARM\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\n");
        assert_eq!(read(&alarm, Tz::UTC).unwrap().events.len(), 1, "ordinary nesting reads");
    }

    #[test]
    fn bare_line_feeds_read_like_crlf() {
        let crlf = ics("BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Long\r\n  folded title\r\nDTSTART:20261207T090000Z\r\nEND:VEVENT\r\n");
        let lf = crlf.replace("\r\n", "\n");
        assert_eq!(read(&lf, Tz::UTC).unwrap(), read(&crlf, Tz::UTC).unwrap());
        assert_eq!(read(&lf, Tz::UTC).unwrap().events[0].title, "Long folded title");
    }

    #[test]
    fn dates_are_the_readers_days_and_floating_times_the_calendars() {
        // Google writes X-WR-TIMEZONE: a holiday is still Dec 25 where the reader is.
        let text = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-TIMEZONE:America/Los_Angeles\r\n{}{}END:VCALENDAR\r\n",
            "BEGIN:VEVENT\r\nUID:h\r\nDTSTART;VALUE=DATE:20261225\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:f\r\nDTSTART:20261207T090000\r\nDTEND:20261207T100000\r\nEND:VEVENT\r\n"
        );
        let feed = read(&text, "Europe/Berlin".parse().unwrap()).unwrap();
        assert_eq!(feed.events[0].start, utc("2026-12-24T23:00:00Z"), "midnight in Berlin");
        assert_eq!(feed.events[1].start, utc("2026-12-07T17:00:00Z"), "09:00 in Los Angeles");
    }

    #[test]
    fn thousands_of_daily_series_expand_within_bounds() {
        let events: String = (0..2000).map(|n| format!("BEGIN:VEVENT\r\nUID:{n}\r\nSUMMARY:Daily {n}\r\nDTSTART:20261207T090000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n")).collect();
        let feed = read(&ics(&events), Tz::UTC).unwrap();
        let mut warnings = Warnings::default();
        let got = occurrences(&feed, utc("2026-12-01T00:00:00Z"), utc("2029-12-01T00:00:00Z"), 5000, &mut warnings);
        assert_eq!(got.len(), 5000);
        assert!(got.windows(2).all(|w| w[0].start <= w[1].start));
        assert_eq!(got.last().unwrap().start, utc("2026-12-09T09:00:00Z"), "the earliest 5000: three days of 2000 a day");
        assert!(warnings.summary().unwrap().contains("first 5000"), "{warnings:?}");
        // Asked for them all, they are expanded only so far.
        let mut warnings = Warnings::default();
        let got = occurrences(&feed, utc("2026-12-01T00:00:00Z"), utc("2029-12-01T00:00:00Z"), 10_000_000, &mut warnings);
        assert_eq!(got.len(), 100_000);
        assert!(warnings.summary().unwrap().contains("more than 100000 occurrences"), "{warnings:?}");
    }

    #[test]
    fn durations_read_as_rfc_5545_writes_them() {
        assert_eq!(read_duration("PT1H30M").unwrap(), 90 * 60_000);
        assert_eq!(read_duration("P1D").unwrap(), 86_400_000);
        assert_eq!(read_duration("P2W").unwrap(), 14 * 86_400_000);
        assert_eq!(read_duration("P1DT2H").unwrap(), 26 * 3_600_000);
        for bad in ["1H", "PT1X", "P1H", "P1", "-PT1H"] {
            assert!(read_duration(bad).is_err(), "{bad}");
        }
    }
}

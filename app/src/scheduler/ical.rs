//! iCalendar (RFC 5545) output: CRLF lines folded at 75 octets, TEXT values escaped,
//! single events' times in UTC (`…Z`), all-day events as `VALUE=DATE` in their zone, and
//! series as their first occurrence in local time with its `TZID` (so calendar apps
//! repeat them in that zone, across its daylight-saving changes), `RRULE`, `EXDATE`, the
//! zone's `VTIMEZONE`, and occurrences changed on their own under `RECURRENCE-ID`.

use super::store::event;
use crate::platform::time::zones::to_local;
use chrono_tz::Tz;

fn utc(ms: i64) -> String {
    crate::platform::time::to_datetime(ms).format("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value (§3.3.11): backslash, semicolon, comma, newline.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line (§3.1): at most 75 octets per line, continuation lines start
/// with a space, never splitting a UTF-8 character.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
    out
}

fn push(out: &mut String, line: String) {
    out.push_str(&fold(&line));
}

/// A zone's offset at `ms`: (seconds east of UTC, daylight saving?, abbreviation).
fn offset_at(zone: Tz, ms: i64) -> (i32, bool, String) {
    use chrono::{Offset, TimeZone};
    use chrono_tz::{OffsetComponents, OffsetName};
    let offset = zone.offset_from_utc_datetime(&crate::platform::time::to_datetime(ms).naive_utc());
    let name = offset.abbreviation().map(str::to_owned).unwrap_or_default();
    (offset.fix().local_minus_utc(), !offset.dst_offset().is_zero(), name)
}

fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.abs();
    format!("{sign}{:02}{:02}", s / 3600, s % 3600 / 60)
}

/// A VTIMEZONE (§3.6.5) for `zone` from `from` to `to`: one observance per change of
/// offset, found by walking the zone day by day and narrowing each change to the minute
/// — what the tz database says, so a client without it places every local time right.
fn vtimezone(out: &mut String, zone: Tz, from: i64, to: i64) {
    const DAY: i64 = 86_400_000;
    push(out, "BEGIN:VTIMEZONE".into());
    push(out, format!("TZID:{zone}"));
    let observance = |out: &mut String, at: i64, before: i32| {
        let (offset, dst, name) = offset_at(zone, at);
        let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
        let local_before = crate::platform::time::to_datetime(at + before as i64 * 1000).naive_utc();
        push(out, format!("BEGIN:{kind}"));
        push(out, format!("DTSTART:{}", local_before.format("%Y%m%dT%H%M%S")));
        push(out, format!("TZOFFSETFROM:{}", utc_offset(before)));
        push(out, format!("TZOFFSETTO:{}", utc_offset(offset)));
        if !name.is_empty() && !name.starts_with(['+', '-']) {
            push(out, format!("TZNAME:{name}"));
        }
        push(out, format!("END:{kind}"));
    };
    let mut at = from - from.rem_euclid(DAY);
    let mut current = offset_at(zone, at).0;
    observance(out, at, current);
    while at < to {
        let next = at + DAY;
        if offset_at(zone, next).0 != current {
            // The change is within (at, next]: narrow it to the second.
            let (mut lo, mut hi) = (at, next);
            while hi - lo > 1000 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(zone, mid).0 == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            observance(out, hi, current);
            current = offset_at(zone, hi).0;
        }
        at = next;
    }
    push(out, "END:VTIMEZONE".into());
}

/// A local time in `zone` as a property value with its TZID parameter, or a DATE.
fn zoned(name: &str, zone: Tz, all_day: bool, ms: &[i64]) -> String {
    let format = if all_day { "%Y%m%d" } else { "%Y%m%dT%H%M%S" };
    let values: Vec<String> = ms.iter().map(|t| to_local(zone, *t).format(format).to_string()).collect();
    if all_day {
        format!("{name};VALUE=DATE:{}", values.join(","))
    } else {
        format!("{name};TZID={zone}:{}", values.join(","))
    }
}

/// A series' rule as iCalendar wants it beside its DTSTART: `UNTIL` a DATE for an
/// all-day series (§3.3.10: the same value type as DTSTART), else UTC as stored.
fn rrule_line(e: &event::Model, zone: Tz) -> String {
    let rule = e.rrule.clone().unwrap_or_default();
    if e.all_day {
        format!("RRULE:{}", super::recurrence::with_local_until(&rule, zone))
    } else {
        format!("RRULE:{rule}")
    }
}

fn zone_of(e: &event::Model) -> Tz {
    e.time_zone.parse().unwrap_or(Tz::UTC)
}

/// One VEVENT. A series carries its rule and the starts it skips — less those changed
/// on their own (`changed`), which follow as VEVENTs of the series' UID with a
/// RECURRENCE-ID (§3.8.4.4); `series` is the series of a changed occurrence.
fn event_lines(out: &mut String, e: &event::Model, series: Option<&event::Model>, changed: &[i64]) {
    push(out, "BEGIN:VEVENT".into());
    push(out, format!("UID:{}", series.map_or(&e.uid, |s| &s.uid)));
    push(out, format!("DTSTAMP:{}", utc(e.updated_at)));
    push(out, format!("CREATED:{}", utc(e.created_at)));
    push(out, format!("LAST-MODIFIED:{}", utc(e.updated_at)));
    push(out, format!("SEQUENCE:{}", e.version - 1));
    let zone = zone_of(e);
    if e.recurring {
        push(out, zoned("DTSTART", zone, e.all_day, &[e.start_at]));
        push(out, zoned("DTEND", zone, e.all_day, &[e.end_at]));
        push(out, rrule_line(e, zone));
        let skipped: Vec<i64> = super::recurrence::decode_exceptions(e.exceptions.as_deref()).into_iter().filter(|t| !changed.contains(t)).collect();
        if !skipped.is_empty() {
            push(out, zoned("EXDATE", zone, e.all_day, &skipped));
        }
    } else if e.all_day {
        push(out, zoned("DTSTART", zone, true, &[e.start_at]));
        push(out, zoned("DTEND", zone, true, &[e.end_at]));
    } else {
        push(out, format!("DTSTART:{}", utc(e.start_at)));
        push(out, format!("DTEND:{}", utc(e.end_at)));
    }
    if let (Some(s), Some(at)) = (series, e.recurrence_at) {
        push(out, zoned("RECURRENCE-ID", zone_of(s), s.all_day, &[at]));
    }
    push(out, format!("SUMMARY:{}", escape(&e.title)));
    if !e.description.is_empty() {
        push(out, format!("DESCRIPTION:{}", escape(&e.description)));
    }
    if !e.location.is_empty() {
        push(out, format!("LOCATION:{}", escape(&e.location)));
    }
    push(out, "END:VEVENT".into());
}

/// A whole VCALENDAR of `rows`: single events, series, and occurrences changed on their
/// own (with their series when it is among the rows; alone otherwise). Every zone a
/// series repeats in gets its VTIMEZONE.
pub fn calendar(name: &str, zone: &str, rows: &[event::Model]) -> String {
    use std::collections::{BTreeMap, HashMap};
    let series: HashMap<i64, &event::Model> = rows.iter().filter(|e| e.recurring).map(|e| (e.id, e)).collect();
    let mut changed: HashMap<i64, Vec<i64>> = HashMap::new();
    for e in rows {
        if let (Some(s), Some(at)) = (e.series_id.filter(|s| series.contains_key(s)), e.recurrence_at) {
            changed.entry(s).or_default().push(at);
        }
    }
    // Zones of the timed series, each from the earliest time it is used (but at most
    // twenty years back: the walk is day by day) to ten years on.
    let now = crate::platform::time::now_ms();
    let (horizon, oldest) = (now + 3653 * 86_400_000, now - 7305 * 86_400_000);
    let mut zones: BTreeMap<String, (Tz, i64)> = BTreeMap::new();
    for s in series.values().filter(|s| !s.all_day) {
        let z = zone_of(s);
        let first = zones.entry(z.name().to_owned()).or_insert((z, s.start_at));
        first.1 = first.1.min(s.start_at);
    }
    let mut out = String::new();
    push(&mut out, "BEGIN:VCALENDAR".into());
    push(&mut out, "VERSION:2.0".into());
    push(&mut out, "PRODID:-//Switchboard//Scheduler//EN".into());
    push(&mut out, "CALSCALE:GREGORIAN".into());
    push(&mut out, "METHOD:PUBLISH".into());
    push(&mut out, format!("X-WR-CALNAME:{}", escape(name)));
    push(&mut out, format!("X-WR-TIMEZONE:{zone}"));
    for (z, from) in zones.values() {
        vtimezone(&mut out, *z, (*from).max(oldest), horizon);
    }
    for e in rows {
        let of = e.series_id.and_then(|s| series.get(&s).copied());
        let skipped_changed = changed.get(&e.id).map(Vec::as_slice).unwrap_or_default();
        event_lines(&mut out, e, of, skipped_changed);
    }
    push(&mut out, "END:VCALENDAR".into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_long_lines_folded_on_character_boundaries() {
        assert_eq!(escape("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
        let long = format!("SUMMARY:{}", "é".repeat(60));
        let folded = fold(&long);
        for line in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, long, "unfolding restores the line");
    }
}

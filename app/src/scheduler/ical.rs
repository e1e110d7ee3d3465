//! iCalendar (RFC 5545) output: CRLF lines folded at 75 octets, TEXT values escaped,
//! times in UTC (`…Z`) and all-day events as `VALUE=DATE` in their zone.

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

pub fn event_lines(out: &mut String, e: &event::Model) {
    push(out, "BEGIN:VEVENT".into());
    push(out, format!("UID:{}", e.uid));
    push(out, format!("DTSTAMP:{}", utc(e.updated_at)));
    push(out, format!("CREATED:{}", utc(e.created_at)));
    push(out, format!("LAST-MODIFIED:{}", utc(e.updated_at)));
    push(out, format!("SEQUENCE:{}", e.version - 1));
    if e.all_day {
        let zone: Tz = e.time_zone.parse().unwrap_or(Tz::UTC);
        push(out, format!("DTSTART;VALUE=DATE:{}", to_local(zone, e.start_at).format("%Y%m%d")));
        push(out, format!("DTEND;VALUE=DATE:{}", to_local(zone, e.end_at).format("%Y%m%d")));
    } else {
        push(out, format!("DTSTART:{}", utc(e.start_at)));
        push(out, format!("DTEND:{}", utc(e.end_at)));
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

/// A whole VCALENDAR.
pub fn calendar(name: &str, zone: &str, events: &[event::Model]) -> String {
    let mut out = String::new();
    push(&mut out, "BEGIN:VCALENDAR".into());
    push(&mut out, "VERSION:2.0".into());
    push(&mut out, "PRODID:-//Switchboard//Scheduler//EN".into());
    push(&mut out, "CALSCALE:GREGORIAN".into());
    push(&mut out, "METHOD:PUBLISH".into());
    push(&mut out, format!("X-WR-CALNAME:{}", escape(name)));
    push(&mut out, format!("X-WR-TIMEZONE:{zone}"));
    for e in events {
        event_lines(&mut out, e);
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

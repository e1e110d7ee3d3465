//! Recurring events (RFC 5545 §3.3.10 `RRULE`, §3.8.5.1 `EXDATE`). A series is stored as
//! one row — its first occurrence's times, a rule and the occurrences it skips — and its
//! occurrences are expanded here, by the `rrule` crate, in the zone the series was
//! entered in: a weekly 09:00 stays at 09:00 local when the clocks change, whichever zone
//! the viewer is in. Nothing here touches the database.

use crate::error::{AppError, AppResult};
use crate::platform::time::zones;
use chrono::{Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use rrule::{RRule, RRuleSet, Unvalidated};

/// The field a rule arrives in (REST body and calendar form alike).
pub const FIELD: &str = "recurrence";
pub const MAX_COUNT: u32 = 1000;
pub const MAX_INTERVAL: u32 = 1000;
/// The longest rule text kept.
const MAX_TEXT: usize = 400;
/// Occurrences one series may skip or change on their own.
pub const MAX_EXCEPTIONS: usize = 1000;
/// Where a series without an end ends as far as the index is concerned (9999-12-31).
pub const FOREVER: i64 = 253_402_300_799_000;
/// Occurrences walked to find where a series with `UNTIL` ends before settling for a
/// bound computed from `UNTIL` itself.
const WALK_FOR_BOUND: usize = 20_000;
/// Starts one expansion walks at most (a daily series, 270 years): the rule is walked
/// from the series' first start, so an old series costs its whole past, and a read must
/// stay bounded whatever is stored.
const MAX_WALK: usize = 100_000;

/// The rule parts accepted, in the order the canonical text lists them.
const PARTS: &[&str] = &["FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYSETPOS", "WKST"];
const FREQUENCIES: &[&str] = &["DAILY", "WEEKLY", "MONTHLY", "YEARLY"];

/// Where and how long a series' first occurrence is: what its rule is read against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub zone: Tz,
    pub start: i64,
    pub end: i64,
    /// All-day occurrences last whole days in `zone` (23 or 25 hours across a change).
    pub all_day: bool,
}

impl Anchor {
    /// Where the occurrence starting at `start` ends.
    pub fn end_of(&self, start: i64) -> i64 {
        if !self.all_day {
            return start + (self.end - self.start);
        }
        let first = zones::to_local(self.zone, self.start).date_naive();
        let days = zones::to_local(self.zone, self.end - 1).date_naive() - first + Duration::days(1);
        zones::start_of_day(self.zone, zones::to_local(self.zone, start).date_naive() + days)
    }

    fn dt_start(&self) -> chrono::DateTime<rrule::Tz> {
        rrule::Tz::Tz(self.zone).timestamp_millis_opt(self.start - self.start.rem_euclid(1000)).single().unwrap_or_else(|| {
            rrule::Tz::UTC.timestamp_millis_opt(0).single().expect("the epoch exists")
        })
    }
}

/// A recurrence rule checked against its series: canonical text (`FREQ=WEEKLY;BYDAY=MO`,
/// parts in a fixed order, `UNTIL` in UTC), never the `RRULE:` prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    parts: Vec<(&'static str, String)>,
}

/// One occurrence: when it starts and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::invalid(FIELD, message)
}

impl Rule {
    /// Reads a rule as a client sends it (`FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10`, with or
    /// without `RRULE:`): daily, weekly, monthly or yearly, with `INTERVAL`, `BYDAY`
    /// (`MO`, `2TU`, `-1FR`), `BYMONTHDAY`, `BYMONTH`, `BYSETPOS`, `WKST`, and at most one
    /// of `COUNT` (≤ 1000) and `UNTIL` (a date — through that day in the series' zone —
    /// or a time, UTC with `Z` or local without).
    pub fn parse(raw: &str, at: &Anchor) -> AppResult<Rule> {
        let text = raw.trim();
        let text = text.strip_prefix("RRULE:").or_else(|| text.strip_prefix("rrule:")).unwrap_or(text);
        let mut parts: Vec<(&'static str, String)> = Vec::new();
        for item in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| invalid(format!("{item:?} is not KEY=VALUE")))?;
            let key = key.trim().to_ascii_uppercase();
            let known = PARTS.iter().find(|k| **k == key).ok_or_else(|| {
                invalid(format!("{key} is not supported; use FREQ, INTERVAL, COUNT, UNTIL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS or WKST"))
            })?;
            if parts.iter().any(|(k, _)| k == known) {
                return Err(invalid(format!("{key} is given twice")));
            }
            // Lists keep their first mention of each value (the rule is stored as written).
            let mut values: Vec<String> = Vec::new();
            for v in value.split(',').map(|v| v.trim().to_ascii_uppercase()) {
                if !values.contains(&v) {
                    values.push(v);
                }
            }
            parts.push((known, values.join(",")));
        }
        let get = |key: &str| parts.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        match get("FREQ") {
            Some(f) if FREQUENCIES.contains(&f) => {}
            Some(f) => return Err(invalid(format!("FREQ={f} is not supported; use DAILY, WEEKLY, MONTHLY or YEARLY"))),
            None => return Err(invalid("FREQ is required (DAILY, WEEKLY, MONTHLY or YEARLY)")),
        }
        if get("COUNT").is_some() && get("UNTIL").is_some() {
            return Err(invalid("give COUNT or UNTIL, not both"));
        }
        let number = |key: &str, max: u32| -> AppResult<()> {
            match get(key).map(|v| v.parse::<u32>()) {
                Some(Ok(n)) if (1..=max).contains(&n) => Ok(()),
                Some(_) => Err(invalid(format!("{key} must be a whole number from 1 to {max}"))),
                None => Ok(()),
            }
        };
        number("COUNT", MAX_COUNT)?;
        number("INTERVAL", MAX_INTERVAL)?;
        if let Some(until) = get("UNTIL") {
            let utc = normalise_until(until, at)?;
            parts.iter_mut().find(|(k, _)| *k == "UNTIL").expect("just read").1 = utc;
        }
        parts.sort_by_key(|(k, _)| PARTS.iter().position(|p| p == k));
        let rule = Rule { parts };
        if rule.text().len() > MAX_TEXT {
            return Err(invalid(format!("the rule is longer than {MAX_TEXT} characters")));
        }
        rule.set(at).map_err(|e| invalid(format!("{text}: {e}")))?;
        match rule.until() {
            Some(until) => rule.until_end_of_last_day(at, until),
            None => Ok(rule),
        }
    }

    /// The rule with `UNTIL` at the end of the local day of its last occurrence: the same
    /// occurrences (a rule here gives at most one a day), and an `UNTIL` that reads as a
    /// date and moves with the series by whole days.
    fn until_end_of_last_day(self, at: &Anchor, until: i64) -> AppResult<Rule> {
        let last = self.starts(&self.near(at, until)).take_while(|s| *s <= until).last();
        let last = last.ok_or_else(|| invalid("UNTIL is before the series' first occurrence"))?;
        let day = zones::to_local(at.zone, last).date_naive();
        Ok(self.with("UNTIL", Some(format_utc(end_of_day(at.zone, day)))))
    }

    /// `at` moved forward by whole periods of the rule to the last period start before
    /// `t`'s day, where that gives the same starts from there on: a daily or weekly rule
    /// without `COUNT` (whose occurrences do not depend on how many came before). Reading
    /// next week of a daily series begun decades ago then walks days, not decades.
    fn near(&self, at: &Anchor, t: i64) -> Anchor {
        use chrono::{Datelike, Months};
        if self.count().is_some() {
            return *at;
        }
        let interval = self.get("INTERVAL").and_then(|i| i.parse::<i64>().ok()).unwrap_or(1);
        let local_start = zones::to_local(at.zone, at.start).naive_local();
        let target = zones::to_local(at.zone, t - (at.end - at.start)).date_naive() - Duration::days(1);
        // Months and years keep the start's day only where the rule names its days, or
        // the day is in every month (a 31st moved a month is not a 31st).
        let named_days = self.get("BYMONTHDAY").is_some() || self.get("BYDAY").is_some();
        let step: Box<dyn Fn(i64) -> Option<chrono::NaiveDateTime>> = match self.get("FREQ") {
            Some("DAILY") | Some("WEEKLY") => {
                let days = if self.get("FREQ") == Some("DAILY") { interval } else { 7 * interval };
                let periods = (target - local_start.date()).num_days().div_euclid(days);
                return self.near_by(at, periods, |n| Some(local_start + Duration::days(n * days)));
            }
            Some("MONTHLY") if named_days || local_start.day() <= 28 => Box::new(move |n| local_start.checked_add_months(Months::new((n * interval) as u32))),
            Some("YEARLY") if named_days || !(local_start.month() == 2 && local_start.day() == 29) => {
                Box::new(move |n| local_start.checked_add_months(Months::new((n * 12 * interval) as u32)))
            }
            _ => return *at,
        };
        let months = (target.year() as i64 - local_start.year() as i64) * 12 + target.month() as i64 - local_start.month() as i64 - 1;
        let per = if self.get("FREQ") == Some("YEARLY") { 12 * interval } else { interval };
        self.near_by(at, months.div_euclid(per), step)
    }

    /// `at` moved `periods` periods on by `step` (the local start of period n), stepping
    /// back while the clocks skip that start.
    fn near_by(&self, at: &Anchor, mut periods: i64, step: impl Fn(i64) -> Option<chrono::NaiveDateTime>) -> Anchor {
        while periods > 0 && periods < i64::from(u32::MAX) / 12 {
            if let Some(Ok(start)) = step(periods).map(|local| zones::local_to_utc(FIELD, at.zone, local)) {
                return Anchor { start, end: at.end_of(start), ..*at };
            }
            periods -= 1;
        }
        *at
    }

    pub fn text(&self) -> String {
        self.parts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.parts.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    pub fn count(&self) -> Option<u32> {
        self.get("COUNT").and_then(|c| c.parse().ok())
    }

    /// `UNTIL` as an instant.
    pub fn until(&self) -> Option<i64> {
        self.get("UNTIL").and_then(parse_utc)
    }

    fn with(&self, key: &'static str, value: Option<String>) -> Rule {
        let mut parts: Vec<_> = self.parts.iter().filter(|(k, _)| *k != key).cloned().collect();
        if let Some(v) = value {
            parts.push((key, v));
        }
        parts.sort_by_key(|(k, _)| PARTS.iter().position(|p| *p == *k));
        Rule { parts }
    }

    fn set(&self, at: &Anchor) -> Result<RRuleSet, rrule::RRuleError> {
        Ok(self.text().parse::<RRule<Unvalidated>>()?.build(at.dt_start())?.limit())
    }

    /// The starts the rule gives for the series at `at`, in order (none if the stored
    /// rule no longer reads — it was checked when written, so that is logged).
    fn starts(&self, at: &Anchor) -> impl Iterator<Item = i64> {
        let set = match self.set(at) {
            Ok(set) => Some(set),
            Err(e) => {
                tracing::error!(rule = %self.text(), error = %e, "a stored recurrence rule does not read");
                None
            }
        };
        set.as_ref().map(|s| s.into_iter()).into_iter().flatten().take(MAX_WALK).map(|dt| dt.timestamp_millis())
    }

    /// The first start the rule gives at or after the series' own: where a series whose
    /// start does not fall on its rule (a Tuesday start, repeating on Mondays) really
    /// begins, as calendar apps move it.
    pub fn first_start(&self, at: &Anchor) -> Option<i64> {
        self.starts(at).next()
    }

    /// The series' occurrences that overlap `[from, to)`, skipping `exceptions`, at most
    /// `cap` of them.
    pub fn occurrences(&self, at: &Anchor, exceptions: &[i64], from: i64, to: i64, cap: usize) -> Vec<Span> {
        let mut skipped = exceptions.to_vec();
        skipped.sort_unstable();
        let mut out = Vec::new();
        for start in self.starts(&self.near(at, from)) {
            if start >= to || out.len() >= cap {
                break;
            }
            let end = at.end_of(start);
            if end > from && skipped.binary_search(&start).is_err() {
                out.push(Span { start, end });
            }
        }
        out
    }

    /// Whether the rule gives an occurrence starting exactly at `start`.
    pub fn has_start(&self, at: &Anchor, start: i64) -> bool {
        self.starts(&self.near(at, start)).take_while(|s| *s <= start).any(|s| s == start)
    }

    /// Where the series' last occurrence ends, or [`FOREVER`]: the bound the index finds
    /// series by. Exact for `COUNT` and for `UNTIL` within [`WALK_FOR_BOUND`] occurrences,
    /// else an upper bound from `UNTIL`.
    pub fn bound(&self, at: &Anchor) -> i64 {
        if self.count().is_none() && self.until().is_none() {
            return FOREVER;
        }
        let from = self.until().map_or(*at, |u| self.near(at, u));
        let mut last = None;
        for (n, start) in self.starts(&from).enumerate() {
            if n >= WALK_FOR_BOUND {
                let slack = at.end - at.start + 2 * 86_400_000;
                return self.until().map_or(FOREVER, |u| u + slack);
            }
            last = Some(start);
        }
        last.map_or(at.end, |s| at.end_of(s))
    }

    /// The rule of the part of the series before `split` (an occurrence's start): ends
    /// with the day before it (for "this and following").
    pub fn ending_before(&self, at: &Anchor, split: i64) -> Rule {
        let day = zones::to_local(at.zone, split).date_naive() - Duration::days(1);
        self.with("COUNT", None).with("UNTIL", Some(format_utc(end_of_day(at.zone, day))))
    }

    /// The rule of a series moved by `days` local days as a whole: `UNTIL` moves along, and
    /// so do the weekdays and day of the month it repeats on (Mondays moved a day later
    /// are Tuesdays). None when the rule cannot follow (several days of the month, or
    /// counted from the month's end): the caller then refuses the move.
    pub fn moved_by_days(&self, at: &Anchor, new_start: i64, days: i64) -> Option<Rule> {
        if days == 0 {
            return Some(self.clone());
        }
        let mut rule = self.clone();
        if let Some(until) = self.until() {
            let day = zones::to_local(at.zone, until).date_naive() + Duration::days(days);
            rule = rule.with("UNTIL", Some(format_utc(end_of_day(at.zone, day))));
        }
        if let Some(byday) = self.get("BYDAY") {
            let entries: Vec<&str> = byday.split(',').collect();
            let plain = entries.iter().all(|e| e.len() == 2);
            let moved = if plain {
                entries.iter().map(|e| weekday_after(e, days)).collect::<Option<Vec<_>>>()?.join(",")
            } else if entries.len() == 1 {
                // "The 2nd Tuesday" moved is the new start's place in its month.
                super::repeat::nth_weekday(zones::to_local(at.zone, new_start).date_naive())
            } else {
                return None;
            };
            rule = rule.with("BYDAY", Some(moved));
        }
        if let Some(monthday) = self.get("BYMONTHDAY") {
            let day: i64 = monthday.parse().ok().filter(|d: &i64| *d > 0)?;
            let moved = day + days;
            if !(1..=28).contains(&moved) {
                return None;
            }
            rule = rule.with("BYMONTHDAY", Some(moved.to_string()));
        }
        Some(rule)
    }

    /// The rule of the part from `split` on: the same rule, with what is left of `COUNT`.
    pub fn from_occurrence(&self, at: &Anchor, split: i64) -> Rule {
        match self.count() {
            Some(count) => {
                let before = self.starts(at).take_while(|s| *s < split).count() as u32;
                self.with("COUNT", Some(count.saturating_sub(before).max(1).to_string()))
            }
            None => self.clone(),
        }
    }
}

/// `UNTIL` as the rule will store it: an instant in UTC (`20261231T225959Z`).
fn normalise_until(raw: &str, at: &Anchor) -> AppResult<String> {
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y%m%d") {
        // Through the whole of that day where the series lives.
        return Ok(format_utc(end_of_day(at.zone, date)));
    }
    if raw.ends_with('Z') {
        return parse_utc(raw).map(format_utc).ok_or_else(|| invalid(format!("UNTIL={raw} is not a date (20261231) or a time (20261231T170000Z)")));
    }
    let local = NaiveDateTime::parse_from_str(raw, "%Y%m%dT%H%M%S")
        .map_err(|_| invalid(format!("UNTIL={raw} is not a date (20261231) or a time (20261231T170000Z)")))?;
    Ok(format_utc(zones::local_to_utc(FIELD, at.zone, local)?))
}

/// The last second of `day` in `zone`.
fn end_of_day(zone: Tz, day: NaiveDate) -> i64 {
    zones::start_of_day(zone, day + Duration::days(1)) - 1000
}

/// `MO` moved by `days`: `TU` for one day later.
fn weekday_after(code: &str, days: i64) -> Option<String> {
    let days_of_week = super::repeat::WEEKDAYS;
    let i = days_of_week.iter().position(|(d, _)| *d == code)? as i64;
    Some(days_of_week[(i + days).rem_euclid(7) as usize].0.to_owned())
}

fn parse_utc(raw: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(raw.trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok().map(|t| t.and_utc().timestamp_millis())
}

fn format_utc(ms: i64) -> String {
    crate::platform::time::to_datetime(ms).format("%Y%m%dT%H%M%SZ").to_string()
}

/// `rule` with its `UNTIL` as the date it falls on in `zone` (`UNTIL=20261231`): how the
/// calendar form shows it, and reads it back.
pub fn with_local_until(rule: &str, zone: Tz) -> String {
    rule.split(';')
        .map(|part| match part.strip_prefix("UNTIL=").and_then(parse_utc) {
            Some(until) => format!("UNTIL={}", zones::to_local(zone, until).format("%Y%m%d")),
            None => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The stored list of skipped occurrences (their starts, in milliseconds).
pub fn decode_exceptions(stored: Option<&str>) -> Vec<i64> {
    stored.unwrap_or_default().split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

pub fn encode_exceptions(starts: &[i64]) -> Option<String> {
    let mut sorted = starts.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    (!sorted.is_empty()).then(|| sorted.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
}

/// `t` moved by the wall-clock difference `by` in `zone` (an exception keeps its place
/// in the series when the series moves: 09:00 → 10:00 moves every 09:00 to 10:00, on
/// either side of a clock change).
pub fn shift_local(zone: Tz, t: i64, by: Duration) -> i64 {
    let local = zones::to_local(zone, t).naive_local() + by;
    zones::local_to_utc(FIELD, zone, local).unwrap_or(t + by.num_milliseconds())
}

/// The wall-clock difference between two instants in `zone`.
pub fn local_difference(zone: Tz, from: i64, to: i64) -> Duration {
    zones::to_local(zone, to).naive_local() - zones::to_local(zone, from).naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        crate::platform::time::parse_rfc3339(s).unwrap()
    }

    fn anchor(zone: &str, start: &str, end: &str) -> Anchor {
        Anchor { zone: zone.parse().unwrap(), start: t(start), end: t(end), all_day: false }
    }

    fn local(zone: &str, spans: &[Span]) -> Vec<String> {
        let zone: Tz = zone.parse().unwrap();
        spans.iter().map(|s| zones::to_local(zone, s.start).format("%Y-%m-%d %H:%M").to_string()).collect()
    }

    #[test]
    fn a_weekly_meeting_stays_at_nine_local_across_daylight_saving() {
        // Paris leaves summer time on 2026-10-25: 09:00 is 07:00Z before, 08:00Z after.
        let at = anchor("Europe/Paris", "2026-10-15T07:00:00Z", "2026-10-15T08:00:00Z");
        let rule = Rule::parse("RRULE:FREQ=WEEKLY;COUNT=4", &at).unwrap();
        let spans = rule.occurrences(&at, &[], t("2026-10-01T00:00:00Z"), t("2027-01-01T00:00:00Z"), 100);
        assert_eq!(local("Europe/Paris", &spans), ["2026-10-15 09:00", "2026-10-22 09:00", "2026-10-29 09:00", "2026-11-05 09:00"]);
        assert_eq!(spans[2].start, t("2026-10-29T08:00:00Z"), "an hour later in UTC after the change");
        assert_eq!(spans[2].end - spans[2].start, 3_600_000, "still an hour long");
        // Seen from New York, whose change is a week later, the same meetings move about.
        assert_eq!(local("America/New_York", &spans), ["2026-10-15 03:00", "2026-10-22 03:00", "2026-10-29 04:00", "2026-11-05 03:00"]);
        assert_eq!(rule.bound(&at), t("2026-11-05T09:00:00Z"));
    }

    #[test]
    fn monthly_by_weekday_like_the_second_tuesday() {
        let at = anchor("America/New_York", "2026-01-13T15:00:00Z", "2026-01-13T16:00:00Z");
        let rule = Rule::parse("freq=monthly;byday=2TU;count=6", &at).unwrap();
        assert_eq!(rule.text(), "FREQ=MONTHLY;COUNT=6;BYDAY=2TU", "canonical: upper case, fixed order");
        let spans = rule.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 100);
        assert_eq!(
            local("America/New_York", &spans),
            ["2026-01-13 10:00", "2026-02-10 10:00", "2026-03-10 10:00", "2026-04-14 10:00", "2026-05-12 10:00", "2026-06-09 10:00"]
        );
        let last = Rule::parse("FREQ=MONTHLY;BYDAY=-1FR;COUNT=2", &at).unwrap();
        assert_eq!(local("America/New_York", &last.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 9)), ["2026-01-30 10:00", "2026-02-27 10:00"]);
        assert_eq!(last.first_start(&at), Some(t("2026-01-30T15:00:00Z")), "a start off the rule moves to its first day");
        let fifteenth = Rule::parse("FREQ=MONTHLY;BYMONTHDAY=15;INTERVAL=2;COUNT=3", &at).unwrap();
        assert_eq!(local("America/New_York", &fifteenth.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 9)), ["2026-01-15 10:00", "2026-03-15 10:00", "2026-05-15 10:00"]);
    }

    #[test]
    fn until_is_inclusive_and_count_counts_skipped_occurrences() {
        let at = anchor("Europe/Berlin", "2026-06-01T07:00:00Z", "2026-06-01T07:30:00Z");
        // A date means "through that day" in the series' zone.
        let until = Rule::parse("FREQ=DAILY;UNTIL=20260604", &at).unwrap();
        assert_eq!(until.text(), "FREQ=DAILY;UNTIL=20260604T215959Z");
        let all = until.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 100);
        assert_eq!(local("Europe/Berlin", &all), ["2026-06-01 09:00", "2026-06-02 09:00", "2026-06-03 09:00", "2026-06-04 09:00"]);
        let exact = Rule::parse("FREQ=DAILY;UNTIL=20260603T070000Z", &at).unwrap();
        assert_eq!(exact.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 100).len(), 3, "UNTIL on an occurrence includes it");
        // EXDATE removes an occurrence; COUNT still counts it (RFC 5545 §3.8.5.3).
        let count = Rule::parse("FREQ=DAILY;COUNT=4", &at).unwrap();
        let skipped = count.occurrences(&at, &[t("2026-06-02T07:00:00Z")], i64::MIN / 2, i64::MAX / 2, 100);
        assert_eq!(local("Europe/Berlin", &skipped), ["2026-06-01 09:00", "2026-06-03 09:00", "2026-06-04 09:00"]);
        assert!(count.has_start(&at, t("2026-06-04T07:00:00Z")));
        assert!(!count.has_start(&at, t("2026-06-05T07:00:00Z")), "past COUNT");
        assert!(!count.has_start(&at, t("2026-06-02T07:01:00Z")), "not a start of the rule");
        // Ranges are half-open and an occurrence overlapping `from` is in.
        let window = count.occurrences(&at, &[], t("2026-06-02T07:15:00Z"), t("2026-06-04T07:00:00Z"), 100);
        assert_eq!(local("Europe/Berlin", &window), ["2026-06-02 09:00", "2026-06-03 09:00"]);
        assert_eq!(Rule::parse("FREQ=WEEKLY", &at).unwrap().bound(&at), FOREVER);
    }

    #[test]
    fn splitting_a_series_keeps_every_occurrence_once() {
        let at = anchor("UTC", "2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z");
        let rule = Rule::parse("FREQ=DAILY;COUNT=10", &at).unwrap();
        let split = t("2026-06-04T09:00:00Z");
        let before = rule.ending_before(&at, split);
        let rest_at = Anchor { start: split, end: split + 3_600_000, ..at };
        let after = rule.from_occurrence(&at, split);
        assert_eq!(after.count(), Some(7));
        let mut all: Vec<i64> = before.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 100).iter().map(|s| s.start).collect();
        all.extend(after.occurrences(&rest_at, &[], i64::MIN / 2, i64::MAX / 2, 100).iter().map(|s| s.start));
        let whole: Vec<i64> = rule.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 100).iter().map(|s| s.start).collect();
        assert_eq!(all, whole);
    }

    #[test]
    fn an_old_series_is_read_from_near_the_range_with_the_same_occurrences() {
        // Daily since 1970, weekly on two days since 1990 every other week, the 2nd
        // Tuesday monthly since 1980: the occurrences of one week in 2031, as a walk from
        // the start would give them (checked against the rule's own days and times).
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let at = |s: &str, e: &str| Anchor { zone: paris, start: t(s), end: t(e), all_day: false };
        let week = (t("2031-03-24T00:00:00Z"), t("2031-03-31T00:00:00Z"));
        let daily_at = at("1970-01-01T08:00:00Z", "1970-01-01T09:00:00Z");
        let daily = Rule::parse("FREQ=DAILY", &daily_at).unwrap();
        let spans = daily.occurrences(&daily_at, &[], week.0, week.1, 100);
        assert_eq!(local("Europe/Paris", &spans), ["2031-03-24 09:00", "2031-03-25 09:00", "2031-03-26 09:00", "2031-03-27 09:00", "2031-03-28 09:00", "2031-03-29 09:00", "2031-03-30 09:00"]);
        assert!(daily.has_start(&daily_at, spans[6].start), "the summer-time Sunday, still 09:00");
        let fortnight_at = at("1990-01-01T08:00:00Z", "1990-01-01T09:00:00Z"); // a Monday
        let fortnight = Rule::parse("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", &fortnight_at).unwrap();
        let got = fortnight.occurrences(&fortnight_at, &[], t("2031-03-17T00:00:00Z"), t("2031-03-31T00:00:00Z"), 100);
        assert_eq!(got.len(), 2, "{:?}", local("Europe/Paris", &got));
        let weeks_apart = (got[0].start - fortnight_at.start) / (7 * 86_400_000);
        assert_eq!(weeks_apart % 2, 0, "on the series' own weeks, not the others");
        let monthly_at = at("1980-01-08T08:00:00Z", "1980-01-08T09:00:00Z");
        let second_tuesday = Rule::parse("FREQ=MONTHLY;BYDAY=2TU", &monthly_at).unwrap();
        assert_eq!(local("Europe/Paris", &second_tuesday.occurrences(&monthly_at, &[], t("2031-03-01T00:00:00Z"), t("2031-04-01T00:00:00Z"), 9)), ["2031-03-11 09:00"]);
    }

    #[test]
    fn a_series_moved_to_another_day_takes_its_rule_along() {
        let at = anchor("UTC", "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"); // a Monday
        let weekly = Rule::parse("FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260302", &at).unwrap();
        let moved = weekly.moved_by_days(&at, t("2026-01-06T09:00:00Z"), 1).unwrap();
        assert_eq!(moved.text(), "FREQ=WEEKLY;UNTIL=20260303T235959Z;BYDAY=TU,TH");
        let sunday = weekly.moved_by_days(&at, t("2026-01-04T09:00:00Z"), -1).unwrap();
        assert_eq!(sunday.get("BYDAY"), Some("SU,TU"));
        let monthly = Rule::parse("FREQ=MONTHLY;BYDAY=2TU", &at).unwrap();
        assert_eq!(monthly.moved_by_days(&at, t("2026-01-14T09:00:00Z"), 1).unwrap().get("BYDAY"), Some("2WE"));
        let fifteenth = Rule::parse("FREQ=MONTHLY;BYMONTHDAY=15", &at).unwrap();
        assert_eq!(fifteenth.moved_by_days(&at, t("2026-01-16T09:00:00Z"), 1).unwrap().get("BYMONTHDAY"), Some("16"));
        assert!(Rule::parse("FREQ=MONTHLY;BYMONTHDAY=28", &at).unwrap().moved_by_days(&at, t("2026-01-29T09:00:00Z"), 1).is_none());
        assert_eq!(weekly.moved_by_days(&at, at.start, 0), Some(weekly.clone()), "the same day: unchanged");
        // UNTIL is the end of the last occurrence's day, whatever time it was given at.
        let exact = Rule::parse("FREQ=DAILY;UNTIL=20260107T093000Z", &at).unwrap();
        assert_eq!(exact.until(), Some(t("2026-01-07T23:59:59Z")));
        assert_eq!(Rule::parse("FREQ=DAILY;UNTIL=20260107T080000Z", &at).unwrap().until(), Some(t("2026-01-06T23:59:59Z")));
        assert!(Rule::parse(&format!("FREQ=WEEKLY;BYDAY={}", ["MO"; 300].join(",")), &at).is_ok(), "repeats are dropped");
    }

    #[test]
    fn all_day_series_last_whole_local_days() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let day = |d: &str| zones::start_of_day(ny, NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap());
        // A two-day all-day event every week across the spring change (2026-03-08).
        let at = Anchor { zone: ny, start: day("2026-03-01"), end: day("2026-03-03"), all_day: true };
        let rule = Rule::parse("FREQ=WEEKLY;COUNT=3", &at).unwrap();
        let spans = rule.occurrences(&at, &[], i64::MIN / 2, i64::MAX / 2, 9);
        assert_eq!(spans[1], Span { start: day("2026-03-08"), end: day("2026-03-10") }, "47 hours, midnight to midnight");
        assert_eq!(spans[1].end - spans[1].start, 47 * 3_600_000);
    }

    #[test]
    fn bad_rules_are_refused_on_the_recurrence_field() {
        let at = anchor("UTC", "2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z");
        for bad in [
            "",
            "FREQ=HOURLY",
            "FREQ=WEEKLY;BYDAY=XX",
            "FREQ=MONTHLY;BYMONTHDAY=40",
            "FREQ=DAILY;COUNT=0",
            "FREQ=DAILY;COUNT=5000",
            "FREQ=DAILY;COUNT=2;UNTIL=20260610",
            "FREQ=DAILY;UNTIL=20250101",
            "FREQ=DAILY;UNTIL=tomorrow",
            "FREQ=DAILY;BYHOUR=9",
            "FREQ=DAILY;FREQ=WEEKLY",
            "FREQ=DAILY;INTERVAL=-1",
            "nonsense",
        ] {
            let e = Rule::parse(bad, &at).expect_err(bad);
            assert_eq!(e.field.as_deref(), Some(FIELD), "{bad}");
        }
    }

    #[test]
    fn exceptions_round_trip_and_shift_by_wall_clock() {
        assert_eq!(encode_exceptions(&[3, 1, 3]), Some("1,3".into()));
        assert_eq!(decode_exceptions(Some("1,3")), [1, 3]);
        assert_eq!(encode_exceptions(&[]), None);
        assert!(decode_exceptions(None).is_empty());
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // 09:00 → 10:00 local, for an exception in winter and in summer.
        let by = local_difference(paris, t("2026-06-01T07:00:00Z"), t("2026-06-01T08:00:00Z"));
        assert_eq!(shift_local(paris, t("2026-12-07T08:00:00Z"), by), t("2026-12-07T09:00:00Z"));
        assert_eq!(shift_local(paris, t("2026-07-06T07:00:00Z"), by), t("2026-07-06T08:00:00Z"));
    }
}

//! Time zones and local times (IANA zones via chrono-tz; daylight-saving rules included).

use crate::error::AppError;
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// An IANA zone name (`Europe/Paris`, `America/New_York`, `UTC`).
pub fn parse_zone(field: &str, name: &str) -> Result<Tz, AppError> {
    name.parse::<Tz>().map_err(|_| AppError::invalid(field, format!("{name:?} is not a known IANA time zone (e.g. Europe/Paris)")))
}

/// The instant a local wall-clock time names in `zone`. A time skipped by a DST jump
/// does not exist and is refused; a time repeated when clocks go back takes the first
/// (earlier) occurrence, as calendar apps do.
pub fn local_to_utc(field: &str, zone: Tz, local: NaiveDateTime) -> Result<i64, AppError> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.timestamp_millis()),
        LocalResult::Ambiguous(first, _) => Ok(first.timestamp_millis()),
        LocalResult::None => Err(AppError::invalid(
            field,
            format!("{local} does not exist in {zone}: the clocks skip it (daylight saving)"),
        )),
    }
}

/// Midnight starting `date` in `zone` (a day may start at 01:00 where DST begins at midnight).
pub fn start_of_day(zone: Tz, date: NaiveDate) -> i64 {
    let mut t = date.and_time(NaiveTime::MIN);
    loop {
        match zone.from_local_datetime(&t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => return x.timestamp_millis(),
            LocalResult::None => t += chrono::Duration::minutes(15),
        }
    }
}

pub fn to_local(zone: Tz, ms: i64) -> DateTime<Tz> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().with_timezone(&zone)
}

pub fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, AppError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| AppError::invalid(field, format!("{field} must be a date like 2026-11-22")))
}

/// `YYYY-MM-DDTHH:MM` (what an `<input type="datetime-local">` sends).
pub fn parse_local(field: &str, raw: &str) -> Result<NaiveDateTime, AppError> {
    let raw = raw.trim();
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| AppError::invalid(field, format!("{field} must be a local time like 2026-11-22T09:30")))
}

/// An instant given as ISO-8601 with an offset (`2026-11-22T09:30:00Z`).
pub fn parse_instant(field: &str, raw: &str) -> Result<i64, AppError> {
    crate::platform::time::parse_rfc3339(raw.trim())
        .ok_or_else(|| AppError::invalid(field, format!("{field} must be an ISO-8601 time with an offset, e.g. 2026-11-22T09:30:00Z")))
}

/// Monday of the week containing `date`.
pub fn week_start(date: NaiveDate) -> NaiveDate {
    date - chrono::Duration::days(date.weekday().num_days_from_monday() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daylight_saving_gaps_are_refused_and_overlaps_take_the_first() {
        let ny = parse_zone("time_zone", "America/New_York").unwrap();
        let t = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
        // 2026-03-08: 02:00 → 03:00 in New York.
        let gap = local_to_utc("start", ny, t("2026-03-08T02:30")).unwrap_err();
        assert_eq!(gap.field.as_deref(), Some("start"));
        assert_eq!(local_to_utc("start", ny, t("2026-03-08T03:30")).unwrap(), crate::platform::time::parse_rfc3339("2026-03-08T07:30:00Z").unwrap());
        // 2026-11-01: 02:00 → 01:00; 01:30 happens twice, the first is EDT (UTC-4).
        assert_eq!(local_to_utc("start", ny, t("2026-11-01T01:30")).unwrap(), crate::platform::time::parse_rfc3339("2026-11-01T05:30:00Z").unwrap());
        // A DST day is 23 or 25 hours long.
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(start_of_day(ny, d("2026-03-09")) - start_of_day(ny, d("2026-03-08")), 23 * 3_600_000);
        assert_eq!(start_of_day(ny, d("2026-11-02")) - start_of_day(ny, d("2026-11-01")), 25 * 3_600_000);
        assert!(parse_zone("time_zone", "Mars/Olympus").is_err());
        assert_eq!(week_start(d("2026-11-22")), d("2026-11-16"));
    }
}

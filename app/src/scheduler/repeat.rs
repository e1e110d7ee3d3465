//! The calendar form's "Repeats" controls and the rule text they stand for, in both
//! directions; shared by the page (which builds the rule as the controls change) and the
//! server (which reads every rule with the `rrule` crate, whatever built it). Only what
//! the controls can say is read back: any other rule is kept as its text.

use chrono::{Datelike, NaiveDate};

pub const WEEKDAYS: [(&str, &str); 7] = [("MO", "Mon"), ("TU", "Tue"), ("WE", "Wed"), ("TH", "Thu"), ("FR", "Fri"), ("SA", "Sat"), ("SU", "Sun")];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ends {
    Never,
    After(u32),
    /// Through this date (`YYYY-MM-DD`).
    On(String),
}

/// What the controls show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repeat {
    /// `DAILY`, `WEEKLY`, `MONTHLY`, `YEARLY`.
    pub freq: String,
    pub interval: u32,
    /// For weekly: `MO`, `TU`, …
    pub weekdays: Vec<String>,
    /// For monthly: on the start's weekday of its week of the month ("the 2nd Tuesday")
    /// instead of on its day of the month.
    pub by_weekday: bool,
    pub ends: Ends,
}

fn weekday_code(date: NaiveDate) -> &'static str {
    WEEKDAYS[date.weekday().num_days_from_monday() as usize].0
}

/// "2TU" for the second Tuesday, "-1TU" when it is the month's last (a 5th one).
pub fn nth_weekday(date: NaiveDate) -> String {
    let nth = (date.day() - 1) / 7 + 1;
    if nth == 5 {
        format!("-1{}", weekday_code(date))
    } else {
        format!("{nth}{}", weekday_code(date))
    }
}

impl Repeat {
    /// The controls' first state for a series starting on `start`: weekly on its weekday.
    pub fn starting(start: NaiveDate) -> Self {
        Repeat { freq: "WEEKLY".into(), interval: 1, weekdays: vec![weekday_code(start).into()], by_weekday: false, ends: Ends::Never }
    }

    /// The rule for a series starting on `start`.
    pub fn rule(&self, start: NaiveDate) -> String {
        let mut parts = vec![format!("FREQ={}", self.freq)];
        if self.interval > 1 {
            parts.push(format!("INTERVAL={}", self.interval));
        }
        match &self.ends {
            Ends::Never => {}
            Ends::After(n) => parts.push(format!("COUNT={n}")),
            Ends::On(date) => parts.push(format!("UNTIL={}", date.replace('-', ""))),
        }
        match self.freq.as_str() {
            "WEEKLY" if !self.weekdays.is_empty() => {
                let days: Vec<&str> = WEEKDAYS.iter().map(|w| w.0).filter(|d| self.weekdays.iter().any(|x| x == d)).collect();
                parts.push(format!("BYDAY={}", days.join(",")));
            }
            "MONTHLY" if self.by_weekday => parts.push(format!("BYDAY={}", nth_weekday(start))),
            _ => {}
        }
        parts.join(";")
    }

    /// The controls for `rule`, if they can show it.
    pub fn read(rule: &str) -> Option<Repeat> {
        let mut repeat = Repeat { freq: String::new(), interval: 1, weekdays: Vec::new(), by_weekday: false, ends: Ends::Never };
        for part in rule.split(';').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=')?;
            match key {
                "FREQ" => repeat.freq = value.to_owned(),
                "INTERVAL" => repeat.interval = value.parse().ok()?,
                "COUNT" => repeat.ends = Ends::After(value.parse().ok()?),
                "UNTIL" => {
                    let day = value.get(..8)?;
                    repeat.ends = Ends::On(format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..8]));
                }
                "BYDAY" => {
                    let days: Vec<String> = value.split(',').map(str::to_owned).collect();
                    if days.iter().all(|d| d.len() == 2) {
                        repeat.weekdays = days;
                    } else if days.len() == 1 {
                        repeat.by_weekday = true;
                    } else {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"].contains(&repeat.freq.as_str()).then_some(repeat)
    }
}

/// A rule in words, for the dialog and the event's tooltip: "Every 2 weeks on Mon, Wed,
/// 10 times". Rules the controls cannot show are shown as their text.
pub fn describe(rule: &str) -> String {
    let Some(r) = Repeat::read(rule) else { return rule.to_owned() };
    let unit = match r.freq.as_str() {
        "DAILY" => "day",
        "WEEKLY" => "week",
        "MONTHLY" => "month",
        _ => "year",
    };
    let mut text = if r.interval > 1 { format!("Every {} {unit}s", r.interval) } else { format!("Every {unit}") };
    if !r.weekdays.is_empty() {
        let names: Vec<&str> = WEEKDAYS.iter().filter(|w| r.weekdays.iter().any(|d| d == w.0)).map(|w| w.1).collect();
        text.push_str(&format!(" on {}", names.join(", ")));
    }
    if r.by_weekday {
        text.push_str(" on the same weekday of the month");
    }
    match r.ends {
        Ends::Never => {}
        Ends::After(n) => text.push_str(&format!(", {n} times")),
        Ends::On(d) => text.push_str(&format!(", until {d}")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_controls_make_rules_and_read_them_back() {
        let tuesday = day("2026-01-13");
        let mut r = Repeat::starting(tuesday);
        assert_eq!(r.rule(tuesday), "FREQ=WEEKLY;BYDAY=TU");
        r.weekdays.push("MO".into());
        r.interval = 2;
        r.ends = Ends::After(10);
        assert_eq!(r.rule(tuesday), "FREQ=WEEKLY;INTERVAL=2;COUNT=10;BYDAY=MO,TU", "weekdays in week order");
        assert_eq!(describe(&r.rule(tuesday)), "Every 2 weeks on Mon, Tue, 10 times");
        let monthly = Repeat { freq: "MONTHLY".into(), interval: 1, weekdays: vec![], by_weekday: true, ends: Ends::On("2026-12-31".into()) };
        assert_eq!(monthly.rule(tuesday), "FREQ=MONTHLY;UNTIL=20261231;BYDAY=2TU", "the 2nd Tuesday");
        assert_eq!(monthly.rule(day("2026-03-31")), "FREQ=MONTHLY;UNTIL=20261231;BYDAY=-1TU", "a 5th Tuesday is the last");
        assert_eq!(Repeat::read(&monthly.rule(tuesday)), Some(monthly));
        assert_eq!(Repeat::read("FREQ=WEEKLY;BYDAY=MO;UNTIL=20270101T225959Z").unwrap().ends, Ends::On("2027-01-01".into()));
        assert_eq!(Repeat::read("FREQ=YEARLY;BYMONTH=3"), None, "what the controls cannot show");
        assert_eq!(describe("FREQ=YEARLY;BYMONTH=3"), "FREQ=YEARLY;BYMONTH=3");
    }
}

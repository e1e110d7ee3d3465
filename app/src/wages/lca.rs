//! Reading the U.S. Department of Labor's LCA disclosure files (H-1B and related
//! filings), whatever carries the rows: the CSV files or the Excel workbooks the DOL
//! publishes (see `xlsx`). Header spellings changed over the years, so columns are found
//! through an alias map; extra and reordered columns are fine. Each row becomes a
//! normalised [`Filing`] or a reason why not.

pub use super::domain::Filing;
use chrono::{Datelike, NaiveDate};
use std::collections::HashMap;

/// A row's fields by position: a CSV record or a worksheet row.
pub trait Fields {
    fn field(&self, i: usize) -> Option<&str>;
}

impl Fields for csv::StringRecord {
    fn field(&self, i: usize) -> Option<&str> {
        self.get(i)
    }
}

impl Fields for Vec<String> {
    fn field(&self, i: usize) -> Option<&str> {
        self.get(i).map(String::as_str)
    }
}

/// The fields we read, with every header spelling seen in the DOL files (first wins).
const ALIASES: &[(&str, &[&str])] = &[
    ("case_number", &["CASE_NUMBER", "LCA_CASE_NUMBER", "CASE_NO"]),
    ("case_status", &["CASE_STATUS", "STATUS", "APPROVAL_STATUS"]),
    ("received_date", &["RECEIVED_DATE", "CASE_SUBMITTED", "LCA_CASE_SUBMIT", "SUBMITTED_DATE"]),
    ("decision_date", &["DECISION_DATE", "DECISION_DATE_", "LCA_CASE_DECISION_DATE", "DOL_DECISION_DATE"]),
    ("employer_name", &["EMPLOYER_NAME", "LCA_CASE_EMPLOYER_NAME", "EMPLOYER_BUSINESS_NAME"]),
    ("job_title", &["JOB_TITLE", "LCA_CASE_JOB_TITLE"]),
    ("soc_code", &["SOC_CODE", "LCA_CASE_SOC_CODE", "SOC_CD"]),
    ("soc_title", &["SOC_TITLE", "SOC_NAME", "LCA_CASE_SOC_NAME"]),
    ("worksite_city", &["WORKSITE_CITY", "WORKSITE_CITY_1", "LCA_CASE_WORKLOC1_CITY", "WORKLOC1_CITY"]),
    ("worksite_state", &["WORKSITE_STATE", "WORKSITE_STATE_1", "LCA_CASE_WORKLOC1_STATE", "WORKLOC1_STATE"]),
    ("wage_from", &["WAGE_RATE_OF_PAY_FROM", "WAGE_RATE_OF_PAY_FROM_1", "LCA_CASE_WAGE_RATE_FROM", "WAGE_RATE_OF_PAY"]),
    ("wage_to", &["WAGE_RATE_OF_PAY_TO", "WAGE_RATE_OF_PAY_TO_1", "LCA_CASE_WAGE_RATE_TO"]),
    ("wage_unit", &["WAGE_UNIT_OF_PAY", "WAGE_UNIT_OF_PAY_1", "LCA_CASE_WAGE_RATE_UNIT"]),
    ("prevailing_wage", &["PREVAILING_WAGE", "PREVAILING_WAGE_1", "PW_1", "PW_WAGE"]),
    ("pw_unit", &["PW_UNIT_OF_PAY", "PW_UNIT_OF_PAY_1", "PW_UNIT_1", "PW_UNIT"]),
    ("pw_level", &["PW_WAGE_LEVEL", "PW_WAGE_LEVEL_1", "PW_LEVEL_1", "WAGE_LEVEL", "PW_LEVEL"]),
];

/// Required for a row to be usable at all.
const REQUIRED: &[&str] = &["case_number", "case_status", "employer_name", "job_title", "soc_code", "worksite_state", "wage_from", "wage_unit"];

/// Where each field sits in the file's rows.
#[derive(Clone, Debug)]
pub struct Columns(HashMap<&'static str, usize>);

impl Columns {
    /// Maps a header row; the error names the required columns that are missing.
    pub fn from_header<'h>(header: impl IntoIterator<Item = &'h str>) -> Result<Self, String> {
        let normalised: Vec<String> = header.into_iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_uppercase().replace([' ', '-'], "_")).collect();
        let mut map = HashMap::new();
        for (field, spellings) in ALIASES {
            if let Some(i) = spellings.iter().find_map(|s| normalised.iter().position(|h| h == s)) {
                map.insert(*field, i);
            }
        }
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|f| !map.contains_key(f)).collect();
        if missing.is_empty() && !(map.contains_key("decision_date") || map.contains_key("received_date")) {
            return Err("no DECISION_DATE (or RECEIVED_DATE) column: the fiscal year cannot be told".into());
        }
        // Named as the current files spell them (the first alias).
        let header_of = |f: &'static str| -> &'static str { ALIASES.iter().find(|(field, _)| *field == f).map_or(f, |(_, s)| s[0]) };
        if missing.is_empty() {
            Ok(Self(map))
        } else {
            Err(format!("missing columns: {}", missing.iter().map(|f| header_of(f)).collect::<Vec<_>>().join(", ")))
        }
    }

    fn get<'r>(&self, row: &'r impl Fields, field: &str) -> &'r str {
        self.0.get(field).and_then(|&i| row.field(i)).map(str::trim).unwrap_or("")
    }
}

/// `Hour`, `Week`, `Bi-Weekly`, `Month`, `Year` in their many spellings → the canonical
/// unit and how many of it make a year.
pub fn unit(raw: &str) -> Option<(&'static str, f64)> {
    let u = raw.trim().to_ascii_lowercase().replace(['-', ' ', '_'], "");
    Some(match u.as_str() {
        "hour" | "hr" | "hourly" | "h" => ("Hour", 2080.0),
        "week" | "wk" | "weekly" | "w" => ("Week", 52.0),
        "biweekly" | "bi" | "biwk" | "2weeks" => ("Bi-Weekly", 26.0),
        "month" | "mth" | "monthly" | "mo" | "m" => ("Month", 12.0),
        "year" | "yr" | "yearly" | "annual" | "annually" | "y" => ("Year", 1.0),
        _ => return None,
    })
}

/// `$85,000.00`, `85000`, `85000 - 95000` (old files put ranges in one cell).
fn money(raw: &str) -> Result<(Option<f64>, Option<f64>), String> {
    let cleaned = raw.replace(['$', ','], "");
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return Ok((None, None));
    }
    let parse = |s: &str| s.trim().parse::<f64>().map_err(|_| format!("{raw:?} is not an amount"));
    match cleaned.split_once(" - ").or_else(|| cleaned.split_once('-').filter(|(a, _)| !a.is_empty())) {
        Some((a, b)) => Ok((Some(parse(a)?), Some(parse(b)?).filter(|v| *v > 0.0))),
        None => Ok((Some(parse(cleaned)?), None)),
    }
}

/// `2023-10-05`, `10/05/2023`, `2023-10-05 00:00:00`, or an Excel serial day number
/// (`45204`, what a date cell holds when the workbook does not mark it as one).
pub fn date(raw: &str) -> Option<NaiveDate> {
    let d = raw.trim().split([' ', 'T']).next().unwrap_or("");
    NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(d, "%m/%d/%Y"))
        .ok()
        .or_else(|| d.parse::<f64>().ok().and_then(excel_serial_date))
}

/// An Excel serial date (1900 date system) as a date: days since 1899-12-30, which
/// absorbs Excel's phantom 1900-02-29 for every date after February 1900. Serials outside
/// 1 ..= 2958465 (the year 9999) are not dates.
pub fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if !(61.0..=2_958_465.0).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(serial.floor() as u64))
}

/// The U.S. federal fiscal year a date falls in (it starts on October 1).
pub fn fiscal_year(d: NaiveDate) -> i32 {
    if d.month() >= 10 { d.year() + 1 } else { d.year() }
}

/// `15-1252.00`, `151252`, `15-1252` → `15-1252`.
pub fn soc(raw: &str) -> Option<String> {
    let digits: String = raw.split('.').next().unwrap_or("").chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 6).then(|| format!("{}-{}", &digits[..2], &digits[2..]))
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Reads one data row.
pub fn parse(cols: &Columns, row: &impl Fields) -> Result<Filing, String> {
    let get = |f: &str| cols.get(row, f);
    let case_number = get("case_number").to_ascii_uppercase();
    if case_number.is_empty() {
        return Err("CASE_NUMBER is empty".into());
    }
    if case_number.len() > 40 {
        return Err("CASE_NUMBER is longer than 40 characters".into());
    }
    let case_status = get("case_status");
    if case_status.is_empty() {
        return Err("CASE_STATUS is empty".into());
    }
    let decided = date(get("decision_date"));
    let received = date(get("received_date"));
    let fiscal_year = fiscal_year(decided.or(received).ok_or("neither DECISION_DATE nor RECEIVED_DATE is a date")?);
    let employer_name = get("employer_name").to_ascii_uppercase();
    let job_title = get("job_title").to_ascii_uppercase();
    if employer_name.is_empty() || job_title.is_empty() {
        return Err("EMPLOYER_NAME and JOB_TITLE are required".into());
    }
    let soc_code = soc(get("soc_code")).ok_or_else(|| format!("SOC_CODE {:?} is not a SOC code like 15-1252", get("soc_code")))?;
    let state = get("worksite_state").to_ascii_uppercase();
    if state.len() != 2 || !state.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("WORKSITE_STATE {state:?} is not a two-letter state"));
    }
    let (from, range_to) = money(get("wage_from"))?;
    let wage_from = from.filter(|v| *v > 0.0).ok_or("WAGE_RATE_OF_PAY_FROM is empty or zero")?;
    let wage_to = money(get("wage_to"))?.0.filter(|v| *v > 0.0).or(range_to);
    let (wage_unit, per_year) = unit(get("wage_unit")).ok_or_else(|| format!("WAGE_UNIT_OF_PAY {:?} is not Hour/Week/Bi-Weekly/Month/Year", get("wage_unit")))?;
    let prevailing_wage = money(get("prevailing_wage"))?.0.filter(|v| *v > 0.0);
    let pw = unit(get("pw_unit"));
    let pw_level = get("pw_level").trim().trim_start_matches("Level").trim().to_ascii_uppercase();
    Ok(Filing {
        case_number,
        case_status: clip(&titlecase(case_status), 40),
        received_date: received.map(|d| d.to_string()),
        decision_date: decided.map(|d| d.to_string()),
        fiscal_year,
        employer_name: clip(&employer_name, 191),
        job_title: clip(&job_title, 191),
        soc_code,
        soc_title: clip(&get("soc_title").to_ascii_uppercase(), 191),
        worksite_city: clip(&get("worksite_city").to_ascii_uppercase(), 100),
        worksite_state: state,
        wage_from: Some(wage_from),
        wage_to,
        wage_unit: wage_unit.into(),
        annual_wage: (wage_from * per_year * 100.0).round() / 100.0,
        annual_prevailing: prevailing_wage.zip(pw).map(|(w, (_, k))| (w * k * 100.0).round() / 100.0),
        prevailing_wage,
        pw_unit: pw.map(|(u, _)| u.to_owned()),
        pw_level: (!pw_level.is_empty()).then(|| clip(&pw_level, 8)),
        source: "lca".into(),
    })
}

/// `CERTIFIED - WITHDRAWN` → `Certified - Withdrawn` (the DOL files vary in case).
fn titlecase(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(csv: &str) -> (Result<Columns, String>, Vec<csv::StringRecord>) {
        let mut r = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        let header = r.headers().unwrap().clone();
        (Columns::from_header(header.iter()), r.records().map(Result::unwrap).collect())
    }

    #[test]
    fn header_spellings_of_different_years_are_understood() {
        let modern = "CASE_NUMBER,CASE_STATUS,RECEIVED_DATE,DECISION_DATE,EMPLOYER_NAME,JOB_TITLE,SOC_CODE,SOC_TITLE,WORKSITE_CITY,WORKSITE_STATE,WAGE_RATE_OF_PAY_FROM,WAGE_RATE_OF_PAY_TO,WAGE_UNIT_OF_PAY,PREVAILING_WAGE,PW_UNIT_OF_PAY,PW_WAGE_LEVEL,EXTRA\n\
            I-200-23275-123456,Certified,2023-09-28,2023-10-05,Acme Corp,Software Engineer,15-1252.00,Software Developers,Seattle,WA,\"$120,000.00\",,Year,\"$110,000.00\",Year,Level II,x\n";
        let (cols, rows) = read(modern);
        let f = parse(&cols.unwrap(), &rows[0]).unwrap();
        assert_eq!((f.case_number.as_str(), f.fiscal_year, f.soc_code.as_str()), ("I-200-23275-123456", 2024, "15-1252"));
        assert_eq!((f.annual_wage, f.annual_prevailing, f.pw_level.as_deref()), (120_000.0, Some(110_000.0), Some("II")));
        assert_eq!((f.employer_name.as_str(), f.worksite_city.as_str()), ("ACME CORP", "SEATTLE"));

        let older = "LCA_CASE_NUMBER,STATUS,LCA_CASE_SUBMIT,DECISION_DATE,LCA_CASE_EMPLOYER_NAME,LCA_CASE_JOB_TITLE,LCA_CASE_SOC_CODE,LCA_CASE_SOC_NAME,LCA_CASE_WORKLOC1_CITY,LCA_CASE_WORKLOC1_STATE,LCA_CASE_WAGE_RATE_FROM,LCA_CASE_WAGE_RATE_TO,LCA_CASE_WAGE_RATE_UNIT,PW_1,PW_UNIT_1,PW_LEVEL_1\n\
            I-200-13000-000001,CERTIFIED,03/01/2013,03/07/2013,Old Co,Analyst,151121,Computer Systems Analysts,Austin,tx,40,45,Hour,38.5,Hour,Level I\n";
        let (cols, rows) = read(older);
        let f = parse(&cols.unwrap(), &rows[0]).unwrap();
        assert_eq!((f.case_status.as_str(), f.fiscal_year, f.worksite_state.as_str()), ("Certified", 2013, "TX"));
        assert_eq!((f.annual_wage, f.wage_to, f.annual_prevailing), (83_200.0, Some(45.0), Some(80_080.0)));
    }

    #[test]
    fn units_annualise_and_bad_rows_say_why() {
        for (u, k) in [("Hour", 2080.0), ("Week", 52.0), ("Bi-Weekly", 26.0), ("Month", 12.0), ("Year", 1.0), ("yr", 1.0), ("BI-WEEKLY", 26.0)] {
            assert_eq!(unit(u).unwrap().1, k, "{u}");
        }
        assert!(unit("fortnightly-ish").is_none());
        assert_eq!(fiscal_year(NaiveDate::from_ymd_opt(2023, 9, 30).unwrap()), 2023);
        assert_eq!(fiscal_year(NaiveDate::from_ymd_opt(2023, 10, 1).unwrap()), 2024);
        assert_eq!(money("85000 - 95000").unwrap(), (Some(85000.0), Some(95000.0)));
        // Excel serial dates: 45292 is 2024-01-01 (Excel's own =DATE(2024,1,1)), 45204
        // is 2023-10-05 (and so fiscal year 2024).
        assert_eq!(date("45292"), NaiveDate::from_ymd_opt(2024, 1, 1));
        assert_eq!(date("45204"), NaiveDate::from_ymd_opt(2023, 10, 5));
        assert_eq!(date("45204.75"), NaiveDate::from_ymd_opt(2023, 10, 5), "the time of day is dropped");
        assert_eq!(date("12"), None, "too small to be a date of this century's files");

        let header = "CASE_NUMBER,CASE_STATUS,DECISION_DATE,EMPLOYER_NAME,JOB_TITLE,SOC_CODE,WORKSITE_STATE,WAGE_RATE_OF_PAY_FROM,WAGE_UNIT_OF_PAY\n";
        let (cols, rows) = read(&format!("{header}A,Certified,2024-01-01,X,Y,15-1252,WA,100,Fortnight\n,Certified,2024-01-01,X,Y,15-1252,WA,100,Year\nB,Certified,nope,X,Y,15-1252,WA,100,Year\nC,Certified,2024-01-01,X,Y,engineer,WA,100,Year\nD,Certified,2024-01-01,X,Y,15-1252,Washington,100,Year\n"));
        let cols = cols.unwrap();
        let reasons: Vec<String> = rows.iter().map(|r| parse(&cols, r).unwrap_err()).collect();
        assert!(reasons[0].contains("WAGE_UNIT"), "{reasons:?}");
        assert!(reasons[1].contains("CASE_NUMBER"));
        assert!(reasons[2].contains("DATE"));
        assert!(reasons[3].contains("SOC_CODE"));
        assert!(reasons[4].contains("WORKSITE_STATE"));
        let (missing, _) = read("CASE_NUMBER,EMPLOYER_NAME\n");
        assert!(missing.unwrap_err().contains("CASE_STATUS"));
    }
}

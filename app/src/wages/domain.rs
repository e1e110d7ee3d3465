//! Wage portal vocabulary shared with the browser.

pub use super::stats::BoxStats;
use serde::{Deserialize, Serialize};
use crate::error::AppError;

/// The filters; the page's URL query uses the same names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct WageFilter {
    /// Employer name: starts with (or contains, see `match`), any case.
    pub employer: Option<String>,
    /// Job title: starts with (or contains), any case.
    pub job_title: Option<String>,
    /// SOC code, `15-1252`, or a prefix such as `15-`.
    pub soc: Option<String>,
    /// Two-letter worksite state.
    pub state: Option<String>,
    /// Worksite city (exact, any case).
    pub city: Option<String>,
    /// First fiscal year (Oct 1 – Sep 30).
    pub year_from: Option<i32>,
    pub year_to: Option<i32>,
    /// Case status, default `Certified`; `any` for all.
    pub status: Option<String>,
    /// `prefix` (default) or `contains` for the employer and job title filters.
    #[serde(rename = "match")]
    #[cfg_attr(feature = "ssr", param(rename = "match"))]
    pub text_match: Option<String>,
}

pub const GROUP_BY: &[(&str, &str)] = &[
    ("job_title", "job title"),
    ("soc", "SOC occupation"),
    ("employer", "employer"),
    ("state", "state"),
    ("city", "city"),
    ("year", "fiscal year"),
];

/// BLS OEWS market percentiles drawn beside a group (p10–p90 whiskers, not Tukey).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Market {
    pub area: String,
    /// N national, S state, M metropolitan area.
    pub area_type: String,
    pub soc: String,
    pub occupation: String,
    pub p10: Option<f64>,
    pub p25: Option<f64>,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    pub mean: Option<f64>,
}

/// How a group's filings compare with what the law requires: the share paid below the
/// estimated Level II, III and IV wages of each filing's own occupation and state (see
/// `levels`), among the filings whose market is known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LevelShares {
    /// Filings with a known market (the shares are of these).
    pub known: usize,
    pub below_level_ii: f64,
    pub below_level_iii: f64,
    pub below_level_iv: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatsGroup {
    pub key: String,
    #[serde(flatten)]
    pub stats: BoxStats,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub market: Option<Market>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub levels: Option<LevelShares>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatsResponse {
    pub group_by: String,
    /// The largest groups (at most 25), biggest first.
    pub groups: Vec<StatsGroup>,
}

/// The fields of a wage record, written once: [`Filing`] here and the store's row
/// (`store::record::Model`, which adds its id and import bookkeeping) are both made
/// from this list by the macro named, so the two cannot drift apart. Types are in
/// brackets so that they reach a derive as plain tokens.
macro_rules! filing_fields {
    ($then:ident!) => {
        $then! {
            case_number: [String],
            case_status: [String],
            received_date: [Option<String>],
            decision_date: [Option<String>],
            /// Federal fiscal year of the decision (Oct 1 – Sep 30).
            fiscal_year: [i32],
            employer_name: [String],
            job_title: [String],
            soc_code: [String],
            soc_title: [String],
            worksite_city: [String],
            worksite_state: [String],
            wage_from: [Option<f64>],
            wage_to: [Option<f64>],
            wage_unit: [String],
            /// Wage from × 2080 (hour), 52 (week), 26 (bi-weekly), 12 (month) or 1 (year).
            annual_wage: [f64],
            prevailing_wage: [Option<f64>],
            pw_unit: [Option<String>],
            pw_level: [Option<String>],
            annual_prevailing: [Option<f64>],
            /// `lca` (a real filing) or `synthetic` (generated demo data).
            source: [String],
        }
    };
}
// Used by the store, which only the server build compiles.
#[cfg_attr(not(feature = "ssr"), allow(unused_imports))]
pub(crate) use filing_fields;

macro_rules! filing_struct {
    ($( $(#[$($attr:tt)*])* $field:ident : [$($ty:tt)*], )*) => {
        /// One wage record: an LCA filing as the portal keeps it, normalised on import.
        /// The one definition the readers (CSV, XLSX), the store's writer and the API's
        /// record view share.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
        pub struct Filing {
            $( $(#[$($attr)*])* pub $field: $($ty)*, )*
        }
    };
}
filing_fields!(filing_struct!);

/// Where a wage falls against the estimated prevailing-wage levels of its occupation
/// and area.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LevelPosition {
    /// Estimated Level I–IV annual wages (OEWS ≈ 17th, 34th, 50th, 67th percentile).
    pub wages: [f64; 4],
    /// The highest level the wage meets: 0 (below Level I) to 4.
    pub met: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WageRecordView {
    pub id: i64,
    #[serde(flatten)]
    pub filing: Filing,
    /// Estimated percentile of the annual wage in the market (state, else national).
    pub market_percentile: Option<f64>,
    /// Against the estimated Level I–IV wages of the same market.
    pub levels: Option<LevelPosition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecordsPage {
    pub records: Vec<WageRecordView>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

crate::named_enum! {
    /// Where an upload's import stands.
    pub enum ImportState {
        /// Uploaded, waiting for a job runner.
        Queued = "queued",
        Running = "running",
        Done = "done",
        /// Stopped: the file could not be read (the reason is in its errors).
        Failed = "failed",
    }
}

impl ImportState {
    pub fn is_finished(self) -> bool {
        matches!(self, ImportState::Done | ImportState::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportView {
    pub id: i64,
    /// `lca` or `oews`.
    pub kind: String,
    pub filename: String,
    pub state: ImportState,
    pub bytes_total: i64,
    pub bytes_done: i64,
    pub rows_new: i64,
    pub rows_updated: i64,
    pub rows_bad: i64,
    /// The first 100 bad rows, with their line numbers.
    pub errors: Vec<BadRow>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl ImportView {
    pub fn percent(&self) -> f64 {
        if self.state == ImportState::Done {
            return 100.0;
        }
        if self.bytes_total <= 0 { 0.0 } else { (self.bytes_done as f64 * 100.0 / self.bytes_total as f64).min(100.0) }
    }
}

/// Grouping when none is asked for.
pub const DEFAULT_GROUP_BY: &str = "job_title";
/// Records per page on the wages page.
pub const PAGE_SIZE: u64 = 25;
/// Case statuses the LCA disclosure files use (the filter also takes `any`).
pub const STATUSES: &[&str] = &["Certified", "Certified - Withdrawn", "Withdrawn", "Denied"];

/// How the page presents the filtered rows (the same query string as the filters).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct ViewParams {
    /// job_title (default), soc, employer, state, city or year.
    pub group_by: Option<String>,
    /// annual_wage (default), employer, job_title, year, state, city or soc.
    pub sort: Option<String>,
    /// asc (default) or desc.
    pub dir: Option<String>,
    /// 1-based page of records.
    pub page: Option<u64>,
}

/// `dir`: `asc` (the default) or `desc`; anything else is refused, naming the field. The
/// REST API and the page read it by this one rule.
pub fn sort_descending(dir: Option<&str>) -> Result<bool, AppError> {
    match dir.map(str::trim) {
        None | Some("") | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(_) => Err(AppError::invalid("dir", "dir is asc or desc")),
    }
}

/// `group_by` as given (trimmed), or the default when absent or empty.
pub fn group_by_or_default(group_by: Option<&str>) -> &str {
    group_by.map(str::trim).filter(|g| !g.is_empty()).unwrap_or(DEFAULT_GROUP_BY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_the_api_read_dir_and_group_by_alike() {
        assert_eq!((sort_descending(None).unwrap(), sort_descending(Some(" desc ")).unwrap(), sort_descending(Some("asc")).unwrap()), (false, true, false));
        assert_eq!(sort_descending(Some("down")).unwrap_err().field.as_deref(), Some("dir"));
        assert_eq!((group_by_or_default(None), group_by_or_default(Some("  ")), group_by_or_default(Some(" soc "))), (DEFAULT_GROUP_BY, DEFAULT_GROUP_BY, "soc"));
    }
}

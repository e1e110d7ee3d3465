//! Wage portal use cases: what the REST routes, the page's server functions and the CLI
//! call. Each decides who may (any signed-in member reads; admins import) and hands the
//! work to the read side (the in-memory copy in `analytics`, the records in the store,
//! the market in `market`) or the import pipeline (`import`).

use super::domain::*;
use super::market::{self, attach_market, market_for};
use super::store::{self, market as market_table, record};
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::db::Db;
use crate::platform::state::AppState;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use std::collections::HashMap;

pub use super::import::{find_import, import_file, import_lca, imports_channel, receive_upload, recent_imports, run_import, Progress, CHANNEL};
pub use super::market::has_market_data;

/// Rows exported at most in one CSV.
pub const EXPORT_LIMIT: usize = 100_000;

/// Box statistics with the market drawn beside each group (any signed-in member).
#[tracing::instrument(skip(state, _caller, filter))]
pub async fn stats_with_market(state: &AppState, _caller: &Caller, filter: &WageFilter, group_by: &str) -> AppResult<StatsResponse> {
    let copy = state.part::<super::analytics::WageCopy>().current(&state.db).await?;
    let selection = copy.select(filter)?;
    let mut groups = copy.stats(&selection, group_by)?;
    attach_market(&state.db, filter, group_by, &mut groups).await?;
    Ok(StatsResponse { group_by: group_by.to_owned(), groups })
}

/// A page of records, sorted, with each record's position in its market (state, else
/// nation) and against the estimated prevailing-wage levels there.
#[tracing::instrument(skip(state, _caller, filter))]
pub async fn records(state: &AppState, _caller: &Caller, filter: &WageFilter, sort: Option<&str>, descending: bool, page: u64, per_page: u64) -> AppResult<RecordsPage> {
    let copy = state.part::<super::analytics::WageCopy>().current(&state.db).await?;
    let selection = copy.select(filter)?;
    let per_page = per_page.clamp(1, 200);
    let page = Ord::max(page, 1);
    let ids = copy.page(&selection, sort, descending, ((page - 1) * per_page) as usize, per_page as usize)?;
    let rows = store::by_ids(&state.db, &ids).await?;
    let mut markets: HashMap<(String, String), Option<market_table::Model>> = HashMap::new();
    for r in &rows {
        let place = (r.soc_code.clone(), r.worksite_state.clone());
        if !markets.contains_key(&place) {
            let m = market_for(&state.db, &r.soc_code, Some(&r.worksite_state), None).await?;
            markets.insert(place, m);
        }
    }
    let records = rows
        .into_iter()
        .map(|r| {
            let m = markets.get(&(r.soc_code.clone(), r.worksite_state.clone())).and_then(Option::as_ref);
            let (market_percentile, levels) = market::position(r.annual_wage, m);
            WageRecordView { id: r.id, filing: r.into(), market_percentile, levels }
        })
        .collect();
    Ok(RecordsPage { records, page, per_page, total: copy.count(&selection) })
}

/// The current view as CSV (header + rows, by annual wage, at most [`EXPORT_LIMIT`]).
pub async fn export_csv(state: &AppState, _caller: &Caller, filter: &WageFilter) -> AppResult<String> {
    let copy = state.part::<super::analytics::WageCopy>().current(&state.db).await?;
    let ids = copy.ids_by_wage(&copy.select(filter)?, EXPORT_LIMIT);
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["CASE_NUMBER", "CASE_STATUS", "FISCAL_YEAR", "EMPLOYER_NAME", "JOB_TITLE", "SOC_CODE", "SOC_TITLE", "WORKSITE_CITY", "WORKSITE_STATE", "WAGE_RATE_OF_PAY_FROM", "WAGE_RATE_OF_PAY_TO", "WAGE_UNIT_OF_PAY", "ANNUAL_WAGE", "PREVAILING_WAGE", "PW_WAGE_LEVEL", "SOURCE"];
    out.write_record(header).map_err(AppError::internal_because)?;
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    // A chunk of rows at a time: the ids are in wage order, and so is the file.
    for chunk in ids.chunks(1000) {
        for r in store::by_ids(&state.db, chunk).await? {
            let text = [r.case_number, r.case_status, r.employer_name, r.job_title, r.soc_code, r.soc_title, r.worksite_city, r.worksite_state, r.wage_unit, r.pw_level.unwrap_or_default(), r.source]
                .map(spreadsheet_safe);
            let [case, status, employer, title, soc, soc_title, city, state, unit, level, source] = text;
            out.write_record([
                case, status, r.fiscal_year.to_string(), employer, title, soc, soc_title,
                city, state, num(r.wage_from), num(r.wage_to), unit, r.annual_wage.to_string(),
                num(r.prevailing_wage), level, source,
            ])
            .map_err(AppError::internal_because)?;
        }
    }
    String::from_utf8(out.into_inner().map_err(AppError::internal_because)?).map_err(AppError::internal_because)
}

/// A text cell as a spreadsheet may show it, never run it: a cell that starts with
/// `= + - @` (or a tab or carriage return, which some spreadsheets skip first) is a
/// formula to Excel and LibreOffice (`=HYPERLINK(…)`, DDE), so it gets a leading `'`,
/// the conventional mark for "this is text" (OWASP's advice for CSV injection).
pub fn spreadsheet_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The synthetic sample's case numbers all start `SYN-`: a range of the unique index.
fn synthetic_cases() -> Condition {
    Condition::all().add(record::Column::CaseNumber.gte("SYN-")).add(record::Column::CaseNumber.lt("SYN."))
}

/// Whether the synthetic sample is stored: a range of the unique case-number index, so
/// pages can ask on every request.
pub async fn has_synthetic(db: &Db) -> AppResult<bool> {
    Ok(record::Entity::find().filter(synthetic_cases()).one(&db.conn).await?.is_some())
}

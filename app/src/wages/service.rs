//! Wage portal use cases: filtering, box statistics (computed by the database, with a
//! plain-Rust reference used by the tests), the market overlay, record pages, CSV export
//! and LCA imports.

use super::domain::*;
use super::lca::{self, Columns, Filing};
use super::stats::{self, BoxStats};
use super::store::{import, market, record};
use crate::error::{AppError, AppResult};
use crate::accounts::Caller;
use crate::platform::db::{like_literal, Db};
use crate::platform::time::now_ms;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use std::collections::{HashMap, HashSet};

/// Groups shown at most (the largest).
pub const MAX_GROUPS: u64 = 25;
/// Outliers listed per group at most.
const MAX_OUTLIERS: u64 = 200;

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_uppercase)
}

/// The filter as a condition on `wage_records`; errors name the field.
pub fn condition(f: &WageFilter) -> AppResult<Condition> {
    let contains = match f.text_match.as_deref().map(str::trim) {
        None | Some("") | Some("prefix") => false,
        Some("contains") => true,
        Some(_) => return Err(AppError::invalid("match", "match is prefix or contains")),
    };
    let mut c = Condition::all();
    match f.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.eq_ignore_ascii_case("any") => {}
        Some(s) => c = c.add(record::Column::CaseStatus.eq(s)),
        None => c = c.add(record::Column::CaseStatus.eq("Certified")),
    }
    if let Some(e) = text(&f.employer) {
        c = c.add(record::Column::EmployerName.like(like_literal(&e, contains)));
    }
    if let Some(t) = text(&f.job_title) {
        c = c.add(record::Column::JobTitle.like(like_literal(&t, contains)));
    }
    if let Some(s) = text(&f.soc) {
        if !s.chars().all(|ch| ch.is_ascii_digit() || ch == '-') || s.len() > 7 {
            return Err(AppError::invalid("soc", "soc is a SOC code such as 15-1252, or a prefix such as 15-"));
        }
        c = c.add(if s.len() == 7 { record::Column::SocCode.eq(s) } else { record::Column::SocCode.like(like_literal(&s, false)) });
    }
    if let Some(s) = text(&f.state) {
        if s.len() != 2 || !s.chars().all(|ch| ch.is_ascii_alphabetic()) {
            return Err(AppError::invalid("state", "state is a two-letter code such as WA"));
        }
        c = c.add(record::Column::WorksiteState.eq(s));
    }
    if let Some(city) = text(&f.city) {
        c = c.add(record::Column::WorksiteCity.eq(city));
    }
    if let (Some(a), Some(b)) = (f.year_from, f.year_to) {
        if a > b {
            return Err(AppError::invalid("year_to", "year_to is before year_from"));
        }
    }
    if let Some(y) = f.year_from {
        c = c.add(record::Column::FiscalYear.gte(y));
    }
    if let Some(y) = f.year_to {
        c = c.add(record::Column::FiscalYear.lte(y));
    }
    Ok(c)
}

/// The columns a grouping keys on.
pub fn group_columns(group_by: &str) -> AppResult<Vec<record::Column>> {
    use record::Column as C;
    Ok(match group_by {
        "job_title" => vec![C::JobTitle],
        "soc" => vec![C::SocCode],
        "employer" => vec![C::EmployerName],
        "state" => vec![C::WorksiteState],
        "city" => vec![C::WorksiteCity, C::WorksiteState],
        "year" => vec![C::FiscalYear],
        _ => return Err(AppError::invalid("group_by", "group_by is job_title, soc, employer, state, city or year")),
    })
}

fn column_name(c: record::Column) -> &'static str {
    use record::Column as C;
    match c {
        C::JobTitle => "job_title",
        C::SocCode => "soc_code",
        C::EmployerName => "employer_name",
        C::WorksiteState => "worksite_state",
        C::WorksiteCity => "worksite_city",
        C::FiscalYear => "fiscal_year",
        _ => unreachable!("not a grouping column"),
    }
}

/// A group's key as text (`SEATTLE, WA` for cities).
fn key_of(row: &sea_orm::QueryResult, cols: &[record::Column]) -> String {
    cols.iter()
        .map(|c| {
            let name = column_name(*c);
            row.try_get::<String>("", name)
                .or_else(|_| row.try_get::<i64>("", name).map(|v| v.to_string()))
                .or_else(|_| row.try_get::<i32>("", name).map(|v| v.to_string()))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SELECT <group cols>, annual_wage FROM wage_records WHERE <filter>` as a statement.
fn filtered_select(db: &Db, cond: Condition, cols: &[record::Column]) -> Statement {
    let mut q = Query::select();
    q.from(record::Entity);
    for c in cols {
        q.column(*c);
    }
    q.column(record::Column::AnnualWage).cond_where(cond);
    db.backend().build(&q)
}

/// Per-group n, min, max, mean and quartiles, computed by the database.
///
/// Quartiles are type 7 (see `stats`): the query returns, per group, the order
/// statistics at ⌊(n−1)p⌋+1 and the one after it, found by `ROW_NUMBER()` with integer
/// comparisons only (4·(rn−1) ≤ n−1 < 4·rn for p = ¼), which MySQL, MariaDB and SQLite
/// all evaluate alike; Rust then interpolates. No PERCENTILE_CONT: MySQL has none.
#[tracing::instrument(skip(db, filter))]
pub async fn stats(db: &Db, filter: &WageFilter, group_by: &str) -> AppResult<Vec<StatsGroup>> {
    let cols = group_columns(group_by)?;
    let cond = condition(filter)?;
    let inner = filtered_select(db, cond.clone(), &cols);
    let g = cols.iter().map(|c| column_name(*c)).collect::<Vec<_>>().join(", ");
    let q = |k: u32, p: u32, off: u32| {
        format!("MAX(CASE WHEN {k}*(rn-{off}) <= {p}*(n-1) AND {p}*(n-1) < {k}*(rn-{off0}) THEN w END)", off0 = off - 1)
    };
    let sql = format!(
        "WITH f AS ({inner}), \
         r AS (SELECT {g}, annual_wage AS w, \
                      ROW_NUMBER() OVER (PARTITION BY {g} ORDER BY annual_wage) AS rn, \
                      COUNT(*) OVER (PARTITION BY {g}) AS n FROM f) \
         SELECT {g}, n, MIN(w) AS min_w, MAX(w) AS max_w, AVG(w) AS mean_w, \
                {q1lo} AS q1_lo, {q1hi} AS q1_hi, {q2lo} AS q2_lo, {q2hi} AS q2_hi, {q3lo} AS q3_lo, {q3hi} AS q3_hi \
         FROM r GROUP BY {g}, n ORDER BY n DESC, {g} LIMIT {MAX_GROUPS}",
        inner = inner.sql,
        q1lo = q(4, 1, 1),
        q1hi = q(4, 1, 2),
        q2lo = q(2, 1, 1),
        q2hi = q(2, 1, 2),
        q3lo = q(4, 3, 1),
        q3hi = q(4, 3, 2),
    );
    let rows = db.query_all_raw(Statement { sql, values: inner.values, db_backend: inner.db_backend }).await?;
    let mut groups = Vec::with_capacity(rows.len());
    for row in rows {
        let f = |c: &str| row.try_get::<f64>("", c).ok();
        let n = row.try_get::<i64>("", "n").unwrap_or(0) as usize;
        let (Some(min), Some(max), Some(mean), Some(q1lo), Some(q2lo), Some(q3lo)) =
            (f("min_w"), f("max_w"), f("mean_w"), f("q1_lo"), f("q2_lo"), f("q3_lo"))
        else {
            continue;
        };
        let (q1, median, q3) = (
            stats::interpolate(n, 0.25, q1lo, f("q1_hi")),
            stats::interpolate(n, 0.5, q2lo, f("q2_hi")),
            stats::interpolate(n, 0.75, q3lo, f("q3_hi")),
        );
        let key_values: Vec<sea_orm::Value> = cols.iter().map(|c| group_value(&row, *c)).collect();
        let (whisker_low, whisker_high, outliers) = tukey(db, &cond, &cols, &key_values, q1, q3).await?;
        groups.push(StatsGroup {
            key: key_of(&row, &cols),
            stats: BoxStats { n, min, q1, median, q3, max, mean, whisker_low, whisker_high, outliers, too_few: n < stats::MIN_GROUP },
            market: None,
        });
    }
    Ok(groups)
}

fn group_value(row: &sea_orm::QueryResult, c: record::Column) -> sea_orm::Value {
    let name = column_name(c);
    if matches!(c, record::Column::FiscalYear) {
        sea_orm::Value::from(row.try_get::<i64>("", name).or_else(|_| row.try_get::<i32>("", name).map(i64::from)).unwrap_or_default())
    } else {
        sea_orm::Value::from(row.try_get::<String>("", name).unwrap_or_default())
    }
}

/// Whiskers (furthest values within 1.5 IQR) and outliers of one group, from the index.
async fn tukey(db: &Db, cond: &Condition, cols: &[record::Column], key: &[sea_orm::Value], q1: f64, q3: f64) -> AppResult<(f64, f64, Vec<f64>)> {
    let iqr = q3 - q1;
    let (lo, hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let mut group = cond.clone();
    for (c, v) in cols.iter().zip(key) {
        group = group.add(Expr::col(*c).eq(v.clone()));
    }
    let mut fences = Query::select();
    fences
        .from(record::Entity)
        .expr_as(Expr::col(record::Column::AnnualWage).min(), Alias::new("low"))
        .expr_as(Expr::col(record::Column::AnnualWage).max(), Alias::new("high"))
        .cond_where(group.clone().add(record::Column::AnnualWage.gte(lo)).add(record::Column::AnnualWage.lte(hi)));
    let row = db.query_one_raw(db.backend().build(&fences)).await?;
    let low = row.as_ref().and_then(|r| r.try_get::<Option<f64>>("", "low").ok().flatten()).unwrap_or(q1);
    let high = row.as_ref().and_then(|r| r.try_get::<Option<f64>>("", "high").ok().flatten()).unwrap_or(q3);
    let outliers: Vec<f64> = record::Entity::find()
        .select_only()
        .column(record::Column::AnnualWage)
        .filter(group.add(Condition::any().add(record::Column::AnnualWage.lt(lo)).add(record::Column::AnnualWage.gt(hi))))
        .order_by_asc(record::Column::AnnualWage)
        .limit(MAX_OUTLIERS)
        .into_tuple()
        .all(&db.conn)
        .await?;
    Ok((low, high, outliers))
}

/// The same statistics computed in Rust from the sorted values: the reference the tests
/// hold the SQL against.
pub async fn stats_in_rust(db: &Db, filter: &WageFilter, group_by: &str) -> AppResult<Vec<StatsGroup>> {
    let cols = group_columns(group_by)?;
    let rows = db.query_all_raw(filtered_select(db, condition(filter)?, &cols)).await?;
    let mut by_key: HashMap<String, Vec<f64>> = HashMap::new();
    for row in rows {
        by_key.entry(key_of(&row, &cols)).or_default().push(row.try_get::<f64>("", "annual_wage").unwrap_or_default());
    }
    let mut groups: Vec<StatsGroup> =
        by_key.into_iter().filter_map(|(key, values)| Some(StatsGroup { key, stats: stats::summarize(values)?, market: None })).collect();
    groups.sort_by(|a, b| b.stats.n.cmp(&a.stats.n).then_with(|| a.key.cmp(&b.key)));
    groups.truncate(MAX_GROUPS as usize);
    Ok(groups)
}

fn market_view(m: market::Model) -> Market {
    Market { area: m.area_name, area_type: m.area_type, soc: m.soc_code, occupation: m.occupation_name, p10: m.p10, p25: m.p25, p50: m.p50, p75: m.p75, p90: m.p90, mean: m.mean }
}

/// The market row for an occupation: the metro area of a city, else the state, else
/// the nation.
async fn market_for(db: &Db, soc: &str, state: Option<&str>, city: Option<&str>) -> AppResult<Option<market::Model>> {
    let base = || market::Entity::find().filter(market::Column::SocCode.eq(soc));
    if let (Some(state), Some(city)) = (state, city) {
        // Metro names list their main cities: "Seattle-Tacoma-Bellevue, WA".
        let metros = base().filter(market::Column::AreaType.eq("M")).filter(market::Column::StateCode.eq(state)).all(&db.conn).await?;
        let city = city.to_ascii_lowercase();
        if let Some(m) = metros.into_iter().find(|m| {
            m.area_name.split(',').next().unwrap_or("").split('-').any(|c| c.trim().to_ascii_lowercase() == city)
        }) {
            return Ok(Some(m));
        }
    }
    if let Some(state) = state {
        if let Some(m) = base().filter(market::Column::AreaType.eq("S")).filter(market::Column::StateCode.eq(state)).one(&db.conn).await? {
            return Ok(Some(m));
        }
    }
    Ok(base().filter(market::Column::AreaType.eq("N")).one(&db.conn).await?)
}

/// Draws the OEWS percentiles beside each group whose occupation (and area) is known:
/// the group's own SOC (group by soc) or the SOC filter, in the group's or the filter's
/// place.
pub async fn attach_market(db: &Db, filter: &WageFilter, group_by: &str, groups: &mut [StatsGroup]) -> AppResult<()> {
    let soc_filter = text(&filter.soc).filter(|s| s.len() == 7);
    let state_filter = text(&filter.state);
    let city_filter = text(&filter.city);
    for g in groups.iter_mut() {
        let (soc, state, city) = match group_by {
            "soc" => (Some(g.key.clone()), state_filter.clone(), city_filter.clone()),
            "state" => (soc_filter.clone(), Some(g.key.clone()), None),
            "city" => {
                let (c, s) = g.key.rsplit_once(", ").map(|(c, s)| (c.to_owned(), s.to_owned())).unwrap_or_default();
                (soc_filter.clone(), Some(s), Some(c))
            }
            _ => (soc_filter.clone(), state_filter.clone(), city_filter.clone()),
        };
        if let Some(soc) = soc {
            g.market = market_for(db, &soc, state.as_deref(), city.as_deref()).await?.map(market_view);
        }
    }
    Ok(())
}

/// Sortable record columns.
fn sort_column(sort: Option<&str>) -> AppResult<record::Column> {
    use record::Column as C;
    Ok(match sort.unwrap_or("annual_wage") {
        "annual_wage" | "" => C::AnnualWage,
        "employer" => C::EmployerName,
        "job_title" => C::JobTitle,
        "year" => C::FiscalYear,
        "state" => C::WorksiteState,
        "city" => C::WorksiteCity,
        "soc" => C::SocCode,
        _ => return Err(AppError::invalid("sort", "sort is annual_wage, employer, job_title, year, state, city or soc")),
    })
}

fn record_view(r: record::Model, market: Option<&market::Model>) -> WageRecordView {
    let position = market.and_then(|m| stats::market_percentile(r.annual_wage, [m.p10, m.p25, m.p50, m.p75, m.p90])).map(|(p, _)| p);
    WageRecordView {
        id: r.id,
        case_number: r.case_number,
        case_status: r.case_status,
        fiscal_year: r.fiscal_year,
        employer_name: r.employer_name,
        job_title: r.job_title,
        soc_code: r.soc_code,
        soc_title: r.soc_title,
        worksite_city: r.worksite_city,
        worksite_state: r.worksite_state,
        wage_from: r.wage_from,
        wage_to: r.wage_to,
        wage_unit: r.wage_unit,
        annual_wage: r.annual_wage,
        prevailing_wage: r.prevailing_wage,
        pw_level: r.pw_level,
        annual_prevailing: r.annual_prevailing,
        source: r.source,
        market_percentile: position,
    }
}

/// A page of records, sorted, with each record's market position (state, else nation).
#[tracing::instrument(skip(db, filter))]
pub async fn records(db: &Db, _caller: &Caller, filter: &WageFilter, sort: Option<&str>, descending: bool, page: u64, per_page: u64) -> AppResult<RecordsPage> {
    let cond = condition(filter)?;
    let per_page = per_page.clamp(1, 200);
    let page = Ord::max(page, 1);
    let col = sort_column(sort)?;
    let order = if descending { Order::Desc } else { Order::Asc };
    let query = record::Entity::find().filter(cond);
    let total = query.clone().count(&db.conn).await?;
    let rows = query
        .order_by(col, order.clone())
        .order_by(record::Column::Id, order)
        .offset((page - 1) * per_page)
        .limit(per_page)
        .all(&db.conn)
        .await?;
    let wanted: HashSet<(String, String)> = rows.iter().map(|r| (r.soc_code.clone(), r.worksite_state.clone())).collect();
    let mut markets: HashMap<(String, String), Option<market::Model>> = HashMap::new();
    for (soc, state) in wanted {
        let m = market_for(db, &soc, Some(&state), None).await?;
        markets.insert((soc, state), m);
    }
    let records = rows
        .into_iter()
        .map(|r| {
            let m = markets.get(&(r.soc_code.clone(), r.worksite_state.clone())).and_then(Option::as_ref);
            record_view(r, m)
        })
        .collect();
    Ok(RecordsPage { records, page, per_page, total })
}

/// Rows exported at most in one CSV.
pub const EXPORT_LIMIT: u64 = 100_000;

/// The current view as CSV (header + rows, by annual wage).
pub async fn export_csv(db: &Db, _caller: &Caller, filter: &WageFilter) -> AppResult<String> {
    let rows = record::Entity::find()
        .filter(condition(filter)?)
        .order_by_asc(record::Column::AnnualWage)
        .order_by_asc(record::Column::Id)
        .limit(EXPORT_LIMIT)
        .all(&db.conn)
        .await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["CASE_NUMBER", "CASE_STATUS", "FISCAL_YEAR", "EMPLOYER_NAME", "JOB_TITLE", "SOC_CODE", "SOC_TITLE", "WORKSITE_CITY", "WORKSITE_STATE", "WAGE_RATE_OF_PAY_FROM", "WAGE_RATE_OF_PAY_TO", "WAGE_UNIT_OF_PAY", "ANNUAL_WAGE", "PREVAILING_WAGE", "PW_WAGE_LEVEL", "SOURCE"];
    out.write_record(header).map_err(AppError::internal_because)?;
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let text = [r.case_number, r.case_status, r.employer_name, r.job_title, r.soc_code, r.soc_title, r.worksite_city, r.worksite_state, r.wage_unit, r.pw_level.unwrap_or_default(), r.source]
            .map(|cell| spreadsheet_safe(cell));
        let [case, status, employer, title, soc, soc_title, city, state, unit, level, source] = text;
        out.write_record([
            case, status, r.fiscal_year.to_string(), employer, title, soc, soc_title,
            city, state, num(r.wage_from), num(r.wage_to), unit, r.annual_wage.to_string(),
            num(r.prevailing_wage), level, source,
        ])
        .map_err(AppError::internal_because)?;
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

// ---------------------------------------------------------------------------------------
// Imports

/// Where an import stands (what progress callbacks receive).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub rows_new: u64,
    pub rows_updated: u64,
    pub rows_bad: u64,
    pub errors: Vec<BadRow>,
}

/// Reports kept at most (the count goes on).
const KEEP_ERRORS: usize = 100;
const BATCH: usize = 1000;

/// Counts the bytes the CSV reader has consumed (for the progress bar).
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

enum Parsed {
    Batch(Vec<(u64, Result<Filing, String>)>, u64),
    Fatal(String),
}

/// Imports an LCA CSV file: parsed on a blocking thread, streamed in batches of 1,000,
/// upserted by case number (re-importing changes nothing twice). Bad rows are reported
/// with their line numbers and skipped. Memory stays constant whatever the file size.
/// With an `import_id`, progress is saved on its row (at most every 300 ms) for the
/// page's progress bar; `on_progress` sees every batch (the CLI's terminal bar).
#[tracing::instrument(skip(db, on_progress))]
pub async fn import_lca(
    db: &Db,
    path: &std::path::Path,
    import_id: Option<i64>,
    source: &str,
    on_progress: &(dyn Fn(&Progress) + Send + Sync),
) -> AppResult<Progress> {
    let mut saved_at = std::time::Instant::now();
    let file = std::fs::File::open(path).map_err(|e| AppError::invalid("file", format!("cannot open {}: {e}", path.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = read.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Parsed>(4);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = Counting { inner: std::io::BufReader::with_capacity(1 << 16, file), read: counter.clone() };
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let cols = match csv.headers() {
            Ok(h) => match Columns::from_header(h) {
                Ok(c) => c,
                Err(e) => return drop(tx.blocking_send(Parsed::Fatal(e))),
            },
            Err(e) => return drop(tx.blocking_send(Parsed::Fatal(format!("unreadable header: {e}")))),
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut row = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut row) {
                Ok(false) => break,
                Ok(true) => {
                    let line = row.position().map_or(0, |p| p.line());
                    batch.push((line, lca::parse(&cols, &row)));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    batch.push((line, Err(format!("unreadable CSV: {e}"))));
                }
            }
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.blocking_send(Parsed::Batch(full, counter.load(std::sync::atomic::Ordering::Relaxed))).is_err() {
                    return;
                }
            }
        }
        let _ = tx.blocking_send(Parsed::Batch(batch, counter.load(std::sync::atomic::Ordering::Relaxed)));
    });
    let mut progress = Progress { bytes_total: total, ..Default::default() };
    while let Some(msg) = rx.recv().await {
        match msg {
            Parsed::Fatal(reason) => return Err(AppError::invalid("file", reason)),
            Parsed::Batch(rows, bytes) => {
                let mut good = Vec::with_capacity(rows.len());
                for (line, parsed) in rows {
                    match parsed {
                        Ok(f) => good.push(f),
                        Err(reason) => {
                            progress.rows_bad += 1;
                            if progress.errors.len() < KEEP_ERRORS {
                                progress.errors.push(BadRow { line, reason });
                            }
                        }
                    }
                }
                let (new, updated) = upsert(db, good, import_id, source).await?;
                progress.rows_new += new;
                progress.rows_updated += updated;
                progress.bytes_done = bytes;
                on_progress(&progress);
                if let Some(id) = import_id.filter(|_| saved_at.elapsed() > std::time::Duration::from_millis(300)) {
                    saved_at = std::time::Instant::now();
                    record_progress(db, id, "running", &progress).await?;
                }
            }
        }
    }
    parser.await.map_err(|_| AppError::internal())?;
    progress.bytes_done = Ord::max(total, read.load(std::sync::atomic::Ordering::Relaxed));
    on_progress(&progress);
    Ok(progress)
}

/// Writes filings, replacing earlier versions of the same case; returns (new, updated).
pub(crate) async fn upsert(db: &Db, filings: Vec<Filing>, import_id: Option<i64>, source: &str) -> AppResult<(u64, u64)> {
    if filings.is_empty() {
        return Ok((0, 0));
    }
    // The last row wins when a file repeats a case number.
    let mut by_case: HashMap<String, Filing> = HashMap::with_capacity(filings.len());
    for f in filings {
        by_case.insert(f.case_number.clone(), f);
    }
    let cases: Vec<String> = by_case.keys().cloned().collect();
    let existing: HashSet<String> = record::Entity::find()
        .select_only()
        .column(record::Column::CaseNumber)
        .filter(record::Column::CaseNumber.is_in(cases))
        .into_tuple::<String>()
        .all(&db.conn)
        .await?
        .into_iter()
        .collect();
    let updated = existing.len() as u64;
    let new = by_case.len() as u64 - updated;
    let rows: Vec<record::ActiveModel> = by_case.into_values().map(|f| record::ActiveModel {
        case_number: Set(f.case_number),
        case_status: Set(f.case_status),
        received_date: Set(f.received_date),
        decision_date: Set(f.decision_date),
        fiscal_year: Set(f.fiscal_year),
        employer_name: Set(f.employer_name),
        job_title: Set(f.job_title),
        soc_code: Set(f.soc_code),
        soc_title: Set(f.soc_title),
        worksite_city: Set(f.worksite_city),
        worksite_state: Set(f.worksite_state),
        wage_from: Set(Some(f.wage_from)),
        wage_to: Set(f.wage_to),
        wage_unit: Set(f.wage_unit),
        annual_wage: Set(f.annual_wage),
        prevailing_wage: Set(f.prevailing_wage),
        pw_unit: Set(f.pw_unit),
        pw_level: Set(f.pw_level),
        annual_prevailing: Set(f.annual_prevailing),
        source: Set(source.to_owned()),
        import_id: Set(import_id),
        ..Default::default()
    }).collect();
    use record::Column as C;
    let upsert = OnConflict::column(C::CaseNumber)
        .update_columns([
            C::CaseStatus, C::ReceivedDate, C::DecisionDate, C::FiscalYear, C::EmployerName, C::JobTitle, C::SocCode, C::SocTitle,
            C::WorksiteCity, C::WorksiteState, C::WageFrom, C::WageTo, C::WageUnit, C::AnnualWage, C::PrevailingWage, C::PwUnit,
            C::PwLevel, C::AnnualPrevailing, C::Source, C::ImportId,
        ])
        .to_owned();
    db.retrying(|| async {
        let txn = db.write_txn().await?;
        record::Entity::insert_many(rows.clone()).on_conflict(upsert.clone()).exec_without_returning(&*txn).await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    metrics::counter!("wages_rows_imported_total").increment(new + updated);
    Ok((new, updated))
}

pub fn import_view(i: import::Model) -> ImportView {
    ImportView {
        id: i.id,
        kind: i.kind,
        filename: i.filename,
        state: i.state,
        bytes_total: i.bytes_total,
        bytes_done: i.bytes_done,
        rows_new: i.rows_new,
        rows_updated: i.rows_updated,
        rows_bad: i.rows_bad,
        errors: serde_json::from_str(&i.errors).unwrap_or_default(),
        created_at: i.created_at,
        finished_at: i.finished_at,
    }
}

pub const CHANNEL: &str = "wages/imports/";

/// Registers an uploaded file for import (already in the object store) and queues the
/// job that imports it, in one transaction.
pub async fn queue_import<C: ConnectionTrait>(conn: &C, filename: &str, key: &str, bytes: u64, by: Option<i64>) -> AppResult<ImportView> {
    let row = import::ActiveModel {
        kind: Set("lca".into()),
        filename: Set(filename.chars().take(255).collect()),
        object_key: Set(Some(key.to_owned())),
        state: Set("queued".into()),
        bytes_total: Set(bytes as i64),
        bytes_done: Set(0),
        rows_new: Set(0),
        rows_updated: Set(0),
        rows_bad: Set(0),
        errors: Set("[]".into()),
        created_by: Set(by),
        created_at: Set(now_ms()),
        finished_at: Set(None),
        ..Default::default()
    };
    let created = import::Entity::insert(row).exec_with_returning(conn).await?;
    crate::platform::jobs::enqueue(conn, "wages.import_lca", &serde_json::json!({"import": created.id})).await?;
    Ok(import_view(created))
}

/// Saves an import's progress and tells open pages.
pub async fn record_progress(db: &Db, id: i64, state: &str, p: &Progress) -> AppResult<()> {
    let txn = db.write_txn().await?;
    import::Entity::update_many()
        .col_expr(import::Column::State, Expr::value(state))
        .col_expr(import::Column::BytesDone, Expr::value(p.bytes_done as i64))
        .col_expr(import::Column::RowsNew, Expr::value(p.rows_new as i64))
        .col_expr(import::Column::RowsUpdated, Expr::value(p.rows_updated as i64))
        .col_expr(import::Column::RowsBad, Expr::value(p.rows_bad as i64))
        .col_expr(import::Column::Errors, Expr::value(serde_json::to_string(&p.errors).unwrap_or_else(|_| "[]".into())))
        .col_expr(import::Column::FinishedAt, Expr::value(matches!(state, "done" | "failed").then(now_ms)))
        .filter(import::Column::Id.eq(id))
        .exec(&*txn)
        .await?;
    crate::platform::changes::record(&*txn, CHANNEL, &serde_json::json!({"import": id, "state": state, "bytes_done": p.bytes_done})).await?;
    txn.commit().await?;
    Ok(())
}

/// Takes an uploaded LCA file from an admin: streams it to a scratch file (at most
/// `max` bytes), stores it in the object store and queues its import, which any
/// process's job runner then runs. The caller is judged before a byte is read.
pub async fn receive_upload<S, E>(state: &crate::platform::state::AppState, caller: &Caller, filename: Option<&str>, body: S) -> AppResult<ImportView>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    caller.require_admin()?;
    let scratch = tempfile::NamedTempFile::new().map_err(|e| AppError::unavailable(e.to_string()))?;
    let size = spool(body, scratch.path(), state.settings.wages.upload_max_bytes).await?;
    let key = format!("wages/uploads/{}-{}.csv", now_ms(), crate::platform::secrets::random_token(12));
    state.store.put_file(&key, scratch.path()).await?;
    let filename = filename.map(str::trim).filter(|f| !f.is_empty()).unwrap_or("upload.csv");
    let txn = state.db.write_txn().await?;
    let queued = queue_import(&*txn, filename, &key, size, Some(caller.id())).await?;
    txn.commit().await?;
    Ok(queued)
}

/// Writes a body to `path` as it arrives; returns its size.
async fn spool<S, E>(mut body: S, path: &std::path::Path, max: u64) -> AppResult<u64>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await.map_err(|e| AppError::unavailable(e.to_string()))?;
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| AppError::bad_request(format!("the upload was cut off: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(crate::platform::guards::too_large(max));
        }
        file.write_all(&chunk).await.map_err(|e| AppError::unavailable(e.to_string()))?;
    }
    file.flush().await.map_err(|e| AppError::unavailable(e.to_string()))?;
    if size == 0 {
        return Err(AppError::invalid("body", "the upload is empty: send the CSV file as the request body"));
    }
    Ok(size)
}

/// The `wages import` command: imports a local file as the operator.
pub async fn import_file(db: &Db, caller: &Caller, path: &std::path::Path, on_progress: &(dyn Fn(&Progress) + Send + Sync)) -> AppResult<Progress> {
    caller.require_admin()?;
    import_lca(db, path, None, "lca", on_progress).await
}

/// The import job: fetch the uploaded file from the object store and import it. A run
/// cut short is simply run again: upserts make that harmless.
pub async fn run_import(state: &crate::platform::state::AppState, id: i64) -> AppResult<Progress> {
    let row = import::Entity::find_by_id(id).one(&state.db.conn).await?.ok_or_else(|| AppError::not_found("import"))?;
    let key = row.object_key.clone().ok_or_else(|| AppError::invalid("import", "this import has no uploaded file"))?;
    let scratch = tempfile::tempdir().map_err(|e| AppError::unavailable(e.to_string()))?;
    let path = scratch.path().join("upload.csv");
    if !state.store.download(&key, &path).await? {
        return Err(AppError::not_found("uploaded file"));
    }
    record_progress(&state.db, id, "running", &Progress { bytes_total: row.bytes_total as u64, ..Default::default() }).await?;
    let db = state.db.clone();
    let result = import_lca(&state.db, &path, Some(id), "lca", &|_| {}).await;
    match result {
        Ok(p) => {
            record_progress(&db, id, "done", &p).await?;
            Ok(p)
        }
        Err(e) => {
            let p = Progress { errors: vec![BadRow { line: 0, reason: e.message.clone() }], rows_bad: 0, ..Default::default() };
            record_progress(&db, id, "failed", &p).await?;
            Err(e)
        }
    }
}

/// One import, for admins.
pub async fn find_import(db: &Db, caller: &Caller, id: i64) -> AppResult<ImportView> {
    caller.require_admin()?;
    import::Entity::find_by_id(id).one(&db.conn).await?.map(import_view).ok_or_else(|| AppError::not_found("import"))
}

/// The live channel of import progress, for admins.
pub fn imports_channel(caller: &Caller) -> AppResult<String> {
    caller.require_admin()?;
    Ok(CHANNEL.to_owned())
}

/// The latest imports, for admins.
pub async fn recent_imports(db: &Db, caller: &Caller) -> AppResult<Vec<ImportView>> {
    caller.require_admin()?;
    Ok(import::Entity::find().order_by_desc(import::Column::Id).limit(10).all(&db.conn).await?.into_iter().map(import_view).collect())
}

/// Box statistics with the market drawn beside each group (any signed-in member).
pub async fn stats_with_market(db: &Db, _caller: &Caller, filter: &WageFilter, group_by: &str) -> AppResult<StatsResponse> {
    let mut groups = stats(db, filter, group_by).await?;
    attach_market(db, filter, group_by, &mut groups).await?;
    Ok(StatsResponse { group_by: group_by.to_owned(), groups })
}

/// The synthetic sample's case numbers all start `SYN-`: a range of the unique index.
fn synthetic_cases() -> Condition {
    Condition::all().add(record::Column::CaseNumber.gte("SYN-")).add(record::Column::CaseNumber.lt("SYN."))
}

/// Whether the synthetic sample is stored: a range of the unique case-number index, so
/// pages can ask on every request (a filtered "any synthetic here?" could make a planner
/// walk a status index instead).
pub async fn has_synthetic(db: &Db) -> AppResult<bool> {
    Ok(record::Entity::find().filter(synthetic_cases()).one(&db.conn).await?.is_some())
}

pub async fn has_market_data(db: &Db) -> AppResult<bool> {
    Ok(market::Entity::find().one(&db.conn).await?.is_some())
}

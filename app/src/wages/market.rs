//! The BLS OEWS market beside the filings: the percentiles of an occupation in a place
//! (the metro area of a city, else the state, else the nation), and from them each
//! filing's position and estimated prevailing-wage level.

use super::domain::{LevelPosition, Market, StatsGroup, WageFilter};
use super::levels::{level_met, level_wages};
use super::stats;
use super::store::market;
use crate::error::AppResult;
use crate::platform::db::Db;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

pub fn market_view(m: market::Model) -> Market {
    Market { area: m.area_name, area_type: m.area_type, soc: m.soc_code, occupation: m.occupation_name, p10: m.p10, p25: m.p25, p50: m.p50, p75: m.p75, p90: m.p90, mean: m.mean }
}

fn percentiles(m: &market::Model) -> [Option<f64>; 5] {
    [m.p10, m.p25, m.p50, m.p75, m.p90]
}

/// The market row for an occupation: the metro area of a city, else the state, else
/// the nation (indexed lookups by occupation).
pub async fn market_for(db: &Db, soc: &str, state: Option<&str>, city: Option<&str>) -> AppResult<Option<market::Model>> {
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

/// Where `wage` falls in market `m`: its estimated percentile and its level position.
pub fn position(wage: f64, m: Option<&market::Model>) -> (Option<f64>, Option<LevelPosition>) {
    let Some(m) = m else { return (None, None) };
    let percentile = stats::market_percentile(wage, percentiles(m)).map(|(p, _)| p);
    let levels = level_wages(percentiles(m)).map(|wages| LevelPosition { met: level_met(wage, &wages), wages });
    (percentile, levels)
}

fn upper(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_uppercase)
}

/// Draws the OEWS percentiles beside each group whose occupation (and area) is known:
/// the group's own SOC (group by soc) or the SOC filter, in the group's or the filter's
/// place.
pub async fn attach_market(db: &Db, filter: &WageFilter, group_by: &str, groups: &mut [StatsGroup]) -> AppResult<()> {
    let soc_filter = upper(&filter.soc).filter(|s| s.len() == 7);
    let state_filter = upper(&filter.state);
    let city_filter = upper(&filter.city);
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

/// Whether any OEWS market data has been imported.
pub async fn has_market_data(db: &Db) -> AppResult<bool> {
    Ok(market::Entity::find().one(&db.conn).await?.is_some())
}

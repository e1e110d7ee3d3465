//! The wage records as the read side needs them: an in-memory, column-oriented copy that
//! answers statistics, counts and record listings.
//!
//! A database is not the engine for order statistics recomputed on every page view (a
//! `ROW_NUMBER()` over a million rows took seconds, for data that changes only when an
//! import finishes). Here each record is a row of small columns — ids into sorted
//! dictionaries of the distinct employers, titles, places, occupations, states, statuses
//! and years, plus its id and annual wage — held in annual-wage order, so a group's
//! values come out sorted and its quartiles need no sort. A query is one pass to count
//! the groups and one to collect the largest 25: milliseconds over a million records, at
//! about 36 bytes a record plus the dictionaries.
//!
//! The copy is rebuilt from the database when the records change, on every process: an
//! import (or the demo seed) records a change on [`RECORDS_CHANNEL`] when it finishes;
//! each query first compares the copy's version with the newest such change (one index
//! lookup) and rebuilds when it is behind, and a background task rebuilds as soon as the
//! change log brings the news, so users rarely wait for it.

use super::domain::{LevelShares, StatsGroup, WageFilter};
use super::levels::level_wages;
use super::stats;
use super::store::{market, record};
use crate::error::{AppError, AppResult};
use crate::platform::changes;
use crate::platform::db::Db;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The change channel that says "the wage records changed".
pub const RECORDS_CHANNEL: &str = "wages/records/";
/// Groups returned at most, largest first.
pub const MAX_GROUPS: usize = 25;
/// Outliers listed per group at most.
const MAX_OUTLIERS: usize = 200;
/// Records read from the database per query while building.
const LOAD_PAGE: u64 = 50_000;

/// Tells every process that the records changed (after the write committed).
pub async fn announce_change(db: &Db, what: &serde_json::Value) -> AppResult<()> {
    changes::record(&db.conn, RECORDS_CHANNEL, what).await?;
    Ok(())
}

/// The copy of this process, shared by its requests.
#[derive(Clone, Default)]
pub struct WageCopy {
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
    building: Arc<tokio::sync::Mutex<()>>,
}

impl WageCopy {
    pub fn new() -> Self {
        Self::default()
    }

    fn loaded(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().expect("wage copy lock").clone()
    }

    /// The copy, first rebuilt if the records changed since it was built (waiting for a
    /// rebuild another request started, so a reader never sees data older than a write
    /// it knows of).
    #[tracing::instrument(skip_all)]
    pub async fn current(&self, db: &Db) -> AppResult<Arc<Snapshot>> {
        let latest = latest_change(db).await?;
        if let Some(s) = self.loaded().filter(|s| s.version >= latest) {
            return Ok(s);
        }
        let _one_at_a_time = self.building.lock().await;
        if let Some(s) = self.loaded().filter(|s| s.version >= latest) {
            return Ok(s);
        }
        let started = std::time::Instant::now();
        let fresh = Arc::new(Snapshot::load(db).await?);
        tracing::info!(records = fresh.len(), bytes = fresh.memory_bytes(), ms = started.elapsed().as_millis() as u64, "wage copy rebuilt");
        *self.snapshot.write().expect("wage copy lock") = Some(fresh.clone());
        Ok(fresh)
    }

    /// Builds the copy, then rebuilds it whenever the change log says the records
    /// changed, until the hub closes (shutdown).
    pub async fn follow(self, state: crate::platform::state::AppState) {
        let mut rx = state.changes.subscribe(RECORDS_CHANNEL);
        if let Err(e) = self.current(&state.db).await {
            tracing::warn!(error = %e.message, "the wage copy could not be built at start-up; queries will retry");
        }
        loop {
            let received = tokio::select! {
                received = rx.recv() => received,
                _ = state.changes.closed() => return,
            };
            match received {
                Ok(change) if change.channel == RECORDS_CHANNEL => {
                    if let Err(e) = self.current(&state.db).await {
                        tracing::warn!(error = %e.message, "rebuilding the wage copy failed; queries will retry");
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// The newest change on [`RECORDS_CHANNEL`] (by the `(channel, id)` index); 0 for none.
async fn latest_change(db: &Db) -> AppResult<i64> {
    use changes::entity::{Column, Entity};
    let id: Option<i64> = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Channel.eq(RECORDS_CHANNEL))
        .order_by_desc(Column::Id)
        .into_tuple()
        .one(&db.conn)
        .await?;
    Ok(id.unwrap_or(0))
}

/// Distinct values, sorted, so that an id's order is its value's order and a prefix is
/// a range of ids.
#[derive(Debug, Default)]
struct Dict {
    values: Vec<String>,
}

impl Dict {
    /// The dictionary of `interned` (value → provisional id) and each provisional id's
    /// final id.
    fn sorted(interned: HashMap<String, u32>) -> (Self, Vec<u32>) {
        let mut pairs: Vec<(String, u32)> = interned.into_iter().collect();
        pairs.sort();
        let mut remap = vec![0u32; pairs.len()];
        for (final_id, (_, provisional)) in pairs.iter().enumerate() {
            remap[*provisional as usize] = final_id as u32;
        }
        (Self { values: pairs.into_iter().map(|(v, _)| v).collect() }, remap)
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn get(&self, id: u32) -> &str {
        &self.values[id as usize]
    }

    fn find(&self, value: &str) -> Option<u32> {
        self.values.binary_search_by(|v| v.as_str().cmp(value)).ok().map(|i| i as u32)
    }

    /// The ids of the values starting with `prefix`.
    fn prefixed(&self, prefix: &str) -> Members {
        let start = self.values.partition_point(|v| v.as_str() < prefix);
        let end = start + self.values[start..].partition_point(|v| v.starts_with(prefix));
        Members::Range(start as u32, end as u32)
    }

    fn matching(&self, keep: impl Fn(&str) -> bool) -> Members {
        Members::Set(self.values.iter().map(|v| keep(v)).collect())
    }

    fn bytes(&self) -> usize {
        self.values.iter().map(|v| v.capacity() + std::mem::size_of::<String>()).sum()
    }
}

/// Which ids of a dictionary a filter lets through.
#[derive(Debug)]
enum Members {
    Range(u32, u32),
    Set(Vec<bool>),
}

impl Members {
    fn contains(&self, id: u32) -> bool {
        match self {
            Members::Range(a, b) => (*a..*b).contains(&id),
            Members::Set(s) => s[id as usize],
        }
    }
}

fn interner(map: &mut HashMap<String, u32>, value: String) -> u32 {
    let next = map.len() as u32;
    *map.entry(value).or_insert(next)
}

/// One build of the copy.
pub struct Snapshot {
    /// The change it reflects: it is current while no newer change is on the channel.
    version: i64,
    // One entry per record, in (annual wage, id) order.
    id: Vec<i64>,
    wage: Vec<f64>,
    year: Vec<u8>,
    status: Vec<u8>,
    state: Vec<u8>,
    soc: Vec<u16>,
    employer: Vec<u32>,
    title: Vec<u32>,
    place: Vec<u32>,
    // Dictionaries.
    years: Vec<i32>,
    statuses: Dict,
    states: Dict,
    socs: Dict,
    employers: Dict,
    titles: Dict,
    /// `CITY, ST`.
    places: Dict,
    /// Each place's city, ranked among the cities (what sorting by city orders by).
    place_city_rank: Vec<u32>,
    /// Estimated Level I–IV wages per (occupation, state), and per occupation nationally.
    levels: HashMap<(u16, u8), [f64; 4]>,
    national_levels: HashMap<u16, [f64; 4]>,
}

/// What one record holds while the copy is built.
struct Loaded {
    id: i64,
    wage: f64,
    year: i32,
    status: u32,
    state: u32,
    soc: u32,
    employer: u32,
    title: u32,
    place: u32,
}

impl Snapshot {
    /// Reads every record (by primary key, a page at a time) and the market's levels.
    async fn load(db: &Db) -> AppResult<Self> {
        // Read the version first: a change committed during the load triggers another.
        let version = latest_change(db).await?;
        let mut interned: [HashMap<String, u32>; 6] = Default::default();
        let [statuses, states, socs, employers, titles, places] = &mut interned;
        let mut rows: Vec<Loaded> = Vec::new();
        let mut after = 0i64;
        loop {
            let page: Vec<(i64, f64, i32, String, String, String, String, String, String)> = record::Entity::find()
                .select_only()
                .columns([record::Column::Id, record::Column::AnnualWage, record::Column::FiscalYear, record::Column::CaseStatus])
                .columns([record::Column::WorksiteState, record::Column::SocCode, record::Column::EmployerName, record::Column::JobTitle])
                .column(record::Column::WorksiteCity)
                .filter(record::Column::Id.gt(after))
                .order_by_asc(record::Column::Id)
                .limit(LOAD_PAGE)
                .into_tuple()
                .all(&db.conn)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            for (id, wage, year, status, state, soc, employer, title, city) in page {
                let place = format!("{city}, {state}");
                rows.push(Loaded {
                    id,
                    wage,
                    year,
                    status: interner(statuses, status),
                    state: interner(states, state),
                    soc: interner(socs, soc),
                    employer: interner(employers, employer),
                    title: interner(titles, title),
                    place: interner(places, place),
                });
            }
        }
        rows.sort_by(|a, b| a.wage.total_cmp(&b.wage).then(a.id.cmp(&b.id)));
        let [statuses, states, socs, employers, titles, places] = interned;
        if statuses.len() > 256 || states.len() > 256 || socs.len() > 65_536 {
            return Err(AppError::internal_because("too many distinct statuses, states or occupations for the wage copy"));
        }
        let (statuses, status_map) = Dict::sorted(statuses);
        let (states, state_map) = Dict::sorted(states);
        let (socs, soc_map) = Dict::sorted(socs);
        let (employers, employer_map) = Dict::sorted(employers);
        let (titles, title_map) = Dict::sorted(titles);
        let (places, place_map) = Dict::sorted(places);
        let mut years: Vec<i32> = rows.iter().map(|r| r.year).collect();
        years.sort_unstable();
        years.dedup();
        if years.len() > 256 {
            return Err(AppError::internal_because("more than 256 fiscal years in the wage copy"));
        }
        let mut cities: Vec<&str> = places.values.iter().map(|p| city_of(p)).collect();
        cities.sort_unstable();
        cities.dedup();
        let place_city_rank = places.values.iter().map(|p| cities.partition_point(|c| *c < city_of(p)) as u32).collect();
        let n = rows.len();
        let mut s = Self {
            version,
            id: Vec::with_capacity(n),
            wage: Vec::with_capacity(n),
            year: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            state: Vec::with_capacity(n),
            soc: Vec::with_capacity(n),
            employer: Vec::with_capacity(n),
            title: Vec::with_capacity(n),
            place: Vec::with_capacity(n),
            statuses,
            states,
            socs,
            employers,
            titles,
            places,
            place_city_rank,
            levels: HashMap::new(),
            national_levels: HashMap::new(),
            years,
        };
        for r in rows {
            s.id.push(r.id);
            s.wage.push(r.wage);
            s.year.push(s.years.binary_search(&r.year).unwrap_or(0) as u8);
            s.status.push(status_map[r.status as usize] as u8);
            s.state.push(state_map[r.state as usize] as u8);
            s.soc.push(soc_map[r.soc as usize] as u16);
            s.employer.push(employer_map[r.employer as usize]);
            s.title.push(title_map[r.title as usize]);
            s.place.push(place_map[r.place as usize]);
        }
        s.load_levels(db).await?;
        Ok(s)
    }

    /// The estimated prevailing-wage levels of every occupation the records have, per
    /// state and nationally, from the OEWS percentiles.
    async fn load_levels(&mut self, db: &Db) -> AppResult<()> {
        let rows = market::Entity::find().filter(market::Column::AreaType.is_in(["S", "N"])).all(&db.conn).await?;
        for m in rows {
            let Some(soc) = self.socs.find(&m.soc_code) else { continue };
            let Some(levels) = level_wages([m.p10, m.p25, m.p50, m.p75, m.p90]) else { continue };
            match m.area_type.as_str() {
                "N" => {
                    self.national_levels.insert(soc as u16, levels);
                }
                _ => {
                    if let Some(state) = self.states.find(&m.state_code) {
                        self.levels.insert((soc as u16, state as u8), levels);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// What the copy takes in memory: its columns, dictionaries and level tables.
    pub fn memory_bytes(&self) -> usize {
        let columns = self.id.capacity() * 8
            + self.wage.capacity() * 8
            + self.year.capacity()
            + self.status.capacity()
            + self.state.capacity()
            + self.soc.capacity() * 2
            + (self.employer.capacity() + self.title.capacity() + self.place.capacity()) * 4;
        let dicts = [&self.statuses, &self.states, &self.socs, &self.employers, &self.titles, &self.places].iter().map(|d| d.bytes()).sum::<usize>()
            + self.place_city_rank.capacity() * 4
            + self.years.capacity() * 4;
        let levels = (self.levels.capacity() + self.national_levels.capacity()) * (std::mem::size_of::<[f64; 4]>() + 8);
        columns + dicts + levels
    }

    /// The records a filter lets through, checked and compiled against the dictionaries.
    /// The errors name the parameter, as the REST API promises.
    pub fn select(&self, f: &WageFilter) -> AppResult<Selection> {
        let contains = match f.text_match.as_deref().map(str::trim) {
            None | Some("") | Some("prefix") => false,
            Some("contains") => true,
            Some(_) => return Err(AppError::invalid("match", "match is prefix or contains")),
        };
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_uppercase);
        let status = match f.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if s.eq_ignore_ascii_case("any") => None,
            wanted => {
                let wanted = wanted.unwrap_or("Certified");
                Some(self.statuses.matching(|v| v.eq_ignore_ascii_case(wanted)))
            }
        };
        let text_filter = |dict: &Dict, wanted: Option<String>| {
            wanted.map(|w| if contains { dict.matching(|v| v.contains(&w)) } else { dict.prefixed(&w) })
        };
        let soc = match text(&f.soc) {
            None => None,
            Some(s) if !s.chars().all(|ch| ch.is_ascii_digit() || ch == '-') || s.len() > 7 => {
                return Err(AppError::invalid("soc", "soc is a SOC code such as 15-1252, or a prefix such as 15-"))
            }
            Some(s) if s.len() == 7 => Some(self.socs.matching(|v| v == s)),
            Some(s) => Some(self.socs.prefixed(&s)),
        };
        let state = match text(&f.state) {
            None => None,
            Some(s) if s.len() != 2 || !s.chars().all(|ch| ch.is_ascii_alphabetic()) => {
                return Err(AppError::invalid("state", "state is a two-letter code such as WA"))
            }
            Some(s) => Some(self.states.matching(|v| v == s)),
        };
        let place = text(&f.city).map(|city| self.places.matching(|p| city_of(p) == city));
        if let (Some(a), Some(b)) = (f.year_from, f.year_to) {
            if a > b {
                return Err(AppError::invalid("year_to", "year_to is before year_from"));
            }
        }
        let (from, to) = (f.year_from.unwrap_or(i32::MIN), f.year_to.unwrap_or(i32::MAX));
        let years = (f.year_from.is_some() || f.year_to.is_some()).then(|| self.years.iter().map(|y| (from..=to).contains(y)).collect());
        Ok(Selection {
            status,
            employer: text_filter(&self.employers, text(&f.employer)),
            title: text_filter(&self.titles, text(&f.job_title)),
            soc,
            state,
            place,
            years,
        })
    }

    fn passes(&self, s: &Selection, i: usize) -> bool {
        let ok = |m: &Option<Members>, id: u32| m.as_ref().is_none_or(|m| m.contains(id));
        ok(&s.status, self.status[i] as u32)
            && s.years.as_ref().is_none_or(|y: &Vec<bool>| y[self.year[i] as usize])
            && ok(&s.state, self.state[i] as u32)
            && ok(&s.soc, self.soc[i] as u32)
            && ok(&s.place, self.place[i])
            && ok(&s.employer, self.employer[i])
            && ok(&s.title, self.title[i])
    }

    /// Indexes of the selected records, in annual-wage order.
    fn matches<'a>(&'a self, s: &'a Selection) -> impl DoubleEndedIterator<Item = usize> + 'a {
        (0..self.len()).filter(move |&i| self.passes(s, i))
    }

    /// How many records the selection holds.
    pub fn count(&self, s: &Selection) -> u64 {
        self.matches(s).count() as u64
    }

    /// A grouping's key per record (an id into its dictionary) and how keys are named.
    fn grouping(&self, group_by: &str) -> AppResult<(Box<dyn Fn(usize) -> u32 + '_>, usize, Box<dyn Fn(u32) -> String + '_>)> {
        Ok(match group_by {
            "job_title" => (Box::new(|i| self.title[i]), self.titles.len(), Box::new(|k| self.titles.get(k).to_owned())),
            "soc" => (Box::new(|i| self.soc[i] as u32), self.socs.len(), Box::new(|k| self.socs.get(k).to_owned())),
            "employer" => (Box::new(|i| self.employer[i]), self.employers.len(), Box::new(|k| self.employers.get(k).to_owned())),
            "state" => (Box::new(|i| self.state[i] as u32), self.states.len(), Box::new(|k| self.states.get(k).to_owned())),
            "city" => (Box::new(|i| self.place[i]), self.places.len(), Box::new(|k| self.places.get(k).to_owned())),
            "year" => (Box::new(|i| self.year[i] as u32), self.years.len(), Box::new(|k| self.years[k as usize].to_string())),
            _ => return Err(AppError::invalid("group_by", "group_by is job_title, soc, employer, state, city or year")),
        })
    }

    /// Box statistics of the largest groups (at most [`MAX_GROUPS`], by size, then key),
    /// each with the share of its filings paid below the estimated Level II–IV wages.
    pub fn stats(&self, s: &Selection, group_by: &str) -> AppResult<Vec<StatsGroup>> {
        let (key, keys, name) = self.grouping(group_by)?;
        let mut counts = vec![0u32; keys];
        for i in self.matches(s) {
            counts[key(i) as usize] += 1;
        }
        // (n, key, name), by n descending, then name: the k-th is the k-th group's slot.
        let mut ranked: Vec<(u32, u32, String)> = counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(k, n)| (*n, k as u32, name(k as u32))).collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        ranked.truncate(MAX_GROUPS);
        let mut slot = vec![u8::MAX; keys];
        for (n, (_, k, _)) in ranked.iter().enumerate() {
            slot[*k as usize] = n as u8;
        }
        let mut values: Vec<Vec<f64>> = ranked.iter().map(|(n, _, _)| Vec::with_capacity(*n as usize)).collect();
        // Per group: filings whose market is known, and how many fall below Level II, III, IV.
        let mut below = vec![(0usize, [0usize; 3]); ranked.len()];
        for i in self.matches(s) {
            let g = slot[key(i) as usize];
            if g == u8::MAX {
                continue;
            }
            let g = g as usize;
            values[g].push(self.wage[i]);
            if let Some(levels) = self.levels_of(i) {
                below[g].0 += 1;
                for (count, level) in below[g].1.iter_mut().zip(&levels[1..]) {
                    if self.wage[i] < *level {
                        *count += 1;
                    }
                }
            }
        }
        Ok(ranked
            .into_iter()
            .zip(values)
            .zip(below)
            .filter_map(|(((_, _, key), values), (known, under))| {
                let mut stats = stats::summarize(values)?;
                stats.outliers.truncate(MAX_OUTLIERS);
                let share = |k: usize| if known == 0 { 0.0 } else { k as f64 / known as f64 };
                let levels = (known > 0).then(|| LevelShares {
                    known,
                    below_level_ii: share(under[0]),
                    below_level_iii: share(under[1]),
                    below_level_iv: share(under[2]),
                });
                Some(StatsGroup { key, stats, market: None, levels })
            })
            .collect())
    }

    /// The estimated levels of record `i`'s occupation in its state, else nationally.
    fn levels_of(&self, i: usize) -> Option<[f64; 4]> {
        self.levels.get(&(self.soc[i], self.state[i])).or_else(|| self.national_levels.get(&self.soc[i])).copied()
    }

    /// The ids of one page of the selection, sorted by `sort` (then id), ascending or not.
    pub fn page(&self, s: &Selection, sort: Option<&str>, descending: bool, offset: usize, limit: usize) -> AppResult<Vec<i64>> {
        let key: Box<dyn Fn(usize) -> u64 + '_> = match sort.unwrap_or("annual_wage") {
            // Already in (wage, id) order: walk it from either end.
            "annual_wage" | "" => {
                return Ok(if descending {
                    self.matches(s).rev().skip(offset).take(limit).map(|i| self.id[i]).collect()
                } else {
                    self.matches(s).skip(offset).take(limit).map(|i| self.id[i]).collect()
                })
            }
            "employer" => Box::new(|i| self.employer[i] as u64),
            "job_title" => Box::new(|i| self.title[i] as u64),
            "year" => Box::new(|i| self.year[i] as u64),
            "state" => Box::new(|i| self.state[i] as u64),
            "city" => Box::new(|i| self.place_city_rank[self.place[i] as usize] as u64),
            "soc" => Box::new(|i| self.soc[i] as u64),
            _ => return Err(AppError::invalid("sort", "sort is annual_wage, employer, job_title, year, state, city or soc")),
        };
        let mut keyed: Vec<(u64, i64)> = self.matches(s).map(|i| (key(i), self.id[i])).collect();
        if descending {
            keyed.iter_mut().for_each(|(k, id)| (*k, *id) = (u64::MAX - *k, -*id));
        }
        let end = (offset + limit).min(keyed.len());
        if offset >= end {
            return Ok(Vec::new());
        }
        // Only the first `end` need ordering: a selection, then a sort of that prefix.
        if end < keyed.len() {
            keyed.select_nth_unstable(end);
            keyed.truncate(end);
        }
        keyed.sort_unstable();
        Ok(keyed[offset..].iter().map(|(_, id)| if descending { -*id } else { *id }).collect())
    }

    /// The ids of the selection in annual-wage order, at most `limit` (the CSV export).
    pub fn ids_by_wage(&self, s: &Selection, limit: usize) -> Vec<i64> {
        self.matches(s).take(limit).map(|i| self.id[i]).collect()
    }

    /// The selected (group key, annual wage) pairs in record-id order: what a plain
    /// computation of the same statistics starts from (the benchmark's reference).
    pub fn keyed_wages(&self, s: &Selection, group_by: &str) -> AppResult<Vec<(u32, f64)>> {
        let (key, _, _) = self.grouping(group_by)?;
        let mut pairs: Vec<(i64, u32, f64)> = self.matches(s).map(|i| (self.id[i], key(i), self.wage[i])).collect();
        pairs.sort_unstable_by_key(|p| p.0);
        Ok(pairs.into_iter().map(|(_, k, w)| (k, w)).collect())
    }
}

/// `SEATTLE` of `SEATTLE, WA`.
fn city_of(place: &str) -> &str {
    place.rsplit_once(", ").map_or(place, |(c, _)| c)
}

/// A filter compiled against one snapshot's dictionaries (`None`: no restriction).
pub struct Selection {
    status: Option<Members>,
    employer: Option<Members>,
    title: Option<Members>,
    soc: Option<Members>,
    state: Option<Members>,
    place: Option<Members>,
    years: Option<Vec<bool>>,
}


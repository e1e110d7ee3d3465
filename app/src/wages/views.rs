//! The wage portal page: a filter bar mirrored in the URL, a box-and-whisker chart of the
//! annual wage per group against the market, the records table, CSV export, and (for
//! admins) LCA uploads with live progress.

use super::*;
use crate::accounts::Auth;
use crate::ui::{live_ticks, When};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

/// The URL query without empty values (an empty form field means "no filter").
fn clean_query(q: &ParamsMap) -> ParamsMap {
    let mut out = ParamsMap::new();
    for (k, v) in q.latest_values() {
        if !v.trim().is_empty() {
            out.replace(k.clone(), v.to_owned());
        }
    }
    out
}

/// `?a=1&b=x%20y`, escaping only what must be (the router's own escaping turns `_` into
/// `%5F`, which makes shared links unreadable).
fn query_string(q: &ParamsMap) -> String {
    fn escape(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    let pairs: Vec<String> = q.latest_values().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
    if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) }
}

/// `/wages?…` with some parameters replaced (or removed, for `None`).
fn wages_href(q: &ParamsMap, changes: &[(&'static str, Option<String>)]) -> String {
    let mut q = clean_query(q);
    for (k, v) in changes {
        match v {
            Some(v) => q.replace(*k, v.clone()),
            None => drop(q.remove(k)),
        }
    }
    format!("/wages{}", query_string(&q))
}

/// `$123,456`.
pub fn money(v: f64) -> String {
    let whole = v.round() as i64;
    let digits = whole.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{}${out}", if whole < 0 { "-" } else { "" })
}

/// `$120k` for axis ticks.
fn money_short(v: f64) -> String {
    if v.abs() >= 1_000_000.0 {
        format!("${:.1}M", v / 1_000_000.0)
    } else {
        format!("${:.0}k", v / 1000.0)
    }
}

#[component]
pub fn WagesPage() -> impl IntoView {
    let query = use_query_map();
    let search = Memo::new(move |_| query_string(&clean_query(&query.read())).trim_start_matches('?').to_owned());
    let data = Resource::new(move || search.get(), load_wages);
    let auth = Auth::expect();
    view! {
        <main class="page wide">
            <h1>"Wage portal"</h1>
            <p class="lead">
                "Wages offered in labor condition applications (LCA), grouped and drawn as box plots beside the "
                "BLS Occupational Employment and Wage Statistics (OEWS, May 2025) for the same occupation and place."
            </p>
            <FilterBar query/>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) if e.status == 401 => view! {
                            <p class="alert warn"><A href="/login?next=/wages">"Sign in"</A> " to use the wage portal."</p>
                        }.into_any(),
                        Err(e) => view! { <p class="alert error" role="alert" data-field=e.field.clone()>{e.message}</p> }.into_any(),
                        Ok(v) => view! { <WagesBody view=v query/> }.into_any(),
                    }
                })}
            </Suspense>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let admin = auth.viewer.await.ok().flatten().is_some_and(|v| v.is_admin());
                    admin.then(|| view! { <ImportsCard/> })
                })}
            </Transition>
        </main>
    }
}

#[component]
fn FilterBar(query: Memo<ParamsMap>) -> impl IntoView {
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let status = move || query.read().get("status").filter(|s| !s.is_empty()).unwrap_or_else(|| "Certified".into());
    let group_by = move || query.read().get("group_by").filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_GROUP_BY.into());
    let text_match = move || get("match");
    view! {
        <form method="get" action="/wages" class="card filters wage-filters" data-testid="wage-filters">
            <label class="field">"Employer"
                <input name="employer" value=move || get("employer") placeholder="e.g. CONTOSO"/>
            </label>
            <label class="field">"Job title"
                <input name="job_title" value=move || get("job_title") placeholder="e.g. DATA SCIENTIST"/>
            </label>
            <label class="field narrow">"Text match"
                <select name="match">
                    <option value="prefix" selected=move || text_match() != "contains">"starts with"</option>
                    <option value="contains" selected=move || text_match() == "contains">"contains"</option>
                </select>
            </label>
            <label class="field narrow">"SOC code"
                <input name="soc" value=move || get("soc") placeholder="15-1252"/>
            </label>
            <label class="field narrow">"State"
                <input name="state" value=move || get("state") placeholder="WA" maxlength="2"/>
            </label>
            <label class="field">"City"
                <input name="city" value=move || get("city") placeholder="SEATTLE"/>
            </label>
            <label class="field years">"Fiscal years"
                <span class="row tight">
                    <input name="year_from" type="number" min="2000" max="2100" value=move || get("year_from") placeholder="from" aria-label="First fiscal year"/>
                    <input name="year_to" type="number" min="2000" max="2100" value=move || get("year_to") placeholder="to" aria-label="Last fiscal year"/>
                </span>
            </label>
            <label class="field">"Case status"
                <select name="status">
                    {STATUSES.iter().map(|s| view! { <option value=*s selected=move || status() == *s>{*s}</option> }).collect_view()}
                    <option value="any" selected=move || status() == "any">"any status"</option>
                </select>
            </label>
            <label class="field">"Group by"
                <select name="group_by">
                    {GROUP_BY.iter().map(|(k, label)| view! { <option value=*k selected=move || group_by() == *k>{*label}</option> }).collect_view()}
                </select>
            </label>
            <div class="row filter-actions">
                <button type="submit">"Apply"</button>
                <A href="/wages">"Clear"</A>
            </div>
        </form>
    }
}

#[component]
fn WagesBody(view: WagesView, query: Memo<ParamsMap>) -> impl IntoView {
    let group_label = GROUP_BY.iter().find(|(k, _)| *k == view.stats.group_by).map_or("group", |(_, l)| *l);
    let export = format!("/api/v1/wages/export.csv{}", query_string(&clean_query(&query.get_untracked())));
    view! {
        {view.synthetic.then(|| view! {
            <p class="alert warn" data-testid="synthetic-banner">
                <strong>"This installation holds synthetic demo data. "</strong>
                "Rows marked “synthetic” (case numbers SYN-…) were generated from the OEWS percentiles with a fixed seed so the portal has "
                "something to show; they are not real LCA filings. Import a Department of Labor disclosure file for real data."
            </p>
        })}
        {(!view.has_market).then(|| view! {
            <p class="alert info">"No market data yet: run " <code>"server wages import-oews"</code> " to draw the OEWS percentiles."</p>
        })}
        <section class="card">
            <h2>"Annual wage by " {group_label}</h2>
            <BoxPlot groups=view.stats.groups/>
        </section>
        <RecordsTable page=view.records query export/>
    }
}

/// Round numbers for an axis: steps of 1, 2 or 5 × 10ⁿ, about `count` of them.
fn nice_ticks(lo: f64, hi: f64, count: usize) -> (f64, f64, Vec<f64>) {
    let span = (hi - lo).max(1.0);
    let raw = span / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let ticks = (0..=((end - start) / step).round() as usize).map(|i| start + i as f64 * step).collect();
    (start, end, ticks)
}

const PLOT_W: f64 = 1000.0;
const LABEL_W: f64 = 230.0;
const RIGHT_PAD: f64 = 24.0;
const ROW_H: f64 = 44.0;
const AXIS_H: f64 = 34.0;

/// Horizontal box plots, one row per group, with the market's p10–p90 beneath each box.
#[component]
fn BoxPlot(groups: Vec<StatsGroup>) -> impl IntoView {
    if groups.is_empty() {
        return view! { <p class="empty" data-testid="no-groups">"No records match these filters."</p> }.into_any();
    }
    let values = groups.iter().flat_map(|g| {
        let mut v = vec![g.stats.min, g.stats.max];
        if let Some(m) = &g.market {
            v.extend([m.p10, m.p90].into_iter().flatten());
        }
        v
    });
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi, ticks) = nice_ticks(lo, hi, 8);
    let x = move |v: f64| LABEL_W + (v - lo) / (hi - lo).max(1.0) * (PLOT_W - LABEL_W - RIGHT_PAD);
    let height = AXIS_H + ROW_H * groups.len() as f64 + 8.0;
    let (hovered, set_hovered) = signal(None::<usize>);
    let details = groups.clone();
    let figures = groups.clone();
    let any_market = groups.iter().any(|g| g.market.is_some());
    view! {
        <div class="boxplot">
            <svg viewBox=format!("0 0 {PLOT_W} {height}") role="img" aria-label="Box-and-whisker plot of annual wages" data-testid="boxplot">
                <g class="axis">
                    {ticks.iter().map(|t| {
                        let tx = x(*t);
                        view! {
                            <line x1=tx x2=tx y1=AXIS_H - 6.0 y2=height - 4.0 class="grid"/>
                            <text x=tx y=AXIS_H - 12.0 text-anchor="middle">{money_short(*t)}</text>
                        }
                    }).collect_view()}
                </g>
                {groups.into_iter().enumerate().map(|(i, g)| {
                    let top = AXIS_H + ROW_H * i as f64;
                    view! { <BoxRow g i top x set_hovered/> }
                }).collect_view()}
            </svg>
            <div class="boxplot-legend">
                <span><i class="lg-box"></i>"LCA wages: box Q1–Q3, line = median, ◆ mean, whiskers = furthest values within 1.5 IQR (Tukey), dots = outliers"</span>
                {any_market.then(|| view! {
                    <span><i class="lg-market"></i>"Market (BLS OEWS): p25–p75 box, p50 tick, whiskers p10–p90 (not Tukey)"</span>
                })}
                <span><i class="lg-few"></i>"faded: fewer than 4 records, too few for a box"</span>
            </div>
            <div class="boxplot-details" data-testid="boxplot-details">
                {move || match hovered.get().and_then(|i| details.get(i).cloned()) {
                    None => view! { <span class="hint">"Point at a box, or tab to it, for its figures; or open the table below."</span> }.into_any(),
                    Some(g) => view! { <GroupDetails g/> }.into_any(),
                }}
            </div>
            <FiguresTable groups=figures any_market/>
        </div>
    }
    .into_any()
}

/// The plot's text alternative: every figure it draws, as a table.
#[component]
fn FiguresTable(groups: Vec<StatsGroup>, any_market: bool) -> impl IntoView {
    let market = |m: &Option<crate::wages::Market>| {
        m.as_ref().map(|m| format!("{} – {} ({})", m.p10.map(money).unwrap_or("–".into()), m.p90.map(money).unwrap_or("–".into()), m.area)).unwrap_or_else(|| "–".into())
    };
    view! {
        <details class="figures" data-testid="figures">
            <summary>"The plot's figures as a table"</summary>
            <div class="table-wrap" tabindex="0" role="region" aria-label="The plot's figures">
                <table class="data">
                    <caption class="sr-only">"Annual wage per group: the box plot's figures"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Group"</th><th scope="col" class="num">"n"</th><th scope="col" class="num">"Min"</th>
                            <th scope="col" class="num">"Q1"</th><th scope="col" class="num">"Median"</th><th scope="col" class="num">"Q3"</th>
                            <th scope="col" class="num">"Max"</th><th scope="col" class="num">"Mean"</th><th scope="col">"Whiskers"</th>
                            <th scope="col" class="num">"Outliers"</th>
                            {any_market.then(|| view! { <th scope="col">"Market p10 – p90"</th> })}
                        </tr>
                    </thead>
                    <tbody>
                        {groups.into_iter().map(|g| {
                            let s = g.stats;
                            let m = market(&g.market);
                            view! {
                                <tr>
                                    <th scope="row">{g.key}{s.too_few.then(|| " (too few for a box)")}</th>
                                    <td class="num">{s.n}</td><td class="num">{money(s.min)}</td><td class="num">{money(s.q1)}</td>
                                    <td class="num">{money(s.median)}</td><td class="num">{money(s.q3)}</td><td class="num">{money(s.max)}</td>
                                    <td class="num">{money(s.mean)}</td>
                                    <td>{format!("{} – {}", money(s.whisker_low), money(s.whisker_high))}</td>
                                    <td class="num">{s.outliers.len()}</td>
                                    {any_market.then(|| view! { <td>{m}</td> })}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </details>
    }
}

#[component]
fn BoxRow(g: StatsGroup, i: usize, top: f64, x: impl Fn(f64) -> f64 + Copy + Send + Sync + 'static, set_hovered: WriteSignal<Option<usize>>) -> impl IntoView {
    let s = g.stats.clone();
    let mid = top + 16.0;
    let (bh, mh) = (18.0, 8.0);
    let label: String = if g.key.chars().count() > 30 { format!("{}…", g.key.chars().take(29).collect::<String>()) } else { g.key.clone() };
    // A SOC code alone says little: name the occupation beside the count.
    let occupation = g.market.as_ref().filter(|m| m.soc == g.key).map(|m| {
        let name: String = m.occupation.chars().take(26).collect();
        if m.occupation.chars().count() > 26 { format!(" · {name}…") } else { format!(" · {name}") }
    });
    let sub = format!("n = {}{}{}", s.n, if s.too_few { " · too few" } else { "" }, occupation.unwrap_or_default());
    let summary = format!(
        "{} — n {}; min {}, Q1 {}, median {}, Q3 {}, max {}; mean {}; whiskers {} – {}; {} outlier(s){}",
        g.key, s.n, money(s.min), money(s.q1), money(s.median), money(s.q3), money(s.max), money(s.mean),
        money(s.whisker_low), money(s.whisker_high), s.outliers.len(),
        g.market.as_ref().map(|m| format!("; market p10–p90 {} – {} ({})", m.p10.map(money).unwrap_or("–".into()), m.p90.map(money).unwrap_or("–".into()), m.area)).unwrap_or_default(),
    );
    let market = g.market.clone().map(|m| {
        let my = top + 35.0;
        let p = |v: Option<f64>| v.map(x);
        view! {
            <g class="market" data-testid="market">
                {match (p(m.p10), p(m.p90)) {
                    (Some(a), Some(b)) => Some(view! { <line x1=a x2=b y1=my y2=my/> <line x1=a x2=a y1=my - 3.0 y2=my + 3.0/> <line x1=b x2=b y1=my - 3.0 y2=my + 3.0/> }),
                    _ => None,
                }}
                {match (p(m.p25), p(m.p75)) {
                    (Some(a), Some(b)) => Some(view! { <rect x=a y=my - mh / 2.0 width=(b - a).max(1.0) height=mh/> }),
                    _ => None,
                }}
                {p(m.p50).map(|c| view! { <line class="mid" x1=c x2=c y1=my - mh / 2.0 - 1.0 y2=my + mh / 2.0 + 1.0/> })}
            </g>
        }
    });
    view! {
        <g class=if s.too_few { "box-group too-few" } else { "box-group" }
            data-testid="box-group" data-key=g.key.clone() data-n=s.n data-median=s.median data-q1=s.q1 data-q3=s.q3
            data-min=s.min data-max=s.max data-too-few=s.too_few.to_string()
            tabindex="0"
            on:mouseenter=move |_| set_hovered.set(Some(i))
            on:focus=move |_| set_hovered.set(Some(i))>
            <title>{summary}</title>
            <rect class="hover-band" x="0" y=top width=PLOT_W height=ROW_H/>
            <text class="label" x=LABEL_W - 10.0 y=mid + 4.0 text-anchor="end">{label}</text>
            <text class="count" x=LABEL_W - 10.0 y=mid + 17.0 text-anchor="end">{sub}</text>
            <line class="whisker" x1=x(s.whisker_low) x2=x(s.q1) y1=mid y2=mid/>
            <line class="whisker" x1=x(s.q3) x2=x(s.whisker_high) y1=mid y2=mid/>
            <line class="whisker" x1=x(s.whisker_low) x2=x(s.whisker_low) y1=mid - 6.0 y2=mid + 6.0/>
            <line class="whisker" x1=x(s.whisker_high) x2=x(s.whisker_high) y1=mid - 6.0 y2=mid + 6.0/>
            <rect class="box" x=x(s.q1) y=mid - bh / 2.0 width=(x(s.q3) - x(s.q1)).max(1.5) height=bh rx="2"/>
            <line class="median" x1=x(s.median) x2=x(s.median) y1=mid - bh / 2.0 y2=mid + bh / 2.0/>
            <path class="mean" d=format!("M {} {} l 4 4 l -4 4 l -4 -4 z", x(s.mean), mid - 4.0)/>
            {s.outliers.iter().map(|o| view! { <circle class="outlier" cx=x(*o) cy=mid r="2.6"/> }).collect_view()}
            {market}
        </g>
    }
}

#[component]
fn GroupDetails(g: StatsGroup) -> impl IntoView {
    let s = g.stats;
    let cell = |label: &'static str, v: f64| view! { <div><span class="stat-label">{label}</span><strong>{money(v)}</strong></div> };
    view! {
        <div class="details-grid">
            <div class="details-title"><strong>{g.key}</strong><span class="hint">{format!("n = {}{}", s.n, if s.too_few { " (too few for a box)" } else { "" })}</span></div>
            {cell("min", s.min)}{cell("Q1", s.q1)}{cell("median", s.median)}{cell("Q3", s.q3)}{cell("max", s.max)}{cell("mean", s.mean)}
            <div><span class="stat-label">"whiskers"</span><strong>{format!("{} – {}", money(s.whisker_low), money(s.whisker_high))}</strong></div>
            <div><span class="stat-label">"outliers"</span><strong>{s.outliers.len()}</strong></div>
            {g.market.map(|m| view! {
                <div class="details-market">
                    <span class="stat-label">{format!("market · {} · {}", m.area, m.occupation)}</span>
                    <strong>{format!("p10 {} · p25 {} · p50 {} · p75 {} · p90 {}",
                        m.p10.map(money).unwrap_or("–".into()), m.p25.map(money).unwrap_or("–".into()), m.p50.map(money).unwrap_or("–".into()),
                        m.p75.map(money).unwrap_or("–".into()), m.p90.map(money).unwrap_or("–".into()))}</strong>
                </div>
            })}
        </div>
    }
}

const SORTABLE: &[(&str, &str)] = &[
    ("year", "Year"),
    ("employer", "Employer"),
    ("job_title", "Job title"),
    ("soc", "SOC"),
    ("city", "Worksite"),
    ("annual_wage", "Annual wage"),
];

#[component]
fn RecordsTable(page: RecordsPage, query: Memo<ParamsMap>, export: String) -> impl IntoView {
    let q = clean_query(&query.get_untracked());
    let sort = q.get("sort").unwrap_or_else(|| "annual_wage".into());
    let desc = q.get("dir").as_deref() == Some("desc");
    let pages = page.total.div_ceil(page.per_page).max(1);
    let header = |key: &'static str, label: &'static str| {
        let current = sort == key;
        let next_dir = if current && !desc { "desc" } else { "asc" };
        let href = wages_href(&q, &[("sort", Some(key.into())), ("dir", Some(next_dir.into())), ("page", None)]);
        let arrow = if current { if desc { " ▼" } else { " ▲" } } else { "" };
        let class = if key == "annual_wage" { "num" } else { "" };
        view! { <th class=class aria-sort=if current { if desc { "descending" } else { "ascending" } } else { "none" }><A href=href>{label}{arrow}</A></th> }
    };
    let nav = |to: u64, label: &'static str, enabled: bool| {
        let href = wages_href(&q, &[("page", Some(to.to_string()))]);
        if enabled { view! { <A href=href attr:class="btn secondary">{label}</A> }.into_any() } else { view! { <span class="btn secondary disabled">{label}</span> }.into_any() }
    };
    view! {
        <section class="card" data-testid="records">
            <div class="row">
                <h2>"Records " <span class="badge" data-testid="records-total">{page.total}</span></h2>
                <span class="spacer"></span>
                <a href=export class="btn secondary" download="wages.csv" rel="external">"Export CSV"</a>
            </div>
            {if page.records.is_empty() {
                view! { <p class="empty">"No records."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                    <table class="data">
                        <thead><tr>
                            <th>"Case"</th>
                            {SORTABLE.iter().map(|(k, l)| header(k, l)).collect_view()}
                            <th class="num">"Offered"</th>
                            <th class="num">"Prevailing"</th>
                            <th class="num" title="Estimated percentile of the annual wage among the market's (OEWS, state or nation)">"Market pos."</th>
                        </tr></thead>
                        <tbody>
                            {page.records.into_iter().map(|r| view! {
                                <tr data-testid="wage-row" data-wage=r.annual_wage>
                                    <td>
                                        <code>{r.case_number}</code>
                                        {(r.source == "synthetic").then(|| view! { <span class="badge warn">"synthetic"</span> })}
                                        <div class="hint">{r.case_status}</div>
                                    </td>
                                    <td>{r.fiscal_year}</td>
                                    <td>{r.employer_name}</td>
                                    <td>{r.job_title}</td>
                                    <td><code>{r.soc_code}</code><div class="hint truncate">{r.soc_title}</div></td>
                                    <td>{r.worksite_city}", "{r.worksite_state}</td>
                                    <td class="num"><strong>{money(r.annual_wage)}</strong></td>
                                    <td class="num">
                                        {r.wage_from.map(money)}{r.wage_to.filter(|t| Some(*t) != r.wage_from).map(|t| format!(" – {}", money(t)))}
                                        <div class="hint">{format!("per {}", r.wage_unit.to_lowercase())}</div>
                                    </td>
                                    <td class="num">{r.annual_prevailing.map(money)}<div class="hint">{r.pw_level.map(|l| format!("level {l}"))}</div></td>
                                    <td class="num">{r.market_percentile.map(|p| {
                                        let class = if p >= 50.0 { "badge ok" } else { "badge" };
                                        view! { <span class=class>{format!("p{p:.0}")}</span> }
                                    })}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                }.into_any()
            }}
            <div class="row pager">
                {nav(page.page.saturating_sub(1).max(1), "← Previous", page.page > 1)}
                <span class="hint">{format!("page {} of {}", page.page.min(pages), pages)}</span>
                {nav(page.page + 1, "Next →", page.page < pages)}
            </div>
        </section>
    }
}

/// Admins: upload an LCA file and watch its import progress live.
#[component]
fn ImportsCard() -> impl IntoView {
    let ticks = live_ticks("/api/v1/wages/imports/events".into());
    let (uploaded, set_uploaded) = signal(0u32);
    let imports = Resource::new(move || (ticks.get(), uploaded.get()), |_| load_imports());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let file_input = NodeRef::<leptos::html::Input>::new();
    let on_upload = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            let Some(file) = file_input.get().and_then(|i| i.files()).and_then(|f| f.get(0)) else {
                set_error.set(Some("Choose a CSV file first.".into()));
                return;
            };
            set_busy.set(true);
            set_error.set(None);
            leptos::task::spawn_local(async move {
                match upload_file(file).await {
                    Ok(()) => set_uploaded.update(|n| *n += 1),
                    Err(e) => set_error.set(Some(e)),
                }
                set_busy.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (file_input, set_busy, set_error, set_uploaded);
    };
    view! {
        <section class="card" data-testid="imports">
            <h2>"Imports"</h2>
            <form class="row" on:submit=on_upload>
                <label class="field">"LCA disclosure file (CSV)"
                    <input type="file" accept=".csv,text/csv" node_ref=file_input data-testid="lca-file"/>
                </label>
                <button type="submit" disabled=move || busy.get()>{move || if busy.get() { "Uploading…" } else { "Upload and import" }}</button>
            </form>
            <p class="hint">"Header spellings of every year are understood; extra columns are ignored; a case number imported twice is updated, not duplicated. Market data: " <code>"server wages import-oews"</code>"."</p>
            {move || error.get().map(|e| view! { <p class="alert error" role="alert">{e}</p> })}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let list = imports.await.unwrap_or_default();
                    view! {
                        <ul class="imports">
                            {list.into_iter().map(|i| view! { <ImportLine i/> }).collect_view()}
                        </ul>
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ImportLine(i: ImportView) -> impl IntoView {
    let percent = i.percent();
    let badge = match i.state.as_str() {
        "done" => "badge ok",
        "failed" => "badge danger",
        _ => "badge warn",
    };
    view! {
        <li data-testid="import" data-state=i.state.clone() data-new=i.rows_new data-bad=i.rows_bad>
            <div class="row">
                <strong>{i.filename}</strong>
                <span class=badge>{i.state.clone()}</span>
                <span class="hint"><When ms=i.created_at/></span>
                <span class="spacer"></span>
                <span class="hint">{format!("{} new · {} updated · {} bad", i.rows_new, i.rows_updated, i.rows_bad)}</span>
            </div>
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{percent:.0}")>
                <div class="progress-fill" style=format!("width: {percent:.1}%")></div>
            </div>
            {(!i.errors.is_empty()).then(|| view! {
                <details>
                    <summary>{format!("{} bad row(s)", i.rows_bad.max(i.errors.len() as i64))}</summary>
                    <ul class="hint">
                        {i.errors.into_iter().map(|e| view! { <li>{if e.line > 0 { format!("line {}: {}", e.line, e.reason) } else { e.reason }}</li> }).collect_view()}
                    </ul>
                </details>
            })}
        </li>
    }
}

/// Sends the file as the request body (the browser streams it; no form encoding).
#[cfg(feature = "hydrate")]
async fn upload_file(file: web_sys::File) -> Result<(), String> {
    let name = file.name();
    let url = format!("/api/v1/wages/imports?filename={}", js_sys::encode_uri_component(&name));
    let res = gloo_net::http::Request::post(&url)
        .header("content-type", "text/csv")
        .body(file)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.ok() {
        return Ok(());
    }
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    Err(body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| format!("upload failed ({})", res.status())))
}

//! The box-and-whisker chart (SVG), its figures as a table, and the details of the
//! group a pointer or the keyboard is on.

use super::super::*;
use leptos::prelude::*;

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

/// `37%` of a share.
fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// `$120k` for axis ticks.
pub(super) fn money_short(v: f64) -> String {
    if v.abs() >= 1_000_000.0 {
        format!("${:.1}M", v / 1_000_000.0)
    } else {
        format!("${:.0}k", v / 1000.0)
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
pub(super) fn BoxPlot(groups: Vec<StatsGroup>) -> impl IntoView {
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
                            <th scope="col" class="num">"Below Level II"</th><th scope="col" class="num">"Below Level III"</th><th scope="col" class="num">"Below Level IV"</th>
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
                                    {match g.levels {
                                        Some(l) => view! {
                                            <td class="num">{percent(l.below_level_ii)}</td><td class="num">{percent(l.below_level_iii)}</td><td class="num">{percent(l.below_level_iv)}</td>
                                        }.into_any(),
                                        None => view! { <td class="num">"–"</td><td class="num">"–"</td><td class="num">"–"</td> }.into_any(),
                                    }}
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
            {g.levels.map(|l| view! {
                <div class="details-market">
                    <span class="stat-label">{format!("against the estimated prevailing-wage levels · {} filing(s) with a known market", l.known)}</span>
                    <strong>{format!("{} below Level II · {} below Level III · {} below Level IV", percent(l.below_level_ii), percent(l.below_level_iii), percent(l.below_level_iv))}</strong>
                </div>
            })}
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


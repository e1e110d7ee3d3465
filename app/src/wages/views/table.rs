//! The records table: sortable columns, each record against its market and the
//! estimated prevailing-wage levels, paging, and the CSV export link.

use super::super::*;
use super::chart::money;
use super::url::{clean_query, wages_href};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::params::ParamsMap;

const SORTABLE: &[(&str, &str)] = &[
    ("year", "Year"),
    ("employer", "Employer"),
    ("job_title", "Job title"),
    ("soc", "SOC"),
    ("city", "Worksite"),
    ("annual_wage", "Annual wage"),
];

#[component]
pub(super) fn RecordsTable(page: RecordsPage, query: Memo<ParamsMap>, export: String) -> impl IntoView {
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
                            <th title="The highest estimated DOL prevailing-wage level the offer meets (OEWS ≈ 17th, 34th, 50th, 67th percentile)">"Meets level"</th>
                        </tr></thead>
                        <tbody>
                            {page.records.into_iter().map(|view| {
                                let (r, market_percentile, levels) = (view.filing, view.market_percentile, view.levels);
                                let met = levels.as_ref().map(|l| l.met);
                                view! {
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
                                    <td class="num">{market_percentile.map(|p| {
                                        let class = if p >= 50.0 { "badge ok" } else { "badge" };
                                        view! { <span class=class>{format!("p{p:.0}")}</span> }
                                    })}</td>
                                    <td data-testid="meets-level" data-level=met>{levels.map(|l| {
                                        let class = if l.met == 0 { "badge danger" } else { "badge" };
                                        let next = l.wages.get(l.met as usize).map(|w| format!("Level {} would be {}", l.met + 1, money(*w)));
                                        view! { <span class=class title=next>{crate::wages::levels::level_name(l.met)}</span> }
                                    })}</td>
                                </tr>
                            }}).collect_view()}
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


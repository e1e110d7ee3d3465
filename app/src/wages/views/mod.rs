//! The wage portal page: a filter bar mirrored in the URL, a box-and-whisker chart of the
//! annual wage per group against the market, the records table, CSV export, and (for
//! admins) LCA uploads with live progress.

mod chart;
mod imports;
mod table;
mod url;

use super::*;
use crate::accounts::Auth;
use chart::BoxPlot;
use imports::ImportsCard;
use crate::ui::{Audience, Loaded};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;
use table::RecordsTable;
use url::{clean_query, query_string};


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
            <Loaded data=data audience={Audience::SignedIn { next: "/wages", to: " to use the wage portal." }} page=move |v| {
                view! { <WagesBody view=v query/> }.into_any()
            }/>
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
            <p class="hint" data-testid="levels-explained">
                "Prevailing-wage levels: an employer must pay at least the prevailing wage of the job's level. "
                "The DOL sets Levels I–IV at about the 17th, 34th, 50th and 67th percentile of the OEWS wage "
                "distribution for the occupation and area; here they are estimated by interpolating linearly "
                "between the published OEWS percentiles (10th, 25th, 50th, 75th, 90th) of the filing's state "
                "(else the nation). The DOL's own figures (FLAG) come from the full survey and can differ."
            </p>
        </section>
        <RecordsTable page=view.records query export/>
    }
}


//! Admins: upload an LCA file (CSV or the DOL's Excel workbook) and watch its import
//! progress live.

use super::super::*;
use crate::ui::{live_ticks, When};
use leptos::prelude::*;

/// Admins: upload an LCA file and watch its import progress live.
#[component]
pub(super) fn ImportsCard() -> impl IntoView {
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
                set_error.set(Some("Choose a CSV or .xlsx file first.".into()));
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
                <label class="field">"LCA disclosure file (the DOL's .xlsx workbook, or CSV)"
                    <input type="file" accept=".xlsx,.csv,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" node_ref=file_input data-testid="lca-file"/>
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
    let badge = match i.state {
        ImportState::Done => "badge ok",
        ImportState::Failed => "badge danger",
        ImportState::Queued | ImportState::Running => "badge warn",
    };
    view! {
        <li data-testid="import" data-state=i.state.as_str() data-new=i.rows_new data-bad=i.rows_bad>
            <div class="row">
                <strong>{i.filename}</strong>
                <span class=badge>{i.state.as_str()}</span>
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

/// Sends the file as the request body.
#[cfg(feature = "hydrate")]
async fn upload_file(file: web_sys::File) -> Result<(), String> {
    let name = file.name();
    let url = format!("/api/v1/wages/imports?filename={}", js_sys::encode_uri_component(&name));
    let kind = if name.to_ascii_lowercase().ends_with(".xlsx") { "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" } else { "text/csv" };
    crate::ui::post_file(&url, kind, file).await.map(|_| ())
}

//! The wage portal's server functions. Each parses its input, calls one service function
//! and maps the result; the REST handlers in `http.rs` call the same services.

use super::*;

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the wages page shows for the filters in its URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WagesView {
    pub stats: StatsResponse,
    pub records: RecordsPage,
    /// Whether the synthetic demo sample is stored (its rows are badged in the table).
    pub synthetic: bool,
    /// Whether any OEWS market data has been imported.
    pub has_market: bool,
}

/// The page takes its whole URL query, parsed on the server by the same rules as the
/// REST API's (`GET /api/v1/wages/stats`), so a shared link shows the same view and a bad
/// parameter gets the same error naming it.
#[server(prefix = "/_fn", endpoint = "wages_view")]
pub async fn load_wages(query: String) -> Result<WagesView, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let filter: WageFilter = crate::platform::http::parse_query(&query)?;
    let view: ViewParams = crate::platform::http::parse_query(&query)?;
    let descending = sort_descending(view.dir.as_deref())?;
    let stats = service::stats_with_market(&state, &caller, &filter, group_by_or_default(view.group_by.as_deref())).await?;
    let records = service::records(&state, &caller, &filter, view.sort.as_deref(), descending, view.page.unwrap_or(1), PAGE_SIZE).await?;
    Ok(WagesView {
        synthetic: service::has_synthetic(&state.db).await?,
        has_market: service::has_market_data(&state.db).await?,
        stats,
        records,
    })
}

/// The latest imports (admins).
#[server(prefix = "/_fn", endpoint = "wages_imports")]
pub async fn load_imports() -> Result<Vec<ImportView>, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    service::recent_imports(&state.db, &caller).await
}

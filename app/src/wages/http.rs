//! The wage portal's REST routes (under `/api/v1`): records, box statistics, CSV export
//! and LCA uploads. Filter parameters are the page URL's.

use super::domain::*;
use super::service;
use crate::accounts::Caller;
use crate::error::{AppResult, ErrorEnvelope};
use crate::platform::http::ApiQuery;
use crate::platform::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Deserialize, IntoParams)]
pub struct RecordParams {
    /// annual_wage (default), employer, job_title, year, state, city or soc.
    sort: Option<String>,
    /// asc (default) or desc.
    dir: Option<String>,
    /// 1-based page.
    page: Option<u64>,
    /// 1 to 200, default 50.
    per_page: Option<u64>,
}

#[derive(Deserialize, IntoParams)]
pub struct StatsParams {
    /// job_title (default), soc, employer, state, city or year.
    group_by: Option<String>,
}

/// Wage records matching the filters, a page at a time, each with its position in the
/// market (estimated OEWS percentile in its state, else the nation).
#[utoipa::path(get, path = "/wages", tag = "wages", security(("bearer" = [])),
    params(WageFilter, RecordParams),
    responses(
        (status = 200, body = RecordsPage),
        (status = 400, description = "a filter is invalid (named in `field`)", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope)))]
async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<WageFilter>,
    ApiQuery(p): ApiQuery<RecordParams>,
) -> AppResult<Json<RecordsPage>> {
    let descending = sort_descending(p.dir.as_deref())?;
    Ok(Json(service::records(&state, &caller, &filter, p.sort.as_deref(), descending, p.page.unwrap_or(1), p.per_page.unwrap_or(50)).await?))
}

/// Box-and-whisker statistics of the annual wage per group (the 25 largest groups):
/// quartiles by linear interpolation (type 7), Tukey whiskers (furthest values within
/// 1.5 IQR) and outliers; `too_few` under 4 records. `market` holds the BLS OEWS
/// percentiles for the group's occupation and place, when known (p10–p90, not Tukey).
#[utoipa::path(get, path = "/wages/stats", tag = "wages", security(("bearer" = [])),
    params(WageFilter, StatsParams),
    responses(
        (status = 200, body = StatsResponse),
        (status = 400, description = "a filter or group_by is invalid (named in `field`)", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope)))]
async fn wage_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<WageFilter>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> AppResult<Json<StatsResponse>> {
    let group_by = group_by_or_default(p.group_by.as_deref());
    Ok(Json(service::stats_with_market(&state, &caller, &filter, group_by).await?))
}

/// The filtered records as CSV (by annual wage, at most 100,000 rows).
#[utoipa::path(get, path = "/wages/export.csv", tag = "wages", security(("bearer" = [])),
    params(WageFilter),
    responses(
        (status = 200, description = "CSV with a header row", content_type = "text/csv", body = String),
        (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope)))]
async fn export_csv(State(state): State<AppState>, caller: Caller, ApiQuery(filter): ApiQuery<WageFilter>) -> AppResult<impl IntoResponse> {
    let body = service::export_csv(&state, &caller, &filter).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"wages.csv\"")],
        body,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct UploadParams {
    /// The file's name, shown in the import list.
    filename: Option<String>,
}

#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct CsvBody(String);

/// Uploads an LCA disclosure file — the DOL's CSV or Excel workbook (`.xlsx`), the
/// request body as is — and queues its import; any server process's job runner imports
/// it from the object store. Progress is on
/// `GET /wages/imports/{id}` and the SSE stream `GET /wages/imports/events`.
#[utoipa::path(post, path = "/wages/imports", tag = "wages", security(("bearer" = [])),
    params(UploadParams),
    request_body(content = CsvBody, content_type = "text/csv"),
    responses(
        (status = 202, description = "queued", body = ImportView),
        (status = 400, description = "empty body", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "not an admin", body = ErrorEnvelope),
        (status = 413, description = "larger than SB_WAGES_UPLOAD_MAX_MB", body = ErrorEnvelope)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<UploadParams>,
    body: axum::body::Body,
) -> AppResult<(StatusCode, HeaderMap, Json<ImportView>)> {
    let queued = service::receive_upload(&state, &caller, p.filename.as_deref(), body.into_data_stream()).await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = format!("/api/v1/wages/imports/{}", queued.id).parse() {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::ACCEPTED, headers, Json(queued)))
}

/// The latest imports, newest first.
#[utoipa::path(get, path = "/wages/imports", tag = "wages", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<ImportView>),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)))]
async fn list_imports(State(state): State<AppState>, caller: Caller) -> AppResult<Json<Vec<ImportView>>> {
    Ok(Json(service::recent_imports(&state.db, &caller).await?))
}

/// One import: state, bytes read, rows new/updated/bad and the first bad rows' reasons.
#[utoipa::path(get, path = "/wages/imports/{id}", tag = "wages", security(("bearer" = [])),
    params(("id" = i64, Path, description = "import id")),
    responses(
        (status = 200, body = ImportView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
async fn get_import(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<ImportView>> {
    Ok(Json(service::find_import(&state.db, &caller, id).await?))
}

/// Import progress as Server-Sent Events (resumable with Last-Event-ID).
#[utoipa::path(get, path = "/wages/imports/events", tag = "wages", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of import progress", content_type = "text/event-stream", body = crate::platform::changes::ChangeEvent),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)))]
async fn import_events(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> AppResult<impl IntoResponse> {
    let channel = service::imports_channel(&caller)?;
    Ok(crate::platform::changes::sse(state.db.clone(), state.changes.clone(), channel, crate::platform::changes::last_event_id(&headers)))
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_records))
        .routes(routes!(wage_stats))
        .routes(routes!(export_csv))
        .routes(routes!(upload, list_imports))
        .routes(routes!(import_events))
        .routes(routes!(get_import))
}

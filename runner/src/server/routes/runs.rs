//! `GET /runs?job=&outcome=&limit=`: the run history, newest first.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::AppState;
use crate::server::error::ApiError;

/// Rows answered when `limit` is not given, and at most.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 10_000;
/// How long an answer waits for the history's writer; a writer far behind (its buffer
/// full) is answered from what it wrote so far.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    job: Option<String>,
    outcome: Option<String>,
    limit: Option<String>,
}

pub async fn list_runs(
    State(state): State<AppState>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!("{} (known: job, outcome, limit)", e.body_text()))
    })?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, not {l:?}"
                )));
            }
        },
    };
    let Some(history) = &state.service.shared.reports.history else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "this runner keeps no run history (no database)",
        ));
    };
    // Rows the writer is still gathering for its next batch are written first: the answer
    // holds every run that ended before the request.
    history.flush(FLUSH_WAIT).await;
    let rows = history
        .query(q.job.as_deref(), q.outcome.as_deref(), limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"runs": rows})))
}

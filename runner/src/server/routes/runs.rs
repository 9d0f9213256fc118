//! `GET /runs?job=&outcome=&limit=`: the run history, newest first.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::server::AppState;
use crate::server::error::ApiError;

/// Rows answered when `limit` is not given, and at most: page with `job` and `outcome`
/// for more.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1_000;
/// Bytes held for each row asked, before the rows are read: a row is a few hundred bytes,
/// with its error (at most [`crate::run::outcome::MAX_ERROR_BYTES`]) a few thousand.
const ROW_RESERVE: usize = 10 << 10;
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
    extensions: axum::http::Extensions,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
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
    // The answer's bytes are charged before its rows are read, and held until the client
    // has read it: many clients asking and not reading cannot grow the runner.
    let client = crate::server::auth::peer(&extensions)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let busy = |full: crate::server::answers::Full| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("GET /runs: {full}"),
        )
    };
    let mut charge = state
        .answers
        .charge(client, limit as usize * ROW_RESERVE)
        .map_err(busy)?;
    // Rows the writer is still gathering for its next batch are written first: the answer
    // holds every run that ended before the request.
    history.flush(FLUSH_WAIT).await;
    let rows = history
        .query(q.job.as_deref(), q.outcome.as_deref(), limit)
        .await
        .map_err(ApiError::internal)?;
    let answer = serde_json::to_vec(&json!({"runs": rows})).map_err(ApiError::internal)?;
    drop(rows);
    charge.resize(answer.len()).map_err(busy)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        charge.body(answer),
    )
        .into_response())
}

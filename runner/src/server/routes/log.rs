//! `PUT /log/{LEVEL}`: tglib's levels (DEBUG, INFO, WARNING, ERROR, FATAL), applied at once.

use axum::extract::{Path, State};

use crate::server::AppState;
use crate::server::error::ApiError;

/// tglib's level names and the filter each sets.
const LEVELS: &[(&str, &str)] = &[
    ("DEBUG", "debug"),
    ("INFO", "info"),
    ("WARNING", "warn"),
    ("ERROR", "error"),
    ("FATAL", "error"),
];

pub async fn put_log(
    State(state): State<AppState>,
    Path(level): Path<String>,
) -> Result<String, ApiError> {
    let upper = level.to_ascii_uppercase();
    let Some((name, filter)) = LEVELS.iter().find(|(n, _)| *n == upper) else {
        return Err(ApiError::bad_request(format!(
            "unknown log level '{level}' (known: DEBUG, INFO, WARNING, ERROR, FATAL)"
        )));
    };
    let previous = state.service.log.set(filter).map_err(ApiError::internal)?;
    let previous = LEVELS
        .iter()
        .find(|(_, f)| *f == previous)
        .map_or(previous.as_str(), |(n, _)| n);
    Ok(format!("Log level set to {name} from {previous}"))
}

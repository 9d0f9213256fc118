//! `GET /config`, `PUT /config`, `PATCH /config`: tglib's contract, but a new
//! configuration is validated first (a bad one is a 400 and changes nothing), written
//! atomically and applied live, without restarting the process.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};

use crate::config::merge::deep_merge;
use crate::config::secrets;
use crate::config::values::parse_strict;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::service::ApplyError;

/// The configuration in force, its secrets shown as `"***"` (this route is open).
pub async fn get_config(State(state): State<AppState>) -> Json<Value> {
    Json(secrets::redact(&state.service.raw_config()))
}

/// The `config` object of a `{"config": {...}}` body. A key repeated in one object (two
/// pipelines of the same name) is refused, not silently collapsed.
fn config_of(body: Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
    let body = parse_strict(text).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not valid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    match body.get("config") {
        Some(Value::Object(c)) => Ok(c.clone()),
        Some(_) => Err(ApiError::bad_request("'config' must be a JSON object")),
        None => Err(ApiError::bad_request(
            "the body needs a 'config' object: {\"config\": {...}}",
        )),
    }
}

/// Applies `make(the configuration in force)`, read under the service's lock.
async fn apply(
    state: &AppState,
    make: impl FnOnce(&Value) -> Value,
) -> Result<Json<Value>, ApiError> {
    let mut sent = Value::Null;
    let result = state
        .service
        .apply_with(|stored| {
            sent = make(stored);
            sent.clone()
        })
        .await;
    let new = sent;
    match result {
        Ok(applied) => {
            // In a cluster, every replica follows the bucket and applies it too.
            if let Some(cluster) = &state.service.shared.cluster
                && let Err(e) = cluster.config.put(&new).await
            {
                return Err(ApiError::new(
                    axum::http::StatusCode::BAD_GATEWAY,
                    format!("configuration applied on this replica only: {e:#}; send it again"),
                ));
            }
            Ok(Json(json!({
            "status": "success",
            "message": if applied.restart_required {
                "Configuration applied; client and runner settings take effect at the next start"
            } else {
                "Configuration applied"
            },
            "applied": applied,
            })))
        }
        Err(ApplyError::Invalid(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(e @ ApplyError::Stopped) => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Replaces the whole configuration.
pub async fn put_config(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let new = Value::Object(config_of(body)?);
    apply(&state, |stored| {
        // A secret sent back as GET showed it ("***") keeps its stored value.
        let mut new = new;
        secrets::restore(&mut new, stored);
        new
    })
    .await
}

/// Deep-merges the body's `config` into the configuration (objects key by key, everything
/// else replaced, as tglib).
pub async fn patch_config(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let patch = config_of(body)?;
    apply(&state, |stored| {
        let mut merged = stored.as_object().cloned().unwrap_or_default();
        deep_merge(&mut merged, &patch);
        let mut merged = Value::Object(merged);
        secrets::restore(&mut merged, stored);
        merged
    })
    .await
}

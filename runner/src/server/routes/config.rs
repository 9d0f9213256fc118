//! `GET /config`, `PUT /config`, `PATCH /config`: tglib's contract, but a new
//! configuration is validated first (a bad one is a 400 and changes nothing), written
//! atomically and applied live, without restarting the process. `GET` answers the
//! configuration's version as `ETag`; a write with `If-Match` applies only to that version
//! (409 otherwise), so two operators cannot silently undo each other.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::merge::deep_merge;
use crate::config::secrets;
use crate::config::values::parse_strict;
use crate::config::version::Expected;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::service::ApplyError;

/// The configuration in force, its secrets shown as `"***"` (this route is open), with
/// its version as `ETag`.
pub async fn get_config(State(state): State<AppState>) -> Response {
    let shown = secrets::redact(&state.service.raw_config());
    let version = crate::config::version::of_shown(&shown);
    (etag(&version), Json(shown)).into_response()
}

/// The `ETag` header of `version`.
fn etag(version: &str) -> [(HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// What the request's `If-Match` asks for, if it has one.
fn expected(headers: &HeaderMap) -> Result<Option<Expected>, ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut tags = Vec::new();
    for value in values {
        let text = value
            .to_str()
            .map_err(|_| ApiError::bad_request("If-Match is not ASCII text"))?;
        match Expected::parse(text).map_err(ApiError::bad_request)? {
            Expected::Any => return Ok(Some(Expected::Any)),
            Expected::OneOf(t) => tags.extend(t),
        }
    }
    Ok(Some(Expected::OneOf(tags)))
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
/// With an `If-Match` that names another version, nothing changes: 409 and the current
/// version as `ETag`.
async fn apply(
    state: &AppState,
    headers: &HeaderMap,
    make: impl FnOnce(&Value) -> Value,
) -> Result<Response, ApiError> {
    let expected = expected(headers)?;
    let mut sent = Value::Null;
    let result = state
        .service
        .apply_with(expected.as_ref(), |stored| {
            sent = make(stored);
            sent.clone()
        })
        .await;
    let new = sent;
    match result {
        Ok(applied) => {
            // In a cluster, every replica follows the bucket and applies it too.
            if let Some(cluster) = &state.service.cluster
                && let Err(e) = cluster.config.put(&new).await
            {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("configuration applied on this replica only: {e:#}; send it again"),
                ));
            }
            let body = Json(json!({
                "status": "success",
                "message": if applied.restart_required {
                    "Configuration applied; client and runner settings take effect at the next start"
                } else {
                    "Configuration applied"
                },
                "version": applied.version,
                "applied": applied,
            }));
            Ok((etag(&applied.version), body).into_response())
        }
        Err(ApplyError::Stale { current }) => {
            let tag = etag(&current);
            let message = ApplyError::Stale { current }.to_string();
            Ok((tag, ApiError::new(StatusCode::CONFLICT, message)).into_response())
        }
        Err(ApplyError::Invalid(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(e @ ApplyError::Stopped) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Replaces the whole configuration.
pub async fn put_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new = Value::Object(config_of(body)?);
    apply(&state, &headers, |stored| {
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
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let patch = config_of(body)?;
    apply(&state, &headers, |stored| {
        let mut merged = stored.as_object().cloned().unwrap_or_default();
        deep_merge(&mut merged, &patch);
        let mut merged = Value::Object(merged);
        secrets::restore(&mut merged, stored);
        merged
    })
    .await
}

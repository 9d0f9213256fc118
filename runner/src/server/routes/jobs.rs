//! `GET /jobs`, `GET /jobs/{name}`, `POST /jobs/{name}/run`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::config::Config;
use crate::run::JobId;
use crate::server::AppState;
use crate::server::error::ApiError;

/// One entry per job of every pipeline.
fn entries(state: &AppState, config: &Config, only: Option<&str>) -> Vec<Value> {
    let shared = &state.service.shared;
    config
        .service
        .pipelines
        .iter()
        .flat_map(|p| p.jobs.iter().enumerate().map(move |(i, j)| (p, i, j)))
        .filter(|(_, _, j)| only.is_none_or(|n| *j.name == *n))
        .map(|(p, index, j)| {
            let info = shared.execution.modules.info(&j.module).unwrap_or_default();
            let path = shared.execution.modules.path_of(&j.module);
            let state = match (&info.version, &info.error) {
                (Some(_), _) => "loaded",
                (None, Some(_)) => "invalid",
                (None, None) if path.as_ref().is_some_and(|p| p.exists()) => "not loaded yet",
                (None, None) => "missing",
            };
            let module = json!({
                "name": &*j.module,
                "state": state,
                "path": path,
                "version": info.version,
                "previous_version": info.previous_version,
                "error": info.error,
                "loaded_ms": info.loaded_ms,
            });
            let record = shared
                .reports
                .book
                .of_row(&JobId::new(&p.name, index, &j.name))
                .unwrap_or_default();
            json!({
                "name": &*j.name,
                "pipeline": &*p.name,
                "index": index,
                "period_s": p.timing.schedule.period().map(|d| d.as_secs_f64()),
                "schedule": p.timing.schedule.describe(),
                "overlap": j.overlap,
                "retries": j.retry.max,
                "enabled": j.enabled,
                // Open to anyone who can reach the runner: a password among the params
                // is shown as `GET /config` shows it.
                "params": crate::config::secrets::redact(
                    &serde_json::from_str::<Value>(&j.params).unwrap_or(Value::Null)
                ),
                // Likewise a secret-named variable of its environment.
                "env": crate::config::secrets::redact(&Value::Object(
                    j.env.iter().map(|(n, v)| (n.clone(), Value::from(v.as_str()))).collect()
                )),
                "timeout_s": j.limits.timeout.as_secs_f64(),
                "memory_mb": j.limits.memory_bytes >> 20,
                "module": module,
                "last_run": record,
            })
        })
        .collect()
}

pub async fn list_jobs(State(state): State<AppState>) -> Json<Value> {
    let config = state.service.config();
    Json(json!({"jobs": entries(&state, &config, None)}))
}

pub async fn get_job(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let config = state.service.config();
    let found = entries(&state, &config, Some(&name));
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "no job '{name}' in the configuration"
        )));
    }
    Ok(Json(json!({"name": name, "entries": found})))
}

/// Runs a job now, outside its schedule (pipeline `manual`), with the body's `params` or
/// the configured ones; answers when the run has ended, with its report.
pub async fn run_job(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: none runs the job with its configured params.
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?
    };
    let params = match body.get("params") {
        None | Some(Value::Null) => None,
        Some(p @ Value::Object(_)) => Some(p.to_string()),
        Some(_) => return Err(ApiError::bad_request("'params' must be a JSON object")),
    };
    let report = state.service.run_now(&name, params).await?;
    Ok(Json(json!({
        "job": report.job,
        "run_id": report.run_id,
        "outcome": report.outcome.name(),
        "detail": (!report.outcome.is_ok()).then(|| report.outcome.detail()),
        "duration_ms": report.duration.as_secs_f64() * 1e3,
        "module_version": report.module_version,
        "logs": report.logs,
        "metrics": report.metrics,
    })))
}

pub use crate::modules::MAX_MODULE_BYTES;

/// `PUT /jobs/{name}/module`: the component bytes as the body. Compiled and checked first;
/// a bad one is a 400 with the reason and the old version keeps running.
pub async fn put_module(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // A route handler's module swaps the same way, in the handlers' registry.
    let version = state.service.upload_module(&name, body.to_vec()).await?;
    Ok(Json(json!({
        "status": "success",
        "message": format!("'{name}' now runs version {version}"),
        "version": version,
    })))
}

/// `POST /jobs/{name}/rollback`: back to the previous version.
pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = state.service.roll_back(&name).await?;
    Ok(Json(json!({
        "status": "success",
        "message": format!("'{name}' rolled back from {from} to {to}"),
        "version": to,
    })))
}

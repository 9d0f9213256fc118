//! The dashboard: `GET /` is one self-contained page (no build step, no asset from
//! elsewhere) that polls `GET /dashboard/state` and acts through the runner's own
//! mutating routes, so it needs no authority of its own.
//!
//! - [`health`]: the clients' health, cached so polls never wait on a client.

pub mod health;

use axum::Json;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};

use super::AppState;
use crate::run::JobId;

const PAGE: &str = include_str!("page.html");

/// `GET /`: the page.
pub async fn page() -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "no-cache")],
        Html(PAGE),
    )
}

/// `GET /dashboard/state`: everything the page shows, in one answer. Failures' log lines
/// only to whoever may act (they may hold what a job read), as the mutating routes decide.
pub async fn state(State(state): State<AppState>, req: axum::extract::Request) -> Json<Value> {
    let operator = super::auth::check(&state, &req).is_ok();
    let service = &state.service;
    let shared = &service.shared;
    let config = service.config();
    let pipelines: Vec<Value> = config
        .service
        .pipelines
        .iter()
        .map(|p| {
            let jobs: Vec<Value> = p
                .jobs
                .iter()
                .enumerate()
                .map(|(index, j)| {
                    let module = shared.execution.modules.info(&j.module).unwrap_or_default();
                    // The row's own runs and its module's runs by hand (a module listed
                    // twice is two rows, each with its own runs).
                    let id = JobId::new(&p.name, index, &j.name);
                    json!({
                        "name": &*j.name,
                        "index": index,
                        "enabled": j.enabled,
                        "overlap": j.overlap,
                        "module": module,
                        "last_run": shared.reports.book.of_row(&id),
                        "recent": shared.reports.recent.of_row(&id),
                    })
                })
                .collect();
            json!({
                "name": &*p.name,
                "schedule": p.timing.schedule.describe(),
                "next_due_ms": shared.next_due.get(&p.name),
                "jobs": jobs,
            })
        })
        .collect();
    let failures: Vec<Value> = shared
        .reports
        .recent
        .failures()
        .iter()
        .map(|r| {
            json!({
                "job": r.job,
                "pipeline": r.pipeline,
                "run_id": r.run_id,
                "started_ms": r.started_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
                "outcome": r.outcome.name(),
                "error": r.outcome.detail(),
                "attempt": r.attempt,
                "logs": operator.then(|| r.logs.iter().map(|l| json!({"level": l.level, "message": l.message})).collect::<Vec<_>>()),
            })
        })
        .collect();
    let clients: Vec<Value> = state
        .health
        .get(service)
        .await
        .into_iter()
        .map(|(name, ok)| json!({"name": name, "healthy": ok}))
        .collect();
    Json(json!({
        "now_ms": chrono::Utc::now().timestamp_millis(),
        "version": env!("CARGO_PKG_VERSION"),
        "cluster": service.cluster.as_ref().map(|c| c.settings.name.clone()),
        // How actions are allowed: with the admin token, or from loopback only.
        "auth": if service.admin_token.is_some() { "token" } else { "loopback" },
        // Whether this request may act (and so sees failures' log lines).
        "operator": operator,
        "clients": clients,
        "pipelines": pipelines,
        "failures": failures,
    }))
}

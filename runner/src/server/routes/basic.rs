//! `GET /status` and `GET /health`, as tglib.

use axum::Json;
use axum::extract::State;

use crate::server::AppState;

pub async fn status() -> &'static str {
    "Alive"
}

/// `{"success": bool, "healthy": [...], "unhealthy": [...]}` over the configured clients.
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let mut report = state.service.services.clients.health().await;
    // In cluster mode, the NATS connection is a client like the others: without it this
    // replica neither produces nor consumes.
    if let Some(cluster) = &state.service.shared.cluster {
        report.push(("nats", cluster.connected()));
    }
    let healthy: Vec<&str> = report
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(n, _)| *n)
        .collect();
    let unhealthy: Vec<&str> = report
        .iter()
        .filter(|(_, ok)| !*ok)
        .map(|(n, _)| *n)
        .collect();
    Json(serde_json::json!({
        "success": unhealthy.is_empty(),
        "healthy": healthy,
        "unhealthy": unhealthy,
    }))
}

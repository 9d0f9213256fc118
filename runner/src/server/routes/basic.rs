//! `GET /status` and `GET /health`, as tglib.

use axum::Json;
use axum::extract::State;

use crate::server::AppState;
use crate::service::Service;

pub async fn status() -> &'static str {
    "Alive"
}

/// Every configured client (and NATS in a cluster) with whether it answers.
pub async fn clients_health(service: &Service) -> Vec<(&'static str, bool)> {
    let mut report = service.services.clients.health().await;
    // In cluster mode, the NATS connection is a client like the others: without it this
    // replica neither produces nor consumes.
    if let Some(cluster) = &service.cluster {
        report.push(("nats", cluster.connected()));
    }
    report
}

/// `{"success": bool, "healthy": [...], "unhealthy": [...]}` over the configured clients.
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let report = clients_health(&state.service).await;
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

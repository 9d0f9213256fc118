//! `GET /livez` and `GET /readyz`: the probes a load balancer, Kubernetes or systemd asks.
//! `/health` stays tglib's (200 whatever the clients say); these answer with the status a
//! probe acts on.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::server::AppState;

/// Alive: the process answers HTTP. (Whether it should get work is `/readyz`.)
pub async fn livez() -> Json<Value> {
    Json(json!({"live": true}))
}

/// Ready: every enabled job's and every route's module loads, and every configured
/// client (NATS too, in a cluster) answers; else 503 with each reason. Client answers come
/// from the dashboard's cache (at most 5 s old), so a probe never waits on a client's
/// timeout.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let service = &state.service;
    let config = service.config();
    let mut not_ready = Vec::new();
    let modules = &service.shared.execution.modules;
    // Loaded at start; one a live change added is loaded here (once: it stays loaded).
    for name in config.service.enabled_modules() {
        if let Err(outcome) = modules.get(&name).await {
            not_ready.push(format!("job module '{name}': {}", outcome.detail()));
        }
    }
    for route in &config.service.routes {
        if let Err(outcome) = service.handlers.get(&route.module).await {
            not_ready.push(format!(
                "route module '{}': {}",
                route.module,
                outcome.detail()
            ));
        }
    }
    for (client, ok) in state.health.get(service).await {
        if !ok {
            not_ready.push(format!("client {client}: does not answer"));
        }
    }
    // Each holds a connection of the jobs' pool until it stops; jobs' SQL waits meanwhile.
    let abandoned = crate::clients::sql::session::abandoned_statements();
    if abandoned > 0 {
        not_ready.push(format!(
            "sql: {abandoned} statement(s) of ended runs still running, each holding a connection (tgrun_sql_abandoned_statements)"
        ));
    }
    let status = if not_ready.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": not_ready.is_empty(), "not_ready": not_ready})),
    )
}

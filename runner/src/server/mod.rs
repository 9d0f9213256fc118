//! The HTTP server: tglib's `GET /status`, `GET /health` and `GET /metrics`. The other
//! routes come with the HTTP issue.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::host::Services;

/// What the routes read.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
}

/// The router, built apart from the listener so tests can call it directly.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn status() -> &'static str {
    "Alive"
}

/// tglib's answer: `{"success": bool, "healthy": [...], "unhealthy": [...]}`.
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let report = state.services.clients.health().await;
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

/// The series jobs wrote, in the text exposition format. A scrape does not clear them.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.services.metrics.render(),
    )
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn router() -> axum::Router {
        super::router(super::AppState {
            services: std::sync::Arc::new(crate::host::Services::default()),
        })
    }

    #[tokio::test]
    async fn status_answers_alive() {
        let res = router()
            .oneshot(Request::get("/status").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"Alive");
    }

    #[tokio::test]
    async fn unknown_routes_are_404() {
        let res = router()
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_serves_the_cache_and_a_scrape_keeps_it() {
        let services = std::sync::Arc::new(crate::host::Services::default());
        services
            .metrics
            .write(
                "j",
                &[crate::metrics::Sample {
                    name: "m".into(),
                    labels: vec![("a".into(), "x\"y".into())],
                    value: 1.5,
                    time_ms: Some(7),
                }],
            )
            .unwrap();
        let app = super::router(super::AppState { services });
        for _ in 0..2 {
            let res = app
                .clone()
                .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
            assert_eq!(&body[..], b"m{a=\"x\\\"y\"} 1.5 7\n");
        }
    }

    #[tokio::test]
    async fn health_with_no_clients_is_a_success() {
        let res = router()
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"success": true, "healthy": [], "unhealthy": []})
        );
    }
}

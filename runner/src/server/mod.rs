//! The HTTP server: tglib's `GET /status`. The other routes come with the HTTP issue.

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The router, built apart from the listener so tests can call it directly.
pub fn router() -> Router {
    Router::new().route("/status", get(status))
}

async fn status() -> &'static str {
    "Alive"
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

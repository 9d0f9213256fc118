//! The HTTP server: tglib's routes (`/status`, `/health`, `/metrics`, `/config`, `/log`)
//! and the runner's own (`/jobs`). Mutating routes go through [`auth`].
//!
//! - [`error`]: tglib's JSON errors; unexpected ones are logged and answered with a fixed
//!   message.
//! - [`routes`]: one file per group of routes.
//! - [`docs`]: `/docs` and `/docs.yml`, the OpenAPI description of every route.
//! - [`dashboard`]: `GET /`, the page operators look at, and the state it polls.
//! - [`answers`]: bytes of large answers in flight, bounded per client and in all.

pub mod answers;
pub mod auth;
pub mod dashboard;
pub mod docs;
pub mod error;
pub mod routes;
pub mod socket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// What the routes read: the service, and what the server itself keeps (the clients'
/// health as the dashboard shows it).
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub health: Arc<dashboard::health::HealthCache>,
    pub answers: Arc<answers::AnswerBudget>,
}

impl AppState {
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            health: Default::default(),
            answers: Default::default(),
        }
    }
}

/// A route a library user adds beside the runner's: method, path and handler.
pub type ExtraRoute = (
    &'static str,
    &'static str,
    axum::routing::MethodRouter<AppState>,
);

/// The runner's router plus routes of the embedding program. A route that repeats a
/// built-in method and path is refused, naming both (tglib's `DuplicateRouteError`).
pub fn router_with(state: AppState, extra: Vec<ExtraRoute>) -> Result<Router, String> {
    let mut own = Router::new();
    for (method, path, handler) in extra {
        if let Some((m, p)) = crate::config::service::BUILTIN_ROUTES
            .iter()
            .find(|(m, p)| *m == method && crate::config::service::same_route(p, path))
        {
            return Err(format!(
                "route {method} {path} repeats the runner's built-in route {m} {p} (DuplicateRouteError)"
            ));
        }
        own = own.route(path, handler);
    }
    Ok(router(state.clone()).merge(
        own.with_state(state)
            .layer(axum::middleware::map_response(frame_guard)),
    ))
}

/// Headers on every answer of the runner. No page of another site may frame it: a click
/// in a frame is the operator's click, with the operator's authority (clickjacking). No
/// answer is sniffed into another type than the one it says (a JSON body holding markup
/// stays JSON).
async fn frame_guard(mut res: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Appended, not set: a policy of the answer's own (a route handler's sandbox) stays,
    // and every policy given is enforced.
    h.append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    res
}

/// The router, built apart from the listener so tests can call it directly.
pub fn router(state: AppState) -> Router {
    let mutating = Router::new()
        .route(
            "/config",
            put(routes::config::put_config).patch(routes::config::patch_config),
        )
        .route("/log/{level}", put(routes::log::put_log))
        .route("/jobs/{name}/run", post(routes::jobs::run_job))
        .route(
            "/jobs/{name}/module",
            put(routes::jobs::put_module).layer(axum::extract::DefaultBodyLimit::max(
                routes::jobs::MAX_MODULE_BYTES,
            )),
        )
        .route("/jobs/{name}/rollback", post(routes::jobs::rollback))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route("/status", get(routes::basic::status))
        .route("/health", get(routes::basic::health))
        .route("/livez", get(routes::probes::livez))
        .route("/readyz", get(routes::probes::readyz))
        .route("/metrics", get(routes::metrics::metrics))
        .route("/config", get(routes::config::get_config))
        .route("/jobs", get(routes::jobs::list_jobs))
        .route("/jobs/{name}", get(routes::jobs::get_job))
        .route("/runs", get(routes::runs::list_runs))
        .route("/", get(dashboard::page))
        .route("/dashboard/state", get(dashboard::state))
        .route("/docs", get(docs::docs))
        .route("/docs.yml", get(docs::docs_yml))
        .merge(mutating)
        .fallback(routes::handlers::dispatch)
        .with_state(state)
        .layer(axum::middleware::map_response(frame_guard))
}

/// How long a client may leave an answer unread before its connection is dropped (see
/// [`socket`]).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` is cancelled. Clients' addresses reach
/// the handlers (for the loopback rule of [`auth`]); a client that stops reading an answer
/// is dropped after `send_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    send_timeout: std::time::Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(move |tcp| {
        if let Err(e) = socket::send_timeout(tcp, send_timeout) {
            tracing::debug!("TCP_USER_TIMEOUT on a client connection: {e}");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

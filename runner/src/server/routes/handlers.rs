//! Routes answered by components: every request that matches no built-in route is looked
//! up in the configuration's `routes` and, if found, answered by a fresh instance of its
//! handler, with the route's limits and capabilities. Each request is a run: booked, in the
//! history (under its own retention, `runner.history_route_max_rows`), on `/metrics`. At
//! most the route's `max_concurrent` requests run at once ([`crate::service::route_slots`]); an answer
//! HTTP cannot carry is a 500 and the run's outcome an error, as is a 5xx the handler sends.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::bindings::handler::tgrun::job::http_types::Request as WireRequest;
use crate::run::{Invocation, JobId};
use crate::scheduler::unix_ms;
use crate::server::AppState;
use crate::server::error::ApiError;

type Routes = [std::sync::Arc<crate::config::service::RouteSpec>];

/// The configured route that answers `method path`: one whose path is `path` itself, else
/// one whose pattern matches it (`{name}` is one segment, the handler's `match_info`). A
/// GET route answers HEAD too (as aiohttp's `allow_head`; the server sends no body).
fn find<'a>(
    routes: &'a Routes,
    method: &Method,
    path: &str,
) -> Option<&'a crate::config::service::RouteSpec> {
    let answers = |r: &crate::config::service::RouteSpec| r.method == method.as_str();
    let head = |r: &crate::config::service::RouteSpec| *method == Method::HEAD && r.method == "GET";
    let exact = |r: &&std::sync::Arc<crate::config::service::RouteSpec>| r.path == path;
    let pattern = |r: &&std::sync::Arc<crate::config::service::RouteSpec>| {
        crate::config::service::same_route(&r.path, path)
    };
    routes
        .iter()
        .filter(exact)
        .find(|r| answers(r))
        .or_else(|| routes.iter().filter(pattern).find(|r| answers(r)))
        .or_else(|| routes.iter().filter(exact).find(|r| head(r)))
        .or_else(|| routes.iter().filter(pattern).find(|r| head(r)))
        .map(|r| &**r)
}

/// No configured route for this method and path: 405 with the methods the path has (as
/// aiohttp's router answers a tglib service's clients), else 404.
fn no_route(routes: &Routes, path: &str) -> Response {
    let mut allowed: Vec<&str> = routes
        .iter()
        .filter(|r| crate::config::service::same_route(&r.path, path))
        .map(|r| r.method.as_str())
        .collect();
    if allowed.is_empty() {
        return ApiError::not_found(format!("no route {path}")).into_response();
    }
    allowed.sort_unstable();
    allowed.dedup();
    let allow = allowed.join(", ");
    // Byte for byte as tglib's error middleware answers aiohttp's 405 (Python's
    // `json.dumps`), with `Allow` saying the path's methods.
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        r#"{"status": "error", "message": "405: Method Not Allowed"}"#,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(axum::http::header::ALLOW, v);
    }
    response
}

/// Answers a request no built-in route takes, with a route handler's answer under the
/// `sandbox` policy: a handler's page is served from the runner's address, and without it
/// its scripts would act with the operator's authority (run a job, change the
/// configuration). Sandboxed, the page has an opaque origin: no script runs, and a
/// request it makes anyway is another site's, refused as such by [`crate::server::auth`].
pub async fn dispatch(
    state: State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut res = answer_route(state, method, uri, headers, body).await;
    // Appended: the handler's own policies stay, and the browser enforces them all (a
    // handler's `sandbox allow-scripts` cannot loosen this one).
    res.headers_mut().append(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    res
}

async fn answer_route(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = state.service.config();
    let Some(route) = find(&config.service.routes, &method, uri.path()) else {
        return no_route(&config.service.routes, uri.path());
    };
    let name = format!("{} {}", route.method, route.path);
    let query: Vec<(String, String)> = match serde_urlencoded::from_str(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return ApiError::bad_request(format!("query string: {e}")).into_response(),
    };
    let request = WireRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query,
        headers: headers
            .iter()
            .filter(|(k, _)| route.forward_credentials || !CREDENTIALS.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let _slot = match state.service.route_slots.take(&name, route.max_concurrent) {
        Ok(slot) => slot,
        Err(full) => return busy(&name, full),
    };
    let shared = &state.service.shared;
    let inv = Invocation::new(
        JobId::new(
            &format!("{}{name}", crate::config::service::ROUTE_PIPELINE).into(),
            0,
            &route.module,
        ),
        shared.run_ids.next(),
        unix_ms(),
        "{}".into(),
        route.limits,
        route.grants,
    )
    .with_env(&route.env)
    .with_outbound(&route.outbound);
    let component = match state.service.handlers.get(&route.module).await {
        Ok(c) => c,
        Err(outcome) => {
            tracing::error!(route = %name, "{}", outcome.detail());
            return ApiError::internal_with(format!("route {name}: {}", outcome.detail()))
                .into_response();
        }
    };
    let (response, mut report) = shared
        .execution
        .sandbox
        .handle(&component, request, &inv, true)
        .await;
    // An answer HTTP cannot carry is the handler's failure, recorded as such; so is a 5xx
    // it chose to send (a tglib route's unexpected exception is answered 500 by the guest,
    // its traceback in the run's log), though that answer is still sent.
    let response = response.map(|r| {
        let status = r.status;
        let res = answer(r).map_err(|why| {
            report.outcome = crate::Outcome::Error {
                kind: "failed".into(),
                message: format!("the handler's answer {why}"),
            };
        });
        if res.is_ok() && status >= 500 && matches!(report.outcome, crate::Outcome::Ok) {
            report.outcome = crate::Outcome::Error {
                kind: "failed".into(),
                message: answered_error(status, &report.logs),
            };
        }
        res
    });
    let report = shared.reports.finish(report);
    match response {
        // HEAD: the GET handler's status and headers, no body.
        Some(Ok(mut r)) if method == Method::HEAD => {
            *r.body_mut() = Body::empty();
            r
        }
        Some(Ok(r)) => r,
        Some(Err(())) => {
            ApiError::internal(format!("route {name}: {}", report.outcome.detail())).into_response()
        }
        None => match &report.outcome {
            // The handler's own error value: its message is meant to be read.
            crate::Outcome::Error { message, .. } => {
                ApiError::internal_with(message.clone()).into_response()
            }
            // A limit or a trap: said in the log, not to the client.
            other => {
                ApiError::internal(format!("route {name}: {}", other.detail())).into_response()
            }
        },
    }
}

/// The error of a run whose handler answered `status` (5xx): the status, and the last line
/// the run logged at error level, which says why (a tglib route's traceback).
fn answered_error(status: u16, logs: &[crate::run::LogLine]) -> String {
    let why = logs
        .iter()
        .rev()
        .find(|l| l.level == crate::run::LogLevel::Error);
    match why {
        Some(line) => format!("the handler answered {status}: {}", line.message),
        None => format!("the handler answered {status}"),
    }
}

/// Request headers that carry the operator's or a user's credentials: a handler gets them
/// only if its route says `"forward_credentials": true`.
const CREDENTIALS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// Response headers a handler may not set: the runner frames the answer and owns the
/// connection. From a guest, a `content-length` shorter than the body splits the answer in
/// two on a kept-alive connection; `transfer-encoding` or `upgrade` break or hang it.
const FRAMING: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Headers one answer may carry, and their sizes: what a handler hands the HTTP server is
/// bounded as what a job hands the host.
const MAX_HEADERS: usize = 100;
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// A 503 for a request past its route's or all routes' concurrency.
fn busy(route: &str, full: crate::service::route_slots::Full) -> Response {
    let why = match full {
        crate::service::route_slots::Full::Route(n) => {
            format!("route {route} is answering {n} requests (its max_concurrent)")
        }
        crate::service::route_slots::Full::All => format!(
            "routes are answering {} requests, all they may at once",
            crate::config::service::ROUTE_INSTANCES
        ),
    };
    tracing::warn!(route, "request refused: {why}");
    let mut res =
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{why}; try again")).into_response();
    res.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("1"),
    );
    res
}

/// The handler's answer as the server sends it, or why HTTP cannot carry it: a status
/// outside 200-599, a body on a 204 or 304, too many or too large headers, a header that is
/// not HTTP. Framing headers are dropped (logged).
fn answer(
    r: crate::bindings::handler::tgrun::job::http_types::Response,
) -> Result<Response, String> {
    let refuse = Err;
    let status = match StatusCode::from_u16(r.status) {
        Ok(s) if (200..=599).contains(&r.status) => s,
        _ => return refuse(format!("has status {}, outside 200-599", r.status)),
    };
    if matches!(r.status, 204 | 304) && !r.body.is_empty() {
        return refuse(format!(
            "has status {} and a body of {} bytes; that status has none",
            r.status,
            r.body.len()
        ));
    }
    if r.headers.len() > MAX_HEADERS {
        return refuse(format!(
            "has {} headers; at most {MAX_HEADERS}",
            r.headers.len()
        ));
    }
    let mut res = Response::new(Body::from(r.body));
    *res.status_mut() = status;
    let mut dropped = Vec::new();
    for (k, v) in r.headers {
        if k.len() + v.len() > MAX_HEADER_BYTES {
            return refuse(format!(
                "has a header of {} bytes; at most {MAX_HEADER_BYTES}",
                k.len() + v.len()
            ));
        }
        let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) else {
            return refuse("has a header that is not valid HTTP".into());
        };
        if FRAMING.contains(&k.as_str()) {
            dropped.push(k);
            continue;
        }
        res.headers_mut().append(k, v);
    }
    if !dropped.is_empty() {
        tracing::warn!(?dropped, "a route handler's framing headers were dropped");
    }
    Ok(res)
}

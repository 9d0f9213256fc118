//! Routes answered by components: every request that matches no built-in route is looked
//! up in the configuration's `routes` and, if found, answered by a fresh instance of its
//! handler, with the route's limits and capabilities. Each request is a run: booked, in the
//! history, on `/metrics`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::bindings::handler::tgrun::job::http_types::Request as WireRequest;
use crate::sandbox::run::Invocation;
use crate::scheduler::unix_ms;
use crate::server::AppState;
use crate::server::error::ApiError;

pub async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = state.service.config();
    let Some(route) = config
        .service
        .routes
        .iter()
        .find(|r| r.method == method.as_str() && r.path == uri.path())
    else {
        return ApiError::not_found(format!("no route {}", uri.path())).into_response();
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
    let shared = &state.service.shared;
    let inv = Invocation {
        job: route.module.clone(),
        pipeline: format!("route {name}").into(),
        run_id: shared.run_ids.next(),
        scheduled_ms: unix_ms(),
        params: "{}".into(),
        limits: route.limits,
        grants: route.grants,
        cancel: Default::default(),
        attempt: 1,
    };
    let component = match state.service.handlers.get(&route.module).await {
        Ok(c) => c,
        Err(outcome) => {
            tracing::error!(route = %name, "{}", outcome.detail());
            return ApiError::internal_with(format!("route {name}: {}", outcome.detail()))
                .into_response();
        }
    };
    let (response, report) = shared.sandbox.handle(&component, request, &inv, true).await;
    let report = shared.finish(report);
    match response {
        Some(r) => answer(&name, r),
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

/// The handler's answer as the server sends it, or a 500 (the reason in the log) for one
/// that HTTP cannot carry: a status outside 200-599, a body on a 204 or 304, too many or
/// too large headers. Framing headers are dropped.
fn answer(route: &str, r: crate::bindings::handler::tgrun::job::http_types::Response) -> Response {
    let refuse = |why: String| {
        ApiError::internal(format!("route {route}: the handler's answer {why}")).into_response()
    };
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
        tracing::warn!(
            route,
            ?dropped,
            "the handler's framing headers were dropped"
        );
    }
    res
}

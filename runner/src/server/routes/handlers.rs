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
        Some(r) => answer(r),
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

fn answer(r: crate::bindings::handler::tgrun::job::http_types::Response) -> Response {
    let Ok(status) = StatusCode::from_u16(r.status) else {
        return ApiError::internal(format!("a route handler answered status {}", r.status))
            .into_response();
    };
    let mut res = Response::new(Body::from(r.body));
    *res.status_mut() = status;
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            res.headers_mut().append(k, v);
        }
    }
    res
}

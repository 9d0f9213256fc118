//! Who may change things. Mutating routes need `Authorization: Bearer <token>` when
//! `TGRUN_ADMIN_TOKEN` is set; without a token they answer only clients on loopback, so a
//! runner listening on every address (as tglib) is not open to the network by default.
//! Reading routes stay open, so Prometheus can scrape from another host.

use std::net::SocketAddr;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// The environment variable holding the admin token.
pub const TOKEN_ENV: &str = "TGRUN_ADMIN_TOKEN";

pub async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(refused) = check(&state, &req) {
        return refused.into_response();
    }
    next.run(req).await
}

/// Whether `req` may change things (and read what only operators see): the admin token
/// when one is set, else a client on loopback.
pub fn check(state: &AppState, req: &Request) -> Result<(), ApiError> {
    match &state.service.admin_token {
        Some(token) => {
            let given = req
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this route needs Authorization: Bearer <token> (the runner's TGRUN_ADMIN_TOKEN)",
                ));
            }
        }
        None => {
            // The real peer, or the one a test mocks (what the ConnectInfo extractor reads).
            let ext = req.extensions();
            let peer = ext
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0.ip()));
            if !peer.is_some_and(|ip| ip.is_loopback() || is_mapped_loopback(&ip)) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "no TGRUN_ADMIN_TOKEN is set, so this route answers only clients on loopback",
                ));
            }
        }
    }
    Ok(())
}

fn is_mapped_loopback(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        std::net::IpAddr::V4(_) => false,
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! Who may change things. Mutating routes need `Authorization: Bearer <token>` when
//! `TGRUN_ADMIN_TOKEN` is set; without a token they answer only clients on loopback, so a
//! runner listening on every address (as tglib) is not open to the network by default.
//! Reading routes stay open, so Prometheus can scrape from another host.
//!
//! A web page the operator visits is a client on loopback too. A page cannot send the
//! token (browsers never add `Authorization: Bearer` by themselves), so with a token set
//! the token suffices; without one:
//! - a request a browser marks as coming from another site (`Sec-Fetch-Site: cross-site`
//!   or `same-site`, or an `Origin` that is not this `Host`) is refused;
//! - loopback counts only when the `Host` names loopback (`localhost`,
//!   `127.0.0.1`, `[::1]`) or one of `runner.http_allowed_hosts`, so a DNS-rebound name
//!   does not, and when no proxy header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`)
//!   says the client is elsewhere.
//!
//! And always, a mutating request needs `Content-Type: application/json`
//! (`application/wasm` or `application/octet-stream` for a module upload), which a page
//! can send elsewhere only after a CORS preflight the runner never answers, and a form
//! never.

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
    if let Err(refused) = check(&state, &req).and_then(|()| content_type(&req)) {
        return refused.into_response();
    }
    next.run(req).await
}

/// Headers by which a proxy says the client is not the peer.
const PROXY_HEADERS: &[&str] = &["forwarded", "x-forwarded-for", "x-real-ip"];

fn header(req: &Request, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A request a browser says comes from another site: refused whoever sends it.
fn cross_site(req: &Request) -> Option<String> {
    if let Some(site) = header(req, "sec-fetch-site")
        && matches!(site, "cross-site" | "same-site")
    {
        return Some(format!(
            "the browser says this request comes from another site ({site})"
        ));
    }
    let origin = header(req, axum::http::header::ORIGIN)?;
    let host = header(req, axum::http::header::HOST).unwrap_or("");
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host));
    (!same).then(|| format!("its Origin {origin} is not this runner ({host})"))
}

/// The host part of a `Host` header (without the port).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether `host` (a `Host` header) names this machine's loopback or an allowed name.
fn local_host(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || is_mapped_loopback(&ip))
        || allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(host))
}

/// A mutating request's body type: one a web page cannot send without a preflight.
fn content_type(req: &Request) -> Result<(), ApiError> {
    let given = header(req, axum::http::header::CONTENT_TYPE).map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let upload = req.uri().path().ends_with("/module");
    let ok = match given.as_deref() {
        Some("application/json") => !upload,
        Some("application/wasm" | "application/octet-stream") => upload,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let needed = if upload {
        "Content-Type: application/wasm (or application/octet-stream)"
    } else {
        "Content-Type: application/json"
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "this route needs {needed}, found {}",
            given.as_deref().unwrap_or("none")
        ),
    ))
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
            // With a token, no page can act (a browser never adds `Authorization: Bearer`
            // by itself, so only who knows it sends it); without one, a page must not.
            if let Some(why) = cross_site(req) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("refused: {why}"),
                ));
            }
            if !peer(req.extensions()).is_some_and(|ip| ip.is_loopback() || is_mapped_loopback(&ip))
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "no TGRUN_ADMIN_TOKEN is set, so this route answers only clients on loopback",
                ));
            }
            if let Some(h) = PROXY_HEADERS
                .iter()
                .find(|h| req.headers().contains_key(**h))
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "no TGRUN_ADMIN_TOKEN is set, and this request came through a proxy ({h}): set a token"
                    ),
                ));
            }
            // A browser always names the host (HTTP/2's authority included); a request with
            // none is no page's, and is judged by its peer alone.
            let host = header(req, axum::http::header::HOST)
                .or_else(|| req.uri().authority().map(|a| a.as_str()));
            if let Some(host) = host
                && !local_host(host, &state.service.config().runner.http_allowed_hosts)
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "no TGRUN_ADMIN_TOKEN is set, and Host {host:?} is not loopback nor in runner.http_allowed_hosts"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The client's address: the real peer, or the one a test mocks (what the ConnectInfo
/// extractor reads).
pub fn peer(ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0.ip()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_allowed_names_are_local_and_others_are_not() {
        let allowed = vec!["runner.lab".to_owned()];
        for local in [
            "localhost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "runner.lab:9",
            "LOCALHOST",
        ] {
            assert!(local_host(local, &allowed), "{local}");
        }
        for other in [
            "evil.example:8080",
            "10.0.0.1:8080",
            "",
            "localhost.evil.example",
            "[::2]:1",
        ] {
            assert!(!local_host(other, &allowed), "{other}");
        }
    }
}

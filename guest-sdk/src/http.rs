//! HTTP: a route handler's request and response, and a job's own requests to the
//! origins it is allowed (`get`, `send`: see below).
//!
//! ```no_run
//! use tgrun_sdk::http::{Request, Response};
//! use tgrun_sdk::prelude::*;
//!
//! // In service_config.json:
//! // "routes": {"GET /node": {"module": "node_route", "capabilities": ["sql"]}}
//! fn node_route(req: &Request) -> Result<Response> {
//!     let Some(name) = req.query("name") else {
//!         return Ok(Response::text(400, "say which node: /node?name=..."));
//!     };
//!     let verbose = req.header("x-verbose").is_some();
//!     let rows = sql::query("SELECT at FROM seen WHERE node = ?", &[name.into()])?;
//!     if rows.rows.is_empty() {
//!         return Ok(Response::text(404, format!("no node {name}")));
//!     }
//!     Response::json(&serde_json::json!({"node": name, "seen": rows.rows.len(), "verbose": verbose}))
//! }
//!
//! export_handler!(node_route);
//! ```

use serde::Serialize;

pub use crate::outbound::{Incoming, Outgoing, get, send};

use crate::wit_handler::tgrun::job::http_types as wire;
use crate::{Error, Result};

/// A request to a configured route.
#[derive(Debug, Clone)]
pub struct Request {
    /// Upper case: `GET`, `POST`, ...
    pub method: String,
    /// The path asked for, without the query string.
    pub path: String,
    /// The query string's pairs, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The request's body, as sent.
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn from_wit(r: wire::Request) -> Self {
        Self {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers,
            body: r.body,
        }
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a header (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::msg(format!("request body: {e}")))
    }
}

/// The handler's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The HTTP status, such as 200.
    pub status: u16,
    /// Headers to send (the content type is set by [`Response::text`] and
    /// [`Response::json`]).
    pub headers: Vec<(String, String)>,
    /// The body to send.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.into().into_bytes(),
        }
    }

    /// A JSON answer with status 200.
    pub fn json(value: &impl Serialize) -> Result<Self> {
        Ok(Self {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value)?,
        })
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn into_wit(self) -> wire::Response {
        wire::Response {
            status: self.status,
            headers: self.headers,
            body: self.body,
        }
    }
}

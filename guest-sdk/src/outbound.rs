//! Outbound HTTP from a job, to the origins its `allowed_outbound_hosts` lists and nothing
//! else (re-exported as [`crate::http`]'s `get`, `send`, `Outgoing`, `Incoming`).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use tgrun_sdk::http::{self, Outgoing};
//! use tgrun_sdk::prelude::*;
//!
//! // In service_config.json, the job's entry:
//! // "allowed_outbound_hosts": ["http://query_service:8086"],
//! // "allowed_outbound_networks": ["172.16.0.0/12"]
//! fn link_health(_: &Ctx, _: serde_json::Value) -> Result<()> {
//!     let base = std::env::var("QUERY_SERVICE_URL")
//!         .unwrap_or_else(|_| "http://query_service:8086".into());
//!     let answer = http::get(&format!("{base}/link_health/east/1"))?;
//!     if answer.status != 200 {
//!         warn!("query service: {} {}", answer.status, answer.reason);
//!         return Ok(());
//!     }
//!     let events: serde_json::Value = answer.json()?;
//!     info!("{} links", events["events"].as_object().map_or(0, |e| e.len()));
//!     // Any method, headers, a body and a time limit.
//!     let _ = http::send(
//!         Outgoing::new("POST", &format!("{base}/refresh"))
//!             .header("content-type", "application/json")
//!             .body(br#"{"network": "east"}"#.to_vec())
//!             .timeout(Duration::from_secs(5)),
//!     )?;
//!     Ok(())
//! }
//!
//! export_job!(link_health);
//! ```

use std::time::Duration;

use crate::Result;
use crate::error::{Error, ErrorKind, lift};
use crate::wit::tgrun::job::http as host;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS`.
    pub method: String,
    /// An absolute `http` or `https` URL, with its query.
    pub url: String,
    /// Headers to send (not `Host`: the URL's).
    pub headers: Vec<(String, String)>,
    /// The body to send.
    pub body: Vec<u8>,
    /// None: the runner's default (30 s); never past the run's deadline.
    pub timeout: Option<Duration>,
}

impl Outgoing {
    /// A request of `method` to `url`, with no header or body.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// The same with a header more.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same with `body`.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The same, given `timeout` for the whole exchange.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The status code.
    pub status: u16,
    /// Its reason phrase (`OK`, `Not Found`).
    pub reason: String,
    /// The answer's headers (at most 64).
    pub headers: Vec<(String, String)>,
    /// The answer's body.
    pub body: Vec<u8>,
    /// The URL that answered, after redirects.
    pub url: String,
}

impl Incoming {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::Upstream,
                format!("the answer of {} is not the JSON expected: {e}", self.url),
            )
        })
    }
}

/// Sends `req`.
pub fn send(req: Outgoing) -> Result<Incoming> {
    let wire = host::OutboundRequest {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.body,
        timeout_ms: req
            .timeout
            .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
    };
    let r = lift(host::send(&wire))?;
    Ok(Incoming {
        status: r.status,
        reason: r.reason,
        headers: r.headers,
        body: r.body,
        url: r.url,
    })
}

/// GETs `url`.
pub fn get(url: &str) -> Result<Incoming> {
    send(Outgoing::new("GET", url))
}

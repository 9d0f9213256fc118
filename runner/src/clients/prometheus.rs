//! The Prometheus HTTP API client (`/api/v1/query`, `/api/v1/query_range`).

use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::error::ClientError;

/// What the host functions need from Prometheus: a GET of an API endpoint.
#[async_trait]
pub trait PrometheusApi: Send + Sync {
    /// GET `/api/v1/{endpoint}` with query parameters; answers the JSON body.
    async fn get(&self, endpoint: &str, params: &[(&str, String)]) -> Result<String, ClientError>;
    /// Whether Prometheus answers (GET `/api/v1/targets`, as tglib).
    async fn healthy(&self) -> bool;
    /// The address, for messages.
    fn address(&self) -> String;
}

/// `config.json` → `prometheus`.
#[derive(Debug, Deserialize)]
struct Settings {
    host: String,
    port: u16,
    /// Time limit of one request, seconds. Default 10.
    timeout_s: Option<f64>,
    /// Largest answer accepted, MiB. Default 64.
    max_response_mb: Option<usize>,
}

pub struct HttpPrometheus {
    base: String,
    http: reqwest::Client,
    /// Largest answer accepted: a query matching millions of series must not exhaust the
    /// runner's memory.
    max_bytes: usize,
}

impl HttpPrometheus {
    pub fn from_config(v: &Value) -> Result<Self> {
        let s: Settings = serde_json::from_value(v.clone())
            .context("config.json: 'prometheus' needs {\"host\": string, \"port\": number}")?;
        // Checked at configuration (`config::bounds`); clamped again, never a panic.
        let timeout = Duration::try_from_secs_f64(s.timeout_s.unwrap_or(10.0).max(0.001))
            .unwrap_or(crate::config::bounds::DAY)
            .min(crate::config::bounds::DAY);
        Self::new(
            &format!("http://{}:{}", s.host, s.port),
            timeout,
            s.max_response_mb
                .unwrap_or(64)
                .min(crate::config::bounds::MAX_MB)
                << 20,
        )
    }

    pub fn new(base: &str, timeout: Duration, max_bytes: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("building the Prometheus HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            max_bytes,
        })
    }
}

#[async_trait]
impl PrometheusApi for HttpPrometheus {
    async fn get(&self, endpoint: &str, params: &[(&str, String)]) -> Result<String, ClientError> {
        let url = format!("{}/api/v1/{endpoint}", self.base);
        let resp = self
            .http
            .get(&url)
            .query(params)
            .send()
            .await
            .map_err(|e| ClientError::Upstream(format!("prometheus at {}: {e}", self.base)))?;
        let status = resp.status();
        let body = read_capped(resp, self.max_bytes, &self.base).await?;
        if !status.is_success() {
            // Prometheus explains a bad query in its JSON `error`; pass that on.
            let why = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return Err(ClientError::Upstream(format!(
                "prometheus answered {status}: {why}"
            )));
        }
        Ok(body)
    }

    async fn healthy(&self) -> bool {
        let url = format!("{}/api/v1/targets", self.base);
        matches!(self.http.get(url).send().await, Ok(r) if r.status().is_success())
    }

    fn address(&self) -> String {
        self.base.clone()
    }
}

/// Reads a body, refusing it past `max` bytes without holding more than that.
pub(crate) async fn read_capped(
    resp: reqwest::Response,
    max: usize,
    from: &str,
) -> Result<String, ClientError> {
    let buf = read_capped_bytes(resp, max, from).await?;
    String::from_utf8(buf)
        .map_err(|_| ClientError::Upstream(format!("the answer of {from} is not UTF-8")))
}

/// The same, as bytes.
pub(crate) async fn read_capped_bytes(
    mut resp: reqwest::Response,
    max: usize,
    from: &str,
) -> Result<Vec<u8>, ClientError> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out reading"
        } else {
            "reading"
        };
        ClientError::Upstream(format!("{what} the answer of {from}: {e}"))
    })? {
        let needed = buf.len() + chunk.len();
        if needed > max {
            return Err(ClientError::LimitExceeded(format!(
                "the answer of {from} is larger than {max} bytes"
            )));
        }
        // The run pays for the buffer as it grows (doubling, never past the cap), before
        // it grows.
        if needed > buf.capacity() {
            let cap = needed.max(buf.capacity() * 2).min(max);
            crate::run::budget::charge(cap - buf.capacity(), "an answer being read")?;
            buf.reserve_exact(cap - buf.len());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

//! The Terragraph API service client (tglib's `APIServiceClient`): networks discovered from
//! the NMS, one controller address per network.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

use super::error::ClientError;
use super::keycloak::Keycloak;
use super::prometheus::read_capped;

/// One network's answer, or why it failed.
pub type NetworkAnswer = (String, Result<String, ClientError>);

#[async_trait]
pub trait ApiServiceApi: Send + Sync {
    async fn network_names(&self) -> Result<Vec<String>, ClientError>;
    /// POSTs `params` (JSON) to `/api/{endpoint}` of one network's controller.
    async fn request(
        &self,
        network: &str,
        endpoint: &str,
        params: &str,
        timeout: Option<Duration>,
    ) -> Result<String, ClientError>;
    /// Several networks concurrently: every network (`all`, with `{}` for those missing from
    /// `params`) or only those in `params`. Each network's answer is kept apart.
    async fn request_many(
        &self,
        endpoint: &str,
        params: &[(String, String)],
        timeout: Option<Duration>,
        all: bool,
    ) -> Result<Vec<NetworkAnswer>, ClientError>;
    /// `isCtrlAlive` answers on every network.
    async fn healthy(&self) -> bool;
    fn address(&self) -> String;
}

/// `config.json` → `apiservice`.
#[derive(Debug, Deserialize)]
struct Settings {
    nms: Nms,
    #[serde(default)]
    keycloak_enabled: bool,
    /// Used where tglib's `KEYCLOAK_*` environment variables are unset.
    keycloak: Option<KeycloakSettings>,
    /// Time limit of a request without its own, seconds. Default 30.
    timeout_s: Option<f64>,
    /// Largest answer accepted, MiB. Default 64.
    max_response_mb: Option<usize>,
    /// Seconds between refreshes of the network list. Default 60.
    refresh_s: Option<f64>,
    /// Networks one `request-many` may name. Default 64.
    max_fanout: Option<usize>,
    /// Controller requests one `request-many` or `request-all` has in flight at once.
    /// Default 8.
    max_concurrent_requests: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct Nms {
    host: String,
    port: u16,
}

#[derive(Default, Deserialize)]
struct KeycloakSettings {
    host: Option<String>,
    realm: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Every setting but the secret, so no `{:?}` of the settings can log it.
impl std::fmt::Debug for KeycloakSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeycloakSettings")
            .field("host", &self.host)
            .field("realm", &self.realm)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct NetworkEntry {
    name: String,
    primary: Primary,
}

#[derive(Debug, Deserialize)]
struct Primary {
    api_ip: String,
    api_port: u16,
}

struct Networks {
    /// Network name → controller base URL.
    by_name: BTreeMap<String, String>,
    fetched: Instant,
}

pub struct HttpApiService {
    nms_url: String,
    http: reqwest::Client,
    keycloak: Option<Keycloak>,
    networks: RwLock<Networks>,
    default_timeout: Duration,
    refresh: Duration,
    /// Largest answer accepted: a controller's runaway answer must not exhaust the runner.
    max_bytes: usize,
    /// Networks one `request-many` may name: a job cannot make the runner send (and keep
    /// the answers of) any number of requests in one call.
    max_fanout: usize,
    /// Requests of one call in flight at once: a fan-out does not open a connection per
    /// network at once, nor flood the controllers.
    max_concurrent: usize,
}

impl HttpApiService {
    /// Builds the client and discovers the networks; fails naming the NMS address.
    pub async fn start(v: &Value) -> Result<Self> {
        let s: Settings = serde_json::from_value(v.clone()).context(
            "config.json: 'apiservice' needs {\"nms\": {\"host\": string, \"port\": number}}",
        )?;
        let keycloak = if s.keycloak_enabled {
            let k = s.keycloak.unwrap_or_default();
            let pick = |env: &str, fallback: Option<String>| {
                std::env::var(env)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .or(fallback)
                    .with_context(|| {
                        format!("keycloak_enabled needs {env} (or apiservice.keycloak)")
                    })
            };
            Some(Keycloak::new(
                &pick("KEYCLOAK_HOST", k.host)?,
                &pick("KEYCLOAK_REALM", k.realm)?,
                &pick("KEYCLOAK_CLIENT_ID", k.client_id)?,
                &pick("KEYCLOAK_CLIENT_SECRET", k.client_secret)?,
            ))
        } else {
            None
        };
        let client = Self {
            nms_url: format!("http://{}:{}/api/v1/networks", s.nms.host, s.nms.port),
            http: reqwest::Client::new(),
            keycloak,
            networks: RwLock::new(Networks {
                by_name: BTreeMap::new(),
                fetched: Instant::now(),
            }),
            // Checked at configuration (`config::bounds`); clamped again, never a panic.
            default_timeout: Duration::try_from_secs_f64(s.timeout_s.unwrap_or(30.0).max(0.001))
                .unwrap_or(crate::config::bounds::DAY)
                .min(crate::config::bounds::DAY),
            refresh: Duration::try_from_secs_f64(s.refresh_s.unwrap_or(60.0).max(0.0))
                .unwrap_or(crate::config::bounds::DAY)
                .min(crate::config::bounds::DAY),
            max_bytes: s
                .max_response_mb
                .unwrap_or(64)
                .min(crate::config::bounds::MAX_MB)
                << 20,
            max_fanout: s.max_fanout.unwrap_or(64),
            max_concurrent: s.max_concurrent_requests.unwrap_or(8).max(1),
        };
        let found = client
            .discover()
            .await
            .map_err(|e| anyhow::anyhow!("api-service: {e}"))?;
        *client.networks.write().await = found;
        Ok(client)
    }

    async fn discover(&self) -> Result<Networks, ClientError> {
        let err = |e: String| ClientError::Upstream(format!("NMS at {}: {e}", self.nms_url));
        let resp = self
            .http
            .get(&self.nms_url)
            .timeout(self.default_timeout)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(err(format!("answered {}", resp.status())));
        }
        let body = read_capped(resp, self.max_bytes, &self.nms_url).await?;
        let list: Vec<NetworkEntry> =
            serde_json::from_str(&body).map_err(|e| err(format!("unexpected answer: {e}")))?;
        let by_name = list
            .into_iter()
            .map(|n| {
                let ip = &n.primary.api_ip;
                let host = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.clone()
                };
                (n.name, format!("http://{host}:{}", n.primary.api_port))
            })
            .collect();
        Ok(Networks {
            by_name,
            fetched: Instant::now(),
        })
    }

    /// The network list, refreshed from the NMS when older than `refresh_s`. A failed
    /// refresh keeps the last list (and is logged): the controllers may still answer.
    async fn networks(&self) -> BTreeMap<String, String> {
        {
            let n = self.networks.read().await;
            if n.fetched.elapsed() < self.refresh {
                return n.by_name.clone();
            }
        }
        let mut n = self.networks.write().await;
        if n.fetched.elapsed() >= self.refresh {
            match self.discover().await {
                Ok(found) => *n = found,
                Err(e) => {
                    tracing::warn!("keeping the last network list: {e}");
                    n.fetched = Instant::now();
                }
            }
        }
        n.by_name.clone()
    }

    async fn post(
        &self,
        network: &str,
        base: &str,
        endpoint: &str,
        params: &str,
        timeout: Duration,
    ) -> Result<String, ClientError> {
        let url = format!("{base}/api/{endpoint}");
        crate::run::budget::charge(params.len(), "the request's params")?;
        let mut req = self
            .http
            .post(&url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(params.to_owned());
        if let Some(k) = &self.keycloak {
            req = req.bearer_auth(k.token().await?);
        }
        let resp = req.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                format!("timed out after {timeout:?}")
            } else {
                e.to_string()
            };
            ClientError::Upstream(format!("network '{network}' ({url}): {why}"))
        })?;
        let status = resp.status();
        let body = read_capped(resp, self.max_bytes, &url).await?;
        if !status.is_success() {
            let excerpt: String = body.chars().take(200).collect();
            return Err(ClientError::Upstream(format!(
                "network '{network}' ({url}) answered {status}: {excerpt}"
            )));
        }
        Ok(body)
    }
}

/// Whether `params` are JSON, read through without building them: a guest's 50 MiB of
/// params cost the host no document tree.
fn check_json(params: &str) -> Result<(), ClientError> {
    serde_json::from_str::<serde::de::IgnoredAny>(params)
        .map(|_| ())
        .map_err(|e| ClientError::InvalidArgument(format!("params are not JSON: {e}")))
}

/// Bytes of an endpoint's name.
const MAX_ENDPOINT_BYTES: usize = 128;

/// An endpoint is one path segment under the controller's `/api/` (`getTopology`,
/// `getCtrlStatusDump`): a name of letters, digits, `_`, `-` and `.`, never `..` or a `/`,
/// a query or a fragment that would reach another path of the API service.
pub fn check_endpoint(endpoint: &str) -> Result<(), ClientError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if endpoint.is_empty()
        || endpoint.len() > MAX_ENDPOINT_BYTES
        || endpoint.bytes().all(|b| b == b'.')
        || !endpoint.bytes().all(allowed)
    {
        let shown: String = endpoint.chars().take(64).collect();
        return Err(ClientError::InvalidArgument(format!(
            "endpoint {shown:?} is not one API name (1 to {MAX_ENDPOINT_BYTES} letters, digits, '_', '-' or '.', such as \"getTopology\")"
        )));
    }
    Ok(())
}

#[async_trait]
impl ApiServiceApi for HttpApiService {
    async fn network_names(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.networks().await.into_keys().collect())
    }

    async fn request(
        &self,
        network: &str,
        endpoint: &str,
        params: &str,
        timeout: Option<Duration>,
    ) -> Result<String, ClientError> {
        check_endpoint(endpoint)?;
        check_json(params)?;
        let networks = self.networks().await;
        let base = networks.get(network).ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "unknown network '{network}' (known: {})",
                networks.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        self.post(
            network,
            base,
            endpoint,
            params,
            timeout.unwrap_or(self.default_timeout),
        )
        .await
    }

    async fn request_many(
        &self,
        endpoint: &str,
        params: &[(String, String)],
        timeout: Option<Duration>,
        all: bool,
    ) -> Result<Vec<NetworkAnswer>, ClientError> {
        check_endpoint(endpoint)?;
        if !all && params.len() > self.max_fanout {
            return Err(ClientError::LimitExceeded(format!(
                "request-many names {} networks; at most {} (apiservice.max_fanout)",
                params.len(),
                self.max_fanout
            )));
        }
        let mut named: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        named.sort_unstable();
        if let Some(twice) = named.windows(2).find(|w| w[0] == w[1]) {
            return Err(ClientError::InvalidArgument(format!(
                "network '{}' is given twice",
                twice[0]
            )));
        }
        for (_, p) in params {
            check_json(p)?;
        }
        let networks = self.networks().await;
        let given: BTreeMap<&str, &str> = params
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_str()))
            .collect();
        let targets: Vec<(String, String)> = if all {
            networks
                .keys()
                .map(|n| {
                    (
                        n.clone(),
                        given.get(n.as_str()).unwrap_or(&"{}").to_string(),
                    )
                })
                .collect()
        } else {
            params.to_vec()
        };
        let timeout = timeout.unwrap_or(self.default_timeout);
        let calls = targets.into_iter().map(|(network, p)| {
            let base = networks.get(&network).cloned();
            async move {
                let answer = match base {
                    Some(base) => self.post(&network, &base, endpoint, &p, timeout).await,
                    None => Err(ClientError::InvalidArgument(format!(
                        "unknown network '{network}'"
                    ))),
                };
                (network, answer)
            }
        });
        // In the order given, at most `max_concurrent` at once.
        Ok(futures_util::stream::iter(calls)
            .buffered(self.max_concurrent)
            .collect()
            .await)
    }

    async fn healthy(&self) -> bool {
        match self
            .request_many("isCtrlAlive", &[], Some(Duration::from_secs(5)), true)
            .await
        {
            Ok(answers) => answers.iter().all(|(_, r)| r.is_ok()),
            Err(_) => false,
        }
    }

    fn address(&self) -> String {
        self.nms_url.clone()
    }
}

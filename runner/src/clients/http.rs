//! Outbound HTTP for jobs (`tgrun:job/http`): a request goes only to an origin its job
//! allows ([`Outbound`]), to an address the policy allows, and back with an answer the run
//! pays for as it arrives.
//!
//! One `reqwest` client per policy, made at its first request and kept: connections are
//! pooled per origin across runs of the jobs sharing the policy, and nothing else carries
//! from one run to the next (no cookie store; headers are the request's own). Its resolver
//! drops every address the policy does not allow, and every loopback or unspecified
//! address whatever the policy (a name reaching the runner's machine is refused: only an
//! origin written as that very address may, and never the runner's own listener).
//!
//! HTTPS trusts the system's roots (read once, at the first client: `/etc/ssl/certs`, or
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`), Mozilla's built in where the system has none, and the
//! certificates of `runner.outbound_ca_file`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::ClientError;
use crate::run::outbound::{Outbound, literal_ip, this_machine};

/// Redirects followed, each to an allowed origin.
pub const MAX_REDIRECTS: usize = 3;
/// A request's time when it asks for none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Headers of a request or kept of an answer, and their bytes.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 << 10;
/// Policies with a client of their own; past it, all are made again (a configuration
/// changed many times).
const MAX_CLIENTS: usize = 1024;
/// Origins counted apart in `tgrun_http_requests_total` (a job chooses its URLs: past
/// these, the rest count as origin `other`).
const MAX_COUNTED_ORIGINS: usize = 256;

/// Ports the runner itself listens on: never a job's destination on this machine.
static OWN_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// The runner listens on `port` (its HTTP server).
pub fn listening_on(port: u16) {
    let mut own = OWN_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    if !own.contains(&port) {
        own.push(port);
    }
}

fn own_port(port: u16) -> bool {
    OWN_PORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&port)
}

/// A request as a job asks it.
pub struct Outgoing {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// An answer as a job gets it.
pub struct Incoming {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub url: String,
}

#[derive(Default)]
pub struct HttpClients {
    by_policy: Mutex<HashMap<Arc<Outbound>, reqwest::Client>>,
    /// Requests by origin, then outcome, for `/metrics`.
    counts: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    /// The configured CA's certificates (`runner.outbound_ca_file`).
    extra_roots: Vec<reqwest::Certificate>,
}

/// The system's CA roots, read once per process; empty where it has none.
fn system_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!("jobs' HTTPS: a system CA certificate could not be read: {e}");
        }
        found
            .certs
            .iter()
            .filter_map(|c| reqwest::Certificate::from_der(c).ok())
            .collect()
    })
}

/// How a request ended, as `/metrics` counts it.
fn outcome(r: &Result<Incoming, ClientError>) -> &'static str {
    match r {
        Ok(_) => "answered",
        Err(ClientError::NotPermitted(_)) => "refused",
        Err(ClientError::LimitExceeded(_)) => "limit_exceeded",
        Err(ClientError::InvalidArgument(_)) => "invalid",
        Err(ClientError::Upstream(m)) if m.starts_with("timed out") => "timeout",
        Err(ClientError::Upstream(_)) => "failed",
    }
}

impl HttpClients {
    /// Clients that trust the certificates of `ca_file` (PEM) besides the system's roots.
    /// The system's roots are read here, not in a job's first request.
    pub fn trusting(ca_file: Option<&Path>) -> anyhow::Result<Self> {
        system_roots();
        let Some(path) = ca_file else {
            return Ok(Self::default());
        };
        let what = || format!("runner.outbound_ca_file {}", path.display());
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
        let extra_roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| anyhow::anyhow!("{}: not PEM certificates: {e}", what()))?;
        if extra_roots.is_empty() {
            anyhow::bail!("{}: holds no PEM certificate", what());
        }
        Ok(Self {
            extra_roots,
            ..Self::default()
        })
    }

    /// Requests so far by (origin, outcome): `answered` (any status), `refused`,
    /// `timeout`, `failed`, `limit_exceeded`, `invalid`, `cancelled`.
    pub fn counts(&self) -> Vec<((String, &'static str), u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .flat_map(|(origin, by)| by.iter().map(|(o, n)| ((origin.clone(), *o), *n)))
            .collect()
    }

    /// Counts a request to `url` that ended as `r` (also one the host refused before it
    /// reached here).
    pub fn count(&self, url: &str, r: &Result<Incoming, ClientError>) {
        self.count_as(url, outcome(r));
    }

    fn count_as(&self, url: &str, outcome: &'static str) {
        let origin = reqwest::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| "invalid".into());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let origin = if counts.contains_key(&origin) || counts.len() < MAX_COUNTED_ORIGINS {
            origin
        } else {
            "other".into()
        };
        *counts
            .entry(origin)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }

    fn client(&self, policy: &Arc<Outbound>) -> Result<reqwest::Client, ClientError> {
        let mut clients = self.by_policy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(policy) {
            return Ok(c.clone());
        }
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        let redirects = policy.clone();
        let system = system_roots();
        let mut builder = reqwest::Client::builder().tls_built_in_root_certs(system.is_empty());
        for root in system.iter().chain(&self.extra_roots) {
            builder = builder.add_root_certificate(root.clone());
        }
        let client = builder
            .dns_resolver(Arc::new(PolicyResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match literal_allowed(&redirects, attempt.url())
                    .and_then(|()| redirects.allows_url(attempt.url()))
                {
                    Ok(()) => attempt.follow(),
                    Err(why) => attempt.error(format!("a redirect to {why}")),
                }
            }))
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| ClientError::Upstream(format!("making an HTTP client: {e}")))?;
        clients.insert(policy.clone(), client.clone());
        Ok(client)
    }

    /// Sends `req` under `policy`, its answer charged to the calling run's budget as it
    /// arrives and refused past `max_bytes`; counted by origin and outcome.
    pub async fn send(
        &self,
        policy: &Arc<Outbound>,
        req: Outgoing,
        max_bytes: usize,
    ) -> Result<Incoming, ClientError> {
        // A request its run stops waiting for (the run's deadline, a cancel) is counted
        // `cancelled` as it is dropped.
        let mut pending = Pending {
            clients: self,
            url: Some(req.url.clone()),
        };
        let r = self.exchange(policy, req, max_bytes).await;
        if let Some(url) = pending.url.take() {
            self.count_as(&url, outcome(&r));
        }
        r
    }

    async fn exchange(
        &self,
        policy: &Arc<Outbound>,
        req: Outgoing,
        max_bytes: usize,
    ) -> Result<Incoming, ClientError> {
        let url = reqwest::Url::parse(&req.url)
            .map_err(|e| ClientError::InvalidArgument(format!("url {:?}: {e}", req.url)))?;
        policy.allows_url(&url).map_err(ClientError::NotPermitted)?;
        literal_allowed(policy, &url).map_err(ClientError::NotPermitted)?;
        let method = match req.method.to_ascii_uppercase().as_str() {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => {
                reqwest::Method::from_bytes(m.as_bytes()).expect("a known method")
            }
            other => {
                return Err(ClientError::InvalidArgument(format!(
                    "method {other:?} is not GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"
                )));
            }
        };
        let header_bytes: usize = req.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        if req.headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
            return Err(ClientError::InvalidArgument(format!(
                "at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all"
            )));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ClientError::InvalidArgument(format!("header name {k:?}")))?;
            if name == reqwest::header::HOST {
                return Err(ClientError::InvalidArgument(
                    "the Host header is the URL's own".into(),
                ));
            }
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| ClientError::InvalidArgument(format!("header {k}: value {v:?}")))?;
            headers.append(name, value);
        }
        let origin = url.origin().ascii_serialization();
        let client = self.client(policy)?;
        let resp = client
            .request(method, url)
            .headers(headers)
            .body(req.body)
            .timeout(req.timeout)
            .send()
            .await
            .map_err(|e| exchange_failed(&origin, req.timeout, &e))?;
        let status = resp.status();
        let mut kept = Vec::new();
        let mut kept_bytes = 0;
        for (k, v) in resp.headers() {
            kept_bytes += k.as_str().len() + v.len();
            if kept.len() >= MAX_HEADERS || kept_bytes > MAX_HEADER_BYTES {
                break;
            }
            kept.push((
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
        crate::run::budget::charge(kept_bytes.min(MAX_HEADER_BYTES), "an answer's headers")?;
        let answered = resp.url().to_string();
        let body = super::prometheus::read_capped_bytes(resp, max_bytes, &origin).await?;
        Ok(Incoming {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or_default().to_owned(),
            headers: kept,
            body,
            url: answered,
        })
    }
}

/// A request in flight; dropped before it ends, it is counted `cancelled`.
struct Pending<'a> {
    clients: &'a HttpClients,
    url: Option<String>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(url) = self.url.take() {
            self.clients.count_as(&url, "cancelled");
        }
    }
}

/// What a failed exchange tells the job: a timeout says so first (the SDKs make it
/// `asyncio.TimeoutError`), a refused redirect or address is `not-permitted`.
fn exchange_failed(origin: &str, timeout: Duration, e: &reqwest::Error) -> ClientError {
    if e.is_timeout() {
        return ClientError::Upstream(format!(
            "timed out after {} ms waiting for {origin}",
            timeout.as_millis()
        ));
    }
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    if e.is_redirect() || why.contains("may not reach") {
        return ClientError::NotPermitted(format!("{origin}: {why}"));
    }
    ClientError::Upstream(format!("{origin}: {why}"))
}

/// An origin written as an address: allowed by the policy, and never the runner's own
/// listener on this machine.
fn literal_allowed(policy: &Outbound, url: &reqwest::Url) -> Result<(), String> {
    let Some(ip) = literal_ip(url) else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(0);
    // The port first: reading the machine's addresses is a system call.
    if own_port(port) && this_machine(ip) {
        return Err(format!("{ip}:{port} is the runner's own listener"));
    }
    if !policy.allows_addr(ip) {
        return Err(format!(
            "{ip} is not an address the job's allowed_outbound_networks allow"
        ));
    }
    Ok(())
}

/// Resolves names to the addresses the policy allows, and never to this machine.
struct PolicyResolver(Arc<Outbound>);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .filter(|a| !this_machine(a.ip()) && policy.allows_addr(a.ip()))
                .copied()
                .collect();
            if allowed.is_empty() {
                let addrs: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{host} resolves to {}, which the job may not reach (a name may not reach this machine; allowed_outbound_networks allows private networks)",
                    addrs.join(", ")
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

//! `runner.cluster` of `config.json`: the cluster's name, its NATS servers, credentials
//! and TLS, checked when the configuration is loaded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `runner.cluster`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// Names the cluster's stream: replicas with the same name are one service.
    pub name: String,
    /// NATS server URLs (`nats://host:port`).
    pub servers: Vec<String>,
    /// A run not acknowledged within this is delivered again (its replica is taken for
    /// dead); a live run tells JetStream it is still in progress well within it.
    pub ack_wait: Duration,
    /// Credentials for the servers.
    pub auth: NatsAuth,
    /// TLS to the servers; none: plain TCP unless a server URL says `tls://`.
    pub tls: Option<NatsTls>,
}

pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// A cluster name fit for a stream and subject name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Credentials for the NATS servers.
#[derive(Clone, PartialEq, Default)]
pub enum NatsAuth {
    /// The server asks for none.
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// A `.creds` file (a user JWT and its NKey seed), as `nsc` writes it.
    CredentialsFile(PathBuf),
}

/// Every kind of credential but none of its secret, so no `{:?}` can log one.
impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::UserPassword { user, .. } => write!(f, "UserPassword({user:?}, ***)"),
            Self::Token(_) => f.write_str("Token(***)"),
            Self::CredentialsFile(p) => write!(f, "CredentialsFile({})", p.display()),
        }
    }
}

/// TLS to the NATS servers (also what a `tls://` server URL asks for).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NatsTls {
    /// PEM certificates of the authorities that sign the servers' certificates, beside the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that verify clients.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// `runner.cluster` (not `Debug`: it holds secrets).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    /// Replicas with the same name are one service.
    name: String,
    /// NATS server URLs.
    nats: Vec<String>,
    /// Seconds before a run whose replica stopped answering is delivered again. Default 30.
    ack_wait_s: Option<f64>,
    /// Credentials: `user` and `password`, or `token`, or `credentials_file`; each may come
    /// from the environment instead (`TGRUN_NATS_USER`, `_PASSWORD`, `_TOKEN`, `_CREDS`).
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    credentials_file: Option<PathBuf>,
    /// TLS to the servers.
    tls: Option<RawTls>,
}

/// `runner.cluster.tls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// The NATS credentials of `c`, each overridden by its environment variable where set (so
/// a secret need not be in a file). One kind at most.
fn nats_auth(c: &RawCluster, dir: &Path) -> Result<NatsAuth, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let user = env("TGRUN_NATS_USER").or(c.user.clone());
    let password = env("TGRUN_NATS_PASSWORD").or(c.password.clone());
    let token = env("TGRUN_NATS_TOKEN").or(c.token.clone());
    let creds = env("TGRUN_NATS_CREDS")
        .map(PathBuf::from)
        .or(c.credentials_file.clone());
    match (user, password, token, creds) {
        (None, None, None, None) => Ok(NatsAuth::None),
        (Some(user), Some(password), None, None) => Ok(NatsAuth::UserPassword { user, password }),
        (Some(_), None, None, None) | (None, Some(_), None, None) => {
            Err("'user' and 'password' go together".into())
        }
        (None, None, Some(token), None) => Ok(NatsAuth::Token(token)),
        (None, None, None, Some(path)) => {
            let path = dir.join(path);
            if !path.is_file() {
                return Err(format!("'credentials_file' {} is not a file", path.display()));
            }
            Ok(NatsAuth::CredentialsFile(path))
        }
        _ => Err(
            "give one kind of credentials: 'user' and 'password', or 'token', or 'credentials_file'"
                .into(),
        ),
    }
}

fn nats_tls(tls: Option<&RawTls>, dir: &Path) -> Result<Option<NatsTls>, String> {
    let Some(tls) = tls else {
        return Ok(None);
    };
    let file = |what: &str, p: &Option<PathBuf>| -> Result<Option<PathBuf>, String> {
        match p {
            None => Ok(None),
            Some(p) => {
                let path = dir.join(p);
                if path.is_file() {
                    Ok(Some(path))
                } else {
                    Err(format!("'tls.{what}' {} is not a file", path.display()))
                }
            }
        }
    };
    let client = match (
        file("cert_file", &tls.cert_file)?,
        file("key_file", &tls.key_file)?,
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("'tls.cert_file' and 'tls.key_file' go together".into()),
    };
    Ok(Some(NatsTls {
        ca_file: file("ca_file", &tls.ca_file)?,
        client,
    }))
}

/// `runner.cluster` from `config.json`, checked; files relative to `dir`.
pub(super) fn settings(c: RawCluster, dir: &Path) -> Result<ClusterSettings, String> {
    if !valid_name(&c.name) {
        return Err(format!(
            "'name' {:?} must be 1 to 64 letters, digits, '_' or '-'",
            c.name
        ));
    }
    if c.nats.is_empty() {
        return Err(
            "'nats' must list at least one server URL, e.g. \"nats://127.0.0.1:4222\"".into(),
        );
    }
    let ack_wait = match c.ack_wait_s {
        None => DEFAULT_ACK_WAIT,
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| *d >= Duration::from_secs(1) && *d <= super::bounds::DAY)
            .ok_or("'ack_wait_s' must be from 1 to 86400 seconds")?,
    };
    let auth = nats_auth(&c, dir)?;
    let tls = nats_tls(c.tls.as_ref(), dir)?;
    Ok(ClusterSettings {
        name: c.name,
        servers: c.nats,
        ack_wait,
        auth,
        tls,
    })
}

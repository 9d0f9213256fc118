//! How a replica proves itself to NATS and protects the connection: `runner.cluster`'s
//! `user`/`password`, `token` or `credentials_file` (one of them), and `tls`.

use std::path::PathBuf;

use anyhow::{Context, Result};

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

/// Connection options for `auth` and `tls`. A credentials file that cannot be read is an
/// error naming it.
pub async fn options(auth: &NatsAuth, tls: Option<&NatsTls>) -> Result<async_nats::ConnectOptions> {
    let mut options = async_nats::ConnectOptions::new();
    options = match auth {
        NatsAuth::None => options,
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(token) => options.token(token.clone()),
        NatsAuth::CredentialsFile(path) => options
            .credentials_file(path)
            .await
            .with_context(|| format!("reading credentials_file {}", path.display()))?,
    };
    if let Some(tls) = tls {
        options = options.require_tls(true);
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &tls.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    Ok(options)
}

/// Where an operator should look for a connection error of this kind.
pub fn hint(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("certificate") || e.contains("tls") {
        " (TLS: check runner.cluster.tls.ca_file, or the server's certificate and name)"
    } else if e.contains("authorization") || e.contains("authentication") {
        " (check runner.cluster's user and password, token or credentials_file, or TGRUN_NATS_*)"
    } else {
        ""
    }
}

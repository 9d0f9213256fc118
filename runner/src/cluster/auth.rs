//! How a replica proves itself to NATS and protects the connection: `runner.cluster`'s
//! `user`/`password`, `token` or `credentials_file` (one of them), and `tls`.

use anyhow::{Context, Result};

pub use crate::config::cluster::{NatsAuth, NatsTls};

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

//! `tgrun serve`: the service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::{AppState, auth};
use crate::service::{LogControl, Service};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration directory: service_config.json, config.json, modules/.
    #[arg(long, env = "TGRUN_CONFIG_DIR", default_value_os_t = super::default_config_dir())]
    config_dir: PathBuf,
    /// Address and port of the HTTP server (default: from config.json, else 0.0.0.0:8080).
    #[arg(long, env = "TGRUN_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the job modules (default: from config.json, else DIR/modules).
    #[arg(long, env = "TGRUN_MODULES_DIR")]
    modules_dir: Option<PathBuf>,
}

pub fn serve(args: ServeArgs, log: Arc<dyn LogControl>) -> Result<ExitCode> {
    let mut config = Config::load(&args.config_dir)?;
    if let Some(listen) = args.listen {
        config.runner.listen = listen;
    }
    if let Some(dir) = args.modules_dir {
        config.runner.modules_dir = dir;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: stopping");
            signal.cancel();
        });
        run_service(config, log, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the service until `shutdown` is cancelled. Shutdown is a parameter so that only
/// `main` listens for signals.
pub async fn run_service(
    config: Config,
    log: Arc<dyn LogControl>,
    shutdown: CancellationToken,
) -> Result<()> {
    let listen = config.runner.listen;
    let token = std::env::var(auth::TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty());
    if token.is_none() {
        tracing::info!(
            "no {} set: mutating routes answer loopback clients only",
            auth::TOKEN_ENV
        );
    }
    let service = Service::start(config, log, token).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the HTTP server to {listen}"))?;
    tracing::info!("HTTP server listening on {}", listener.local_addr()?);
    // A job's HTTP request never reaches the runner's own admin routes on this machine.
    crate::clients::http::listening_on(listener.local_addr()?.port());
    let server = tokio::spawn(crate::server::serve(
        listener,
        crate::server::router(AppState::new(service.clone())),
        shutdown.clone(),
        crate::server::SEND_TIMEOUT,
    ));
    shutdown.cancelled().await;
    service.stop().await;
    server.await??;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

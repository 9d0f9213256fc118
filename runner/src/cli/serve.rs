//! `runner serve`: the service.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::config::Config;
use crate::host::Services;
use crate::metrics::MetricsCache;
use crate::modules::ModuleRegistry;
use crate::sandbox::{Sandbox, SandboxSettings};
use crate::scheduler::Scheduler;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration directory: service_config.json, config.json, modules/.
    #[arg(long, default_value_os_t = super::default_config_dir())]
    config_dir: PathBuf,
    /// Address and port of the HTTP server (default: from config.json, else 0.0.0.0:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of the job modules (default: from config.json, else DIR/modules).
    #[arg(long)]
    modules_dir: Option<PathBuf>,
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
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
        run_service(config, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the service until `shutdown` is cancelled. Shutdown is a parameter so that only
/// `main` listens for signals.
pub async fn run_service(config: Config, shutdown: CancellationToken) -> Result<()> {
    let runner = &config.runner;
    let clients = Clients::start(&config.clients, &runner.sqlite_path, runner.sql_caps).await?;
    let services = Arc::new(Services {
        settings_json: serde_json::Value::Object(config.service.settings.clone()).to_string(),
        clients,
        metrics: Arc::new(MetricsCache::new(
            runner.metrics_ttl,
            runner.metrics_series_per_job,
        )),
    });
    let sandbox = Arc::new(Sandbox::new(
        SandboxSettings {
            max_output_bytes: runner.max_output_bytes,
            max_log_bytes: runner.max_log_bytes,
            max_instances: (config.service.num_consumers as u32 + 8).max(16),
            max_memory_bytes: runner.max_memory_mb << 20,
        },
        services.clone(),
    )?);
    let modules = Arc::new(ModuleRegistry::new(
        runner.modules_dir.clone(),
        sandbox.clone(),
    ));

    // Load every enabled job's module now, so a missing or broken one is reported at start
    // (each run of it will say so again), without stopping the others.
    let names: BTreeSet<_> = config
        .service
        .jobs()
        .filter(|(_, j)| j.enabled)
        .map(|(_, j)| j.name.clone())
        .collect();
    for name in &names {
        if let Err(outcome) = modules.get(name).await {
            tracing::error!(job = %name, outcome = outcome.name(), "{}", outcome.detail());
        }
    }
    tracing::info!(
        pipelines = config.service.pipelines.len(),
        jobs = names.len(),
        consumers = config.service.num_consumers,
        modules_dir = %runner.modules_dir.display(),
        "starting"
    );

    let listener = tokio::net::TcpListener::bind(runner.listen)
        .await
        .with_context(|| format!("binding the HTTP server to {}", runner.listen))?;
    tracing::info!("HTTP server listening on {}", listener.local_addr()?);
    let server = tokio::spawn(crate::server::serve(
        listener,
        crate::server::router(crate::server::AppState { services }),
        shutdown.clone(),
    ));

    let scheduler = Scheduler::start(&config.service, runner.queue_capacity, sandbox, modules);
    shutdown.cancelled().await;
    scheduler.stop().await;
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

//! The command line: `tgrun serve`, `tgrun run`, `tgrun check`, `tgrun new`, `tgrun build`,
//! `tgrun test`.
//!
//! Exit codes: 0 success; 1 the run failed, or `check` found a problem (in a component or
//! a configuration directory: as `promtool check`); 2 bad usage, or a configuration `serve`
//! or `run` cannot start from.

mod build;
mod check;
mod new;
mod run;
mod serve;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};
use tracing_subscriber::{EnvFilter, reload};

use crate::service::LogControl;

#[derive(Debug, Parser)]
#[command(
    name = "tgrun",
    version,
    about = "Runs periodic jobs as sandboxed WebAssembly components"
)]
struct Cli {
    /// How log lines are written to stderr: `text` for eyes, or `json`, one object a line
    /// with every field (for Loki, Elasticsearch, journald's JSON readers).
    #[arg(long, global = true, env = "TGRUN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// What `run` and `check` print: text for eyes, or JSON for scripts and CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: the pipelines of DIR/service_config.json and the HTTP server.
    Serve(serve::ServeArgs),
    /// Run one job once and print its outcome, logs and the metrics it wrote.
    Run(run::RunArgs),
    /// Say whether a .wasm file is a job component, or whether a configuration directory
    /// and its modules would start, and if not, every problem.
    Check(check::CheckArgs),
    /// Create a job crate to start from (in jobs-wasm/ by default).
    New(new::NewArgs),
    /// Build a job's folder, anywhere on disk, into a component: a Rust crate, a Python
    /// job (`app.py`) or a tglib service's package (`jobs.py`, `routes.py`, `main.py`).
    Build(build::BuildArgs),
    /// Run a tglib service's own unit tests inside the sandbox (its `tests/` beside or
    /// inside its package), built with it as `build` builds it.
    Test(test::TestArgs),
}

/// Where the configuration lives unless `--config-dir` says otherwise.
fn default_config_dir() -> PathBuf {
    PathBuf::from("config")
}

/// Logs to stderr; `RUST_LOG` overrides the default level (one that is not a filter is
/// said in a warning, not ignored in silence). The answer changes the level while the
/// process runs (`PUT /log/{LEVEL}`).
fn init_logging(default: &str, format: LogFormat) -> Arc<dyn LogControl> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let from_env = std::env::var("RUST_LOG").ok();
    let refused = from_env
        .as_deref()
        .and_then(|v| EnvFilter::try_new(v).err().map(|e| (v.to_owned(), e)));
    let initial = match (&from_env, &refused) {
        (Some(v), None) => v.clone(),
        _ => default.to_owned(),
    };
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&initial));
    let text = (format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    // The event's fields at the top level beside `timestamp`, `level`, `target`, and the
    // spans it happened in (with their fields) under `spans`.
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(std::io::stderr)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .try_init();
    if let Some((value, e)) = refused {
        tracing::warn!("RUST_LOG={value:?} is not a log filter ({e}); logging at {initial:?}");
    }
    Arc::new(ReloadLog {
        handle,
        current: Mutex::new(initial),
    })
}

/// The log level of this process, changeable at run time.
struct ReloadLog {
    handle: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    current: Mutex<String>,
}

impl LogControl for ReloadLog {
    fn set(&self, filter: &str) -> Result<String, String> {
        let new = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
        self.handle.reload(new).map_err(|e| e.to_string())?;
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        Ok(std::mem::replace(&mut *cur, filter.to_owned()))
    }

    fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            let log = init_logging("info", cli.log_format);
            serve::serve(args, log)
        }
        Command::Run(args) => {
            init_logging("warn", cli.log_format);
            run::run(args)
        }
        Command::Check(args) => {
            init_logging("warn", cli.log_format);
            check::check(args)
        }
        Command::New(args) => new::new(args),
        Command::Build(args) => build::build(args),
        Command::Test(args) => {
            init_logging("warn", cli.log_format);
            test::test(args)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

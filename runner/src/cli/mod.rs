//! The command line: `runner serve`, `runner run`, `runner check`.
//!
//! Exit codes: 0 success; 1 the run failed or the component does not fit; 2 bad usage or
//! bad configuration.

mod check;
mod run;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about = "Runs periodic jobs as sandboxed WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: the pipelines of DIR/service_config.json and the HTTP server.
    Serve(serve::ServeArgs),
    /// Run one job once and print its outcome, logs and the metrics it wrote.
    Run(run::RunArgs),
    /// Say whether a .wasm file is a job component, and if not, what is wrong.
    Check(check::CheckArgs),
}

/// Where the configuration lives unless `--config-dir` says otherwise.
fn default_config_dir() -> PathBuf {
    PathBuf::from("config")
}

/// Logs to stderr; `RUST_LOG` overrides the default level.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            init_logging("info");
            serve::serve(args)
        }
        Command::Run(args) => {
            init_logging("warn");
            run::run(args)
        }
        Command::Check(args) => {
            init_logging("warn");
            check::check(args)
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

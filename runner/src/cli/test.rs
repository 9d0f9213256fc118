//! `tgrun test PATH`: a tglib service's own unit tests, built with it and run inside the
//! sandbox (the SDK's `tgrun._tests`), as its jobs will run. Prints unittest's report;
//! exits 1 when a test failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::config::RunnerSettings;
use crate::run::log::{LogLevel, LogStream};
use crate::run::{Capabilities, Invocation, JobId, RunLimits};
use crate::sandbox::{Sandbox, SandboxSettings};
use crate::scheduler::{RunIds, unix_ms};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The service's package folder (`jobs.py`, `routes.py`, ...), its tests in `tests/`
    /// inside it or beside it (tgnms' layout: `setup.py`, `tests/` and the package).
    path: PathBuf,
    /// Only the tests whose id matches: a substring, or a pattern with `*`, as
    /// `unittest -k` (repeatable).
    #[arg(short = 'k', value_name = "PATTERN")]
    only: Vec<String>,
    /// The module to load the tests from (default: `setup.py`'s `test_suite`, else every
    /// `test*.py`, `*_test.py` and `*_tests.py` of the tests folder).
    #[arg(long, value_name = "MODULE")]
    suite: Option<String>,
    #[command(flatten)]
    how: super::build::BuildFlags,
    /// Time limit of the whole suite, in seconds (ptr's default).
    #[arg(long, default_value_t = 300.0)]
    timeout_s: f64,
    /// Memory limit of the run, in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mb: u64,
    /// Print the tests' `logging` records of every level, not only warnings and errors
    /// (unittest's default).
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Bytes of the report (the run's stderr) kept: a long suite's verbose report fits.
const MAX_REPORT_BYTES: usize = 16 << 20;

pub fn test(args: TestArgs) -> Result<ExitCode> {
    let timeout = Duration::try_from_secs_f64(args.timeout_s)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--timeout-s must be a positive number of seconds")?;
    let runner = RunnerSettings::defaults(Path::new("."));
    if args.memory_mb == 0 || args.memory_mb > runner.max_memory_mb {
        bail!("--memory-mb must be from 1 to {}", runner.max_memory_mb);
    }
    let work = tempfile::tempdir().context("making a folder for the test component")?;
    let opts = args.how.options(Some(work.path().join("tests.wasm")));
    let built = crate::build::build_tests(&args.path, &opts, args.suite)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // No configured clients (a unit test mocks them): as `tgrun run` runs a file without
    // a configuration.
    let services = super::run::unconfigured(&rt, &runner)?;
    let sandbox = Sandbox::new(
        SandboxSettings {
            max_output_bytes: MAX_REPORT_BYTES,
            max_log_bytes: MAX_REPORT_BYTES,
            max_instances: 2,
            max_memory_bytes: runner.max_memory_mb << 20,
            cache_dir: Some(opts.cache.join("compiled")),
            make_ahead: false,
            ..SandboxSettings::default()
        },
        Arc::new(services),
    )?;
    let component = sandbox
        .compile_file(&built.file)
        .with_context(|| format!("loading the test component of {}", args.path.display()))?;
    let inv = Invocation::new(
        JobId::manual(&"tests".into()),
        RunIds::default().next(),
        unix_ms(),
        json!({ "only": (!args.only.is_empty()).then_some(&args.only) })
            .to_string()
            .into(),
        RunLimits {
            timeout,
            memory_bytes: args.memory_mb << 20,
        },
        Capabilities::ALL,
    );
    let report = rt.block_on(sandbox.run(&component, &inv, false));
    for line in &report.logs {
        match line.stream {
            LogStream::Log if args.verbose || line.level >= LogLevel::Warn => {
                let level = serde_json::to_value(line.level).unwrap_or_default();
                println!("[{}] {}", level.as_str().unwrap_or(""), line.message);
            }
            LogStream::Log => {}
            // unittest's report, and what the tests print.
            LogStream::Stdout | LogStream::Stderr => println!("{}", line.message),
        }
    }
    if report.logs_dropped > 0 || report.output_dropped > 0 {
        println!(
            "({} lines and {} bytes of the report dropped: over {} MiB)",
            report.logs_dropped,
            report.output_dropped,
            MAX_REPORT_BYTES >> 20
        );
    }
    let took = report.duration.as_secs_f64();
    if report.outcome.is_ok() {
        println!("tgrun test: ok in the sandbox ({took:.2} s)");
        return Ok(ExitCode::SUCCESS);
    }
    let detail = report.outcome.detail();
    let first = detail.lines().next().unwrap_or_default();
    println!(
        "tgrun test: {} in the sandbox ({took:.2} s): {first}",
        report.outcome.name()
    );
    Ok(ExitCode::from(1))
}

//! `tgrun run NAME_OR_FILE.wasm`: one invocation, for job authors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::Output;
use crate::clients::recording::{self, Call, CallLog};
use crate::clients::{Clients, standin};
use crate::config::{self, Config, RunnerSettings, SERVICE_FILE};
use crate::host::HostClients;
use crate::run::Capabilities;
use crate::run::outcome::RunReport;
use crate::run::{Invocation, JobId, RunLimits};
use crate::sandbox::{Sandbox, SandboxSettings};
use crate::scheduler::{RunIds, unix_ms};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A job name from the configuration (its module from the modules directory), or the
    /// path of a .wasm file.
    target: String,
    /// The job's params as a JSON object (default: the job's params in the configuration,
    /// or `{}`).
    #[arg(long, env = "TGRUN_PARAMS")]
    params: Option<String>,
    /// The configuration directory (for the job's params, limits and the service settings).
    #[arg(long, env = "TGRUN_CONFIG_DIR", default_value_os_t = super::default_config_dir())]
    config_dir: PathBuf,
    /// Time limit in seconds (default: the job's `timeout_s`, or the runner's default).
    #[arg(long, env = "TGRUN_TIMEOUT_S")]
    timeout_s: Option<f64>,
    /// Memory limit in MiB (default: the job's `memory_mb`, or the runner's default).
    #[arg(long, env = "TGRUN_MEMORY_MB")]
    memory_mb: Option<u64>,
    /// Stand-in clients answering from the responses recorded in this JSON file, in place
    /// of the configured Prometheus, API service and database (see the README).
    #[arg(long, env = "TGRUN_STANDIN")]
    standin: Option<PathBuf>,
    /// `text`, or `json`: one object with the outcome, logs, metrics and calls.
    #[arg(long, env = "TGRUN_OUTPUT", value_enum, default_value_t = Output::Text)]
    output: Output,
    /// For a file: the job to run (default: the file's name), e.g. one job of a tglib
    /// service's component.
    #[arg(long)]
    job: Option<String>,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let is_file = args.target.ends_with(".wasm") || args.target.contains('/');
    // A configuration is optional when running a file, required when running by name.
    let config = if is_file && !args.config_dir.join(SERVICE_FILE).exists() {
        None
    } else {
        Some(Config::load(&args.config_dir)?)
    };
    let runner = config
        .as_ref()
        .map(|c| c.runner.clone())
        .unwrap_or_else(|| RunnerSettings::defaults(&args.config_dir));

    let (job, path) = if is_file {
        let path = PathBuf::from(&args.target);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| {
                format!(
                    "{}: cannot take a job name from this file name",
                    path.display()
                )
            })?
            .to_owned();
        let job = args.job.clone().unwrap_or(stem);
        // A tglib service's component lists its jobs: one it lacks is said now, not as
        // the run's error.
        if let Some(jobs) = std::fs::read(&path)
            .ok()
            .and_then(|b| crate::sandbox::jobs_section::job_names(&b))
            && !jobs.contains(&job)
        {
            bail!(
                "{} has no job '{job}'; its jobs: {} (choose one with --job)",
                path.display(),
                jobs.join(", ")
            );
        }
        (job, path)
    } else {
        (
            args.target.clone(),
            runner.modules_dir.join(format!("{}.wasm", args.target)),
        )
    };
    let spec = config.as_ref().and_then(|c| {
        c.service
            .jobs()
            .find(|(_, j)| *j.name == *job)
            .map(|(_, j)| j.clone())
    });
    // A configured job runs its own component, which may be shared (`module`).
    let path = match &spec {
        Some(s) if !is_file => runner.modules_dir.join(format!("{}.wasm", s.module)),
        _ => path,
    };
    if !is_file && spec.is_none() && !path.exists() {
        bail!(
            "no job '{job}' in {} and no module {}",
            args.config_dir.join(SERVICE_FILE).display(),
            path.display()
        );
    }

    let params = match &args.params {
        Some(p) => {
            let v = config::parse_json(Path::new("--params"), p)?;
            if !v.is_object() {
                bail!("--params must be a JSON object, such as '{{\"x\": 5}}'");
            }
            v.to_string()
        }
        None => spec
            .as_ref()
            .map_or_else(|| "{}".to_owned(), |s| s.params.to_string()),
    };
    let mut limits = spec.as_ref().map_or(
        RunLimits {
            timeout: runner.default_timeout,
            memory_bytes: runner.default_memory_mb << 20,
        },
        |s| s.limits,
    );
    if let Some(t) = args.timeout_s {
        limits.timeout = Duration::try_from_secs_f64(t)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--timeout-s must be a positive number of seconds")?;
    }
    if let Some(m) = args.memory_mb {
        if m == 0 || m > runner.max_memory_mb {
            bail!("--memory-mb must be from 1 to {}", runner.max_memory_mb);
        }
        limits.memory_bytes = m << 20;
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The same clients as `tgrun serve` would lend the job, or stand-ins; either way
    // every call is reported.
    let calls = Arc::new(CallLog::default());
    let mut services = match &config {
        _ if args.standin.is_some() => HostClients {
            clients: standin::load(args.standin.as_deref().unwrap_or(Path::new("")))?,
            ..config.as_ref().map_or_else(HostClients::default, |c| {
                HostClients::new(&c.service.settings)
            })
        },
        Some(c) => HostClients {
            clients: rt.block_on(Clients::start(
                &c.clients,
                &c.runner.sqlite_path,
                c.runner.sql_caps,
            ))?,
            ..HostClients::new(&c.service.settings)
        },
        None => unconfigured(&rt, &runner)?,
    };
    services.clients = recording::wrap(std::mem::take(&mut services.clients), &calls);
    services.http =
        crate::clients::http::HttpClients::trusting(runner.outbound_ca_file.as_deref())?;
    // Secrets of the configuration are masked out of what the job writes, as in `serve`.
    if let Some(c) = &config
        && let Ok(raw) = crate::config::read_json(&c.dir.join(crate::config::SERVICE_FILE))
    {
        services.set_service_file(&raw);
    }
    let sandbox = Sandbox::new(
        SandboxSettings {
            max_output_bytes: runner.max_output_bytes,
            max_log_bytes: runner.max_log_bytes,
            max_instances: 2,
            large_instances: 2,
            large_memory_kept_bytes: runner.large_memory_kept_mb << 20,
            max_memory_bytes: runner.max_memory_mb << 20,
            // A file run without a configuration directory leaves nothing behind.
            cache_dir: config.as_ref().and(runner.cache_dir.clone()),
            // One run: no next one to make an instance for.
            make_ahead: false,
            ..SandboxSettings::default()
        },
        Arc::new(services),
    )?;
    let component = match sandbox.compile_file(&path) {
        Ok(c) => c,
        Err(e) => {
            match args.output {
                Output::Text => {
                    println!("job:      {job} ({})", path.display());
                    println!("outcome:  module_invalid ({e})");
                }
                Output::Json => println!(
                    "{}",
                    json!({"job": job, "file": path.display().to_string(),
                        "outcome": "module_invalid", "detail": e.to_string()})
                ),
            }
            return Ok(ExitCode::from(1));
        }
    };
    let inv = Invocation::new(
        JobId::manual(&job.as_str().into()),
        RunIds::default().next(),
        unix_ms(),
        params.into(),
        limits,
        spec.as_ref().map_or(Capabilities::ALL, |s| s.grants),
    );
    // A configured job runs as `serve` runs it: of its component (`module`), whose jobs
    // its pipeline's tick is shown.
    let inv = match &spec {
        Some(s) => inv
            .of_module(&s.module)
            .with_env(&s.env)
            .with_outbound(&s.outbound),
        None => inv,
    };
    let report = rt.block_on(sandbox.run(&component, &inv, false));
    match args.output {
        Output::Text => {
            print_report(&report, &path);
            print_calls(&calls.calls());
        }
        Output::Json => println!("{}", report_json(&report, &path, &calls.calls())),
    }
    Ok(if report.outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The clients of a run without a configuration: none but an in-memory SQLite, so a job's
/// SQL can still be tried out.
pub(super) fn unconfigured(
    rt: &tokio::runtime::Runtime,
    runner: &RunnerSettings,
) -> Result<HostClients> {
    Ok(HostClients {
        clients: Clients {
            sql: Some(rt.block_on(crate::clients::sql::sqlite(
                Path::new(":memory:"),
                runner.sql_caps,
            ))?),
            ..Clients::default()
        },
        ..HostClients::default()
    })
}

fn print_report(r: &RunReport, path: &Path) {
    println!("job:      {} ({})", r.job, path.display());
    println!("run id:   {}", r.run_id);
    if r.outcome.is_ok() {
        println!("outcome:  ok");
    } else {
        println!("outcome:  {} ({})", r.outcome.name(), r.outcome.detail());
    }
    println!("duration: {:.3} ms", r.duration.as_secs_f64() * 1e3);
    println!("logs:     {}", if r.logs.is_empty() { "none" } else { "" });
    for line in &r.logs {
        let level = serde_json::to_value(line.level).unwrap_or_default();
        let stream = serde_json::to_value(line.stream).unwrap_or_default();
        println!(
            "  [{} {}] {}",
            level.as_str().unwrap_or(""),
            stream.as_str().unwrap_or(""),
            line.message
        );
    }
    if r.logs_dropped > 0 || r.output_dropped > 0 {
        println!(
            "  ({} log lines and {} bytes of output dropped for the per-run caps)",
            r.logs_dropped, r.output_dropped
        );
    }
    println!(
        "metrics:  {}",
        if r.metrics.is_empty() { "none" } else { "" }
    );
    for m in &r.metrics {
        let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        match m.time_ms {
            Some(t) => println!("  {}{labels} {} {t}", m.name, m.value),
            None => println!("  {}{labels} {}", m.name, m.value),
        }
    }
}

fn print_calls(calls: &[Call]) {
    println!("calls:    {}", if calls.is_empty() { "none" } else { "" });
    for c in calls {
        println!(
            "  {} {} ({:.3} ms): {}",
            c.client,
            c.what,
            c.took.as_secs_f64() * 1e3,
            c.result
        );
    }
}

/// The run as one JSON object: what the text says, with numbers as numbers.
fn report_json(r: &RunReport, path: &Path, calls: &[Call]) -> Value {
    let logs: Vec<Value> = r
        .logs
        .iter()
        .map(|l| json!({"level": l.level, "stream": l.stream, "message": l.message}))
        .collect();
    let metrics: Vec<Value> = r
        .metrics
        .iter()
        .map(|m| {
            let labels: serde_json::Map<String, Value> = m
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            json!({"name": m.name, "labels": labels, "value": m.value, "time_ms": m.time_ms})
        })
        .collect();
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            json!({"client": c.client, "what": c.what,
                "took_ms": c.took.as_secs_f64() * 1e3, "result": c.result})
        })
        .collect();
    json!({
        "job": &*r.job,
        "file": path.display().to_string(),
        "run_id": &*r.run_id,
        "outcome": r.outcome.name(),
        "detail": (!r.outcome.is_ok()).then(|| r.outcome.detail()),
        "duration_ms": r.duration.as_secs_f64() * 1e3,
        "logs": logs,
        "logs_dropped": r.logs_dropped,
        "output_dropped": r.output_dropped,
        "metrics": metrics,
        "calls": calls,
    })
}

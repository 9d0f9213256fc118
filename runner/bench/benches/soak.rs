//! `make bench`, soak: a million runs (`SOAK_RUNS` to change it) mixing good and hostile
//! jobs, four at a time, each in a fresh instance. Reports the runner's resident memory
//! after the first 10,000 runs and at the end; the target is the end within 10% of it.
//! Each is the lowest of ten readings, one every 1,000 runs: a reading also holds the
//! pages of up to a batch of recent instances waiting to be returned to the kernel
//! together (`decommit_batch_size`), 16 MiB for a `memory_hog` alone, which made single
//! readings swing by tens of percent either way; a leak raises the lowest reading too.
//!
//! Per 1,000 runs: 900 `noop`, 50 `echo` (logs, stdout, a metric), 20 `fails` (error),
//! 10 `panics` (trap), 10 `hostile` deep recursion (stack overflow), 5 `hostile` host-call
//! floods (10,000 log calls, past the log budget), 4 `memory_hog` (memory limit of
//! 16 MiB), 1 `spin` (time limit of 20 ms).

/// The allocator `tgrun` runs with (runner/src/main.rs): the soak reads the memory the
/// binary would hold.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tgrun::host::HostClients;
use tgrun::run::{Invocation, RunLimits};
use tgrun::sandbox::component::JobComponent;
use tgrun::sandbox::{Sandbox, SandboxSettings};

fn wasm(job: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/guest")
        .join(format!("{job}.wasm"));
    assert!(p.exists(), "{} missing: run `make jobs`", p.display());
    p
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Which job run `i` is, with its params, time and memory limits.
fn pick(i: u64) -> (&'static str, &'static str, Duration, u64) {
    let second = Duration::from_secs(1);
    match i % 1000 {
        0 => ("spin", "{}", Duration::from_millis(20), 16),
        1..=4 => ("memory_hog", "{}", second, 16),
        5..=9 => (
            "hostile",
            r#"{"mode": "host_calls", "n": 10000}"#,
            second,
            16,
        ),
        10..=19 => ("hostile", r#"{"mode": "recurse"}"#, second, 16),
        20..=29 => ("panics", "{}", second, 16),
        30..=49 => ("fails", "{}", second, 16),
        50..=99 => ("echo", r#"{"value": 2}"#, second, 16),
        _ => ("noop", "{}", second, 16),
    }
}

fn main() {
    let runs: u64 = std::env::var("SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = Arc::new(
        Sandbox::new(SandboxSettings::default(), Arc::new(HostClients::default())).unwrap(),
    );
    let jobs: Vec<(&str, Arc<JobComponent>)> = [
        "noop",
        "echo",
        "fails",
        "panics",
        "hostile",
        "memory_hog",
        "spin",
    ]
    .into_iter()
    .map(|j| (j, sandbox.compile_file(&wasm(j)).unwrap()))
    .collect();
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicU64::new(0));
    let outcomes: Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>> =
        Arc::default();
    // (run index, resident MiB), one reading every 1,000 runs.
    let readings = Arc::new(std::sync::Mutex::new(Vec::<(u64, f64)>::new()));
    let started = Instant::now();
    rt.block_on(async {
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (sandbox, jobs, next, outcomes, readings) = (
                sandbox.clone(),
                jobs.clone(),
                next.clone(),
                outcomes.clone(),
                readings.clone(),
            );
            workers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= runs {
                        return;
                    }
                    if i % 1_000 == 0 {
                        readings.lock().unwrap().push((i, rss_mb()));
                    }
                    let (job, params, timeout, mb) = pick(i);
                    let component = &jobs.iter().find(|(j, _)| *j == job).unwrap().1;
                    let inv = Invocation::new(
                        tgrun::run::JobId::new(&"soak".into(), 0, &job.into()),
                        format!("soak-{i}"),
                        0,
                        params.into(),
                        RunLimits {
                            timeout,
                            memory_bytes: mb << 20,
                        },
                        tgrun::run::Capabilities::ALL,
                    );
                    let report = sandbox.run(component, &inv, false).await;
                    *outcomes
                        .lock()
                        .unwrap()
                        .entry(report.outcome.name())
                        .or_default() += 1;
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let readings = readings.lock().unwrap();
    let lowest = |from: u64, to: u64| {
        readings
            .iter()
            .filter(|(i, _)| (from..to).contains(i))
            .map(|(_, mb)| *mb)
            .fold(f64::INFINITY, f64::min)
    };
    let end = lowest(runs.saturating_sub(10_000), runs).min(rss_mb());
    // A soak shorter than 20,000 runs has no first window: it compares the end with itself.
    let first = Some(lowest(10_000, 20_000))
        .filter(|mb| mb.is_finite())
        .unwrap_or(end);
    let growth = (end - first) / first * 100.0;
    println!(
        "soak: {runs} runs in {secs:.1} s ({:.0} runs/s), outcomes {:?}",
        runs as f64 / secs,
        outcomes.lock().unwrap()
    );
    println!(
        "soak: resident memory (lowest of ten readings) over runs 10,000-20,000 {first:.1} MiB, over the last 10,000 {end:.1} MiB: {growth:+.1}% (target within 10%: {})",
        if growth.abs() <= 10.0 { "pass" } else { "FAIL" }
    );
}

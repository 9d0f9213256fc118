//! `make bench`: figures, not pass/fail (the machine is shared and noisy; compare figures
//! of the same run).
//!
//! 1. A trivial job (`noop`) in a fresh instance per run, instantiate to drop: p50, p99.
//!    Also with on-demand allocation instead of the pool.
//! 2. A Python job: its load (compiled anew, from the cache) and its per-run cost.
//! 3. Invocations per second through the scheduler (producer, bounded queue, consumers,
//!    fresh instance, report published), with two consumers.
//! 4. A restart with 20 modules, from the cache and compiled anew; hot-swap latency.
//! 5. The seed's bumper against a real Prometheus (`bumper.rs`); a service of 1,000 jobs
//!    in a `tgrun serve` process of its own (`fleet.rs`).
//! 6. The cost of the jobs' SQL guards against the runner's own pool (`sql.rs`).
//! 8. The cluster: a policed run's JetStream round trips, and 1, 2 and 3 replicas
//!    (`cluster.rs`).

/// The allocator `tgrun` itself runs with (runner/src/main.rs), so that the library's
/// figures here are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bumper;
mod cluster;
mod fleet;
mod python_fleet;
mod sql;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tgrun::clients::sql::sqlite_for_runner;
use tgrun::config::Config;
use tgrun::config::runner::Retention;
use tgrun::host::HostClients;
use tgrun::modules::ModuleRegistry;
use tgrun::run::{Invocation, RunLimits};
use tgrun::sandbox::{Sandbox, SandboxSettings};
use tgrun::scheduler::history::Recorder;
use tgrun::scheduler::{Scheduler, Shared};

fn wasm(job: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/guest")
        .join(format!("{job}.wasm"));
    assert!(p.exists(), "{} missing: run `make jobs`", p.display());
    p
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn invocation(job: &str, params: &str) -> Invocation {
    // The constructor, not a literal: a field added to a run's types leaves this as it is.
    Invocation::new(
        tgrun::run::JobId::new(&"bench".into(), 0, &job.into()),
        "bench".into(),
        0,
        params.into(),
        RunLimits {
            timeout: Duration::from_secs(10),
            memory_bytes: 128 << 20,
        },
        tgrun::run::Capabilities::ALL,
    )
}

/// Per-run times of `job` in a fresh instance each, after `warm` runs: sorted.
fn per_run(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    job: &str,
    warm: usize,
    n: usize,
) -> Vec<Duration> {
    per_run_with_usage(rt, sandbox, job, warm, n, Duration::ZERO).0
}

/// The same, and the process's page faults and CPU time per timed run: figures a busy
/// machine moves far less than wall time (faults not at all). `gap`: a wait after each
/// run (as between a periodic job's runs), in which work the run left to the background
/// is done; its CPU is counted, its time is not.
fn per_run_with_usage(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    job: &str,
    warm: usize,
    n: usize,
    gap: Duration,
) -> (Vec<Duration>, Usage) {
    let component = sandbox.compile_file(&wasm(job)).unwrap();
    let inv = invocation(job, "{}");
    let (mut samples, usage) = rt.block_on(async {
        for _ in 0..warm {
            let r = sandbox.run(&component, &inv, false).await;
            assert!(r.outcome.is_ok(), "{:?}", r.outcome);
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
        let mut samples = Vec::with_capacity(n);
        let mut in_runs = 0.0;
        let before = Usage::now();
        for _ in 0..n {
            // With a gap, the faults taken in the run itself, apart from the background's.
            let faults = (!gap.is_zero()).then(|| Usage::now().faults);
            let t = Instant::now();
            let r = sandbox.run(&component, &inv, false).await;
            samples.push(t.elapsed());
            debug_assert!(r.outcome.is_ok());
            if let Some(f) = faults {
                in_runs += Usage::now().faults - f;
                tokio::time::sleep(gap).await;
            }
        }
        let mut usage = Usage::now().since(&before, n);
        usage.in_run_faults = if gap.is_zero() {
            usage.faults
        } else {
            in_runs / n as f64
        };
        (samples, usage)
    });
    samples.sort();
    (samples, usage)
}

/// The process's minor page faults and CPU time (user + system), from `/proc/self/stat`.
#[derive(Debug, Clone, Copy)]
struct Usage {
    faults: f64,
    /// Of them, taken while a run was being timed.
    in_run_faults: f64,
    cpu: Duration,
}

impl Usage {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        // Fields after the command's closing parenthesis: state is field 3, minflt 10,
        // utime 14 and stime 15 (clock ticks of 10 ms).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let field = |n: usize| fields[n - 3].parse::<u64>().unwrap();
        Self {
            faults: field(10) as f64,
            in_run_faults: 0.0,
            cpu: Duration::from_millis((field(14) + field(15)) * 10),
        }
    }

    /// Per run, over `n` runs since `before`.
    fn since(&self, before: &Self, n: usize) -> Self {
        Self {
            faults: (self.faults - before.faults) / n as f64,
            in_run_faults: 0.0,
            cpu: (self.cpu - before.cpu) / n as u32,
        }
    }
}

/// `p50 …, p99 …, mean …` of sorted samples, in `unit` (`µs` or `ms`).
fn summary(sorted: &[Duration], unit: &str) -> String {
    let scale = if unit == "ms" { 1e3 } else { 1e6 };
    let mean = sorted.iter().sum::<Duration>().as_secs_f64() / sorted.len() as f64;
    format!(
        "p50 {:.1} {unit}, p99 {:.1} {unit}, mean {:.1} {unit}",
        percentile(sorted, 0.50).as_secs_f64() * scale,
        percentile(sorted, 0.99).as_secs_f64() * scale,
        mean * scale
    )
}

/// Instances made in their runs (pooled or on demand), as the runs of figure 1 measure them.
fn sandbox_with(pooling: bool, cache_dir: Option<&Path>) -> Sandbox {
    let settings = SandboxSettings {
        pooling,
        cache_dir: cache_dir.map(Path::to_path_buf),
        make_ahead: false,
        ..SandboxSettings::default()
    };
    Sandbox::new(settings, Arc::new(HostClients::default())).unwrap()
}

fn fresh_instance_cost(rt: &tokio::runtime::Runtime) {
    let n = 20_000;
    let pooled = per_run(rt, &sandbox_with(true, None), "noop", 2_000, n);
    let on_demand = per_run(rt, &sandbox_with(false, None), "noop", 2_000, n);
    println!(
        "fresh instance per run (noop, {n} runs, one thread): {}",
        summary(&pooled, "µs")
    );
    let ratio = percentile(&on_demand, 0.5).as_secs_f64() / percentile(&pooled, 0.5).as_secs_f64();
    println!(
        "  same with on-demand allocation instead of the pool: {} (pooling {ratio:.1}x faster at p50)",
        summary(&on_demand, "µs"),
    );
    let (p50, p99) = (micros(&pooled, 0.50), micros(&pooled, 0.99));
    table::target(
        "1. trivial job, fresh instance, p50",
        format!("{p50:.1} µs"),
        "≤ 25 µs",
        p50 <= 25.0,
    );
    table::target(
        "1. trivial job, fresh instance, p99",
        format!("{p99:.1} µs"),
        "≤ 100 µs",
        p99 <= 100.0,
    );
    table::report(
        "3. pooling against on-demand allocation (p50 ratio)",
        format!("{ratio:.1}x"),
    );
    NOOP_P50_MICROS.store(p50.to_bits(), Ordering::Relaxed);

    // The host's own share: the same trivial job without std and WASI (one core module,
    // nothing imported), in the same run.
    let core = per_run(rt, &sandbox_with(true, None), "noop_core", 2_000, n);
    let core_p50 = micros(&core, 0.50);
    println!(
        "  the trivial job without std and WASI (noop_core, 1 core module and no import, against \
         noop's 3 core modules and its SDK's one import): {} ({:.2}x noop's p50)",
        summary(&core, "µs"),
        p50 / core_p50
    );
    table::report(
        "1. trivial job without std and WASI (the host's share), p50",
        format!(
            "{core_p50:.1} µs (noop {p50:.1} µs, {:.2}x)",
            p50 / core_p50
        ),
    );
}

/// The trivial job's p50 in this run, for the comparison with spawning processes.
static NOOP_P50_MICROS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn micros(sorted: &[Duration], p: f64) -> f64 {
    percentile(sorted, p).as_secs_f64() * 1e6
}

/// The same trivial job done the old way: one process per run (a native no-op binary).
fn process_per_run() {
    let n = 500;
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let status = std::process::Command::new("true").status().unwrap();
            assert!(status.success());
            t.elapsed()
        })
        .collect();
    samples.sort();
    println!(
        "one process per run (`true`, {n} spawns): {}",
        summary(&samples, "µs")
    );
    let noop = f64::from_bits(NOOP_P50_MICROS.load(Ordering::Relaxed));
    if noop > 0.0 {
        let ratio = micros(&samples, 0.5) / noop;
        table::target(
            "3. fresh instance against a process per run (p50 ratio)",
            format!("{ratio:.0}x ({:.0} µs a spawn)", micros(&samples, 0.5)),
            "≥ 50x",
            ratio >= 50.0,
        );
    }
}

/// The median time of `runs` runs of `bench_calls` with `params`, each in a fresh instance.
fn median_of(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    component: &Arc<tgrun::sandbox::component::JobComponent>,
    params: &str,
    runs: usize,
) -> Duration {
    let inv = invocation("bench_calls", params);
    let mut times: Vec<Duration> = rt.block_on(async {
        let mut out = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let r = sandbox.run(component, &inv, false).await;
            out.push(t.elapsed());
            assert!(r.outcome.is_ok(), "{params}: {:?}", r.outcome);
        }
        out
    });
    times.sort();
    times[times.len() / 2]
}

/// One host call's cost: runs of `bench_calls` making `n` calls against runs making none.
fn host_call_cost(rt: &tokio::runtime::Runtime) {
    let settings = SandboxSettings {
        // Every line kept: the cost of a line that reaches the log, not of a dropped one.
        max_log_bytes: 64 << 20,
        ..SandboxSettings::default()
    };
    let sandbox = Sandbox::new(settings, Arc::new(HostClients::default())).unwrap();
    let component = sandbox.compile_file(&wasm("bench_calls")).unwrap();
    let median_run = |params: String| median_of(rt, &sandbox, &component, &params, 21);
    // BENCH_CALL=metric (or log) measures only that call, for a profiler.
    let only = std::env::var("BENCH_CALL").ok();
    for (mode, n, figure) in [
        ("log", 100_000u32, "4. host call: a short log line"),
        ("metric", 5_000, "4. host call: a one-series metric write"),
    ] {
        if only.as_deref().is_some_and(|m| m != mode) {
            continue;
        }
        let with = median_run(format!(r#"{{"mode": "{mode}", "n": {n}}}"#));
        let without = median_run(format!(r#"{{"mode": "{mode}", "n": 0}}"#));
        let each = (with.saturating_sub(without)).as_secs_f64() * 1e6 / f64::from(n);
        println!(
            "host call {mode}: {each:.3} µs each ({n} calls in a run: {with:?}; none: {without:?})"
        );
        table::target(figure, format!("{each:.3} µs"), "≤ 1 µs", each <= 1.0);
    }
    // What the run's memory budget adds to a client call (issue 39): the call's scope and
    // three charges (statement, rows, answer), against the host call figures above.
    let budget = tgrun::run::budget::Budget::new(1 << 30);
    let calls = 1_000_000u32;
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..calls {
            tgrun::run::budget::within(&budget, async {
                for bytes in [64, 4096, 100] {
                    tgrun::run::budget::charge(std::hint::black_box(bytes), "bench").unwrap();
                }
            })
            .await;
        }
    });
    let each = t.elapsed().as_secs_f64() * 1e9 / f64::from(calls);
    println!("the run's memory budget: {each:.0} ns a client call (its scope and three charges)");
    table::report(
        "4. a client call's memory accounting (scope, three charges)",
        format!("{each:.0} ns"),
    );
}

/// Deadlines by epoch interruption against none: the same CPU-bound guest in each.
fn deadline_cost(rt: &tokio::runtime::Runtime) {
    let time = |epochs: bool| {
        let settings = SandboxSettings {
            epoch_deadlines: epochs,
            ..SandboxSettings::default()
        };
        let sandbox = Sandbox::new(settings, Arc::new(HostClients::default())).unwrap();
        let component = sandbox.compile_file(&wasm("bench_calls")).unwrap();
        let params = r#"{"mode": "cpu", "n": 200000000}"#;
        median_of(rt, &sandbox, &component, params, 7)
    };
    // Interleaved, so a change in the machine's load touches both alike.
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        on.push(time(true));
        off.push(time(false));
    }
    on.sort();
    off.sort();
    let ratio = on[1].as_secs_f64() / off[1].as_secs_f64();
    println!(
        "CPU-bound guest (2e8 rounds): {:?} with epoch deadlines, {:?} without ({ratio:.3}x)",
        on[1], off[1]
    );
    table::target(
        "5. CPU-bound guest, deadlines on / off",
        format!("{ratio:.3}x"),
        "≤ 1.2x",
        ratio <= 1.2,
    );
}

/// A Python job (componentize-py: CPython in the component): its load, compiled anew and
/// from the cache, and its per-run cost in a fresh instance, pooled and on demand.
fn python_cost(rt: &tokio::runtime::Runtime) {
    let cache = tempfile::tempdir().unwrap();
    let load = |pooling| {
        let sandbox = sandbox_with(pooling, Some(cache.path()));
        let t = Instant::now();
        sandbox.compile_file(&wasm("py_probe")).unwrap();
        (t.elapsed(), sandbox)
    };
    let (cold, _) = load(true);
    let (cached, pooled) = load(true);
    let size = std::fs::metadata(wasm("py_probe")).unwrap().len();
    println!(
        "python job load ({:.1} MB component): {:.2} s compiling, {:.0} ms from the cache ({:.0}x faster)",
        size as f64 / 1e6,
        cold.as_secs_f64(),
        cached.as_secs_f64() * 1e3,
        cold.as_secs_f64() / cached.as_secs_f64()
    );
    let n = 1_000;
    // As a periodic job runs: each run takes the instance made ahead after the run before,
    // in the gap between them (the runner's default).
    let ahead_sandbox = Sandbox::new(
        SandboxSettings {
            cache_dir: Some(cache.path().to_path_buf()),
            ..SandboxSettings::default()
        },
        Arc::new(HostClients::default()),
    )
    .unwrap();
    let gap = Duration::from_millis(5);
    let (ahead, ahead_usage) = per_run_with_usage(rt, &ahead_sandbox, "py_probe", 50, n, gap);
    let (served, discarded) = ahead_sandbox.ahead_stats();
    println!(
        "python job run in an instance made ahead (py_probe noop, {n} runs {gap:?} apart): {}; \
         per run {:.0} page faults ({:.0} in the run), {:.2} ms of CPU (making the instance included); \
         {served} of {} runs took one made ahead, {discarded} thrown away",
        summary(&ahead, "ms"),
        ahead_usage.faults,
        ahead_usage.in_run_faults,
        ahead_usage.cpu.as_secs_f64() * 1e3,
        n + 50
    );
    assert!(
        served >= n as u64,
        "only {served} runs took an instance made ahead"
    );
    // The same runs, the same gap, each instance made in its run: what making it ahead
    // changes, in time and in CPU.
    let (spaced, spaced_usage) = per_run_with_usage(rt, &pooled, "py_probe", 50, n, gap);
    println!(
        "  same, each instance made in its run: {}; per run {:.0} page faults, {:.2} ms of CPU",
        summary(&spaced, "ms"),
        spaced_usage.faults,
        spaced_usage.cpu.as_secs_f64() * 1e3
    );
    let (py, usage) = per_run_with_usage(rt, &pooled, "py_probe", 50, n, Duration::ZERO);
    let py_on_demand = per_run(rt, &load(false).1, "py_probe", 50, n);
    let rust = per_run(rt, &pooled, "noop", 500, n);
    println!(
        "fresh instance made in the run (python py_probe noop, {n} runs, one thread): {} ({:.0}x the Rust noop's p50); \
         per run {:.0} page faults, {:.2} ms of CPU",
        summary(&py, "ms"),
        percentile(&py, 0.5).as_secs_f64() / percentile(&rust, 0.5).as_secs_f64(),
        usage.faults,
        usage.cpu.as_secs_f64() * 1e3
    );
    let ratio = percentile(&py_on_demand, 0.5).as_secs_f64() / percentile(&py, 0.5).as_secs_f64();
    println!(
        "  same with on-demand allocation instead of the pool: {} (pooling {ratio:.2}x faster at p50)",
        summary(&py_on_demand, "ms"),
    );
    table::target(
        "Python job run, fresh instance made ahead, p50 / p99",
        format!(
            "{:.2} ms / {:.2} ms",
            micros(&ahead, 0.5) / 1e3,
            micros(&ahead, 0.99) / 1e3
        ),
        "≤ 1 ms / ≤ 2 ms",
        micros(&ahead, 0.5) <= 1e3 && micros(&ahead, 0.99) <= 2e3,
    );
    table::report(
        "Python job, fresh instance made in the run, p50 / p99",
        format!(
            "{:.2} ms / {:.2} ms back to back ({:.0} faults, {:.2} ms CPU a run); {:.2} / {:.2} ms {gap:?} apart ({:.2} ms CPU; made ahead: {:.2})",
            micros(&py, 0.5) / 1e3,
            micros(&py, 0.99) / 1e3,
            usage.faults,
            usage.cpu.as_secs_f64() * 1e3,
            micros(&spaced, 0.5) / 1e3,
            micros(&spaced, 0.99) / 1e3,
            spaced_usage.cpu.as_secs_f64() * 1e3,
            ahead_usage.cpu.as_secs_f64() * 1e3
        ),
    );
    table::report(
        "Python job, pooling against on-demand (p50 ratio)",
        format!("{ratio:.2}x"),
    );
    table::report(
        "Python job load, compiled / from the cache",
        format!(
            "{:.1} s / {:.0} ms ({:.0}x)",
            cold.as_secs_f64(),
            cached.as_secs_f64() * 1e3,
            cold.as_secs_f64() / cached.as_secs_f64()
        ),
    );
}

/// Ended runs' pages returned to the kernel at once (a batch of 1: the default since issue
/// 39, so a burst of large runs does not stay resident) against in batches of 32 (before):
/// the whole path's runs/s with two consumers, and a Python run (made in its run, ~12 MiB
/// of pages dirtied) one thread, interleaved.
fn decommit_cost(rt: &tokio::runtime::Runtime) {
    let (mut one, mut batched) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        one.push(whole_path_with("noop", |s| s.decommit_batch = Some(1)));
        batched.push(whole_path_with("noop", |s| s.decommit_batch = Some(32)));
    }
    one.sort_by(f64::total_cmp);
    batched.sort_by(f64::total_cmp);
    let python = |batch: usize| {
        let settings = SandboxSettings {
            make_ahead: false,
            decommit_batch: Some(batch),
            ..SandboxSettings::default()
        };
        let sandbox = Sandbox::new(settings, Arc::new(HostClients::default())).unwrap();
        per_run_with_usage(rt, &sandbox, "py_probe", 50, 500, Duration::ZERO)
    };
    let (mut py_one, mut py_batched) = (Vec::new(), Vec::new());
    let (mut cpu_one, mut cpu_batched) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..2 {
        let (s, u) = python(1);
        py_one.extend(s);
        cpu_one += u.cpu;
        let (s, u) = python(32);
        py_batched.extend(s);
        cpu_batched += u.cpu;
    }
    py_one.sort();
    py_batched.sort();
    println!(
        "decommit batch 1 / 32: whole path (noop, two consumers) {:.0} / {:.0} runs/s (medians of 3); \
         python run {} / {}; CPU a run {:.2} / {:.2} ms",
        one[1],
        batched[1],
        summary(&py_one, "ms"),
        summary(&py_batched, "ms"),
        cpu_one.as_secs_f64() * 1e3 / 2.0,
        cpu_batched.as_secs_f64() * 1e3 / 2.0,
    );
    table::report(
        "ended runs' pages returned at once / in batches of 32 (whole path; Python p50)",
        format!(
            "{:.0} / {:.0} runs/s ({:.2}x); {:.2} / {:.2} ms",
            one[1],
            batched[1],
            one[1] / batched[1],
            micros(&py_one, 0.5) / 1e3,
            micros(&py_batched, 0.5) / 1e3
        ),
    );
}

/// A run's stack reset as it ends (its first 64 KiB zeroed, the rest returned to the
/// kernel: the default since issue 39) against kept as the run left it: the whole path's
/// runs/s with two consumers, interleaved, medians of 3.
fn stack_zeroing_cost() {
    let (mut reset, mut kept) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        reset.push(whole_path_with("noop", |s| s.stack_zeroing = true));
        kept.push(whole_path_with("noop", |s| s.stack_zeroing = false));
    }
    reset.sort_by(f64::total_cmp);
    kept.sort_by(f64::total_cmp);
    println!(
        "stack reset / kept: whole path (noop, two consumers) {:.0} / {:.0} runs/s (medians of 3)",
        reset[1], kept[1]
    );
    table::report(
        "a run's stack reset as it ends / kept (whole path)",
        format!(
            "{:.0} / {:.0} runs/s ({:.2}x)",
            reset[1],
            kept[1],
            reset[1] / kept[1]
        ),
    );
}

fn scheduler_throughput() {
    let ours = whole_path("noop");
    table::target(
        "2. whole path, two consumers",
        format!("{ours:.0} runs/s"),
        "≥ 50,000 runs/s",
        ours >= 50_000.0,
    );
    if std::env::var_os("BENCH_NO_SEED").is_some() {
        return;
    }
    // The same with the trivial job without std and WASI: how much of the gap is the guest.
    let core = whole_path("noop_core");
    // The unsandboxed alternative, offered the same load on the same machine, right after.
    let seed = seed_loop_runs_per_s();
    println!(
        "the seed's asyncio loop (python3, 2 consumers, a function returning at once): {seed:.0} runs/s; \
         the whole path: {ours:.0} runs/s ({:.2}x), with noop_core {core:.0} runs/s ({:.2}x)",
        ours / seed,
        core / seed
    );
    table::target(
        "2. whole path against the seed's asyncio loop (runs/s ratio)",
        format!("{:.2}x ({ours:.0} against {seed:.0} runs/s)", ours / seed),
        "≥ 1.0x",
        ours >= seed,
    );
    table::report(
        "2. the same with the trivial job without std and WASI",
        format!("{:.2}x ({core:.0} runs/s)", core / seed),
    );
}

/// Runs per second of the whole path: a producer offering 300,000 runs of `job` a second
/// (3,000 every 10 ms; what the consumers cannot take is dropped at the full queue and
/// counted), the bounded queue, two consumers, a fresh instance per run, the reports and
/// the history (its rows written: the lower of runs ended and rows written a second).
fn whole_path(job: &str) -> f64 {
    whole_path_with(job, |_| {})
}

/// The same, with the sandbox's settings changed by `tweak`.
fn whole_path_with(job: &str, tweak: impl Fn(&mut SandboxSettings)) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("modules")).unwrap();
    std::fs::copy(wasm(job), dir.path().join("modules/noop.wasm")).unwrap();
    let jobs: Vec<String> = (0..3000)
        .map(|_| r#"{"name": "noop", "enabled": true, "overlap": "allow"}"#.to_owned())
        .collect();
    let service = format!(
        r#"{{"num_consumers": 2, "pipelines": {{"flood": {{"period": 0.01, "jobs": [{}]}}}}}}"#,
        jobs.join(",")
    );
    std::fs::write(dir.path().join("service_config.json"), service).unwrap();
    let config = Config::load(dir.path()).unwrap();

    // BENCH_WORKERS=1 compares one worker thread against the default two.
    let workers: usize = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    // BENCH_POOLING=0: on-demand allocation, as valgrind needs (the pool reserves more
    // address space than it can follow), for a profile of the whole path.
    let pooling = std::env::var("BENCH_POOLING").map_or(true, |v| v != "0");
    rt.block_on(async {
        let mut settings = SandboxSettings {
            pooling,
            ..SandboxSettings::default()
        };
        tweak(&mut settings);
        let sandbox = Arc::new(Sandbox::new(settings, Arc::new(HostClients::default())).unwrap());
        let modules = Arc::new(ModuleRegistry::new(
            dir.path().join("modules"),
            sandbox.clone(),
        ));
        modules.get("noop").await.unwrap();
        // The history as `tgrun serve` keeps it by default (SQLite in the configuration
        // directory, default retention); BENCH_NO_HISTORY=1 leaves it out, to see its cost.
        let history = match std::env::var_os("BENCH_NO_HISTORY") {
            Some(_) => None,
            None => {
                let db = sqlite_for_runner(&dir.path().join("history.db"))
                    .await
                    .unwrap();
                Some(Recorder::start(db, Retention::default()).await.unwrap())
            }
        };
        let shared = Shared::with_history(sandbox, modules, history);
        let scheduler = Scheduler::start_shared(&config.service, 10_000, shared);
        let stats = &scheduler.shared.reports.stats;
        let history = scheduler.shared.reports.history.as_ref();
        let kept = || history.map_or(0, |h| h.written.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (runs0, dropped0, kept0, sqlite0, t0) = (
            stats.runs.load(Ordering::Relaxed),
            stats.dropped.load(Ordering::Relaxed),
            kept(),
            sqlite_thread_cpu(),
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (runs1, dropped1, kept1, sqlite1, secs) = (
            stats.runs.load(Ordering::Relaxed),
            stats.dropped.load(Ordering::Relaxed),
            kept(),
            sqlite_thread_cpu(),
            t0.elapsed().as_secs_f64(),
        );
        let failed = stats.failed.load(Ordering::Relaxed);
        let missed = stats.missed_ticks.load(Ordering::Relaxed);
        let history_dropped = history.map_or(0, |h| h.dropped.load(Ordering::Relaxed));
        let has_history = history.is_some();
        let kept_per_s = (kept1 - kept0) as f64 / secs;
        let sqlite_us_a_row = (sqlite1 - sqlite0).as_secs_f64() * 1e6 / (kept1 - kept0).max(1) as f64;
        scheduler.stop(Duration::from_secs(5)).await;
        let ran_per_s = (runs1 - runs0) as f64 / secs;
        // With the history, a run is through once its row is written: a writer falling
        // behind would fill its buffer and drop rows in a longer window.
        let per_second = match has_history {
            true => ran_per_s.min(kept_per_s),
            false => ran_per_s,
        };
        println!(
            "through the scheduler ({job}, 2 consumers, {workers} worker threads, 300,000 runs/s offered): \
             {ran_per_s:.0} runs/s; {} runs dropped at the full queue in {secs:.1} s; {failed} failed; \
             {missed} producer ticks skipped (the producer shares the two cores); history: {:.0} rows/s \
             written, {history_dropped} rows dropped, SQLite's thread {sqlite_us_a_row:.2} µs of CPU a row",
            dropped1 - dropped0,
            kept_per_s,
        );
        per_second
    })
}

/// CPU time so far of this process's SQLite worker threads (sqlx runs each connection's
/// statements on a thread of its own, named `sqlx-sqlite-worker-N`).
fn sqlite_thread_cpu() -> Duration {
    let ns: u64 = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| t.ok())
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with("sqlx-sqlite"))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// Runs per second of the seed's producer/consumer loop (`python/seed_loop.py`) on the
/// machine's python3.
fn seed_loop_runs_per_s() -> f64 {
    let v = python_script("python3".as_ref(), "seed_loop.py", &["5"]);
    v["runs_per_s"].as_f64().unwrap()
}

/// Runs `python/SCRIPT` of the bench with `python` and `args`: the JSON line it prints.
fn python_script(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (`make bench` makes it)", python.display()));
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// 20 distinct components: `add_x` with a custom section of its own each (a different
/// content hash, the same code to compile).
fn twenty_modules() -> Vec<Vec<u8>> {
    let base = std::fs::read(wasm("add_x")).unwrap();
    (0..20)
        .map(|i| {
            let name = format!("bench-{i}");
            let mut payload = vec![name.len() as u8];
            payload.extend_from_slice(name.as_bytes());
            let mut b = base.clone();
            b.push(0); // custom section
            b.push(payload.len() as u8);
            b.extend(payload);
            b
        })
        .collect()
}

fn restart_with_cache() {
    let modules = twenty_modules();
    let cache = tempfile::tempdir().unwrap();
    let compile_all = || {
        let settings = SandboxSettings {
            cache_dir: Some(cache.path().to_path_buf()),
            ..SandboxSettings::default()
        };
        let t = Instant::now();
        let sandbox = Sandbox::new(settings, Arc::new(HostClients::default())).unwrap();
        for (i, m) in modules.iter().enumerate() {
            sandbox
                .compile(Path::new(&format!("m{i}.wasm")), m)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        t.elapsed()
    };
    let cold = compile_all();
    let warm = compile_all();
    println!(
        "restart with 20 modules: {:.0} ms compiling from scratch, {:.0} ms from the cache ({:.1}x faster)",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3,
        cold.as_secs_f64() / warm.as_secs_f64()
    );
}

fn swap_latency() {
    use tgrun::sandbox::component::content_version;
    use tgrun::service::{FixedLog, Service};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("modules")).unwrap();
    std::fs::write(
        dir.path().join("service_config.json"),
        r#"{"num_consumers": 2, "pipelines": {"hot": {"period": 0.002, "jobs": [
            {"name": "swapper", "enabled": true}]}}}"#,
    )
    .unwrap();
    let file = dir.path().join("modules/swapper.wasm");
    let (a, b) = (
        std::fs::read(wasm("swap_a")).unwrap(),
        std::fs::read(wasm("swap_b")).unwrap(),
    );
    std::fs::write(&file, &a).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = Config::load(dir.path()).unwrap();
        let log = Arc::new(FixedLog(std::sync::Mutex::new("warn".into())));
        let service = Service::start(config, log, None).await.unwrap();
        let mut rx = service.shared.reports.events.subscribe();
        let mut took = Vec::new();
        for i in 0..10 {
            let bytes = if i % 2 == 0 { &b } else { &a };
            let version = content_version(bytes);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let tmp = dir.path().join("modules/.swapper.part");
            std::fs::write(&tmp, bytes).unwrap();
            let t = Instant::now();
            std::fs::rename(&tmp, &file).unwrap();
            loop {
                match rx.recv().await {
                    Ok(r) if r.module_version.as_deref() == Some(version.as_str()) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            took.push(t.elapsed());
        }
        service.stop().await;
        took.sort();
        println!(
            "hot swap by file, write to first run on the new version (10 swaps under 500 runs/s): median {:.0} ms, max {:.0} ms (poll every 200 ms, one poll of settling)",
            took[5].as_secs_f64() * 1e3,
            took[9].as_secs_f64() * 1e3
        );
    });
}

fn main() {
    // One bumper measurement in a process of its own (figure 6).
    if bumper::child() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // BENCH_ONLY=python (a name's part) runs only the matching benchmarks.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let benches: [(&str, &dyn Fn()); 16] = [
        ("fresh_instance", &|| fresh_instance_cost(&rt)),
        ("process_per_run", &process_per_run),
        ("host_calls", &|| host_call_cost(&rt)),
        ("deadlines", &|| deadline_cost(&rt)),
        ("scheduler", &scheduler_throughput),
        ("decommit", &|| decommit_cost(&rt)),
        ("stack_zeroing", &stack_zeroing_cost),
        ("python", &|| python_cost(&rt)),
        ("restart", &restart_with_cache),
        ("swap", &swap_latency),
        ("bumper", &bumper::bumper_against_prometheus),
        ("fleet", &fleet::thousand_jobs),
        ("python_fleet", &python_fleet::python_entries),
        ("sql_guards", &|| sql::guard_cost(&rt)),
        ("cluster_round_trips", &|| cluster::round_trips(&rt)),
        ("cluster_replicas", &|| cluster::replicas_scale(&rt)),
    ];
    for (name, bench) in benches {
        if name.contains(only.as_str()) {
            bench();
        }
    }
    table::print();
}

//! Figure 7: a service of 1,000 jobs in 100 pipelines, in a `tgrun serve` process of its
//! own (the release binary `make bench` builds): CPU per pipeline tick, resident memory at
//! idle, and memory per consumer. CPU is the sum of the process's threads' run time
//! (`/proc/<pid>/task/*/schedstat`, nanoseconds); memory is `VmRSS`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{table, wasm};

const PIPELINES: usize = 100;
const JOBS_PER_PIPELINE: usize = 10;

fn runner_bin() -> PathBuf {
    let p = std::env::var_os("RUNNER_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/tgrun"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} missing: `make bench` builds it (cargo build --release -p tgrun)",
        p.display()
    );
    p
}

/// One `tgrun serve` process on a config directory of its own (or one it is given).
pub struct Served {
    child: Child,
    port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Served {
    /// `PIPELINES` pipelines of `JOBS_PER_PIPELINE` no-op jobs (ten modules, each in every
    /// pipeline), every `period` seconds; `pipelines: 0` serves an empty service.
    fn start(pipelines: usize, period: f64, consumers: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules");
        std::fs::create_dir(&modules).unwrap();
        for j in 0..JOBS_PER_PIPELINE {
            std::fs::copy(wasm("noop"), modules.join(format!("noop{j}.wasm"))).unwrap();
        }
        let jobs: Vec<String> = (0..JOBS_PER_PIPELINE)
            .map(|j| format!(r#"{{"name": "noop{j}", "enabled": true}}"#))
            .collect();
        let pipelines: Vec<String> = (0..pipelines)
            .map(|p| {
                format!(
                    r#""p{p}": {{"period": {period}, "jobs": [{}]}}"#,
                    jobs.join(",")
                )
            })
            .collect();
        std::fs::write(
            dir.path().join("service_config.json"),
            format!(
                r#"{{"num_consumers": {consumers}, "pipelines": {{{}}}}}"#,
                pipelines.join(",")
            ),
        )
        .unwrap();
        let mut s = Self::serve(dir.path());
        s._dir = Some(dir);
        s
    }

    /// `tgrun serve --config-dir dir` on a port of its own, once it answers `/health`.
    pub fn serve(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(runner_bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--config-dir")
            .arg(dir)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = Self {
            child,
            port,
            _dir: None,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while s.get("/health").is_err() {
            assert!(Instant::now() < deadline, "the runner did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    pub fn get(&self, path: &str) -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        write!(s, "GET {path} HTTP/1.0\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// `POST path` with a JSON `body`, as an operator on this machine sends it.
    pub fn post(&self, path: &str, body: &str) -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Runs that ended `ok`, from the runner's own `/metrics`.
    fn ok_runs(&self) -> u64 {
        self.runs(|outcome| outcome == "ok")
    }

    /// Runs whose outcome `counted` accepts, from the runner's own `/metrics`.
    pub fn runs(&self, counted: impl Fn(&str) -> bool) -> u64 {
        let text = self.get("/metrics").unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("tgrun_runs_total{"))
            .filter(|l| {
                let outcome = l
                    .split("outcome=\"")
                    .nth(1)
                    .and_then(|o| o.split('"').next());
                outcome.is_some_and(&counted)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// CPU time so far of each live thread of the process, ns by thread id (a thread that
    /// exits takes its count with it: tokio's idle blocking threads do, after 10 s).
    fn cpu(&self) -> std::collections::HashMap<String, u64> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .unwrap()
            .filter_map(|t| {
                let t = t.ok()?;
                let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
                let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
                Some((t.file_name().to_string_lossy().into_owned(), ns))
            })
            .collect()
    }

    /// Resident memory, MiB.
    pub fn rss_mib(&self) -> f64 {
        status_mib(&self.child.id().to_string(), "VmRSS")
    }

    /// The process' peak resident memory, MiB.
    pub fn peak_mib(&self) -> f64 {
        status_mib(&self.child.id().to_string(), "VmHWM")
    }
}

/// `field` (a size in kB: `VmRSS`, `VmHWM`) of process `pid` (or `self`), in MiB.
pub fn status_mib(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kib / 1024.0
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU used over `window` (by the threads alive at its end), and the `ok` runs in it.
fn measure(s: &Served, window: Duration) -> (Duration, u64) {
    let (cpu0, runs0) = (s.cpu(), s.ok_runs());
    std::thread::sleep(window);
    // The threads alive at the end, from where each was at the start (or from 0).
    let ns: u64 = s
        .cpu()
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(cpu0.get(tid).copied().unwrap_or(0)))
        .sum();
    (Duration::from_nanos(ns), s.ok_runs() - runs0)
}

pub fn thousand_jobs() {
    let jobs = PIPELINES * JOBS_PER_PIPELINE;
    let settle = Duration::from_secs(3);
    let window = Duration::from_secs(10);

    // Empty service: the floor the others are read against.
    let empty = Served::start(0, 1.0, 2);
    std::thread::sleep(settle);
    let empty_rss = empty.rss_mib();
    drop(empty);

    // Loaded and idle: every pipeline ticked once at start, the next tick an hour away.
    let idle = Served::start(PIPELINES, 3600.0, 2);
    std::thread::sleep(settle);
    let (idle_cpu, _) = measure(&idle, window);
    let idle_rss = idle.rss_mib();
    drop(idle);

    // Busy: every pipeline ticks each second, 1,000 runs a second.
    let busy = Served::start(PIPELINES, 1.0, 2);
    std::thread::sleep(settle);
    let (busy_cpu, runs) = measure(&busy, window);
    let busy_rss = busy.rss_mib();
    drop(busy);
    let ticks = PIPELINES as f64 * window.as_secs_f64();
    assert!(
        runs as f64 >= 0.9 * ticks * JOBS_PER_PIPELINE as f64,
        "only {runs} runs in {window:?}: the busy service did not keep up"
    );
    let per_tick_us = busy_cpu.as_secs_f64() * 1e6 / ticks;
    let per_run_us = busy_cpu.as_secs_f64() * 1e6 / runs as f64;

    // Consumers: the same busy service with 32 consumers against 2.
    let many = Served::start(PIPELINES, 1.0, 32);
    std::thread::sleep(settle + window);
    let per_consumer_kib = (many.rss_mib() - busy_rss) * 1024.0 / 30.0;
    drop(many);

    println!(
        "{jobs} jobs in {PIPELINES} pipelines (tgrun serve, release): empty service {empty_rss:.1} MiB; \
         loaded and idle {idle_rss:.1} MiB, {:.2} ms CPU a second; every pipeline each second \
         ({runs} runs in {window:?}): {per_tick_us:.0} µs CPU a pipeline tick of {JOBS_PER_PIPELINE} runs \
         ({per_run_us:.1} µs a run, everything included), {busy_rss:.1} MiB; \
         32 consumers against 2: {per_consumer_kib:+.0} KiB a consumer",
        idle_cpu.as_secs_f64() * 1e3 / window.as_secs_f64(),
    );
    table::report(
        "7. 1,000 jobs / 100 pipelines: CPU a pipeline tick (its 10 runs included)",
        format!("{per_tick_us:.0} µs ({per_run_us:.1} µs a run)"),
    );
    table::report(
        "7. 1,000 jobs / 100 pipelines: resident memory idle (empty service)",
        format!(
            "{idle_rss:.1} MiB ({empty_rss:.1} MiB), {:.2} ms CPU a second",
            idle_cpu.as_secs_f64() * 1e3 / window.as_secs_f64()
        ),
    );
    table::report(
        "7. memory per consumer (32 against 2, busy)",
        format!("{per_consumer_kib:.0} KiB"),
    );
}

//! Figure 9: one Python module (the tglib service's `tglib_service`) behind many job
//! entries, in a `tgrun serve` process of its own: resident memory idle with 100 and 1,000
//! entries after their first runs, and again after a load of manual runs; what a restart
//! and a hot swap of the module cost (time, and the process' peak memory).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::fleet::Served;
use crate::{table, wasm};

const MODULE: &str = "tglib_service";

/// `entries` pipelines of one `add_x` entry of the module each, an hour apart (each runs
/// once at start). No Prometheus is configured: each first run runs the service's code up
/// to its query, which fails `not-configured`; the instance and the Python heap are made
/// and dropped as in any run.
fn write_config(dir: &Path, entries: usize) {
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    std::fs::copy(wasm(MODULE), dir.join(format!("modules/{MODULE}.wasm"))).unwrap();
    let pipelines: Vec<String> = (0..entries)
        .map(|i| {
            format!(
                r#""p{i}": {{"period": 3600, "jobs": [{{"name": "add_x", "module": "{MODULE}",
                    "enabled": true, "params": {{"metric_name": "foo", "x": {i}}}}}]}}"#
            )
        })
        .collect();
    std::fs::write(
        dir.join("service_config.json"),
        format!(
            r#"{{"num_consumers": 5, "pipelines": {{{}}}}}"#,
            pipelines.join(",")
        ),
    )
    .unwrap();
}

/// `runs` manual runs of `add_x`, `at_once` at a time; answers how long they took.
fn load(s: &Served, runs: usize, at_once: usize) -> Duration {
    let t = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..at_once {
            scope.spawn(|| {
                for _ in 0..runs / at_once {
                    let answer = s.post("/jobs/add_x/run", "{}").unwrap();
                    assert!(
                        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
                        "{answer}"
                    );
                }
            });
        }
    });
    t.elapsed()
}

/// Every entry's first run ended (ok or not), from the runner's own `/metrics`.
fn wait_runs(s: &Served, runs: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while s.runs(|_| true) < runs {
        assert!(Instant::now() < deadline, "the first runs never ended");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn python_entries() {
    // Idle: 20 s after the last run. Within 10 s of a burst the process holds about 40 MiB
    // more, given back after (threads of the burst ending with their heaps).
    let settle = Duration::from_secs(20);
    let mut idle = Vec::new();
    let mut loaded = None;
    for entries in [100usize, 1000] {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), entries);
        // The first start fills the compiled-code cache; the one measured starts from it.
        let s = Served::serve(dir.path());
        wait_runs(&s, entries as u64);
        drop(s);
        let s = Served::serve(dir.path());
        wait_runs(&s, entries as u64);
        std::thread::sleep(settle);
        idle.push((entries, s.rss_mib(), s.peak_mib()));
        if entries == 100 {
            // A load: 200 manual runs, 10 at once, then idle again.
            let took = load(&s, 200, 10);
            std::thread::sleep(settle);
            loaded = Some((took, s.rss_mib(), s.peak_mib()));
        }
    }
    for (entries, rss, peak) in &idle {
        println!(
            "{entries} entries of one Python module ({MODULE}), idle after their first runs: \
             {rss:.1} MiB resident (peak {peak:.1} MiB)"
        );
    }
    let (_, rss_100, _) = idle[0];
    table::target(
        "9. 100 entries of one Python module, idle RSS after their first runs",
        format!("{rss_100:.1} MiB (1,000 entries: {:.1} MiB)", idle[1].1),
        "≤ 100 MiB",
        rss_100 <= 100.0,
    );
    let (took, after, peak) = loaded.unwrap();
    println!(
        "the same 100 entries after 200 manual runs (10 at once, {:.1} s): {after:.1} MiB \
         resident {} s later (peak {peak:.1} MiB)",
        took.as_secs_f64(),
        settle.as_secs()
    );
    table::target(
        "9. the same, idle again after a load of 200 runs",
        format!("{after:.1} MiB against {rss_100:.1} MiB idle (peak {peak:.0} MiB)"),
        "within 10% of idle",
        after <= rss_100 * 1.1,
    );

    // A restart: compiling the module anew (an empty cache) against loading it from the cache.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), 1);
    let t = Instant::now();
    let cold = Served::serve(dir.path());
    let cold_start = t.elapsed();
    let cold_peak = cold.peak_mib();
    drop(cold);
    let t = Instant::now();
    let warm = Served::serve(dir.path());
    let warm_start = t.elapsed();
    let warm_peak = warm.peak_mib();
    // A hot swap: a new version of the module (the same code and a custom section, so
    // other bytes) dropped in the modules directory, until `/jobs` shows it running.
    let file = dir.path().join(format!("modules/{MODULE}.wasm"));
    let mut bytes = std::fs::read(&file).unwrap();
    let name = b"tgrun-bench";
    let payload = b"another version";
    bytes.push(0); // a custom section: id 0, size, name's length and name, payload
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    let version = tgrun::sandbox::component::content_version(&bytes);
    let before = warm.peak_mib();
    let tmp = dir.path().join(format!("modules/.{MODULE}.part"));
    std::fs::write(&tmp, &bytes).unwrap();
    let t = Instant::now();
    std::fs::rename(&tmp, &file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !warm.get("/jobs/add_x").is_ok_and(|a| a.contains(&version)) {
        assert!(Instant::now() < deadline, "the new version never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let swap = t.elapsed();
    let swap_peak = warm.peak_mib();
    drop(warm);
    println!(
        "a Python module ({MODULE}, {:.1} MB): a start compiling it {:.1} s (peak {cold_peak:.0} MiB), \
         from the compiled-code cache {:.2} s (peak {warm_peak:.0} MiB); a hot swap to a new \
         version {:.1} s (peak {before:.0} -> {swap_peak:.0} MiB)",
        bytes.len() as f64 / 1e6,
        cold_start.as_secs_f64(),
        warm_start.as_secs_f64(),
        swap.as_secs_f64(),
    );
    table::report(
        "9. a Python module's start: compiled / from the cache; a hot swap",
        format!(
            "{:.1} s / {:.2} s; {:.1} s (peaks {cold_peak:.0} / {warm_peak:.0} / {swap_peak:.0} MiB)",
            cold_start.as_secs_f64(),
            warm_start.as_secs_f64(),
            swap.as_secs_f64()
        ),
    );
}

//! The scheduler: periodic producers, consumers, failures that stay contained.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tgrun::config::Config;
use tgrun::{Outcome, RunReport};

use crate::fixtures::{collect, config_dir, messages, start_scheduler, wasm};

fn by_job(reports: &[Arc<RunReport>]) -> BTreeMap<String, Vec<Arc<RunReport>>> {
    let mut m: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for r in reports {
        m.entry(r.job.clone()).or_default().push(r.clone());
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_jobs_run_every_period_and_disabled_ones_never() {
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"fast": {"period": 0.1, "jobs": [
            {"name": "echo", "enabled": true, "params": {"value": 3}},
            {"name": "counter", "enabled": true},
            {"name": "noop", "enabled": false},
            {"name": "fails"}]}}}"#,
        &["echo", "counter", "noop", "fails"],
    );
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1050)).await;
    scheduler.stop(Duration::from_secs(30)).await;

    let jobs = by_job(&reports);
    assert_eq!(
        jobs.keys().collect::<Vec<_>>(),
        vec!["counter", "echo"],
        "disabled and enabled-less jobs never run"
    );
    for (job, runs) in &jobs {
        assert!(
            (8..=12).contains(&runs.len()),
            "{job} ran {} times in ~1 s at a 0.1 s period",
            runs.len()
        );
        assert!(runs.iter().all(|r| r.outcome == Outcome::Ok), "{job}");
        assert!(runs.iter().all(|r| r.pipeline == "fast"));
    }
    // One tick stamps its start time once, for every job it enqueues (tglib's start_time_ms).
    let echo_ticks: Vec<i64> = jobs["echo"].iter().map(|r| r.scheduled_ms).collect();
    let counter_ticks: Vec<i64> = jobs["counter"].iter().map(|r| r.scheduled_ms).collect();
    let shared = echo_ticks
        .iter()
        .filter(|t| counter_ticks.contains(t))
        .count();
    assert!(shared + 1 >= echo_ticks.len().min(counter_ticks.len()));
    // Params reach the job; every run is fresh.
    assert!(jobs["echo"].iter().all(|r| r.metrics[0].value == 3.0));
    assert!(
        jobs["counter"]
            .iter()
            .all(|r| messages(r) == vec!["count=1"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_period_does_not_drift() {
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period_s": 0.05, "jobs": [
            {"name": "noop", "enabled": true}]}}}"#,
        &["noop"],
    );
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1600)).await;
    scheduler.stop(Duration::from_secs(30)).await;
    let ticks: Vec<i64> = reports.iter().map(|r| r.scheduled_ms).collect();
    assert!(ticks.len() >= 20, "only {} ticks", ticks.len());
    // Each tick is due at start + k * period: stamps stay on that grid however late any one
    // wake-up was. A producer that slept a fixed period after its work would drift off it.
    let mut off_grid: Vec<i64> = ticks
        .iter()
        .map(|t| {
            let phase = (t - ticks[0]).rem_euclid(50);
            phase.min(50 - phase)
        })
        .collect();
    off_grid.sort();
    let median = off_grid[off_grid.len() / 2];
    assert!(median <= 5, "ticks drift off the 50 ms grid: {off_grid:?}");
    let last = ticks[ticks.len() - 1] - ticks[0];
    assert!(
        last >= 50 * (ticks.len() as i64 - 1) - 10,
        "{} ticks in {last} ms: faster than the period",
        ticks.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_jobs_end_with_their_outcome_and_the_others_keep_running() {
    let dir = config_dir(
        r#"{"num_consumers": 3, "pipelines": {
            "good": {"period": 0.1, "jobs": [{"name": "counter", "enabled": true}]},
            "bad": {"period": 0.3, "jobs": [
                {"name": "spin", "enabled": true, "timeout_s": 0.2},
                {"name": "memory_hog", "enabled": true, "memory_mb": 16},
                {"name": "panics", "enabled": true},
                {"name": "not_there", "enabled": true}]}}}"#,
        &["counter", "spin", "memory_hog", "panics"],
    );
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1250)).await;
    scheduler.stop(Duration::from_secs(30)).await;

    let jobs = by_job(&reports);
    let outcome = |job: &str| jobs[job][0].outcome.name();
    assert_eq!(outcome("spin"), "timeout");
    assert_eq!(outcome("memory_hog"), "memory_limit");
    assert_eq!(outcome("panics"), "trap");
    assert_eq!(outcome("not_there"), "module_missing");
    let Outcome::ModuleMissing { path } = &jobs["not_there"][0].outcome else {
        unreachable!()
    };
    assert!(
        path.ends_with("modules/not_there.wasm"),
        "{}",
        path.display()
    );
    assert!(
        jobs["not_there"].len() >= 3,
        "every tick of a missing module reports it again"
    );
    let good = &jobs["counter"];
    assert!(
        good.len() >= 8 && good.iter().all(|r| r.outcome == Outcome::Ok),
        "the good job kept its schedule: {} runs",
        good.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_appears_later_is_picked_up() {
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period": 0.1, "jobs": [
            {"name": "counter", "enabled": true}]}}}"#,
        &[],
    );
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let before = collect(&mut rx, Duration::from_millis(350)).await;
    assert!(!before.is_empty());
    assert!(before.iter().all(|r| r.outcome.name() == "module_missing"));

    std::fs::copy(wasm("counter"), dir.path().join("modules/counter.wasm")).unwrap();
    let after = collect(&mut rx, Duration::from_millis(600)).await;
    scheduler.stop(Duration::from_secs(30)).await;
    assert!(
        after.iter().any(|r| r.outcome == Outcome::Ok),
        "{:?}",
        after.iter().map(|r| r.outcome.name()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_module_is_reported_on_every_run() {
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period": 0.1, "jobs": [
            {"name": "broken", "enabled": true}]}}}"#,
        &[],
    );
    std::fs::write(dir.path().join("modules/broken.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(450)).await;
    scheduler.stop(Duration::from_secs(30)).await;
    assert!(reports.len() >= 3);
    for r in &reports {
        let Outcome::ModuleInvalid { message } = &r.outcome else {
            panic!("{:?}", r.outcome)
        };
        assert!(message.contains("broken.wasm"), "{message}");
        assert!(message.contains("core WebAssembly module"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_configuration_applies_from_the_next_tick_without_a_restart() {
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period": 0.4, "jobs": [
            {"name": "echo", "enabled": true, "params": {"value": 1}}]}}}"#,
        &["echo", "counter"],
    );
    let (mut scheduler, mut rx) = start_scheduler(dir.path()).await;
    let first = collect(&mut rx, Duration::from_millis(250)).await;
    assert_eq!(first.len(), 1, "one tick at start");
    assert_eq!(first[0].metrics[0].value, 1.0);

    // Re-time p, change its params, add a pipeline, grow the consumers.
    std::fs::write(
        dir.path().join("service_config.json"),
        r#"{"num_consumers": 3, "pipelines": {
            "p": {"period": 0.1, "jobs": [{"name": "echo", "enabled": true, "params": {"value": 2}}]},
            "q": {"period": 0.1, "jobs": [{"name": "counter", "enabled": true}]}}}"#,
    )
    .unwrap();
    let config = Config::load(dir.path()).unwrap();
    let changes = scheduler.reconfigure(&config.service);
    assert_eq!(changes.changed, vec!["p"]);
    assert_eq!(changes.added, vec!["q"]);
    assert_eq!(changes.consumers, 3);
    let after = collect(&mut rx, Duration::from_millis(600)).await;
    let echo: Vec<_> = after.iter().filter(|r| r.job == "echo").collect();
    assert!(
        echo.len() >= 4,
        "the new 0.1 s period applies: {} runs",
        echo.len()
    );
    assert!(
        echo.iter().all(|r| r.metrics[0].value == 2.0),
        "new params from the next tick"
    );
    assert!(
        after.iter().any(|r| r.job == "counter"),
        "the added pipeline runs"
    );

    // Remove p: its runs stop; q goes on.
    std::fs::write(
        dir.path().join("service_config.json"),
        r#"{"num_consumers": 1, "pipelines": {
            "q": {"period": 0.1, "jobs": [{"name": "counter", "enabled": true}]}}}"#,
    )
    .unwrap();
    let changes = scheduler.reconfigure(&Config::load(dir.path()).unwrap().service);
    assert_eq!(changes.removed, vec!["p"]);
    let _ = collect(&mut rx, Duration::from_millis(150)).await;
    let last = collect(&mut rx, Duration::from_millis(400)).await;
    scheduler.stop(Duration::from_secs(30)).await;
    assert!(
        last.iter().all(|r| r.job == "counter"),
        "{:?}",
        last.iter().map(|r| &r.job).collect::<Vec<_>>()
    );
    assert!(last.len() >= 3);
}

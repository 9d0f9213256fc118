//! Scheduling policies: overlap (skip, queue, replace, allow), retries with backoff, cron
//! across daylight-saving changes on a virtual clock, missed runs after downtime, and the
//! graceful shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tgrun::clients::{Caps, sql};
use tgrun::config::Config;
use tgrun::host::HostClients;
use tgrun::modules::ModuleRegistry;
use tgrun::sandbox::{Sandbox, SandboxSettings};
use tgrun::schedule::Clock;
use tgrun::scheduler::history::{Recorder, Retention};
use tgrun::scheduler::{Scheduler, Shared};
use tgrun::service::{FixedLog, Service};
use tgrun::{Outcome, RunReport};

use crate::fixtures::{collect, config_dir, start_scheduler, start_slip_ms};

fn of<'a>(reports: &'a [Arc<RunReport>], outcome: &str) -> Vec<&'a Arc<RunReport>> {
    reports
        .iter()
        .filter(|r| r.outcome.name() == outcome)
        .collect()
}

/// Most runs of the reports that were running at the same moment.
fn max_concurrent(reports: &[&Arc<RunReport>]) -> usize {
    let mut edges: Vec<(SystemTime, i32)> = Vec::new();
    for r in reports {
        edges.push((r.started_at, 1));
        edges.push((r.started_at + r.duration, -1));
    }
    // Ends before starts at the same instant.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

fn sleeper_pipeline(period: f64, ms: u64, overlap: &str) -> String {
    format!(
        r#"{{"num_consumers": 4, "pipelines": {{"p": {{"period": {period}, "jobs": [
            {{"name": "sleeper", "enabled": true, "params": {{"ms": {ms}}}, "overlap": "{overlap}"}}]}}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_never_runs_a_job_twice_at_once_and_counts_the_skips() {
    let dir = config_dir(&sleeper_pipeline(0.1, 350, "skip"), &["sleeper"]);
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1300)).await;
    let shared = Arc::clone(&scheduler.shared);
    scheduler.stop(Duration::from_secs(5)).await;

    let ok = of(&reports, "ok");
    let skips = of(&reports, "skipped");
    assert!((2..=4).contains(&ok.len()), "ok runs: {}", ok.len());
    assert!(skips.len() >= 5, "skipped: {}", skips.len());
    assert_eq!(max_concurrent(&ok), 1, "runs of a skip job overlapped");
    assert!(skips[0].outcome.detail().contains("overlap: skip"));
    assert_eq!(skips[0].duration, Duration::ZERO);
    let book = shared.reports.book.of_name("sleeper").unwrap();
    // The book counts them all (some came after the window).
    assert!(book.outcomes["skipped"] >= skips.len() as u64);
    assert_eq!(book.last_outcome, Some("ok"), "a skip is not the last run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_queue_runs_them_one_after_another() {
    let dir = config_dir(&sleeper_pipeline(0.1, 250, "queue"), &["sleeper"]);
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1400)).await;
    let stopped = scheduler.stop(Duration::from_secs(5)).await;

    let ok = of(&reports, "ok");
    assert!(of(&reports, "skipped").is_empty(), "nothing skipped yet");
    assert!((4..=6).contains(&ok.len()), "ok runs: {}", ok.len());
    assert_eq!(max_concurrent(&ok), 1, "runs of a queue job overlapped");
    // Back to back: each held run starts as soon as the one before ends.
    for pair in ok.windows(2) {
        let gap = pair[1]
            .started_at
            .duration_since(pair[0].started_at + pair[0].duration)
            .unwrap_or_default();
        assert!(gap < Duration::from_millis(50), "gap {gap:?}");
    }
    // Due times keep coming faster than runs end: the rest were held and are recorded
    // as cancelled at the stop, not lost.
    assert!(stopped.cancelled_waiting >= 3, "{stopped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_replace_cancels_the_running_one() {
    let dir = config_dir(&sleeper_pipeline(0.3, 5000, "replace"), &["sleeper"]);
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1100)).await;
    scheduler.stop(Duration::from_millis(100)).await;

    let cancelled = of(&reports, "cancelled");
    assert!(cancelled.len() >= 2, "{reports:?}");
    for c in &cancelled {
        assert!(
            c.outcome.detail().contains("replaced by the run"),
            "{}",
            c.outcome.detail()
        );
        // Cancelled when the next due time came, not at the 5 s sleep's end.
        assert!(c.duration < Duration::from_millis(450), "{:?}", c.duration);
        assert!(c.duration > Duration::from_millis(200), "{:?}", c.duration);
        assert!(c.logs.iter().any(|l| l.message.contains("sleeping")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_allow_lets_runs_overlap() {
    let dir = config_dir(&sleeper_pipeline(0.1, 350, "allow"), &["sleeper"]);
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1000)).await;
    scheduler.stop(Duration::from_secs(5)).await;
    let ok = of(&reports, "ok");
    assert!(max_concurrent(&ok) >= 3, "{}", max_concurrent(&ok));
    assert!(of(&reports, "skipped").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_listed_twice_is_two_jobs_each_with_its_own_overlap() {
    // The same module twice (other params): the second is not the first's "previous run".
    let dir = config_dir(
        r#"{"num_consumers": 4, "pipelines": {"p": {"period": 0.4, "jobs": [
            {"name": "sleeper", "enabled": true, "params": {"ms": 100}},
            {"name": "sleeper", "enabled": true, "params": {"ms": 150}}]}}}"#,
        &["sleeper"],
    );
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1000)).await;
    scheduler.stop(Duration::from_secs(5)).await;
    assert!(of(&reports, "skipped").is_empty(), "{reports:?}");
    let ok = of(&reports, "ok");
    let first = ok.iter().map(|r| r.scheduled_ms).min().unwrap();
    assert_eq!(
        ok.iter().filter(|r| r.scheduled_ms == first).count(),
        2,
        "both places ran at the first due time: {reports:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_are_retried_with_doubling_backoff_then_given_up() {
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"p": {"period": 60, "jobs": [
            {"name": "fails", "enabled": true, "retries": 2, "retry_backoff_s": 0.2},
            {"name": "echo", "enabled": true, "retries": 2, "retry_backoff_s": 0.2}]}}}"#,
        &["fails", "echo"],
    );
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(1500)).await;
    scheduler.stop(Duration::from_secs(5)).await;

    let fails: Vec<_> = reports.iter().filter(|r| r.job == "fails").collect();
    assert_eq!(
        fails.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3],
        "two retries, then no more"
    );
    assert!(fails.iter().all(|r| r.outcome.name() == "error"));
    let mut ids: Vec<_> = fails.iter().map(|r| r.run_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each attempt has its own run id");
    assert!(
        fails
            .iter()
            .all(|r| r.scheduled_ms == fails[0].scheduled_ms)
    );
    let gap = |a: &RunReport, b: &RunReport| {
        b.started_at
            .duration_since(a.started_at + a.duration)
            .unwrap()
    };
    let (g1, g2) = (gap(fails[0], fails[1]), gap(fails[1], fails[2]));
    assert!(
        g1 >= Duration::from_millis(200) && g1 < Duration::from_millis(350),
        "{g1:?}"
    );
    assert!(
        g2 >= Duration::from_millis(400) && g2 < Duration::from_millis(550),
        "{g2:?}"
    );
    let echo: Vec<_> = reports.iter().filter(|r| r.job == "echo").collect();
    assert_eq!(echo.len(), 1, "a run that succeeds is not retried");
}

/// A cron pipeline across both of Berlin's 2026 daylight-saving changes, on a virtual
/// clock: three days pass in milliseconds. With no consumers every due run stays queued,
/// and the stop reports each (as cancelled, never started) with its due time.
#[tokio::test(start_paused = true)]
async fn cron_across_daylight_saving_changes_neither_skips_nor_doubles() {
    async fn due_times(start: &str, days: u64) -> Vec<String> {
        let dir = config_dir(
            r#"{"num_consumers": 1, "pipelines": {
                "fixed": {"cron": "30 2 * * *", "timezone": "Europe/Berlin",
                          "jobs": [{"name": "noop", "enabled": true, "overlap": "allow"}]},
                "hourly": {"cron": "15 * * * *", "timezone": "Europe/Berlin",
                          "jobs": [{"name": "noop", "enabled": true, "overlap": "allow"}]}}}"#,
            &["noop"],
        );
        let mut config = Config::load(dir.path()).unwrap();
        config.service.num_consumers = 0;
        let sandbox = Arc::new(
            Sandbox::new(SandboxSettings::default(), Arc::new(HostClients::default())).unwrap(),
        );
        let modules = Arc::new(ModuleRegistry::new(
            dir.path().join("modules"),
            sandbox.clone(),
        ));
        let start: DateTime<Utc> = DateTime::parse_from_rfc3339(start).unwrap().to_utc();
        let scheduler = Scheduler::start_with_clock(
            &config.service,
            10_000,
            Shared::new(sandbox, modules),
            Clock::virtual_from(start),
        );
        let mut rx = scheduler.subscribe();
        tokio::time::sleep(Duration::from_secs(days * 86_400)).await;
        scheduler.stop(Duration::ZERO).await;
        let mut out = Vec::new();
        while let Ok(r) = rx.try_recv() {
            let t = DateTime::from_timestamp_millis(r.scheduled_ms).unwrap();
            let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
            out.push(format!(
                "{} {}",
                r.pipeline,
                t.with_timezone(&tz).format("%m-%d %H:%M %Z")
            ));
        }
        out.sort();
        out
    }

    // Spring forward, 29 March: 02:30 does not exist.
    let spring = due_times("2026-03-28T00:00:00Z", 3).await;
    let fixed: Vec<_> = spring.iter().filter(|s| s.starts_with("fixed")).collect();
    assert_eq!(
        fixed,
        [
            "fixed 03-28 02:30 CET",
            "fixed 03-29 03:00 CEST",
            "fixed 03-30 02:30 CEST"
        ]
    );
    let hourly = spring.iter().filter(|s| s.starts_with("hourly")).count();
    assert_eq!(
        hourly, 72,
        "every real hour: none at 02:15, which does not exist"
    );
    assert!(!spring.contains(&"hourly 03-29 02:15 CET".to_owned()));

    // Fall back, 25 October: 02:30 happens twice.
    let fall = due_times("2026-10-24T00:00:00Z", 3).await;
    let fixed: Vec<_> = fall.iter().filter(|s| s.starts_with("fixed")).collect();
    assert_eq!(
        fixed,
        [
            "fixed 10-24 02:30 CEST",
            "fixed 10-25 02:30 CEST",
            "fixed 10-26 02:30 CET"
        ]
    );
    let hourly: Vec<_> = fall.iter().filter(|s| s.starts_with("hourly")).collect();
    assert_eq!(hourly.len(), 72, "every real hour, the repeated one too");
    assert!(fall.contains(&"hourly 10-25 02:15 CEST".to_owned()));
    assert!(fall.contains(&"hourly 10-25 02:15 CET".to_owned()));
}

/// A history with `pipeline`'s last due time at `last`.
async fn history_with(dir: &std::path::Path, pipeline: &str, last: DateTime<Utc>) {
    let db = sql::sqlite(&dir.join("tgrun-history.sqlite3"), Caps::default())
        .await
        .unwrap();
    let rec = Recorder::start(db, Retention::default()).await.unwrap();
    let inv = tgrun::run::Invocation {
        job: "echo".into(),
        pipeline: pipeline.into(),
        index: 0,
        module: "echo".into(),
        run_id: format!("seed-{pipeline}"),
        scheduled_ms: last.timestamp_millis(),
        params: "{}".into(),
        limits: tgrun::run::RunLimits {
            timeout: Duration::from_secs(1),
            memory_bytes: 1 << 20,
        },
        grants: tgrun::run::Capabilities::ALL,
        cancel: Default::default(),
        attempt: 1,
        env: Default::default(),
        outbound: Default::default(),
    };
    rec.record(&inv.not_run(Outcome::Ok));
    assert!(rec.flush(Duration::from_secs(5)).await);
}

async fn service(dir: &std::path::Path) -> Arc<Service> {
    let config = Config::load(dir).unwrap();
    Service::start(config, Arc::new(FixedLog(Mutex::new("info".into()))), None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_runs_after_downtime_run_once_or_are_skipped() {
    // Down since last New Year: the yearly cron run was missed (once or more).
    let year_ago = Utc::now() - chrono::Duration::days(400);
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {
            "yearly_once": {"cron": "0 0 1 1 *", "jobs": [{"name": "echo", "enabled": true}]},
            "yearly_skip": {"cron": "0 0 1 1 *", "missed": "skip",
                            "jobs": [{"name": "echo", "enabled": true}]},
            "period_skip": {"period": 60, "missed": "skip",
                            "jobs": [{"name": "echo", "enabled": true}]},
            "period_fresh": {"period": 60, "missed": "skip",
                            "jobs": [{"name": "echo", "enabled": true}]}}}"#,
        &["echo"],
    );
    history_with(dir.path(), "yearly_once", year_ago).await;
    history_with(dir.path(), "yearly_skip", year_ago).await;
    // Ran 10 s ago at a 60 s period: nothing is due for 50 s.
    history_with(
        dir.path(),
        "period_skip",
        Utc::now() - chrono::Duration::seconds(10),
    )
    .await;
    let service = service(dir.path()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    service.stop().await;
    // The history, not a subscription: a run at start may end before anyone subscribes.
    let reports: Vec<_> = service
        .shared
        .reports
        .history
        .as_ref()
        .unwrap()
        .query(None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| !r.run_id.starts_with("seed-"))
        .collect();

    let pipelines: Vec<&str> = reports.iter().map(|r| r.pipeline.as_str()).collect();
    assert_eq!(
        pipelines.iter().filter(|p| **p == "yearly_once").count(),
        1,
        "{pipelines:?}"
    );
    let once = reports
        .iter()
        .find(|r| r.pipeline == "yearly_once")
        .unwrap();
    let due = DateTime::from_timestamp_millis(once.scheduled_ms).unwrap();
    assert_eq!(once.outcome, "ok");
    assert_eq!(
        due.format("%m-%d %H:%M").to_string(),
        "01-01 00:00",
        "the latest missed due time"
    );
    assert!(!pipelines.contains(&"yearly_skip"), "{pipelines:?}");
    assert!(!pipelines.contains(&"period_skip"), "{pipelines:?}");
    // No history: a periodic pipeline runs at start, as tglib's.
    assert_eq!(
        pipelines.iter().filter(|p| **p == "period_fresh").count(),
        1,
        "{pipelines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_a_grace_period_then_cancels_and_records_everything() {
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"p": {"period": 60, "jobs": [
            {"name": "sleeper", "enabled": true, "params": {"ms": 300}},
            {"name": "spin", "enabled": true, "timeout_s": 30}]}},
          "overrides": {"runner": {"shutdown_grace_s": 0.8}}}"#,
        &["sleeper", "spin"],
    );
    let service = service(dir.path()).await;
    let mut rx = service.shared.reports.events.subscribe();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = std::time::Instant::now();
    let stopped = service.stop().await;
    let took = asked.elapsed();
    let reports = collect(&mut rx, Duration::from_millis(100)).await;

    assert!(took >= Duration::from_millis(750), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(stopped.history_flushed, "{stopped:?}");
    assert_eq!(stopped.cancelled_running, 1, "{stopped:?}");
    let sleeper = reports.iter().find(|r| r.job == "sleeper").unwrap();
    assert_eq!(
        sleeper.outcome,
        Outcome::Ok,
        "finished inside the grace period"
    );
    let spin = reports.iter().find(|r| r.job == "spin").unwrap();
    assert_eq!(spin.outcome.name(), "cancelled");
    assert!(
        spin.outcome.detail().contains("grace period of 0.8s"),
        "{}",
        spin.outcome.detail()
    );
    // Both are in the history.
    let rows = service
        .shared
        .reports
        .history
        .as_ref()
        .unwrap()
        .query(None, None, 10)
        .await
        .unwrap();
    let mut outcomes: Vec<_> = rows
        .iter()
        .map(|r| (r.job.as_str(), r.outcome.as_str()))
        .collect();
    outcomes.sort();
    assert_eq!(outcomes, [("sleeper", "ok"), ("spin", "cancelled")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_spreads_runs_after_their_due_time_and_keeps_the_grid() {
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"p": {"period": 0.2, "jitter_s": 0.15,
            "jobs": [{"name": "noop", "enabled": true}]}}}"#,
        &["noop"],
    );
    let (scheduler, mut rx) = start_scheduler(dir.path()).await;
    let reports = collect(&mut rx, Duration::from_millis(2100)).await;
    scheduler.stop(Duration::from_secs(5)).await;
    assert!((8..=12).contains(&reports.len()), "{} runs", reports.len());
    let delays: Vec<i64> = reports.iter().map(|r| start_slip_ms(r)).collect();
    // Each run waits 0 to 150 ms after its due time (and a little for the consumer).
    assert!(delays.iter().all(|d| (0..=190).contains(d)), "{delays:?}");
    let spread = delays.iter().max().unwrap() - delays.iter().min().unwrap();
    assert!(spread >= 40, "not spread: {delays:?}");
    // The due times stay on the 200 ms grid: jitter delays runs, not the schedule.
    for pair in reports.windows(2) {
        assert_eq!(
            pair[1].scheduled_ms - pair[0].scheduled_ms,
            200,
            "{delays:?}"
        );
    }
}

//! Hostile guests, all at once in one service beside a punctual probe job: each ends with
//! a named outcome, the runner's memory stays bounded, the probe keeps its schedule and
//! every run is in the history.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tgrun::config::Config;
use tgrun::service::{FixedLog, Service};
use tgrun::{Outcome, RunReport};

use crate::fixtures::{config_dir, messages, resident, start_slip_ms};
use crate::standin::{Kind, StandIn};

/// The process's resident memory, in MiB (nextest runs each test in its own process).
fn rss_mb() -> u64 {
    resident() >> 20
}

/// A "Prometheus" that accepts connections and never answers; counts the connections the
/// runner closed (the cancelled host calls).
async fn hanging_server() -> (u16, Arc<AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let closed = Arc::new(AtomicU64::new(0));
    let counter = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = l.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 4096];
                // Read the request, answer nothing, notice when the client gives up.
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (port, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_are_contained_and_the_others_keep_their_schedule() {
    let standin = StandIn::start(&[("huge", Kind::Enormous)], false).await;
    let (prom_port, closed) = hanging_server().await;
    let hostile = |mode: &str, n: u64, extra: serde_json::Value| {
        let mut j = json!({"name": "hostile", "enabled": true, "params": {"mode": mode, "n": n}});
        for (k, v) in extra.as_object().unwrap() {
            j[k] = v.clone();
        }
        j
    };
    let sql_job = |statements: &[String], timeout_s: f64| {
        json!({"name": "hostile", "enabled": true, "timeout_s": timeout_s,
               "params": {"mode": "sql", "statements": statements}})
    };
    let outside = tempfile::tempdir().unwrap();
    let (attached, vacuumed) = (
        outside.path().join("attached.db"),
        outside.path().join("vacuumed.db"),
    );
    let files = [
        format!("ATTACH DATABASE '{}' AS x", attached.display()),
        format!("VACUUM INTO '{}'", vacuumed.display()),
    ];
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT COUNT(*) FROM c";
    // One pipeline per hostile mode: the job is the same module, the pipelines tell the
    // runs apart. Two probes: a job due every 50 ms, and one using SQL every 200 ms beside
    // the guests that hold SQL.
    let mut pipelines = serde_json::Map::new();
    pipelines.insert(
        "probe".into(),
        json!({"period": 0.05, "jobs": [{"name": "noop", "enabled": true}]}),
    );
    pipelines.insert(
        "sql_probe".into(),
        json!({"period": 0.2, "jobs": [sql_job(&["SELECT 1".into()], 5.0)]}),
    );
    let cases = [
        (
            "spin",
            json!({"name": "spin", "enabled": true, "timeout_s": 0.5}),
        ),
        (
            "memory_bomb",
            json!({"name": "memory_hog", "enabled": true, "memory_mb": 32}),
        ),
        ("panic", json!({"name": "panics", "enabled": true})),
        ("recurse", hostile("recurse", 0, json!({}))),
        (
            "host_calls",
            hostile("host_calls", 2_000_000, json!({"timeout_s": 20})),
        ),
        ("stdout", hostile("stdout", 50 << 20, json!({}))),
        (
            "metrics",
            hostile("metrics", 200_000, json!({"memory_mb": 256})),
        ),
        ("sql_rows", hostile("sql_rows", 5_000_000, json!({}))),
        ("api_huge", hostile("api_huge", 0, json!({"timeout_s": 20}))),
        (
            "prometheus_hang",
            hostile("prometheus_hang", 0, json!({"timeout_s": 1})),
        ),
        // Issue 18: what a guest hands the host, and the SQL it holds.
        (
            "huge_error",
            hostile("huge_error", 20 << 20, json!({"memory_mb": 256})),
        ),
        (
            "sql_transactions",
            hostile("sql_transactions", 200, json!({"timeout_s": 2})),
        ),
        ("sql_files", sql_job(&files, 10.0)),
        ("sql_endless", sql_job(&[endless.into()], 1.0)),
    ];
    let only = std::env::var("HOSTILE_ONLY").ok();
    for (name, job) in &cases {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        pipelines.insert((*name).into(), json!({"period": 30, "jobs": [job]}));
    }
    let service_config = json!({"num_consumers": 16, "pipelines": pipelines});
    let dir = config_dir(
        &service_config.to_string(),
        &["noop", "spin", "memory_hog", "panics", "hostile"],
    );
    let clients = json!({
        "prometheus": {"host": "127.0.0.1", "port": prom_port},
        "apiservice": standin.config(false),
    });
    std::fs::write(dir.path().join("config.json"), clients.to_string()).unwrap();

    let before = rss_mb();
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("info".into()))), None)
        .await
        .unwrap();
    let mut rx = service.shared.reports.events.subscribe();
    let mut reports: Vec<Arc<RunReport>> = Vec::new();
    let mut peak = 0;
    // Until every hostile case has ended once (at least 6 s, at most 60 s: the machine is
    // shared, and a flood of host calls takes seconds).
    let started = tokio::time::Instant::now();
    let cases_seen = |reports: &[Arc<RunReport>]| {
        pipelines
            .keys()
            .all(|p| reports.iter().any(|r| &r.pipeline == p))
    };
    while started.elapsed() < Duration::from_secs(6) || !cases_seen(&reports) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not every hostile case ended: {:?}",
            reports
                .iter()
                .map(|r| &r.pipeline)
                .collect::<std::collections::BTreeSet<_>>()
        );
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Ok(r)) => reports.push(r),
            Ok(Err(e)) => panic!("lost reports: {e}"),
            Err(_) => {}
        }
        peak = peak.max(rss_mb());
    }
    let window = started.elapsed();
    let stopped = service.stop().await;
    let after = rss_mb();

    for r in &reports {
        if r.pipeline != "probe" {
            eprintln!(
                "{} {} {:?} {}",
                r.pipeline,
                r.outcome.name(),
                r.duration,
                r.outcome.detail()
            );
        }
    }
    // The probe kept its schedule: about one run per 50 ms, each started soon after it
    // was due. (Figures for the notes; the bound is loose, the machine is shared.)
    let probe: Vec<_> = reports.iter().filter(|r| r.pipeline == "probe").collect();
    let mut slips: Vec<i64> = probe
        .iter()
        .filter(|r| r.outcome.is_ok())
        .map(|r| start_slip_ms(r))
        .collect();
    slips.sort();
    let p = |q: f64| slips[((slips.len() - 1) as f64 * q) as usize];
    eprintln!(
        "probe: {} reports in {window:?}, start slip p50 {} ms, p99 {} ms, max {} ms; rss before {before} MiB, peak {peak} MiB, after {after} MiB; {stopped:?}",
        probe.len(),
        p(0.5),
        p(0.99),
        slips[slips.len() - 1]
    );
    // Every due time of the probe is accounted for: run, or skipped while its previous
    // run was still live (two cores shared with ten hostile guests).
    let due = (window.as_millis() / 50) as usize;
    assert!(
        probe.len() + 5 >= due * 9 / 10,
        "probe: {} of ~{due} due times",
        probe.len()
    );
    let ran = probe.iter().filter(|r| r.outcome.is_ok()).count();
    assert!(
        ran >= due / 2,
        "the probe ran {ran} times of {}",
        probe.len()
    );
    assert!(
        probe
            .iter()
            .all(|r| matches!(r.outcome.name(), "ok" | "skipped")),
        "the probe failed beside hostile guests"
    );
    assert!(p(0.5) <= 20, "probe start slip p50 {} ms", p(0.5));

    if only.is_some() {
        return;
    }
    let first = |pipeline: &str| {
        reports
            .iter()
            .find(|r| r.pipeline == pipeline)
            .unwrap_or_else(|| panic!("no run of {pipeline}"))
            .clone()
    };
    let kind_of = |r: &RunReport| match &r.outcome {
        Outcome::Error { kind, message } => format!("{kind}: {message}"),
        other => other.name().to_owned(),
    };
    assert_eq!(first("spin").outcome.name(), "timeout");
    assert_eq!(first("memory_bomb").outcome.name(), "memory_limit");
    let panic = first("panic");
    assert!(
        panic.outcome.detail().contains("fixture panic"),
        "{:?}",
        panic.outcome
    );
    let recurse = first("recurse");
    assert_eq!(recurse.outcome.name(), "trap", "{:?}", recurse.outcome);
    assert!(
        recurse.outcome.detail().contains("call stack exhausted"),
        "{}",
        recurse.outcome.detail()
    );
    let calls = first("host_calls");
    assert_eq!(calls.outcome, Outcome::Ok);
    assert!(calls.logs_dropped > 900_000, "{}", calls.logs_dropped);
    let stdout = first("stdout");
    assert_eq!(stdout.outcome, Outcome::Ok);
    assert!(
        stdout.output_dropped > 45 << 20,
        "{}",
        stdout.output_dropped
    );
    let metrics = first("metrics");
    assert!(
        kind_of(&metrics).starts_with("limit-exceeded"),
        "{}",
        kind_of(&metrics)
    );
    let rows = first("sql_rows");
    assert!(
        kind_of(&rows).starts_with("limit-exceeded"),
        "{}",
        kind_of(&rows)
    );
    let api = first("api_huge");
    assert!(
        kind_of(&api).starts_with("limit-exceeded"),
        "{}",
        kind_of(&api)
    );
    let streamed = standin.seen.streamed.load(Ordering::SeqCst);
    assert!(
        streamed < 100 << 20,
        "read {streamed} bytes of a 300 MiB answer"
    );
    let hang = first("prometheus_hang");
    assert_eq!(hang.outcome.name(), "timeout");
    assert!(
        hang.duration < Duration::from_millis(1500),
        "{:?}",
        hang.duration
    );
    assert!(
        closed.load(Ordering::SeqCst) >= 1,
        "the hanging Prometheus request was not cancelled"
    );

    let huge = first("huge_error");
    assert_eq!(huge.outcome.name(), "error");
    assert!(
        huge.outcome.detail().len() < 9 << 10,
        "{} bytes of error kept",
        huge.outcome.detail().len()
    );
    let held = first("sql_transactions");
    assert_eq!(held.outcome, Outcome::Ok, "{:?}", held.outcome);
    assert!(messages(&held).contains(&"open 1".to_owned()));
    let files_run = first("sql_files");
    let lines = messages(&files_run);
    assert!(
        lines.iter().filter(|l| l.starts_with("err ")).count() == 2,
        "{lines:?}"
    );
    assert!(!attached.exists() && !vacuumed.exists());
    assert_eq!(first("sql_endless").outcome.name(), "timeout");
    let sql_probe: Vec<_> = reports
        .iter()
        .filter(|r| r.pipeline == "sql_probe")
        .collect();
    assert!(
        sql_probe
            .iter()
            .all(|r| matches!(r.outcome.name(), "ok" | "skipped")),
        "SQL beside guests that hold SQL: {:?}",
        sql_probe
            .iter()
            .map(|r| r.outcome.detail())
            .collect::<Vec<_>>()
    );
    assert!(sql_probe.iter().filter(|r| r.outcome.is_ok()).count() >= 10);

    // Bounded memory: far below what the floods would take if kept (200 MiB of stdout,
    // 300 MiB of answer, 5 million rows, a 20 MiB error).
    assert!(peak < before + 400, "peak {peak} MiB from {before} MiB");

    // Nothing lost: every run reported is in the history.
    let history = service.shared.reports.history.as_ref().unwrap();
    let rows = history.query(None, None, 100_000).await.unwrap();
    let ids: std::collections::HashSet<_> = rows.iter().map(|r| r.run_id.as_str()).collect();
    let missing: Vec<_> = reports
        .iter()
        .filter(|r| !ids.contains(r.run_id.as_str()))
        .map(|r| (&r.pipeline, &r.run_id))
        .collect();
    assert!(missing.is_empty(), "not in the history: {missing:?}");
}

/// What a job hands the metrics cache and the run's report, bounded per run and per job:
/// no forged runner series, no other job's series, no oversized labels, no error text
/// larger than the runner keeps.
#[tokio::test]
async fn a_job_cannot_forge_or_take_series_and_what_it_hands_the_host_is_bounded() {
    use tgrun::host::HostClients;
    use tgrun::run::outcome::MAX_ERROR_BYTES;
    use tgrun::sandbox::Sandbox;

    let services = Arc::new(HostClients::new(&serde_json::Map::new()));
    let sb = Sandbox::new(crate::fixtures::settings(), services.clone()).unwrap();
    let c = crate::fixtures::compile(&sb, "hostile");
    let run = |job: &str, mode: &str, n: u64| {
        let mut inv =
            crate::fixtures::invocation("hostile", &json!({"mode": mode, "n": n}).to_string());
        inv.job = job.into();
        // Room for the guest to build the large values it hands over.
        inv.limits.memory_bytes = 256 << 20;
        inv
    };
    let error = |r: &RunReport| match &r.outcome {
        Outcome::Error { kind, message } => (kind.clone(), message.clone()),
        other => panic!("expected an error outcome, got {other:?}"),
    };

    // A forged runner series is refused and nothing of it is served.
    let r = sb.run(&c, &run("forger", "forge_metric", 0), false).await;
    let (kind, message) = error(&r);
    assert_eq!(kind, "not-permitted", "{message}");
    assert!(message.contains("tgrun_"), "{message}");
    assert!(!services.metrics.render().contains("tgrun_runs_total"));

    // A label value of 10 MiB is refused before it is kept anywhere.
    let r = sb
        .run(&c, &run("bloater", "huge_label", 10 << 20), false)
        .await;
    let (kind, message) = error(&r);
    assert_eq!(kind, "limit-exceeded", "{message}");
    assert!(message.len() < 1024, "the refusal does not echo the value");
    assert!(r.metrics.is_empty());
    assert!(!services.metrics.render().contains("hostile_big"));

    // A series is its writer's: another job cannot overwrite it; its owner can.
    let r = sb.run(&c, &run("owner", "shared_series", 0), false).await;
    assert_eq!(r.outcome, Outcome::Ok);
    let r = sb.run(&c, &run("thief", "shared_series", 0), false).await;
    let (kind, message) = error(&r);
    assert_eq!(kind, "not-permitted", "{message}");
    assert!(message.contains("'owner'"), "{message}");
    let r = sb.run(&c, &run("owner", "shared_series", 0), false).await;
    assert_eq!(r.outcome, Outcome::Ok);

    // A 20 MiB error: the runner keeps both ends, at most MAX_ERROR_BYTES and a note.
    let r = sb
        .run(&c, &run("shouter", "huge_error", 20 << 20), false)
        .await;
    let (kind, message) = error(&r);
    assert_eq!(kind, "failed");
    assert!(
        message.len() <= MAX_ERROR_BYTES + 64,
        "{} bytes kept",
        message.len()
    );
    assert!(message.starts_with("error start "), "{}", &message[..40]);
    assert!(message.ends_with(" error end"));
    assert!(message.contains("bytes cut"));
}

/// A component, written by hand as an attacker would: `modules` core module instances,
/// each with `memories` memories of 128 MiB and `tables` tables.
fn hand_made(instances: usize, memories: usize, tables: usize) -> Vec<u8> {
    let module = format!(
        "(core module $m {} {})",
        "(memory 2048) ".repeat(memories),
        "(table 1 funcref) ".repeat(tables)
    );
    let made = "(core instance (instantiate $m)) ".repeat(instances);
    wat::parse_str(format!("(component {module} {made})")).unwrap()
}

/// Issue 39, hole 1: 40 memories each under `memory_mb` held 5 GiB and the pool's memory
/// slots. A job's component has one memory (and a few tables), refused at load otherwise,
/// naming the file; one memory passes this check (and fails only the world's).
#[test]
fn a_component_of_many_memories_or_tables_is_refused_at_load() {
    let sb = crate::fixtures::sandbox();
    let path = std::path::Path::new("hog.wasm");
    // The pool's own rules (a module's memories, a component's instances) may say it
    // before the runner's; either way it is refused at load, naming the file.
    for (bytes, why) in [
        (
            hand_made(40, 1, 0),
            ["has 40 linear memories", "40 core module instances"],
        ),
        (
            hand_made(2, 1, 0),
            ["has 2 linear memories", "2 Wasm linear memories"],
        ),
        (hand_made(9, 0, 1), ["has 9 tables", "9 tables"]),
        (
            hand_made(1, 40, 0),
            ["has 40 linear memories", "defined memories count of 40"],
        ),
    ] {
        let err = sb.compile(path, &bytes).err().expect("refused").0;
        assert!(
            err.starts_with("hog.wasm ") && why.iter().any(|w| err.contains(w)),
            "{err}"
        );
    }
    // Where the pool is off, the runner's rule alone refuses them.
    let unpooled = crate::fixtures::sandbox_with(
        tgrun::sandbox::SandboxSettings {
            pooling: false,
            ..crate::fixtures::settings()
        },
        json!({}),
    );
    for (bytes, why) in [
        (
            hand_made(40, 1, 0),
            "has 40 linear memories; a job or handler may have 1",
        ),
        (
            hand_made(9, 0, 1),
            "has 9 tables; a job or handler may have 8",
        ),
    ] {
        let err = unpooled.compile(path, &bytes).err().expect("refused").0;
        assert!(err.contains(why), "{err}");
    }
    let err = sb
        .compile(path, &hand_made(1, 1, 1))
        .err()
        .expect("no run export")
        .0;
    assert!(
        err.contains("job world") && !err.contains("memories") && !err.contains("tables;"),
        "{err}"
    );
}

/// Issue 39, hole 2: 12 runs at `memory_mb: 512` left 6 GiB resident (the pool returned
/// pages in batches of 32 instances). The pages of ended runs go back to the kernel: after
/// a burst of runs that each filled 256 MiB, the process is back within 64 MiB of idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_of_ended_runs_go_back_to_the_kernel() {
    let sb = crate::fixtures::sandbox();
    let c = crate::fixtures::compile(&sb, "memory_hog");
    let run = || {
        let mut inv = crate::fixtures::invocation("memory_hog", "{}");
        inv.limits.memory_bytes = 256 << 20;
        inv
    };
    // One run first: idle then holds the component and what one run leaves.
    let r = sb.run(&c, &run(), false).await;
    assert!(
        matches!(r.outcome, Outcome::MemoryLimit { .. }),
        "{:?}",
        r.outcome
    );
    let idle = resident();
    for _ in 0..12 {
        let r = sb.run(&c, &run(), false).await;
        assert!(
            matches!(r.outcome, Outcome::MemoryLimit { .. }),
            "{:?}",
            r.outcome
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = resident();
    assert!(
        after < idle + (64 << 20),
        "resident {} MiB after the runs, {} MiB idle",
        after >> 20,
        idle >> 20
    );
}

/// Issue 39, hole 7: 20 runs returning a 50 MiB error left the runner 300 MiB larger. The
/// error is kept as 8 KiB, and neither the guest's pages nor the host's copy of the text
/// stay: the process is back within 64 MiB of idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_returning_huge_errors_leave_nothing_resident() {
    let sb = crate::fixtures::sandbox();
    let c = crate::fixtures::compile(&sb, "hostile");
    let run = || {
        let mut inv = crate::fixtures::invocation(
            "hostile",
            &json!({"mode": "huge_error", "n": 50 << 20}).to_string(),
        );
        inv.limits.memory_bytes = 256 << 20;
        inv
    };
    let r = sb.run(&c, &run(), false).await;
    assert!(
        r.outcome.detail().len() < 9 << 10,
        "{}",
        r.outcome.detail().len()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = resident();
    for _ in 0..20 {
        let r = sb.run(&c, &run(), false).await;
        assert!(!r.outcome.is_ok());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = resident();
    assert!(
        after < idle + (64 << 20),
        "resident {} MiB after the runs, {} MiB idle",
        after >> 20,
        idle >> 20
    );
}

/// Issue 39: a hundred runs of every hostile guest leave the runner as it was. Each case
/// is a job of its own (its module, its limits), run by hand 100 times, 8 at once, after
/// eight runs each to warm the process (compiled modules, pools, connections); the process
/// is then back within 10% of that idle resident size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_runs_of_every_hostile_guest_leave_the_runner_as_it_was() {
    let standin = StandIn::start(&[("huge", Kind::Enormous)], false).await;
    let (prom_port, _) = hanging_server().await;
    let case = |name: &str, module: &str, params: serde_json::Value, limits: serde_json::Value| {
        let mut j = json!({"name": name, "module": module, "enabled": true, "params": params});
        for (k, v) in limits.as_object().unwrap() {
            j[k] = v.clone();
        }
        j
    };
    let mode = |m: &str, n: u64| json!({"mode": m, "n": n});
    let sql = |s: &str| json!({"mode": "sql", "statements": [s]});
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT COUNT(*) FROM c";
    let jobs = [
        case("h_spin", "spin", json!({}), json!({"timeout_s": 0.02})),
        case(
            "h_memory",
            "memory_hog",
            json!({}),
            json!({"memory_mb": 32}),
        ),
        case("h_panic", "panics", json!({}), json!({})),
        case("h_recurse", "hostile", mode("recurse", 0), json!({})),
        case("h_calls", "hostile", mode("host_calls", 20_000), json!({})),
        case("h_stdout", "hostile", mode("stdout", 2 << 20), json!({})),
        case(
            "h_metrics",
            "hostile",
            mode("metrics", 2_000),
            json!({"memory_mb": 64}),
        ),
        case("h_rows", "hostile", mode("sql_rows", 20_000), json!({})),
        case(
            "h_api",
            "hostile",
            mode("api_huge", 0),
            json!({"timeout_s": 10}),
        ),
        case(
            "h_hang",
            "hostile",
            mode("prometheus_hang", 0),
            json!({"timeout_s": 0.05}),
        ),
        case(
            "h_error",
            "hostile",
            mode("huge_error", 4 << 20),
            json!({"memory_mb": 64}),
        ),
        case(
            "h_tx",
            "hostile",
            mode("sql_transactions", 20),
            json!({"timeout_s": 1}),
        ),
        case(
            "h_endless",
            "hostile",
            sql(endless),
            json!({"timeout_s": 0.02}),
        ),
        case(
            "h_attach",
            "hostile",
            sql("ATTACH DATABASE '/tmp/x.db' AS x"),
            json!({}),
        ),
    ];
    let names: Vec<String> = jobs
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_owned())
        .collect();
    let service_config = json!({"num_consumers": 8, "pipelines": {
        "hostile": {"period": 86400, "jobs": jobs}
    }});
    let dir = config_dir(
        &service_config.to_string(),
        &["spin", "memory_hog", "panics", "hostile"],
    );
    let clients = json!({
        "prometheus": {"host": "127.0.0.1", "port": prom_port},
        "apiservice": standin.config(false),
        // Past the row cap at 10,000 rows (a tenth of the default: the test's time).
        "runner": {"sql_max_rows": 10_000},
    });
    std::fs::write(dir.path().join("config.json"), clients.to_string()).unwrap();
    let config = Config::load(dir.path()).unwrap();
    let service = Arc::new(
        Service::start(config, Arc::new(FixedLog(Mutex::new("warn".into()))), None)
            .await
            .unwrap(),
    );
    // `rounds` runs of each of `names`, 8 at once; answers each case's outcomes.
    let run_all = |names: Vec<String>, rounds: usize| {
        let service = service.clone();
        async move {
            let gate = Arc::new(tokio::sync::Semaphore::new(8));
            let mut runs = tokio::task::JoinSet::new();
            for _ in 0..rounds {
                for name in &names {
                    let (service, gate, name) = (service.clone(), gate.clone(), name.clone());
                    runs.spawn(async move {
                        let _turn = gate.acquire_owned().await.unwrap();
                        let report = service.run_now(&name, None).await.unwrap();
                        (name, report.outcome.name().to_owned())
                    });
                }
            }
            let mut outcomes = std::collections::BTreeMap::<String, Vec<String>>::new();
            while let Some(r) = runs.join_next().await {
                let (name, outcome) = r.unwrap();
                outcomes.entry(name).or_default().push(outcome);
            }
            outcomes
        }
    };
    // Warm: the process's bounded caches at their size, with the load below once: each
    // case 8 runs at once (every pooled connection has run its statements, and the pool
    // has handed each module the instance slots it will use again: a slot keeps its warm
    // pages, 64 KiB of memory, for the next run of the same module).
    let mut warm = std::collections::BTreeMap::new();
    for name in &names {
        warm.append(&mut run_all(vec![name.clone()], 8).await);
    }
    // Idle: after the trim that follows the warm-up's large calls (within a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle = resident();
    let status = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("Rss") || l.starts_with("Threads"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let idle_status = status();
    let started = std::time::Instant::now();
    // Twice 50 runs of each case, case after case (the figures say which one kept what);
    // after each half, the resident size once the trim of host memory has run (within a
    // second of the last large call; later on a loaded machine: up to 10 s).
    let settled = |bound: u64| async move {
        let since = std::time::Instant::now();
        let mut now = resident();
        while now > bound && since.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            now = resident();
        }
        now
    };
    let mut outcomes = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut growth = Vec::new();
    let mut halves = Vec::new();
    for _ in 0..2 {
        for name in &names {
            let before = resident();
            for (n, mut seen) in run_all(vec![name.clone()], 50).await {
                outcomes.entry(n).or_default().append(&mut seen);
            }
            growth.push(format!(
                "{name} {:+} MiB",
                (resident() as i64 - before as i64) >> 20
            ));
        }
        halves.push(settled(idle + idle / 10).await);
    }
    let took = started.elapsed();
    let (half, after) = (halves[0], halves[1]);
    service.stop().await;
    eprintln!(
        "1,400 runs in {took:?}; resident idle {} MiB ({idle_status}), after 700 runs {} MiB, after 1,400 {} MiB ({}); by case: {}; warm-up outcomes {warm:?}",
        idle >> 20,
        half >> 20,
        after >> 20,
        status(),
        growth.join(", ")
    );
    // Each case ended as it does alone (the same outcome every time), none ran `ok` by
    // slipping past its bound unnoticed.
    for (name, seen) in &outcomes {
        assert_eq!(seen.len(), 100, "{name}");
        let first = &warm[name][0];
        assert!(
            seen.iter().all(|o| o == first),
            "{name}: {first} then {seen:?}"
        );
    }
    assert_eq!(warm["h_spin"][0], "timeout");
    assert_eq!(warm["h_memory"][0], "memory_limit");
    // Runs leave nothing behind: 1,400 runs end within a quarter of idle. (Measured: +0 to
    // +4 MiB on a quiet machine, within 10%; under CI's load glibc's arenas move by up to
    // +-8 MiB from one half to the next, below idle after 700 runs and above after 1,400, so
    // a tenth cannot tell a leak from that noise: a leak of 5 KiB a run would show as 7 MiB
    // per half, growing half after half.)
    assert!(
        after <= idle + idle / 4,
        "resident {} MiB after 1,400 runs of the hostile guests, {} MiB idle",
        after >> 20,
        idle >> 20
    );
}

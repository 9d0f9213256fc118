//! Python jobs (componentize-py and `guest-sdk/python`): an exception is an `error` outcome
//! carrying its traceback, the SDK's clients and logging reach the runner, limits stop a
//! Python guest as they stop a Rust one, and a Python module (tens of MB, seconds to
//! compile) comes from the compiled-code cache after its first load. The seed's examples
//! in Python run in `prometheus.rs` and `api_service.rs` beside their Rust twins.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tgrun::clients::{Caps, Clients, SqlApi, sql};
use tgrun::host::HostClients;
use tgrun::host::journal::{LogLevel, LogStream};
use tgrun::sandbox::component::JobComponent;
use tgrun::sandbox::{Sandbox, SandboxSettings};
use tgrun::{Outcome, RunReport};

use crate::fixtures::{
    compile, invocation, mariadb, messages, sandbox, sandbox_with, settings, wasm,
};

/// One run of the compiled `py_probe` with `params`.
async fn probe(sb: &Sandbox, c: &Arc<JobComponent>, params: Json) -> RunReport {
    sb.run(c, &invocation("py_probe", &params.to_string()), false)
        .await
}

fn error_of(report: &RunReport) -> (&str, &str) {
    match &report.outcome {
        Outcome::Error { kind, message } => (kind, message),
        other => panic!(
            "expected an error outcome, got {other:?}: {:?}",
            report.logs
        ),
    }
}

/// The one JSON log line a probe mode writes.
fn logged_json(report: &RunReport) -> Json {
    assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.logs);
    let line = report
        .logs
        .iter()
        .find(|l| l.message.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in {:?}", report.logs));
    serde_json::from_str(&line.message).unwrap()
}

/// `datetime.strptime` imports `_strptime` at its first call, which a component would lack
/// (only what was imported while it was built is there): the SDK imports it. A module a
/// run imports late that the build never did is an error saying to import it at module level.
#[tokio::test]
async fn late_imports_of_the_standard_library_work_or_say_why_not() {
    let sb = sandbox();
    let c = compile(&sb, "py_probe");
    let r = probe(&sb, &c, json!({"mode": "late_imports"})).await;
    assert!(
        r.logs.iter().any(|l| l.message == "2026-12-07"),
        "{:?}",
        r.logs
    );
    let (_, message) = error_of(&r);
    assert!(
        message.starts_with(
            "ModuleNotFoundError: No module named 'statistics' (a tgrun Python component has \
             only the modules imported while it was built: import it at module level)"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn an_exception_is_an_error_outcome_with_its_traceback() {
    let sb = sandbox();
    let c = compile(&sb, "py_probe");
    let r = probe(&sb, &c, json!({"mode": "raise"})).await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, "failed");
    // The exception first (one line for a list of runs), then the whole traceback.
    assert!(
        message.starts_with("ValueError: boom from deep inside\n"),
        "{message}"
    );
    assert!(
        message.contains("Traceback (most recent call last):"),
        "{message}"
    );
    assert!(message.contains(r#"File "app.py", line "#), "{message}");
    assert!(message.contains("in _deep"), "{message}");
    assert!(message.contains("in py_probe"), "{message}");

    // An SDK error the job lets through keeps its kind, and gets the traceback too, with
    // the job's frames only (not the SDK's).
    let r = probe(&sb, &c, json!({"mode": "sdk_error"})).await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, "not-configured", "{message}");
    assert!(
        message.starts_with("the sql capability is not configured"),
        "{message}"
    );
    assert!(message.contains("in py_probe"), "{message}");
    assert!(!message.contains("tgrun/"), "{message}");

    // Leaving with SystemExit or by infinite recursion is the job's failure, not a trap.
    let r = probe(&sb, &c, json!({"mode": "exit"})).await;
    assert!(
        error_of(&r).1.starts_with("SystemExit: 3"),
        "{:?}",
        r.outcome
    );
    let r = probe(&sb, &c, json!({"mode": "recursion"})).await;
    let (_, message) = error_of(&r);
    assert!(message.starts_with("RecursionError"), "{}", &message[..200]);
    assert!(message.len() <= 17 * 1024, "{}", message.len());
}

#[tokio::test]
async fn limits_stop_a_python_job_as_they_stop_a_rust_one() {
    let sb = sandbox();
    let c = compile(&sb, "py_probe");
    let mut inv = invocation("py_probe", r#"{"mode": "spin"}"#);
    inv.limits.timeout = Duration::from_millis(800);
    let r = sb.run(&c, &inv, false).await;
    assert!(
        matches!(r.outcome, Outcome::Timeout { .. }),
        "{:?}",
        r.outcome
    );
    assert!(r.duration < Duration::from_secs(3), "{:?}", r.duration);

    let mut inv = invocation("py_probe", r#"{"mode": "memory"}"#);
    inv.limits.memory_bytes = 96 << 20;
    let r = sb.run(&c, &inv, false).await;
    assert!(
        matches!(r.outcome, Outcome::MemoryLimit { .. }),
        "{:?}",
        r.outcome
    );

    // The instance after them starts clean.
    let r = probe(&sb, &c, json!({"mode": "noop"})).await;
    assert_eq!(r.outcome, Outcome::Ok);
}

#[tokio::test]
async fn log_lines_print_and_the_logging_module_reach_the_run_log() {
    let sb = sandbox();
    let r = probe(&sb, &compile(&sb, "py_probe"), json!({"mode": "log"})).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.logs);
    let lines: Vec<(LogLevel, LogStream, &str)> = r
        .logs
        .iter()
        .map(|l| (l.level, l.stream, l.message.as_str()))
        .collect();
    for expected in [
        (LogLevel::Info, LogStream::Log, "info via the SDK"),
        (LogLevel::Warn, LogStream::Log, "warn with 2 args"),
        (LogLevel::Error, LogStream::Log, "error via logging"),
        (LogLevel::Info, LogStream::Stdout, "printed line"),
    ] {
        assert!(lines.contains(&expected), "{expected:?} not in {lines:?}");
    }
}

#[tokio::test]
async fn the_run_context_params_and_service_settings_reach_the_job() {
    let sb = sandbox_with(settings(), json!({"site": "north", "limits": {"n": 3}}));
    let c = compile(&sb, "py_probe");
    let inv = invocation("py_probe", r#"{"mode": "context", "extra": [1, "two"]}"#);
    let seen = logged_json(&sb.run(&c, &inv, false).await);
    assert_eq!(
        seen,
        json!({
            "job": "py_probe", "run_id": inv.run_id, "pipeline": "test",
            "start_time_ms": inv.scheduled_ms,
            "settings": {"site": "north", "limits": {"n": 3}},
            "extra": {"extra": [1, "two"]},
        })
    );
}

#[tokio::test]
async fn params_that_do_not_fit_the_function_are_named_without_a_traceback() {
    let sb = sandbox();
    let c = compile(&sb, "add_x_py");
    for (params, expected) in [
        (
            r#"{"x": 5}"#,
            "params of job 'add_x_py': missing 'metric_name'",
        ),
        (
            r#"{"metric_name": "foo", "x": 5, "y": 1}"#,
            "params of job 'add_x_py': unexpected 'y' (the function takes: metric_name, x)",
        ),
        (r#"[1]"#, "params of job 'add_x_py': must be a JSON object"),
    ] {
        let r = sb.run(&c, &invocation("add_x_py", params), false).await;
        let (kind, message) = error_of(&r);
        assert_eq!(kind, "invalid-argument", "{message}");
        assert!(message.starts_with(expected), "{message}");
        assert!(!message.contains("Traceback"), "{message}");
    }
}

/// Runs the probe's SQL round trip against `db`: every Python type in and back out.
async fn sql_round_trip(db: Arc<dyn SqlApi>, datetime_type: &str) -> Json {
    let services = HostClients {
        clients: Clients {
            sql: Some(db),
            ..Clients::default()
        },
        ..HostClients::default()
    };
    let sb = Sandbox::new(settings(), Arc::new(services)).unwrap();
    let c = compile(&sb, "py_probe");
    logged_json(
        &probe(
            &sb,
            &c,
            json!({"mode": "sql", "datetime_type": datetime_type}),
        )
        .await,
    )
}

fn assert_round_trip(seen: &Json) {
    assert_eq!(seen["rows_affected"], 1, "{seen}");
    assert_eq!(
        seen["columns"],
        json!(["i", "f", "t", "b", "d", "n", "flag"])
    );
    // The committed transaction's row is there, the rolled back one is not.
    assert_eq!(seen["is"], json!([-42, 7]), "{seen}");
    assert_eq!(seen["i"], -42);
    assert_eq!(seen["f"], 2.5);
    assert_eq!(seen["t"], "héllo");
    assert_eq!(seen["b"], json!([0, 1, 255]));
    assert_eq!(seen["d_is_datetime"], true, "{seen}");
    assert_eq!(seen["d_ms"], 1_774_747_815_250i64, "{seen}");
    assert_eq!(seen["n"], Json::Null);
    assert_eq!(seen["flag"], 1);
}

#[tokio::test]
async fn sql_values_round_trip_through_sqlite_and_mariadb() {
    let dir = tempfile::tempdir().unwrap();
    let lite = sql::sqlite(&dir.path().join("t.sqlite3"), Caps::default())
        .await
        .unwrap();
    assert_round_trip(&sql_round_trip(lite, "DATETIME").await);

    assert_round_trip(&sql_round_trip(mariadb().await, "DATETIME(3)").await);
}

#[test]
fn runner_check_accepts_a_python_component() {
    // One is enough: each check compiles the 18 MB component anew (no cache), ~10 s.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgrun"))
        .arg("check")
        .arg(wasm("add_x_py"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("fits the tgrun:job@0.1.0 world"), "{text}");
}

#[tokio::test]
async fn a_python_module_comes_from_the_compiled_code_cache_after_its_first_load() {
    let cache = tempfile::tempdir().unwrap();
    let settings = SandboxSettings {
        cache_dir: Some(cache.path().to_path_buf()),
        ..SandboxSettings::default()
    };
    let first = sandbox_with(settings.clone(), json!({}));
    compile(&first, "add_x_py");
    assert_eq!(first.cache_stats(), Some((0, 1)), "hits, misses");
    drop(first);

    // A restart: a new engine on the same cache directory.
    let second = sandbox_with(settings, json!({}));
    let c = compile(&second, "add_x_py");
    assert_eq!(second.cache_stats(), Some((1, 0)), "hits, misses");
    let r = second
        .run(
            &c,
            &invocation("add_x_py", r#"{"metric_name": "foo", "x": 5}"#),
            false,
        )
        .await;
    // No Prometheus is configured: the job runs and reports the missing client.
    assert_eq!(error_of(&r).0, "not-configured", "{:?}", r.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pool_slot_can_run_a_python_job_at_once() {
    // A Python component holds 14 core instances, a Rust one 3: the pool must be sized
    // so that a full set of slots running Python does not run out of instance slots.
    let slots = 4;
    let sb = Arc::new(sandbox_with(
        SandboxSettings {
            max_instances: slots,
            large_instances: slots,
            ..settings()
        },
        json!({}),
    ));
    let c = compile(&sb, "py_probe");
    let runs = (0..slots).map(|i| {
        let (sb, c) = (sb.clone(), c.clone());
        tokio::spawn(async move {
            let mut inv = invocation("py_probe", r#"{"mode": "spin"}"#);
            inv.run_id = format!("spin-{i}");
            inv.limits.timeout = Duration::from_millis(1500);
            sb.run(&c, &inv, false).await
        })
    });
    let (reports, most) = tokio::join!(futures_util::future::join_all(runs), most_running(&sb));
    for r in reports {
        let r = r.unwrap();
        assert!(
            matches!(r.outcome, Outcome::Timeout { .. }),
            "{}: {:?}",
            r.run_id,
            r.outcome
        );
    }
    assert_eq!(
        most,
        u64::from(slots),
        "the large pool ran every slot at once"
    );
}

/// The most large runs seen at once, sampled until none has run for half a second.
async fn most_running(sb: &Sandbox) -> u64 {
    let (mut most, mut quiet) = (0, 0);
    while quiet < 50 {
        let running = sb.large_stats().running;
        most = most.max(running);
        quiet = if running == 0 { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_runs_share_a_few_slots_that_keep_their_memory_until_the_pool_is_idle() {
    // A Python component runs in the large pool: at most `large_instances` instances at
    // once, running or made ahead (the other runs wait, within their deadline); each slot
    // keeps its memory between runs; once no Python run has run for `large_trim_after`,
    // all of it goes back to the kernel, and the next run binds the code again.
    let sb = Arc::new(sandbox_with(
        SandboxSettings {
            large_instances: 2,
            large_trim_after: Duration::from_secs(1),
            ..settings()
        },
        json!({}),
    ));
    let c = compile(&sb, "py_probe");
    assert!(c.is_large());
    let idle = crate::fixtures::resident();
    let run = |params: Json, timeout_ms: u64| {
        let (sb, c) = (sb.clone(), c.clone());
        let mut inv = invocation("py_probe", &params.to_string());
        inv.limits.timeout = Duration::from_millis(timeout_ms);
        tokio::spawn(async move { sb.run(&c, &inv, false).await })
    };

    // Two spin to their deadline; a third waits for a slot past its own.
    let spinning = [
        run(json!({"mode": "spin"}), 1500),
        run(json!({"mode": "spin"}), 1500),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = run(json!({"mode": "noop"}), 300).await.unwrap();
    assert!(
        matches!(waiting.outcome, Outcome::Timeout { .. }),
        "{:?}",
        waiting.outcome
    );
    assert!(
        waiting.duration < Duration::from_secs(1),
        "{:?}",
        waiting.duration
    );
    // Six at once: each runs, two at a time.
    let counting: Vec<_> = (0..6)
        .map(|_| run(json!({"mode": "count"}), 10_000))
        .collect();
    let (counted, most) = tokio::join!(futures_util::future::join_all(counting), most_running(&sb));
    for r in counted {
        let r = r.unwrap();
        assert_eq!(messages(&r), ["run 1 of this instance"], "{:?}", r.outcome);
    }
    for r in futures_util::future::join_all(spinning).await {
        assert!(matches!(r.unwrap().outcome, Outcome::Timeout { .. }));
    }
    assert_eq!(most, 2, "runs at once in a pool of two slots");

    // The slots keep what runs wrote (and an instance made ahead holds one) ...
    let stats = sb.large_stats();
    assert!(stats.kept_bytes > 0, "{stats:?}");
    let busy = crate::fixtures::resident();
    assert!(
        busy > idle + (16 << 20),
        "busy {} MiB, idle {} MiB",
        busy >> 20,
        idle >> 20
    );
    // ... until the pool has been idle long enough.
    for _ in 0..100 {
        if sb.large_stats().trims > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sb.large_stats();
    assert_eq!(
        (stats.trims, stats.parked, stats.kept_bytes, stats.running),
        (1, 0, 0, 0),
        "{stats:?}"
    );
    let trimmed = crate::fixtures::resident();
    assert!(
        trimmed < idle + (8 << 20),
        "after the trim {} MiB, idle {} MiB (busy {} MiB)",
        trimmed >> 20,
        idle >> 20,
        busy >> 20
    );

    // The next run binds the code again (from its file, not compiled) and is fresh.
    let compiles = sb.cache_stats();
    let r = run(json!({"mode": "count"}), 10_000).await.unwrap();
    assert_eq!(messages(&r), ["run 1 of this instance"], "{:?}", r.outcome);
    assert_eq!(sb.cache_stats(), compiles);
}

/// Waits until `c`'s next instance has been made ahead (a dear component's, after a run).
async fn until_made_ahead(c: &JobComponent) {
    for _ in 0..400 {
        if c.made_ahead() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no instance was made ahead in 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_run_takes_an_instance_made_ahead_and_it_is_fresh_and_its_own() {
    // A Python component is dear to instantiate: after a run, the next run's instance is
    // made in the background. It must still be a fresh instance holding nothing of the
    // run before, and serve its run with that run's grants, journal and deadline.
    let sb = sandbox();
    let c = compile(&sb, "py_probe");
    for run in 0..5 {
        // Found dear from its second instantiation on (a first is slow for any component).
        assert_eq!(c.made_ahead(), run >= 2);
        let r = probe(&sb, &c, json!({"mode": "count"})).await;
        assert_eq!(r.outcome, Outcome::Ok);
        assert_eq!(messages(&r), ["run 1 of this instance"]);
        if run >= 1 {
            until_made_ahead(&c).await;
        }
    }
    assert_eq!(
        sb.ahead_stats(),
        (3, 0),
        "runs served ahead, made and thrown away"
    );

    // The run's grants, not the none it was made with.
    let r = probe(&sb, &c, json!({"mode": "sdk_error"})).await;
    assert_eq!(error_of(&r).0, "not-configured", "{:?}", r.outcome);
    until_made_ahead(&c).await;
    let mut inv = invocation("py_probe", r#"{"mode": "sdk_error"}"#);
    inv.grants = tgrun::run::Capabilities::NONE;
    let r = sb.run(&c, &inv, false).await;
    assert_eq!(error_of(&r).0, "not-permitted", "{:?}", r.outcome);
    until_made_ahead(&c).await;

    // Its log lines and output are the run's own.
    let r = probe(&sb, &c, json!({"mode": "log"})).await;
    assert!(
        messages(&r).iter().any(|m| m == "printed line"),
        "{:?}",
        r.logs
    );
    until_made_ahead(&c).await;

    // The run's deadline, not the one the instance was made under (the last run's 10 s).
    let mut inv = invocation("py_probe", r#"{"mode": "spin"}"#);
    inv.limits.timeout = Duration::from_millis(300);
    let r = sb.run(&c, &inv, false).await;
    assert!(
        matches!(r.outcome, Outcome::Timeout { .. }),
        "{:?}",
        r.outcome
    );
    assert!(r.duration < Duration::from_secs(2), "{:?}", r.duration);
    assert_eq!(sb.ahead_stats(), (7, 0));

    // Made under another memory limit: not taken, the run makes its own.
    until_made_ahead(&c).await;
    let mut inv = invocation("py_probe", r#"{"mode": "count"}"#);
    inv.limits.memory_bytes = 96 << 20;
    let r = sb.run(&c, &inv, false).await;
    assert_eq!(messages(&r), ["run 1 of this instance"]);
    assert_eq!(sb.ahead_stats().0, 7);
}

#[tokio::test]
async fn a_rust_job_is_cheap_to_instantiate_and_never_gets_one_made_ahead() {
    let sb = sandbox();
    let c = compile(&sb, "noop");
    for _ in 0..20 {
        let r = sb.run(&c, &invocation("noop", "{}"), false).await;
        assert_eq!(r.outcome, Outcome::Ok);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!c.made_ahead());
    assert_eq!(sb.ahead_stats(), (0, 0));
}

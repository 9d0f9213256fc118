//! The sandbox: fresh instances, limits, outcomes, nothing granted.

use std::time::Duration;

use tgrun::Outcome;
use tgrun::host::journal::LogStream;
use tgrun::sandbox::SandboxSettings;

use crate::fixtures::{compile, invocation, messages, sandbox, sandbox_with, wasm};

#[tokio::test]
async fn every_run_is_a_fresh_instance() {
    let sb = sandbox();
    let counter = compile(&sb, "counter");
    for _ in 0..5 {
        let report = sb.run(&counter, &invocation("counter", "{}"), false).await;
        assert_eq!(report.outcome, Outcome::Ok);
        // The guest counts runs in a global: a reused instance would say 2, 3, ...
        assert_eq!(messages(&report), vec!["count=1"]);
    }
}

#[tokio::test]
async fn an_infinite_loop_ends_as_timeout() {
    let sb = sandbox();
    let spin = compile(&sb, "spin");
    let mut inv = invocation("spin", "{}");
    inv.limits.timeout = Duration::from_millis(200);
    let report = sb.run(&spin, &inv, false).await;
    assert_eq!(
        report.outcome,
        Outcome::Timeout {
            limit: Duration::from_millis(200)
        }
    );
    assert!(
        report.duration >= Duration::from_millis(200),
        "{:?}",
        report.duration
    );
    assert!(
        report.duration < Duration::from_secs(5),
        "{:?}",
        report.duration
    );
    assert_eq!(
        messages(&report),
        vec!["spinning"],
        "logs before the timeout are kept"
    );
}

#[tokio::test]
async fn a_memory_hog_ends_as_memory_limit() {
    let sb = sandbox();
    let hog = compile(&sb, "memory_hog");
    let mut inv = invocation("memory_hog", "{}");
    inv.limits.memory_bytes = 16 << 20;
    let report = sb.run(&hog, &inv, false).await;
    assert_eq!(
        report.outcome,
        Outcome::MemoryLimit {
            limit_bytes: 16 << 20
        }
    );
}

#[tokio::test]
async fn the_memory_limit_is_per_job() {
    // The same hog under a larger limit gets further before it is stopped: the limit is
    // the job's, not a fixed one.
    let sb = sandbox();
    let hog = compile(&sb, "memory_hog");
    let mut inv = invocation("memory_hog", "{}");
    inv.limits.memory_bytes = 48 << 20;
    let report = sb.run(&hog, &inv, false).await;
    assert_eq!(
        report.outcome,
        Outcome::MemoryLimit {
            limit_bytes: 48 << 20
        }
    );
}

#[tokio::test]
async fn a_panic_ends_as_trap_with_its_message() {
    let sb = sandbox();
    let report = sb
        .run(&compile(&sb, "panics"), &invocation("panics", "{}"), false)
        .await;
    let Outcome::Trap { message } = &report.outcome else {
        panic!("expected a trap, got {:?}", report.outcome);
    };
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        message.contains("fixture panic: index 3 of an empty vector"),
        "{message}"
    );
    assert!(
        report.logs.iter().any(|l| l.stream == LogStream::Stderr),
        "stderr is kept in the logs"
    );
}

#[tokio::test]
async fn an_error_value_ends_as_error() {
    let sb = sandbox();
    let report = sb
        .run(&compile(&sb, "fails"), &invocation("fails", "{}"), false)
        .await;
    assert_eq!(
        report.outcome,
        Outcome::Error {
            kind: "failed".into(),
            message: "fixture failure: the job said no".into()
        }
    );
}

#[tokio::test]
async fn nothing_is_granted() {
    let sb = sandbox();
    let report = sb
        .run(
            &compile(&sb, "sandbox_probe"),
            &invocation("sandbox_probe", "{}"),
            false,
        )
        .await;
    assert_eq!(report.outcome, Outcome::Ok);
    assert_eq!(
        messages(&report),
        vec![
            "probe file: denied",
            "probe dir: denied",
            "probe env: 0 variables",
            "probe args: 0 arguments",
            "probe tcp: denied",
            "probe udp: denied",
        ]
    );
}

#[tokio::test]
async fn the_job_sees_its_context_params_and_settings() {
    let sb = sandbox_with(
        SandboxSettings::default(),
        serde_json::json!({"site": "lab", "thresholds": {"rssi": -80}}),
    );
    let report = sb
        .run(
            &compile(&sb, "echo"),
            &invocation("echo", r#"{"value": 7.5}"#),
            false,
        )
        .await;
    assert_eq!(report.outcome, Outcome::Ok);
    let logs = messages(&report);
    assert_eq!(
        logs[0],
        "ctx job=echo pipeline=test run_id=echo-run start_time_ms=1700000000000"
    );
    assert_eq!(logs[1], r#"params {"value":7.5}"#);
    assert_eq!(
        logs[2],
        r#"settings {"site":"lab","thresholds":{"rssi":-80}}"#
    );
    let streams: Vec<_> = report.logs.iter().map(|l| l.stream).collect();
    assert!(streams.contains(&LogStream::Stdout) && streams.contains(&LogStream::Stderr));
    assert_eq!(report.metrics.len(), 1);
    assert_eq!(report.metrics[0].name, "echo_value");
    assert_eq!(report.metrics[0].value, 7.5);
    assert_eq!(
        report.metrics[0].labels,
        vec![("job".to_owned(), "echo".to_owned())]
    );
}

#[tokio::test]
async fn output_past_the_cap_is_dropped_and_counted() {
    let sb = sandbox_with(
        SandboxSettings {
            max_output_bytes: 8 * 1024,
            ..SandboxSettings::default()
        },
        serde_json::json!({}),
    );
    let report = sb
        .run(&compile(&sb, "chatty"), &invocation("chatty", "{}"), false)
        .await;
    assert_eq!(
        report.outcome,
        Outcome::Ok,
        "a chatty job is not a failed job"
    );
    let kept: usize = report
        .logs
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .map(|l| l.message.len() + 1)
        .sum();
    assert!(kept <= 8 * 1024, "kept {kept} bytes");
    assert_eq!(report.output_dropped, 4096 * 1024 - 8 * 1024);
    assert!(messages(&report).contains(&"chatty done".to_owned()));
}

#[tokio::test]
async fn clients_not_configured_are_an_error_value_naming_them() {
    let sb = sandbox();
    let report = sb
        .run(
            &compile(&sb, "add_x"),
            &invocation("add_x", r#"{"metric_name": "foo", "x": 5}"#),
            false,
        )
        .await;
    let Outcome::Error { kind, message } = &report.outcome else {
        panic!("expected an error, got {:?}", report.outcome);
    };
    assert_eq!(kind, "not-configured");
    assert!(message.contains("prometheus"), "{message}");

    let report = sb
        .run(
            &compile(&sb, "save_topology"),
            &invocation("save_topology", "{}"),
            false,
        )
        .await;
    let Outcome::Error { kind, message } = &report.outcome else {
        panic!("expected an error, got {:?}", report.outcome);
    };
    assert_eq!(kind, "not-configured");
    assert!(message.contains("api-service"), "{message}");
}

#[tokio::test]
async fn bad_params_are_an_invalid_argument_naming_the_job() {
    let sb = sandbox();
    let report = sb
        .run(
            &compile(&sb, "add_x"),
            &invocation("add_x", r#"{"metric_name": "foo"}"#),
            false,
        )
        .await;
    let Outcome::Error { kind, message } = &report.outcome else {
        panic!("expected an error, got {:?}", report.outcome);
    };
    assert_eq!(kind, "invalid-argument");
    assert!(message.contains("params of job 'add_x'"), "{message}");
    assert!(message.contains("missing field `x`"), "{message}");
}

#[test]
fn files_that_are_not_job_components_are_refused_with_the_reason() {
    let sb = sandbox();
    let dir = tempfile::tempdir().unwrap();

    let text = dir.path().join("text.wasm");
    std::fs::write(&text, "hello").unwrap();
    let err = sb.compile_file(&text).err().expect("refused").0;
    assert!(err.contains("not a WebAssembly file"), "{err}");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = sb.compile_file(&core).err().expect("refused").0;
    assert!(err.contains("core WebAssembly module"), "{err}");
    assert!(err.contains("wasm32-wasip2"), "{err}");

    let err = sb
        .compile_file(&wasm("wrong_world"))
        .err()
        .expect("refused")
        .0;
    assert!(err.contains("acme:gadgets/gadget"), "{err}");
}

#[test]
fn check_explains_what_does_not_fit() {
    let sb = sandbox();
    let report = sb.check(&wasm("wrong_world"));
    assert!(!report.fits());
    let all = report.problems.join("\n");
    assert!(
        all.contains("imports `acme:gadgets/gadget`, which the runner does not provide"),
        "{all}"
    );
    assert!(
        all.contains("exports `run` as `func(turns: u32) -> u32`"),
        "{all}"
    );

    let good = sb.check(&wasm("add_x"));
    assert!(good.fits(), "{:?}", good.problems);
    assert_eq!(good.exports, vec!["run"]);
    assert!(
        good.imports
            .iter()
            .any(|i| i.starts_with("tgrun:job/prometheus"))
    );
}

#[tokio::test]
async fn a_job_may_call_only_the_clients_it_lists() {
    let sb = sandbox();
    let echo = compile(&sb, "echo");
    let mut inv = invocation("echo", "{}");
    inv.grants = tgrun::run::Capabilities::from_names(["sql"]).unwrap();
    let report = sb.run(&echo, &inv, false).await;
    let Outcome::Error { kind, message } = &report.outcome else {
        panic!("expected an error, got {:?}", report.outcome);
    };
    assert_eq!(kind, "not-permitted");
    assert!(message.contains("may not use prometheus"), "{message}");
    assert!(report.metrics.is_empty(), "nothing was written");

    // Listed (or no list at all): the same call goes through.
    inv.grants = tgrun::run::Capabilities::from_names(["prometheus"]).unwrap();
    assert_eq!(sb.run(&echo, &inv, false).await.outcome, Outcome::Ok);
    inv.grants = tgrun::run::Capabilities::ALL;
    assert_eq!(sb.run(&echo, &inv, false).await.outcome, Outcome::Ok);
}

/// Files under `dir`, recursively, but the cache's own bookkeeping.
fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(cache_entries(&path));
        } else if !path.to_string_lossy().contains(".stats")
            && !path.to_string_lossy().contains(".wip")
        {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn compiled_code_is_cached_and_a_corrupt_entry_is_compiled_again() {
    let cache = tempfile::tempdir().unwrap();
    let settings = SandboxSettings {
        cache_dir: Some(cache.path().to_path_buf()),
        ..SandboxSettings::default()
    };
    let sb = sandbox_with(settings.clone(), serde_json::json!({}));
    compile(&sb, "counter");
    drop(sb);
    let entries = cache_entries(cache.path());
    assert!(!entries.is_empty(), "compiling wrote the cache");
    for e in &entries {
        std::fs::write(e, b"corrupt").unwrap();
    }

    // A restart over a corrupt cache compiles again, runs, and repairs the entries.
    let sb = sandbox_with(settings, serde_json::json!({}));
    let counter = compile(&sb, "counter");
    let report = sb.run(&counter, &invocation("counter", "{}"), false).await;
    assert_eq!(report.outcome, Outcome::Ok);
    for e in &entries {
        assert_ne!(
            std::fs::read(e).unwrap(),
            b"corrupt",
            "{} was rewritten",
            e.display()
        );
    }
}

/// A Rust job built with the SDK reaches the runner through the job world only: std's
/// output and its environment lookups are the SDK's (`logging.write-output`), so no WASI
/// import is left for each fresh instance to wire (19 of them before: streams, terminals,
/// environment, exit). The jobs here print, panic and fill their output.
#[test]
fn a_rust_job_that_uses_no_wasi_imports_none() {
    let engine = wasmtime::Engine::default();
    for job in ["noop", "echo", "panics", "chatty"] {
        let component = wasmtime::component::Component::from_file(&engine, wasm(job))
            .unwrap_or_else(|e| panic!("compiling {job}: {e}"));
        let imports: Vec<String> = component
            .component_type()
            .imports(&engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        assert!(
            imports.iter().all(|name| name.starts_with("tgrun:job/")),
            "{job} imports {imports:?}"
        );
        assert!(
            imports
                .iter()
                .any(|name| name.starts_with("tgrun:job/logging")),
            "{job} imports {imports:?}"
        );
    }
}

#[tokio::test]
async fn std_output_reaches_the_runs_stdout_and_stderr() {
    let sb = sandbox();
    let report = sb
        .run(&compile(&sb, "echo"), &invocation("echo", "{}"), false)
        .await;
    let lines = |stream| -> Vec<&str> {
        report
            .logs
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.message.as_str())
            .collect()
    };
    assert_eq!(lines(LogStream::Stdout), ["to stdout"], "{report:?}");
    assert_eq!(lines(LogStream::Stderr), ["to stderr"], "{report:?}");
}

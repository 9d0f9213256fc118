//! Hot-swap under load: a job scheduled hundreds of times a second while its module is
//! swapped 50 times, by file and by HTTP, between two versions that write different
//! values; and a swap to a broken module.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tgrun::RunReport;
use tgrun::config::Config;
use tgrun::sandbox::component::content_version;
use tgrun::service::{FixedLog, Service};

use crate::fixtures::{config_dir, get_from, request_to, wasm};

async fn start() -> (Arc<Service>, tempfile::TempDir) {
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"hot": {"period": 0.004, "jobs": [
            {"name": "swapper", "enabled": true}]}}}"#,
        &[],
    );
    std::fs::copy(wasm("swap_a"), dir.path().join("modules/swapper.wasm")).unwrap();
    crate::fixtures::share_compiled_code(dir.path());
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("info".into()))), None)
        .await
        .unwrap();
    (service, dir)
}

/// Collects every report from now on.
fn collect(service: &Arc<Service>) -> Arc<Mutex<Vec<Arc<RunReport>>>> {
    let all = Arc::new(Mutex::new(Vec::new()));
    let sink = all.clone();
    let mut rx = service.shared.reports.events.subscribe();
    tokio::spawn(async move {
        while let Ok(r) = rx.recv().await {
            sink.lock().unwrap().push(r);
        }
    });
    all
}

async fn send(
    service: &Arc<Service>,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let kind = if path.ends_with("/module") {
        "application/wasm"
    } else {
        "application/json"
    };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", kind)
        .body(Body::from(body))
        .unwrap();
    let (status, body, _) = request_to(service, req).await;
    (status, body)
}

/// Waits for a run on `version` that started after `since`; answers how long it took.
async fn until_version(
    all: &Mutex<Vec<Arc<RunReport>>>,
    version: &str,
    since: std::time::SystemTime,
) -> Duration {
    let t = Instant::now();
    loop {
        let seen = all
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.module_version.as_deref() == Some(version) && r.started_at >= since);
        if seen {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "version {version} never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_swaps_under_load_fail_no_run_and_the_last_version_wins() {
    let (service, dir) = start().await;
    let all = collect(&service);
    let (a, b) = (
        std::fs::read(wasm("swap_a")).unwrap(),
        std::fs::read(wasm("swap_b")).unwrap(),
    );
    let (va, vb) = (content_version(&a), content_version(&b));
    let file = dir.path().join("modules/swapper.wasm");
    until_version(&all, &va, std::time::UNIX_EPOCH).await;

    let mut by_file = Vec::new();
    for i in 0..50 {
        let (bytes, version) = if i % 2 == 0 { (&b, &vb) } else { (&a, &va) };
        let since = std::time::SystemTime::now();
        if i % 4 == 0 {
            // The usual write to a temporary file, then rename.
            let tmp = dir.path().join("modules/.swapper.wasm.part");
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
            by_file.push(until_version(&all, version, since).await);
        } else if i % 4 == 2 {
            // An editor that writes the file twice in place.
            std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
            std::fs::write(&file, bytes).unwrap();
            by_file.push(until_version(&all, version, since).await);
        } else {
            let (code, body) = send(&service, "PUT", "/jobs/swapper/module", bytes.clone()).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            until_version(&all, version, since).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.stop().await;

    let reports = all.lock().unwrap().clone();
    let ran = reports.iter().filter(|r| r.outcome.is_ok()).count();
    assert!(ran > 1000, "only {ran} runs");
    let failed: Vec<_> = reports.iter().filter(|r| r.outcome.is_failure()).collect();
    assert!(
        failed.is_empty(),
        "{} failed runs, first {:?}",
        failed.len(),
        failed[0].outcome
    );
    // Runs skipped while the previous one was live, or cancelled at the stop before they
    // started, never touched a module.
    for r in reports.iter().filter(|r| r.outcome.is_ok()) {
        let expected = match r.module_version.as_deref() {
            Some(v) if v == va => 1.0,
            Some(v) if v == vb => 2.0,
            other => panic!("a run on an unknown version {other:?}"),
        };
        assert_eq!(
            r.metrics[0].value, expected,
            "a run's metric matches its version"
        );
    }
    // Runs that took a module: a run cancelled at the stop before it did has no version
    // (that, not a late swap, was this assertion's rare failure).
    let mut ran: Vec<_> = reports
        .iter()
        .filter(|r| r.outcome.was_run() && r.module_version.is_some())
        .collect();
    ran.sort_by_key(|r| r.started_at);
    let last = ran.last().unwrap();
    // What ran last, should this fail again.
    let tail: Vec<_> = ran[ran.len().saturating_sub(5)..]
        .iter()
        .map(|r| (r.module_version.clone(), r.started_at, r.outcome.name()))
        .collect();
    assert_eq!(
        last.module_version.as_deref(),
        Some(va.as_str()),
        "the last version wins (a = {va}, b = {vb}); the last runs: {tail:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), a, "and is the file on disk");
    let slowest = by_file.iter().max().unwrap();
    eprintln!(
        "file swaps: {} runs; slowest file swap took {slowest:?}",
        reports.len()
    );
    assert!(
        *slowest < Duration::from_secs(3),
        "a file swap took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_module_never_replaces_a_good_one() {
    let (service, dir) = start().await;
    let all = collect(&service);
    let a = std::fs::read(wasm("swap_a")).unwrap();
    let va = content_version(&a);
    until_version(&all, &va, std::time::UNIX_EPOCH).await;

    std::fs::write(dir.path().join("modules/swapper.wasm"), b"not wasm at all").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        let (_, body, _) = get_from(&service, "/jobs/swapper").await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if let Some(e) = v["entries"][0]["module"]["error"].as_str() {
            assert_eq!(
                v["entries"][0]["module"]["version"],
                va.as_str(),
                "the old version stays"
            );
            break e.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the broken file was never noticed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(error.contains("not a WebAssembly file"), "{error}");

    let (code, body) = send(
        &service,
        "PUT",
        "/jobs/swapper/module",
        b"\0asm\x01\0\0\0".to_vec(),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("core WebAssembly module"), "{body}");

    // Runs went on, all ok, all on the old version.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = std::fs::read(wasm("swap_b")).unwrap();
    let (code, _) = send(&service, "PUT", "/jobs/swapper/module", b.clone()).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = send(&service, "POST", "/jobs/swapper/rollback", vec![]).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains(&va), "back to A: {body}");
    let since = std::time::SystemTime::now();
    until_version(&all, &va, since).await;
    service.stop().await;

    let reports = all.lock().unwrap().clone();
    assert!(
        reports.iter().all(|r| !r.outcome.is_failure()),
        "zero failed runs"
    );
    assert!(reports.len() > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_job_swaps_to_a_python_module_and_back_under_load() {
    let (service, _dir) = start().await;
    let all = collect(&service);
    let (rust, python) = (
        std::fs::read(wasm("swap_a")).unwrap(),
        std::fs::read(wasm("py_probe")).unwrap(),
    );
    let (vr, vp) = (content_version(&rust), content_version(&python));
    until_version(&all, &vr, std::time::UNIX_EPOCH).await;

    // The upload answers once the 20 MB Python component is compiled and checked, while
    // the Rust version keeps running.
    let since = std::time::SystemTime::now();
    let (code, body) = send(&service, "PUT", "/jobs/swapper/module", python).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    until_version(&all, &vp, since).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let since = std::time::SystemTime::now();
    let (code, body) = send(&service, "POST", "/jobs/swapper/rollback", vec![]).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    until_version(&all, &vr, since).await;
    service.stop().await;

    let reports = all.lock().unwrap().clone();
    let failed: Vec<_> = reports.iter().filter(|r| r.outcome.is_failure()).collect();
    assert!(failed.is_empty(), "{:?}", failed[0].outcome);
    let on_python = reports
        .iter()
        .filter(|r| r.outcome.is_ok() && r.module_version.as_deref() == Some(vp.as_str()))
        .count();
    assert!(on_python > 10, "{on_python} runs on the Python version");
}

/// Issue 39: a module not loaded yet is compiled once however many ask for it at once (a
/// flood of anonymous `/readyz`, a burst of runs), not once each; a file refused is not
/// compiled again until it changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_asked_for_by_many_at_once_is_compiled_once() {
    use tgrun::modules::ModuleRegistry;
    use tgrun::sandbox::{Sandbox, SandboxSettings};
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::copy(wasm("echo"), dir.path().join("echo.wasm")).unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm\x0d\0\x01\0garbage").unwrap();
    let sandbox = Arc::new(
        Sandbox::new(
            SandboxSettings {
                cache_dir: Some(cache.path().to_owned()),
                ..SandboxSettings::default()
            },
            Arc::new(tgrun::host::HostClients::default()),
        )
        .unwrap(),
    );
    let modules: Arc<ModuleRegistry> =
        Arc::new(ModuleRegistry::new(dir.path().to_owned(), sandbox.clone()));
    let ask_all = |name: &'static str| {
        let asks: Vec<_> = (0..16)
            .map(|_| {
                let m = modules.clone();
                tokio::spawn(async move { m.get(name).await.is_ok() })
            })
            .collect();
        async move {
            let mut answers = Vec::new();
            for ask in asks {
                answers.push(ask.await.unwrap());
            }
            answers
        }
    };
    assert!(ask_all("echo").await.iter().all(|ok| *ok));
    let (hits, misses) = sandbox.cache_stats().unwrap();
    assert_eq!(
        hits + misses,
        1,
        "compiles: {hits} from the cache, {misses} anew"
    );
    assert!(ask_all("broken").await.iter().all(|ok| !*ok));
}

//! The Prometheus Bumper end to end: a real Prometheus scrapes a fixture exposing `foo` and
//! the runner; `add_x` reads `foo` from Prometheus and writes `foo_plus_5`, which
//! Prometheus then holds with every label of `foo`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::Served;
use crate::fixtures::config_dir;
pub use crate::real_prometheus::{Prometheus, free_port};

/// A scrape target exposing `foo` with two series.
async fn foo_exporter() -> String {
    exporter("foo{site=\"north\",node=\"n1\"} 10\nfoo{site=\"south\",node=\"n2\"} 20\n").await
}

/// A scrape target exposing `text`.
async fn exporter(text: &'static str) -> String {
    let app =
        axum::Router::new().route("/metrics", axum::routing::get(move || async move { text }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn labels_without_name(series: &Value) -> serde_json::Map<String, Value> {
    let mut m = series["metric"].as_object().cloned().unwrap();
    m.remove("__name__");
    m
}

fn write_config(dir: &Path, prometheus_port: u16) {
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"prometheus": {{"host": "127.0.0.1", "port": {prometheus_port}}}}}"#),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bumper_writes_foo_plus_5_into_a_real_prometheus() {
    bumper_writes_foo_plus_5("add_x", "add_x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_bumper_writes_foo_plus_5_into_a_real_prometheus() {
    bumper_writes_foo_plus_5("add_x_py", "add_x_py").await;
}

/// The bumper as a tglib user wrote it (`async def add_x` in a tglib service's `jobs.py`,
/// over tglib's `PrometheusClient`), unchanged, run from the service's one component.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tglib_bumper_writes_foo_plus_5_into_a_real_prometheus() {
    bumper_writes_foo_plus_5("add_x", "tglib_service").await;
}

/// The seed's bumper, served: `job` (Rust or Python, from the component `module`) runs
/// every second against a real Prometheus, which scrapes the runner.
async fn bumper_writes_foo_plus_5(job: &str, module: &str) {
    let exporter = foo_exporter().await;
    let runner_port = free_port();
    let prom = Prometheus::start(&[
        ("fixture", exporter, false),
        ("runner", format!("127.0.0.1:{runner_port}"), true),
    ]);
    let dir = config_dir(
        &r#"{"num_consumers": 2, "pipelines": {"test_pipeline": {"period": 1, "jobs": [
            {"name": "JOB", "module": "MODULE", "enabled": true, "params": {"metric_name": "foo", "x": 5}}]}}}"#
            .replace("JOB", job)
            .replace("MODULE", module),
        &[module],
    );
    crate::fixtures::share_compiled_code(dir.path());
    write_config(dir.path(), prom.port);
    let _runner = Served::start_on(dir.path(), &format!("127.0.0.1:{runner_port}"));

    let deadline = Instant::now() + Duration::from_secs(60);
    let (source, bumped) = loop {
        let source = prom.query("foo").await;
        let bumped = prom.query("foo_plus_5").await;
        if bumped["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
        {
            break (source, bumped);
        }
        assert!(
            Instant::now() < deadline,
            "no foo_plus_5 in prometheus after 60 s: {bumped}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for series in source["data"]["result"].as_array().unwrap() {
        let mut labels = labels_without_name(series);
        // tglib writes a series' labels as its format_query writes them: normalized,
        // values included (`instance="127_0_0_1:9100"`), and so does its guest package.
        if module == "tglib_service" {
            for value in labels.values_mut() {
                if let Some(v) = value.as_str() {
                    *value = v.replace(['.', '-', '/', '[', ']'], "_").into();
                }
            }
        }
        let value: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
        let twin = bumped["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| labels_without_name(b) == labels)
            .unwrap_or_else(|| panic!("no foo_plus_5 with the labels {labels:?}: {bumped}"));
        let bumped_value: f64 = twin["value"][1].as_str().unwrap().parse().unwrap();
        assert_eq!(bumped_value, value + 5.0, "{labels:?}");
    }

    // The runner's own series, scraped with honor_labels, keep the scrape's `job`: the
    // runner names its job `tgrun_job`.
    let query = format!("tgrun_runs_total{{tgrun_job=\"{job}\",outcome=\"ok\"}}");
    let runs = prom.query(&query).await;
    assert_eq!(
        runs["data"]["result"][0]["metric"]["job"], "runner",
        "{runs}"
    );
    let info = prom.query("tgrun_build_info").await;
    assert_eq!(
        info["data"]["result"][0]["metric"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{info}"
    );

    // The whole exposition, the job's series with it, passes promtool's checks.
    let exposition = reqwest::get(format!("http://127.0.0.1:{runner_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(exposition.contains("\nfoo_plus_5{"), "{exposition}");
    promtool_check_metrics(&exposition);
}

/// A service in the style of tgnms' health service (`health_labels`, our own), served: its
/// main.py's tick enqueues `generate_link_health`, which reads each link's latest value
/// from a real Prometheus with tglib's `query_latest` and writes its health with the
/// thresholds `async_main` set up; Prometheus scrapes it back with the labels as tglib
/// writes them (values normalized: `link-a.1` is `link_a_1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tgnms_style_health_job_reads_a_real_prometheus_and_writes_each_links_health() {
    let links =
        exporter("link_avail{linkName=\"link-a.1\"} 99.5\nlink_avail{linkName=\"link-b\"} 42\n")
            .await;
    let runner_port = free_port();
    let prom = Prometheus::start(&[
        ("links", links, false),
        ("runner", format!("127.0.0.1:{runner_port}"), true),
    ]);
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"health": {"period": 1, "jobs": [
            {"name": "generate_link_health", "module": "health_labels", "enabled": true,
             "params": {"period_s": 60, "metric": "link_avail"}}]}},
            "thresholds": {"excellent": 99.0, "good": 90.0}, "label_prefix": "nhs_"}"#,
        &["health_labels"],
    );
    crate::fixtures::share_compiled_code(dir.path());
    write_config(dir.path(), prom.port);
    let _runner = Served::start_on(dir.path(), &format!("127.0.0.1:{runner_port}"));

    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        let health = prom.query("nhs_link_health").await;
        if health["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
        {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "no nhs_link_health in prometheus after 60 s: {health}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut seen: Vec<(String, String, String)> = health["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let label = |k: &str| r["metric"][k].as_str().unwrap_or_default().to_owned();
            (
                label("linkName"),
                label("level"),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("link_a_1".into(), "excellent".into(), "99.5".into()),
            ("link_b".into(), "poor".into(), "42".into())
        ]
    );
}

/// `promtool check metrics` (Debian's prometheus package) on an exposition: its parser
/// and its lints (HELP, TYPE, names, units) pass.
pub fn promtool_check_metrics(exposition: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; `make test-deps` installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_run_bumps_from_a_real_prometheus_and_health_sees_it() {
    runner_run_bumps("add_x", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_run_bumps_with_the_python_job() {
    runner_run_bumps("add_x_py", false).await;
}

/// `tgrun run JOB` against a real Prometheus prints the bumped series; with `health`,
/// `/health` of a served runner follows Prometheus going away.
async fn runner_run_bumps(job: &str, health: bool) {
    let exporter = foo_exporter().await;
    let prom = Prometheus::start(&[("fixture", exporter, false)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while prom.query("foo").await["data"]["result"]
        .as_array()
        .is_none_or(|r| r.is_empty())
    {
        assert!(Instant::now() < deadline, "prometheus never scraped foo");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = config_dir(
        &r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "JOB", "enabled": true, "params": {"metric_name": "foo", "x": 5}}]}}}"#
            .replace("JOB", job),
        &[job],
    );
    crate::fixtures::share_compiled_code(dir.path());
    write_config(dir.path(), prom.port);
    let out = Command::new(env!("CARGO_BIN_EXE_tgrun"))
        .args(["run", job, "--config-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("outcome:  ok"), "{text}");
    assert!(
        text.contains(r#"node="n1""#) && text.contains("} 15 "),
        "{text}"
    );
    assert!(
        text.contains(r#"node="n2""#) && text.contains("} 25 "),
        "{text}"
    );

    if !health {
        return;
    }
    // /health lists prometheus as healthy while it answers.
    let runner_port = free_port();
    let served = Served::start_on(dir.path(), &format!("127.0.0.1:{runner_port}"));
    served.wait_for("HTTP server listening", Duration::from_secs(30));
    let health: Value = ::reqwest::get(format!("http://127.0.0.1:{runner_port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        serde_json::json!({"success": true, "healthy": ["prometheus", "sql"], "unhealthy": []})
    );
    drop(prom);
    let health: Value = ::reqwest::get(format!("http://127.0.0.1:{runner_port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        serde_json::json!({"success": false, "healthy": ["sql"], "unhealthy": ["prometheus"]})
    );
}

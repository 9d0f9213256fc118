//! Figure 6: the seed's bumper (`add_x`) against a real Prometheus, five consumers, through
//! the whole service: runs per second, p50/p99 of a run, and how many HTTP connections the
//! runner opened to Prometheus for them (Prometheus' own count of accepted connections).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use runner::config::Config;
use runner::service::{FixedLog, Service};

#[path = "../../tests/integration/real_prometheus.rs"]
#[allow(dead_code)]
mod real_prometheus;

use crate::{micros, table, wasm};
use real_prometheus::Prometheus;

/// Series of `foo` the exporter serves: the bumper reads and writes this many per run.
const SERIES: usize = 10;
const CONSUMERS: usize = 5;

/// A scrape target exposing `foo` with `SERIES` series.
async fn foo_exporter() -> String {
    let body: String = (0..SERIES)
        .map(|i| format!("foo{{site=\"s{i}\",node=\"n{i}\"}} {i}\n"))
        .collect();
    let app = axum::Router::new().route("/metrics", axum::routing::get(move || async { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Prometheus' count of connections its HTTP listener accepted (read from its own
/// `/metrics` on a connection of its own, which the count includes).
async fn accepted_connections(prometheus: &Prometheus) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", prometheus.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("net_conntrack_listener_conn_accepted_total{listener_name=\"http\"} ")
        })
        .expect("prometheus exposes net_conntrack_listener_conn_accepted_total")
        .parse()
        .unwrap()
}

pub fn bumper_against_prometheus() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let exporter = foo_exporter().await;
        let prometheus = Prometheus::start(&[("foo", exporter, false)]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while prometheus.query("foo").await["data"]["result"]
            .as_array()
            .is_none_or(|r| r.len() < SERIES)
        {
            assert!(Instant::now() < deadline, "prometheus never scraped foo");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("modules")).unwrap();
        std::fs::copy(wasm("add_x"), dir.path().join("modules/add_x.wasm")).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"prometheus": {{"host": "127.0.0.1", "port": {}}}}}"#,
                prometheus.port
            ),
        )
        .unwrap();
        // 50 runs every 10 ms offers 5,000 runs/s, more than five consumers take: the
        // queue stays full, so the figure is what the consumers do, not what is offered.
        let job = r#"{"name": "add_x", "enabled": true, "overlap": "allow",
                      "params": {"metric_name": "foo", "x": 5}}"#;
        let jobs = vec![job; 50].join(",");
        std::fs::write(
            dir.path().join("service_config.json"),
            format!(
                r#"{{"num_consumers": {CONSUMERS}, "pipelines": {{"bump": {{"period": 0.01, "jobs": [{jobs}]}}}}}}"#
            ),
        )
        .unwrap();
        let config = Config::load(dir.path()).unwrap();
        let at_start = accepted_connections(&prometheus).await;
        let log = Arc::new(FixedLog(std::sync::Mutex::new("error".into())));
        let service = Service::start(config, log, None).await.unwrap();
        let mut events = service.shared.reports.events.subscribe();
        tokio::time::sleep(Duration::from_secs(2)).await;

        let stats = &service.shared.reports.stats;
        let before = accepted_connections(&prometheus).await;
        let (runs0, failed0) = (stats.runs.load(Relaxed), stats.failed.load(Relaxed));
        // Durations of the reports this receiver keeps up with: a sample of the runs when
        // it lags (the oldest are dropped, whatever their duration); runs are counted whole.
        let mut durations = Vec::new();
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        while t0.elapsed() < window {
            match events.recv().await {
                Ok(r) => durations.push(r.duration),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let runs = stats.runs.load(Relaxed) - runs0;
        let failed = stats.failed.load(Relaxed) - failed0;
        // Each read counts its own connection.
        let warm_up = before - at_start - 1.0;
        let opened = accepted_connections(&prometheus).await - before - 1.0;
        service.stop().await;

        durations.sort();
        let per_second = runs as f64 / secs;
        let (p50, p99) = (micros(&durations, 0.5), micros(&durations, 0.99));
        println!(
            "bumper (add_x, {SERIES} series read and written a run) against a real Prometheus, \
             {CONSUMERS} consumers: {per_second:.0} runs/s, p50 {p50:.0} µs, p99 {p99:.0} µs \
             (of {} reports read), {failed} failed; connections opened to Prometheus: \
             {warm_up:.0} in the 2 s of warm-up, {opened:.0} in the {runs} runs after",
            durations.len()
        );
        assert_eq!(failed, 0, "bumper runs failed");
        table::report(
            "6. bumper against a real Prometheus, five consumers",
            format!("{per_second:.0} runs/s, p50 {p50:.0} µs, p99 {p99:.0} µs"),
        );
        table::target(
            "6. HTTP connections to Prometheus (reused)",
            format!("{warm_up:.0} in warm-up, then {opened:.0} in {runs} runs"),
            // Opened while the first runs race for the pool; reuse means none after.
            "none after warm-up",
            opened == 0.0,
        );
    });
}

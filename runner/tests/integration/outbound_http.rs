//! Outbound HTTP (issue 40): a job reaches the origins its `allowed_outbound_hosts` lists
//! and nothing else; what it gets back is paid by its run; nothing carries between runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use serde_json::json;
use tgrun::config::Config;
use tgrun::service::{FixedLog, Service};

use crate::fixtures::{config_dir, messages};

/// Serves `app` on a loopback port of its own; answers the port.
async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A local service: `/ok`, redirects in and out, a large answer, a slow one, a cookie.
async fn server(other: u16) -> u16 {
    let app =
        Router::new()
            .route("/ok", get(|| async { "hello" }))
            .route(
                "/redirect-in",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")]) }),
            )
            .route(
                "/redirect-out",
                get(move || async move {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, format!("http://127.0.0.1:{other}/ok"))],
                    )
                }),
            )
            .route("/big", get(|| async { vec![b'x'; 32 << 20] }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    "late"
                }),
            )
            .route(
                "/set-cookie",
                get(|| async { ([(header::SET_COOKIE, "session=s3cr3t; Path=/")], "set") }),
            )
            .route(
                "/cookie",
                get(|headers: HeaderMap| async move {
                    format!("cookie={:?}", headers.get(header::COOKIE))
                }),
            );
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reaches_its_allowed_origins_and_nothing_else() {
    let other = server(0).await;
    let port = server(other).await;
    // The runner's own listener, allowed by mistake: still refused.
    let own = server(0).await;
    tgrun::clients::http::listening_on(own);
    let base = format!("http://127.0.0.1:{port}");
    let service_config = json!({"num_consumers": 2, "pipelines": {"p": {"period": 86400, "jobs": [
        {"name": "caller", "module": "hostile", "enabled": true, "memory_mb": 16,
         "timeout_s": 5, "params": {"mode": "http"},
         "allowed_outbound_hosts": [base, format!("http://localhost:{port}"),
                                    format!("http://127.0.0.1:{own}")]},
        {"name": "closed", "module": "hostile", "enabled": true, "params": {"mode": "http"}},
        {"name": "late", "module": "hostile", "enabled": true, "timeout_s": 1,
         "allowed_outbound_hosts": [base]}
    ]}}});
    let dir = config_dir(&service_config.to_string(), &["hostile"]);
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("warn".into()))), None)
        .await
        .unwrap();
    let call = |job: &'static str, urls: Vec<String>, n: u64| {
        let service = &service;
        async move {
            let params = json!({"mode": "http", "urls": urls, "n": n}).to_string();
            let report = service.run_now(job, Some(params)).await.unwrap();
            assert_eq!(report.outcome, tgrun::Outcome::Ok, "{:?}", report.logs);
            messages(&report)
                .into_iter()
                .filter(|l| l.starts_with("ok ") || l.starts_with("err "))
                .collect::<Vec<_>>()
        }
    };
    let lines = call(
        "caller",
        vec![
            format!("{base}/ok"),
            format!("{base}/redirect-in"),
            format!("http://127.0.0.1:{other}/ok"),
            format!("http://localhost:{port}/ok"),
            format!("{base}/redirect-out"),
            format!("http://127.0.0.1:{own}/ok"),
            format!("{base}/big"),
            format!("{base}/ok"),
        ],
        0,
    )
    .await;
    assert_eq!(lines[0], format!("ok 200 5 {base}/ok"));
    assert_eq!(
        lines[1],
        format!("ok 200 5 {base}/ok"),
        "a redirect to an allowed origin"
    );
    let refused = |line: &str, says: &str| {
        assert!(
            line.starts_with("err NotPermitted: ") && line.contains(says),
            "{line} (expected: {says})"
        );
    };
    refused(&lines[2], "is not among the job's allowed_outbound_hosts");
    // (`localhost` may resolve to ::1 too: every address is refused.)
    refused(&lines[3], "which the job may not reach");
    assert!(lines[3].contains("127.0.0.1"), "{}", lines[3]);
    refused(&lines[4], "a redirect to");
    refused(&lines[5], "the runner's own listener");
    assert!(
        lines[6].starts_with("err LimitExceeded: ") && lines[6].contains("memory budget"),
        "{}",
        lines[6]
    );
    assert_eq!(lines[7], format!("ok 200 5 {base}/ok"), "the run goes on");

    // A slow answer ends at the request's time, a timeout the SDKs can tell.
    let lines = call("caller", vec![format!("{base}/slow")], 300).await;
    assert!(lines[0].starts_with("err Upstream: timed out"), "{lines:?}");
    // No cookie kept from one request (or run) to the next.
    call("caller", vec![format!("{base}/set-cookie")], 0).await;
    let lines = call(
        "caller",
        vec![format!("{base}/set-cookie"), format!("{base}/cookie")],
        0,
    )
    .await;
    assert_eq!(lines[1], format!("ok 200 11 {base}/cookie"), "{lines:?}");
    // A job without the list reaches nothing.
    let lines = call("closed", vec![format!("{base}/ok")], 0).await;
    refused(&lines[0], "allowed_outbound_hosts");
    // A flood is cut at the run's cap.
    let lines = call("caller", vec![format!("{base}/ok"); 260], 0).await;
    assert_eq!(lines.iter().filter(|l| l.starts_with("ok ")).count(), 256);
    assert!(
        lines[256].starts_with("err LimitExceeded: ") && lines[256].contains("256 HTTP requests"),
        "{}",
        lines[256]
    );
    // A server slower than the run's deadline (the request's own time is 30 s): the run
    // ends at its deadline, its request with it.
    let started = std::time::Instant::now();
    let params = json!({"mode": "http", "urls": [format!("{base}/slow")]}).to_string();
    let report = service.run_now("late", Some(params)).await.unwrap();
    assert!(
        matches!(report.outcome, tgrun::Outcome::Timeout { .. }),
        "{:?}",
        report.outcome
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // `/metrics` counts them by origin and outcome.
    let service = Arc::new(service);
    let (_, metrics, _) = crate::fixtures::get_from(&service, "/metrics").await;
    for line in [
        format!("tgrun_http_requests_total{{origin=\"{base}\",outcome=\"answered\"}} 262"),
        format!("tgrun_http_requests_total{{origin=\"{base}\",outcome=\"refused\"}} 2"),
        format!("tgrun_http_requests_total{{origin=\"{base}\",outcome=\"limit_exceeded\"}} 5"),
        format!("tgrun_http_requests_total{{origin=\"{base}\",outcome=\"timeout\"}} 1"),
        format!("tgrun_http_requests_total{{origin=\"{base}\",outcome=\"cancelled\"}} 1"),
        format!(
            "tgrun_http_requests_total{{origin=\"http://localhost:{port}\",outcome=\"refused\"}} 1"
        ),
    ] {
        assert!(metrics.contains(&line), "{line} not in {metrics}");
    }
    service.stop().await;
}

#[test]
fn an_allow_list_that_is_not_one_is_refused_naming_the_entry() {
    let service_config = json!({"pipelines": {"p": {"period": 60, "jobs": [
        {"name": "echo", "allowed_outbound_hosts": ["query_service:8086"]}
    ]}}});
    let dir = config_dir(&service_config.to_string(), &["echo"]);
    let e = Config::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("job 'echo'") && e.contains("\"query_service:8086\" has no scheme"),
        "{e}"
    );
}

/// A service's neighbour: answers `body` at `path` (after `delay`), with the query it got.
async fn neighbour(path: &'static str, body: serde_json::Value, delay: Duration) -> u16 {
    let app = Router::new().route(
        path,
        get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
            let mut body = body.clone();
            async move {
                tokio::time::sleep(delay).await;
                body["query"] = json!(q);
                axum::Json(body)
            }
        }),
    );
    serve(app).await
}

/// A tgnms-style health job in Python (`aiohttp.ClientSession`, URLs from its `env`) asks
/// three neighbours: each answer, a timeout and a refused origin reach it as aiohttp's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_service_asks_its_neighbours_with_aiohttp() {
    let network_test = neighbour(
        "/execution",
        json!({"executions": [{"id": 3}]}),
        Duration::ZERO,
    )
    .await;
    let scan = neighbour("/execution/7", json!({}), Duration::from_secs(3)).await;
    let query = neighbour(
        "/link_health/east/1",
        json!({"events": {"link-a": {"linkAlive": 0.9}}}),
        Duration::ZERO,
    )
    .await;
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let env = json!({"NETWORK_TEST_URL": url(network_test), "SCAN_SERVICE_URL": url(scan),
                     "QUERY_SERVICE_URL": url(query)});
    let service_config = json!({"num_consumers": 2, "pipelines": {"p": {"period": 86400, "jobs": [
        {"name": "health", "module": "py_probe", "enabled": true, "params": {"mode": "aiohttp"},
         "env": env, "allowed_outbound_hosts": [url(network_test), url(scan), url(query)]},
        {"name": "health_unlisted", "module": "py_probe", "enabled": true,
         "params": {"mode": "aiohttp"}, "env": env,
         "allowed_outbound_hosts": [url(network_test), url(scan)]}
    ]}}});
    let dir = config_dir(&service_config.to_string(), &["py_probe"]);
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("warn".into()))), None)
        .await
        .unwrap();
    let report = service.run_now("health", None).await.unwrap();
    let mut lines = messages(&report);
    assert_eq!(report.outcome, tgrun::Outcome::Ok, "{lines:?}");
    lines.sort();
    assert_eq!(
        lines,
        [
            r#"network_test: {"executions": [{"id": 3}], "query": "network_name=east&status=finished"}"#,
            r#"query: {"events": {"link-a": {"linkAlive": 0.9}}, "query": null}"#,
            "scan: failed TimeoutError",
        ],
    );
    let report = service.run_now("health_unlisted", None).await.unwrap();
    let lines = messages(&report);
    assert!(
        lines.contains(&"query: failed ClientConnectorError".to_owned()),
        "{lines:?}"
    );
    service.stop().await;
}

/// `openssl s_server` answering GETs with the files of `dir` over TLS, on a loopback port,
/// its certificate for 127.0.0.1 signed by the test CA of `dir` (`make_certificates`).
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-cert", "server.pem"])
            .args([
                "-key",
                "server.key",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let server = Self { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_the_systems_roots_and_the_configured_ca_and_nothing_else() {
    let certs = tempfile::tempdir().unwrap();
    crate::fixtures::make_certificates(certs.path());
    std::fs::write(certs.path().join("hello.txt"), "hello!").unwrap();
    let tls = TlsServer::start(certs.path());
    let base = format!("https://127.0.0.1:{}", tls.port);
    let service_config = json!({"num_consumers": 1, "pipelines": {"p": {"period": 86400, "jobs": [
        {"name": "caller", "module": "hostile", "enabled": true, "timeout_s": 10,
         "params": {"mode": "http", "urls": [format!("{base}/hello.txt")]},
         "allowed_outbound_hosts": [base]}
    ]}}});
    let start = |ca: Option<&std::path::Path>| {
        let dir = config_dir(&service_config.to_string(), &["hostile"]);
        if let Some(ca) = ca {
            std::fs::copy(ca, dir.path().join("ca.pem")).unwrap();
            std::fs::write(
                dir.path().join("config.json"),
                json!({"runner": {"outbound_ca_file": "ca.pem"}}).to_string(),
            )
            .unwrap();
        }
        dir
    };
    let fetch = |dir: tempfile::TempDir| async move {
        let config = Config::load(dir.path()).unwrap();
        let service = Service::start(config, Arc::new(FixedLog(Mutex::new("warn".into()))), None)
            .await
            .unwrap();
        let report = service.run_now("caller", None).await.unwrap();
        service.stop().await;
        let line = messages(&report)
            .into_iter()
            .find(|l| l.starts_with("ok ") || l.starts_with("err "));
        line.unwrap_or_else(|| panic!("{:?}", report.logs))
    };
    // The test CA configured: trusted.
    let ca = certs.path().join("ca.pem");
    let line = fetch(start(Some(&ca))).await;
    assert_eq!(line, format!("ok 200 6 {base}/hello.txt"));
    // Not configured, nor among the system's roots: refused for the certificate.
    let line = fetch(start(None)).await;
    assert!(
        line.starts_with("err Upstream: ") && line.contains("certificate"),
        "{line}"
    );
    // Among the system's roots (`SSL_CERT_FILE`, read by a runner process of its own).
    let dir = start(None);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgrun"))
        .args(["run", "caller", "--output", "json", "--config-dir"])
        .arg(dir.path())
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let said: Vec<&str> = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        said.contains(&format!("ok 200 6 {base}/hello.txt").as_str()),
        "{said:?}"
    );
    // A CA file that holds no certificate stops the start, naming the key and the file.
    let dir = start(Some(&certs.path().join("hello.txt")));
    let err = Service::start(
        Config::load(dir.path()).unwrap(),
        Arc::new(FixedLog(Mutex::new("warn".into()))),
        None,
    )
    .await
    .err()
    .expect("a bad CA file refused")
    .to_string();
    assert!(
        err.contains("runner.outbound_ca_file") && err.contains("ca.pem"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_own_listener_is_refused_at_every_address_of_the_machine() {
    // Both listen on every interface: one plays the runner's own listener.
    let any = || async {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new().route("/ok", get(|| async { "hello" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    };
    let (own, other) = (any().await, any().await);
    tgrun::clients::http::listening_on(own);
    let lan = tgrun::run::interfaces::addresses()
        .into_iter()
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .expect("this machine has an IPv4 address besides loopback");
    let urls = [
        format!("http://{lan}:{other}/ok"),
        format!("http://{lan}:{own}/ok"),
    ];
    let service_config = json!({"num_consumers": 1, "pipelines": {"p": {"period": 86400, "jobs": [
        {"name": "caller", "module": "hostile", "enabled": true, "timeout_s": 10,
         "params": {"mode": "http", "urls": urls},
         "allowed_outbound_hosts": [format!("http://{lan}:{other}"), format!("http://{lan}:{own}")],
         "allowed_outbound_networks": [lan.to_string()]}
    ]}}});
    let dir = config_dir(&service_config.to_string(), &["hostile"]);
    let service = Service::start(
        Config::load(dir.path()).unwrap(),
        Arc::new(FixedLog(Mutex::new("warn".into()))),
        None,
    )
    .await
    .unwrap();
    let report = service.run_now("caller", None).await.unwrap();
    service.stop().await;
    let lines: Vec<String> = messages(&report)
        .into_iter()
        .filter(|l| l.starts_with("ok ") || l.starts_with("err "))
        .collect();
    assert_eq!(lines[0], format!("ok 200 5 {}", urls[0]), "{lines:?}");
    assert!(
        lines[1].starts_with("err NotPermitted: ")
            && lines[1].contains("the runner's own listener"),
        "{lines:?}"
    );
}

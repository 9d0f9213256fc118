//! Routes answered by components: the seed's `GET /topology` end to end with MariaDB,
//! failures of handlers, and the duplicate-route rule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tgrun::config::Config;
use tgrun::server::{AppState, router_with};
use tgrun::service::{FixedLog, Service};
use tower::ServiceExt;

use crate::fixtures::{config_dir, get_from, request_to};
use crate::standin::{Kind, StandIn};

pub(crate) async fn start(
    service_config: Value,
    config_json: Value,
    modules: &[&str],
) -> (Arc<Service>, tempfile::TempDir) {
    start_in(
        config_dir(&service_config.to_string(), modules),
        config_json,
    )
    .await
}

/// [`start`] in a configuration folder made already (a test puts a database in it first).
pub(crate) async fn start_in(
    dir: tempfile::TempDir,
    config_json: Value,
) -> (Arc<Service>, tempfile::TempDir) {
    std::fs::write(dir.path().join("config.json"), config_json.to_string()).unwrap();
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("info".into()))), None)
        .await
        .unwrap();
    (service, dir)
}

async fn get(service: &Arc<Service>, path: &str) -> (StatusCode, String, Option<String>) {
    get_from(service, path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_topology_answers_as_the_seed_from_mariadb() {
    topology_end_to_end("save_topology", "topology_route").await;
}

/// The same with a tglib service's Python as its users wrote it: `save_topology` in its
/// jobs.py (SQLAlchemy over `MySQLClient().lease()`) and `GET /topology` in its routes.py
/// (aiohttp's `RouteTableDef`, `select([...])`, `web.HTTPBadRequest`, `json_response`),
/// both from the one component `tglib_service`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_topology_answers_as_the_seed_from_a_tglib_services_python() {
    // tglib's documentation leaves the table to the service's migrations.
    crate::fixtures::mariadb()
        .await
        .execute(
            "CREATE TABLE IF NOT EXISTS topology (id INT AUTO_INCREMENT PRIMARY KEY, \
             network_name VARCHAR(100) NOT NULL, topology JSON NOT NULL, \
             last_updated DATETIME(3) NOT NULL)",
            &[],
        )
        .await
        .unwrap();
    topology_end_to_end("tglib_service", "tglib_service").await;
}

/// The seed's topology fetcher (job `save_topology` of component `job_module`) and its
/// `GET /topology` route (component `route_module`), served, with MariaDB.
async fn topology_end_to_end(job_module: &str, route_module: &str) {
    let standin = StandIn::start(&[("net_a", Kind::Good), ("net_b", Kind::Good)], false).await;
    let before = chrono_like_now_minus_secs(2);
    let (service, _dir) = start(
        json!({"num_consumers": 2,
               "pipelines": {"topology": {"period_s": 600, "jobs": [
                   {"name": "save_topology", "module": job_module, "enabled": true}]}},
               "routes": {"GET /topology": {"module": route_module, "capabilities": ["sql"]}}}),
        json!({"apiservice": standin.config(false),
               "mysql": {"host": "127.0.0.1", "port": 3306, "database": "test"}}),
        &[job_module, route_module],
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while service
        .shared
        .reports
        .book
        .of_name("save_topology")
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "save_topology never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        service
            .shared
            .reports
            .book
            .of_name("save_topology")
            .unwrap()
            .last_outcome,
        Some("ok")
    );

    let (code, body, ctype) = get(&service, &format!("/topology?start_dt={before}")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        ctype
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "{ctype:?}"
    );
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["topology"]["nodes"][0]["name"].as_str())
        .collect();
    assert!(
        names.contains(&"net_a-node1") && names.contains(&"net_b-node1"),
        "{body}"
    );

    // The seed's 400s, word for word: as its text, or, from a tglib service's routes.py,
    // as tglib's error_middleware answers a raised HTTPError.
    let tglib_error = |message: &str| {
        if route_module == "tglib_service" {
            json!({"status": "error", "message": message}).to_string()
        } else {
            message.to_owned()
        }
    };
    let (code, body, _) = get(&service, "/topology").await;
    assert_eq!(
        (code, normalized_json(&body)),
        (
            StatusCode::BAD_REQUEST,
            tglib_error("'start_dt' is missing from query string")
        )
    );
    let (code, body, _) = get(&service, "/topology?start_dt=yesterday").await;
    assert_eq!(
        (code, normalized_json(&body)),
        (
            StatusCode::BAD_REQUEST,
            tglib_error("'start_dt' is invalid ISO 8601: 'yesterday'")
        )
    );
    // A start after every row: an empty list.
    let (code, body, _) = get(&service, "/topology?start_dt=2999-01-01T00:00:00").await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "[]"));

    // A Python route is slow to instantiate: its next request's instance is made ahead, and
    // that request still has its route's grants (here `sql`).
    if route_module == "tglib_service" {
        let handler = service.handlers.get(route_module).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !handler.made_ahead() {
            assert!(std::time::Instant::now() < deadline, "never made ahead");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // It waits in a slot of the large pool, which /metrics shows.
        let (_, metrics, _) = get(&service, "/metrics").await;
        let parked: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tgrun_large_instances_parked "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{metrics}"));
        assert!(parked >= 1, "{metrics}");
        let served = service.shared.execution.sandbox.ahead_stats().0;
        let (code, body, _) = get(&service, &format!("/topology?start_dt={before}")).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert!(body.contains("net_a-node1"), "{body}");
        assert_eq!(service.shared.execution.sandbox.ahead_stats().0, served + 1);
    }

    // Each request is a run in the history, under the route.
    let (_, runs, _) = get(&service, &format!("/runs?job={route_module}")).await;
    let runs: Value = serde_json::from_str(&runs).unwrap();
    assert!(runs["runs"].as_array().unwrap().len() >= 3, "{runs}");
    assert_eq!(runs["runs"][0]["pipeline"], "route GET /topology");
    service.stop().await;
}

/// `body` re-serialized if it is JSON (Python's `json.dumps` puts spaces after `:` and `,`),
/// else as it is.
fn normalized_json(body: &str) -> String {
    serde_json::from_str::<Value>(body).map_or_else(|_| body.to_owned(), |v| v.to_string())
}

/// Now minus `secs`, as ISO 8601 (UTC) without a time-zone crate.
fn chrono_like_now_minus_secs(secs: u64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - secs;
    let (days, rem) = (t / 86_400, t % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_answers_at_most_max_concurrent_requests_and_a_refused_answer_is_an_error() {
    let (service, dir) = start(
        json!({"pipelines": {},
               "routes": {"GET /slow": {"module": "hostile_route", "timeout_s": 2,
                                        "max_concurrent": 2}}}),
        json!({}),
        &["hostile_route"],
    )
    .await;
    let spinning: Vec<_> = (0..2)
        .map(|_| {
            let s = service.clone();
            tokio::spawn(async move { get(&s, "/slow?mode=spin").await })
        })
        .collect();
    // While two spin, a third request is refused at once, not queued behind them. (Polled
    // once the two have surely taken their places, so that no poll takes one of theirs.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let refused = loop {
        let (code, body, _) = get(&service, "/slow?mode=headers").await;
        if code == StatusCode::SERVICE_UNAVAILABLE {
            break body;
        }
        assert_eq!(code, StatusCode::OK, "{body}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "never refused while two requests spun"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(refused.contains("max_concurrent"), "{refused}");
    for s in spinning {
        let (code, body, _) = s.await.unwrap();
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "a timeout: {body}");
    }
    // Their places came back.
    let (code, body, _) = get(&service, "/slow?mode=headers").await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // An answer HTTP cannot carry is a 500, and in the history an error, not `ok`.
    let (code, _, _) = get(&service, "/slow?mode=status&code=101").await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    let history = service.shared.reports.history.as_ref().unwrap();
    assert!(history.flush(Duration::from_secs(10)).await);
    let errors = history
        .query(Some("hostile_route"), Some("error"), 10)
        .await
        .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("status 101"),
        "{errors:?}"
    );
    assert_eq!(errors[0].pipeline, "route GET /slow");
    drop(dir);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_missing_handler_is_a_500_and_the_service_goes_on() {
    let (service, dir) = start(
        json!({"pipelines": {},
               "routes": {"GET /gone": {"module": "not_there"},
                          "GET /nope": {"module": "echo"}}}),
        json!({}),
        &["echo"],
    )
    .await;
    let (code, body, _) = get(&service, "/gone").await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("not_there.wasm"), "{body}");
    // A job component is not a handler: refused with the reason, not run.
    let (code, body, _) = get(&service, "/nope").await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(
        body.contains("handler world") && body.contains("handle"),
        "{body}"
    );
    let (code, body, _) = get(&service, "/status").await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "Alive"));
    let (code, _, _) = get(&service, "/unknown").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    drop(dir);
    service.stop().await;
}

#[test]
fn a_route_that_repeats_a_built_in_is_refused_naming_both() {
    let dir = config_dir(r#"{"routes": {"GET /metrics": {"module": "x"}}}"#, &[]);
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("route 'GET /metrics'") && err.contains("built-in route GET /metrics"),
        "{err}"
    );
    let dir = config_dir(r#"{"routes": {"GET /jobs/add_x": {"module": "x"}}}"#, &[]);
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("built-in route GET /jobs/{name}"), "{err}");
    let dir = config_dir(r#"{"routes": {"FETCH /x": {"module": "x"}}}"#, &[]);
    assert!(
        Config::load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("method 'FETCH'")
    );
    let dir = config_dir(r#"{"routes": {"GET /x": {"modul": "x"}}}"#, &[]);
    assert!(
        Config::load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("did you mean 'module'")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_routes_may_not_repeat_a_built_in() {
    let (service, _dir) = start(json!({"pipelines": {}}), json!({}), &[]).await;
    let state = AppState::new(service.clone());
    let dup = router_with(
        state.clone(),
        vec![("GET", "/health", axum::routing::get(|| async { "mine" }))],
    );
    let Err(err) = dup else {
        panic!("a duplicate route must be refused")
    };
    assert!(
        err.contains("GET /health repeats the runner's built-in route GET /health"),
        "{err}"
    );
    let app = router_with(
        state,
        vec![("GET", "/mine", axum::routing::get(|| async { "mine" }))],
    )
    .unwrap()
    .layer(MockConnectInfo(
        "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
    ));
    let res = app
        .oneshot(Request::get("/mine").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_handlers_module_swaps_like_a_jobs() {
    let (service, _dir) = start(
        json!({"pipelines": {}, "routes": {"GET /topology": {"module": "topology_route"}}}),
        json!({}),
        &["topology_route"],
    )
    .await;
    let put = |bytes: Vec<u8>| {
        let req = Request::put("/jobs/topology_route/module")
            .header("content-type", "application/wasm")
            .body(Body::from(bytes))
            .unwrap();
        let service = service.clone();
        async move {
            let (status, body, _) = request_to(&service, req).await;
            (status, body)
        }
    };
    // A job component is not a handler: refused, and the route still answers.
    let (code, body) = put(std::fs::read(crate::fixtures::wasm("echo")).unwrap()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("handler world"), "{body}");
    let (code, body, _) = get(&service, "/topology").await;
    assert_eq!(
        (code, body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "'start_dt' is missing from query string"
        )
    );
    let (code, body) = put(std::fs::read(crate::fixtures::wasm("topology_route")).unwrap()).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    service.stop().await;
}

/// A route handler answers through the runner's HTTP server, which frames the answer
/// itself: a handler's `content-length` cannot split it in two on a kept-alive connection,
/// its `transfer-encoding` or `upgrade` cannot change it, a status HTTP cannot carry is a
/// 500, and the operator's credentials reach only a route that asks for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_handler_cannot_split_or_reframe_answers_nor_see_credentials() {
    use std::io::{Read, Write};

    let dir = config_dir(
        &json!({"pipelines": {"p": {"period": 3600, "jobs": [
                   {"name": "noop", "enabled": false}]}},
               "routes": {"GET /hostile": {"module": "hostile_route"},
                          "GET /trusted": {"module": "hostile_route", "forward_credentials": true}}})
        .to_string(),
        &["noop", "hostile_route"],
    );
    let served = crate::cli::Served::start_on(dir.path(), "127.0.0.1:0");
    let addr = served.addr();
    let full = "hello, this body is longer than five bytes";

    // Two requests on one connection: the first answer is its whole body, and what follows
    // it is the answer to the second request, not the rest of the first body.
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "GET /hostile?mode=split HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /hostile?mode=headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an answer");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{raw}");
    assert!(
        head.contains("x-kept: yes"),
        "other headers are kept: {head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("the runner frames the answer with its length")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(&rest[..length.min(rest.len())], full, "{raw}");
    assert!(
        rest[length..].starts_with("HTTP/1.1 200"),
        "the second answer follows the whole first one: {raw}"
    );

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{addr}{path}"));
    let r = get("/hostile?mode=chunked").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("upgrade").is_none() && r.headers().get("trailer").is_none());
    assert_eq!(r.text().await.unwrap(), full);

    for path in [
        "/hostile?mode=status&code=101",
        "/hostile?mode=status&code=100",
        "/hostile?mode=status&code=600",
        "/hostile?mode=no_content",
    ] {
        let r = get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
    }

    let seen = |path: &'static str| {
        let req = get(path)
            .header("authorization", "Bearer operator-secret")
            .header("cookie", "session=operator")
            .header("x-other", "1");
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let untrusted = seen("/hostile?mode=headers").await;
    assert_eq!(untrusted["x-other"], "1", "{untrusted}");
    assert!(
        untrusted.get("authorization").is_none() && untrusted.get("cookie").is_none(),
        "{untrusted}"
    );
    let trusted = seen("/trusted?mode=headers").await;
    assert_eq!(
        trusted["authorization"], "Bearer operator-secret",
        "{trusted}"
    );
    assert_eq!(trusted["cookie"], "session=operator", "{trusted}");
}

/// A route's handler sends HTTP requests as a job does (issue 40): to its own
/// `allowed_outbound_hosts`, never to the runner that serves it, even when listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_handler_reaches_its_allowed_origins_and_never_its_runner() {
    let neighbour = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let n_port = neighbour.local_addr().unwrap().port();
    let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "neighbour" }));
    tokio::spawn(async move { axum::serve(neighbour, app).await });
    // The runner's port, chosen first so that the configuration can list it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = config_dir(
        &json!({"pipelines": {"p": {"period": 3600, "jobs": [
                   {"name": "noop", "enabled": false}]}},
               "routes": {"GET /fetch": {"module": "hostile_route",
                   "allowed_outbound_hosts": [format!("http://127.0.0.1:{n_port}"),
                                              format!("http://127.0.0.1:{port}")]},
                          "GET /closed": {"module": "hostile_route"}}})
        .to_string(),
        &["noop", "hostile_route"],
    );
    let served = crate::cli::Served::start_on(dir.path(), &format!("127.0.0.1:{port}"));
    let addr = served.addr();
    let http = reqwest::Client::new();
    let fetch = |route: &'static str, url: String| {
        let (http, addr) = (http.clone(), addr.clone());
        async move {
            http.get(format!("http://{addr}/{route}"))
                .query(&[("mode", "fetch"), ("url", url.as_str())])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        fetch("fetch", format!("http://127.0.0.1:{n_port}/ok")).await,
        "200 neighbour"
    );
    let own = fetch("fetch", format!("http://127.0.0.1:{port}/jobs")).await;
    assert!(
        own.starts_with("err NotPermitted") && own.contains("the runner's own listener"),
        "{own}"
    );
    let closed = fetch("closed", format!("http://127.0.0.1:{n_port}/ok")).await;
    assert!(
        closed.starts_with("err NotPermitted") && closed.contains("allowed_outbound_hosts"),
        "{closed}"
    );
}

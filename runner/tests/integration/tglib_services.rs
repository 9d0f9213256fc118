//! Real tglib services' shapes, in services of our own written in their style: a
//! main.py whose producer fetches and fans out each tick and whose consumer calls jobs its
//! own way, what main() sets up before its producers, tglib's utilities and middleware,
//! and the imports their dependencies make at start-up.

use std::time::Duration;

use serde_json::{Value, json};

use crate::routes::start;
use crate::standin::{Kind, StandIn};

async fn get(
    service: &std::sync::Arc<tgrun::service::Service>,
    path: &str,
) -> (axum::http::StatusCode, String, Option<String>) {
    crate::fixtures::get_from(service, path).await
}

/// Waits for `job`'s first run and answers its outcome.
async fn first_outcome(service: &tgrun::service::Service, job: &str) -> Option<&'static str> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(j) = service.shared.reports.book.of_name(job) {
            return j.last_outcome;
        }
        assert!(std::time::Instant::now() < deadline, "{job} never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A service in the style of tgnms' default routes service (`routes_history`, our own):
/// its main.py's producer asks, each tick, every network's topology (one network failing,
/// dropped and logged), fans out per node in batches, merges with
/// `tglib.utils.dict.deep_update` and hands the result to the job as a param, which its
/// consumer calls with the start time in ms first; the job writes a series with a boolean
/// label and saves rows; its routes read them back with `tuple_(...).in_(select(...))` and
/// `union_all`, check the network with `APIServiceClient.network_names()`, and answer
/// errors as tglib's middleware: a raised `HTTPBadRequest` as `{"status": "error", ...}`,
/// an unexpected exception as a fixed 500 whose traceback goes to the history, not to the
/// client. Its module imports `ssl`, `urllib.request`'s `HTTPSHandler`, `asyncio.sslproto`
/// and calls `getpass.getuser()`, which the sandbox's CPython lacks without tgrun's
/// compatibility layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tgnms_style_service_fans_out_per_tick_and_answers_errors_as_tglib() {
    routes_history_end_to_end(false).await;
}

/// The same service on the embedded SQLite (no `mysql` configured): its SQLAlchemy
/// queries, `tuple_(...).in_(select(...))` (SQLite's row values) and `union_all`, in
/// SQLite's dialect; the table made beforehand, as a migration would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tgnms_style_service_runs_on_the_embedded_sqlite() {
    routes_history_end_to_end(true).await;
}

async fn routes_history_end_to_end(on_sqlite: bool) {
    let standin = StandIn::start(&[("net-a.1", Kind::Good), ("net_b", Kind::Failing)], false).await;
    let grants = json!({"module": "routes_history", "capabilities": ["sql", "api-service"]});
    let service_config = json!({"pipelines": {"routes": {"period": 600, "jobs": [
               {"name": "record_routes", "module": "routes_history", "enabled": true,
                "params": {"hops": 3}}]}},
           "routes": {"GET /routes/history": grants, "GET /routes/stats": grants,
                      "GET /routes/node/{node_name}": grants}});
    let dir = crate::fixtures::config_dir(&service_config.to_string(), &["routes_history"]);
    let mut clients = json!({"apiservice": standin.config(false)});
    let (db, create) = if on_sqlite {
        // The runner's default `sqlite_path`, in the configuration folder.
        let db = tgrun::clients::sql::sqlite(
            &dir.path().join("tgrun.sqlite3"),
            tgrun::clients::Caps::default(),
        )
        .await
        .unwrap();
        (
            db,
            "CREATE TABLE routes_history (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             network_name VARCHAR(100) NOT NULL, node_name VARCHAR(100) NOT NULL, \
             hops INTEGER NOT NULL, last_updated DATETIME NOT NULL)",
        )
    } else {
        clients["mysql"] = json!({"host": "127.0.0.1", "port": 3306, "database": "test"});
        (
            crate::fixtures::mariadb().await,
            "CREATE TABLE routes_history (id INT AUTO_INCREMENT PRIMARY KEY, \
             network_name VARCHAR(100) NOT NULL, node_name VARCHAR(100) NOT NULL, \
             hops INT NOT NULL, last_updated DATETIME(3) NOT NULL)",
        )
    };
    db.execute("DROP TABLE IF EXISTS routes_history", &[])
        .await
        .unwrap();
    db.execute(create, &[]).await.unwrap();
    drop(db);
    let (service, _dir) = crate::routes::start_in(dir, clients).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let outcome = loop {
        if let Some(job) = service.shared.reports.book.of_name("record_routes") {
            break job.last_outcome;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "record_routes never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outcome, Some("ok"));

    // The failed network was dropped; the good one was asked its nodes' routes.
    let asked: Vec<(String, String)> = standin
        .seen
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(n, e, _, _)| (n.clone(), e.clone()))
        .collect();
    assert!(
        asked.contains(&("net-a.1".into(), "getDefaultRoutes".into())),
        "{asked:?}"
    );
    assert!(
        !asked.contains(&("net_b".into(), "getDefaultRoutes".into())),
        "{asked:?}"
    );

    // Started by hand, the job runs through its pipeline's tick too (the job needs what
    // the tick fetches): the topology and routes are asked again.
    let asked_routes = |standin: &StandIn| {
        standin
            .seen
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e, _, _)| e == "getDefaultRoutes")
            .count()
    };
    let before = asked_routes(&standin);
    let report = service.run_now("record_routes", None).await.unwrap();
    assert_eq!(report.outcome.name(), "ok", "{:?}", report.outcome);
    assert!(asked_routes(&standin) > before);

    // tglib's series: the label normalized and the boolean written `true`, the user the
    // compatibility layer gives `getpass.getuser()`; its time the tick's start, which is
    // the run's due time.
    let history = service.shared.reports.history.as_ref().unwrap();
    assert!(history.flush(Duration::from_secs(10)).await);
    let runs = history
        .query(Some("record_routes"), Some("ok"), 10)
        .await
        .unwrap();
    // Newest first; MariaDB's history keeps earlier test runs' too.
    assert!(!runs.is_empty());
    let (_, metrics, _) = get(&service, "/metrics").await;
    let series = format!(
        r#"routes_nodes{{network="net_a_1",pop="true",user="tgrun"}} 1 {}"#,
        runs[0].scheduled_ms
    );
    assert!(metrics.contains(&series), "{series} in {metrics}");

    // The route's history query (tuple_ IN subquery, union_all) over what the job saved.
    let (code, body, _) = get(&service, "/routes/history?network_name=net-a.1").await;
    assert_eq!(code, axum::http::StatusCode::OK, "{body}");
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 2, "newest and oldest of one node: {body}");
    assert!(
        rows.iter()
            .all(|r| r["node_name"] == "net-a.1-node1" && r["hops"] == 3),
        "{body}"
    );

    // A route with a `{name}` part: the runner matches it, the handler reads match_info
    // (two rows of the node: the scheduled run's and the one started by hand).
    let (code, body, _) = get(&service, "/routes/node/net-a.1-node1").await;
    assert_eq!(
        (code, body.as_str()),
        (
            axum::http::StatusCode::OK,
            r#"{"node_name": "net-a.1-node1", "hops": [3, 3]}"#
        )
    );
    let (code, body, _) = get(&service, "/routes/node/nobody").await;
    assert_eq!(
        (code, body.as_str()),
        (
            axum::http::StatusCode::NOT_FOUND,
            r#"{"status": "error", "message": "No routes of node nobody"}"#
        )
    );
    // HEAD of a GET route, as aiohttp's allow_head: the handler answers, without a body.
    let (code, body, _) = crate::fixtures::request_to(
        &service,
        axum::http::Request::head("/routes/history?network_name=net-a.1")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((code, body.as_str()), (axum::http::StatusCode::OK, ""));

    // Another method on a route's path: 405, as aiohttp's router answers under tglib.
    let (code, body, _) = crate::fixtures::request_to(
        &service,
        axum::http::Request::post("/routes/history?network_name=net-a.1")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, body.as_str()),
        (
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            r#"{"status": "error", "message": "405: Method Not Allowed"}"#
        )
    );

    // tglib's middleware: a raised HTTPError is JSON, word for word.
    let (code, body, ctype) = get(&service, "/routes/history").await;
    assert_eq!(code, axum::http::StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"status": "error", "message": "Missing required 'network_name' param"}"#
    );
    assert_eq!(ctype.as_deref(), Some("application/json; charset=utf-8"));
    let (code, body, _) = get(&service, "/routes/history?network_name=nope").await;
    assert_eq!(
        (code, body.as_str()),
        (
            axum::http::StatusCode::BAD_REQUEST,
            r#"{"status": "error", "message": "Invalid network name: nope"}"#
        )
    );

    // An unexpected exception: tglib's fixed 500, nothing of the traceback in the answer;
    // the run is an error whose detail is the traceback.
    let (code, body, _) = get(&service, "/routes/stats").await;
    assert_eq!(
        (code, body.as_str()),
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"status": "error", "message": "Server got itself in trouble"}"#
        )
    );
    assert!(history.flush(Duration::from_secs(10)).await);
    let errors = history
        .query(Some("routes_history"), Some("error"), 10)
        .await
        .unwrap();
    assert!(!errors.is_empty());
    assert_eq!(errors[0].pipeline, "route GET /routes/stats");
    let detail = errors[0].error.as_deref().unwrap_or("");
    assert!(
        detail.contains("the handler answered 500: Error handling request")
            && detail.contains("Traceback")
            && detail.contains("KeyError: 'count'")
            && detail.contains("routes_history/routes.py")
            && !detail.contains("_handler.py"),
        "{detail}"
    );
    service.stop().await;
}

/// A service in the style of tgnms' health service (`health_labels`, our own): the
/// coroutine its `main()` hands `init` (`async_main`) builds process-wide settings from the
/// service's own keys of `service_config.json` before it starts its producers (the job
/// fails without them), and its consumer calls the job with
/// the tick's start time in seconds, positionally (`function(job.start_time_s, **params)`,
/// the job's first parameter `time_s`). Started by hand, with no tick, the same job gets
/// its pipeline's tick with the params it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_main_sets_up_before_its_jobs_which_get_seconds_positionally() {
    let (service, _dir) = start(
        json!({"pipelines": {"health": {"period": 900, "jobs": [
                   {"name": "generate_health_labels", "module": "health_labels",
                    "enabled": true, "params": {"period_s": 900}}]}},
               "thresholds": {"good": 0.9, "poor": 0.25},
               "label_prefix": "nhs_"}),
        json!({}),
        &["health_labels"],
    )
    .await;
    assert_eq!(
        first_outcome(&service, "generate_health_labels").await,
        Some("ok")
    );
    let history = service.shared.reports.history.as_ref().unwrap();
    assert!(history.flush(Duration::from_secs(10)).await);
    let runs = history
        .query(Some("generate_health_labels"), Some("ok"), 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    // Whole seconds of the due time, in ms, as the job writes them.
    let at = runs[0].scheduled_ms / 1000 * 1000;
    let (_, metrics, _) = get(&service, "/metrics").await;
    for (level, value) in [("good", "0.9"), ("poor", "0.25")] {
        let series =
            format!(r#"nhs_health_threshold{{level="{level}",period="900"}} {value} {at}"#);
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }

    // By hand: the tick of its pipeline, due now, its job shown with the run's params.
    let report = service
        .run_now("generate_health_labels", Some(r#"{"period_s": 60}"#.into()))
        .await
        .unwrap();
    assert_eq!(report.outcome.name(), "ok", "{:?}", report.outcome);
    let (_, metrics, _) = get(&service, "/metrics").await;
    assert!(
        metrics.contains(r#"nhs_health_threshold{level="good",period="60"} 0.9"#),
        "{metrics}"
    );
    service.stop().await;
}

/// The same service's job in the style of tgnms' network health service (issue 40): it
/// asks three neighbours over `aiohttp` at URLs from its `env` (a network test service, a
/// scan service, a query service that fails), and writes the stats it derives, the failing
/// neighbour's left out and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_job_asks_its_neighbours_over_http_and_writes_what_it_derives() {
    use axum::routing::get as route;
    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
    let network_test = serve(
        axum::Router::new()
            .route(
                "/execution",
                route(|q: axum::extract::RawQuery| async move {
                    assert_eq!(q.0.as_deref(), Some("network_name=east&status=finished"));
                    axum::Json(json!({"executions": [{"id": 3}, {"id": 5}]}))
                }),
            )
            .route(
                "/execution/5",
                route(|| async {
                    axum::Json(json!({"results": [
                        {"asset_name": "link-a", "health": 1},
                        {"asset_name": "link-b", "health": 3}]}))
                }),
            ),
    )
    .await;
    let scan = serve(axum::Router::new().route(
        "/execution",
        route(|| async {
            axum::Json(json!({"n_day_avg": {"link-a": [
                {"inr_curr_power": -3.5}, {"inr_curr_power": 2.0}]}}))
        }),
    ))
    .await;
    let query = serve(axum::Router::new().route(
        "/link_health/east/1",
        route(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
    ))
    .await;
    let (service, _dir) = start(
        json!({"pipelines": {"health": {"period": 900, "jobs": [
                   {"name": "fetch_neighbour_stats", "module": "health_labels",
                    "enabled": true, "params": {"network_name": "east"},
                    "env": {"NETWORK_TEST_URL": network_test, "SCAN_SERVICE_URL": scan,
                            "QUERY_SERVICE_URL": query},
                    "allowed_outbound_hosts": [network_test, scan, query]}]}},
               "thresholds": {"good": 0.9, "poor": 0.25},
               "label_prefix": "nhs_"}),
        json!({}),
        &["health_labels"],
    )
    .await;
    let report = service
        .run_now("fetch_neighbour_stats", None)
        .await
        .unwrap();
    assert_eq!(report.outcome.name(), "ok", "{:?}", report.outcome);
    let logs: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("/link_health/east/1 failed: Service Unavailable (503)")),
        "{logs:?}"
    );
    let (_, metrics, _) = get(&service, "/metrics").await;
    // (Label values normalised as tglib's PrometheusClient writes them: `link-a` -> `link_a`.)
    for series in [
        r#"nhs_neighbour_test_health{linkName="link_a",network="east"} 1 "#,
        r#"nhs_neighbour_test_health{linkName="link_b",network="east"} 3 "#,
        r#"nhs_neighbour_interference{linkName="link_a",network="east"} 2 "#,
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    assert!(!metrics.contains("nhs_neighbour_link_alive"), "{metrics}");
    service.stop().await;
}

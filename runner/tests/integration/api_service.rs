//! The API service client against the stand-in controllers, and the Topology Fetcher
//! (`save_topology`) end to end into the real MariaDB and the embedded SQLite.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tgrun::Outcome;
use tgrun::clients::{ApiServiceApi, Caps, ClientError, Clients, HttpApiService, SqlApi, sql};
use tgrun::host::HostClients;
use tgrun::sandbox::Sandbox;
use tgrun::sql_value::Value;

use crate::fixtures::{compile, config_dir, invocation, mariadb, settings};
use crate::standin::{Kind, StandIn, by_network};

async fn client(standin: &StandIn, keycloak: bool) -> HttpApiService {
    HttpApiService::start(&standin.config(keycloak))
        .await
        .unwrap()
}

#[tokio::test]
async fn request_all_keeps_each_networks_answer() {
    let s = StandIn::start(
        &[
            ("net_a", Kind::Good),
            ("net_b", Kind::Good),
            ("net_slow", Kind::Slow),
            ("net_fail", Kind::Failing),
        ],
        false,
    )
    .await;
    let api = client(&s, false).await;
    assert_eq!(
        api.network_names().await.unwrap(),
        vec!["net_a", "net_b", "net_fail", "net_slow"]
    );
    let answers = api
        .request_many("getTopology", &[], Some(Duration::from_millis(500)), true)
        .await
        .unwrap();
    let get = |n: &str| {
        answers
            .iter()
            .find(|(name, _)| name == n)
            .unwrap()
            .1
            .clone()
    };
    let a: Json = serde_json::from_str(&get("net_a").unwrap()).unwrap();
    assert_eq!(a["name"], "net_a");
    let b: Json = serde_json::from_str(&get("net_b").unwrap()).unwrap();
    assert_eq!(b["name"], "net_b");
    let slow = get("net_slow").unwrap_err().to_string();
    assert!(
        slow.contains("net_slow") && slow.contains("timed out"),
        "{slow}"
    );
    let fail = get("net_fail").unwrap_err().to_string();
    assert!(
        fail.contains("500") && fail.contains("controller exploded"),
        "{fail}"
    );
    // Every network got `{}` as params (tglib's request_all default).
    assert!(
        s.requests()
            .iter()
            .all(|(_, e, _, body)| e == "getTopology" && *body == json!({}))
    );
}

#[tokio::test]
async fn request_many_asks_only_the_named_networks_with_their_params() {
    let s = StandIn::start(&[("net_a", Kind::Good), ("net_b", Kind::Good)], false).await;
    let api = client(&s, false).await;
    let answers = api
        .request_many(
            "getNodes",
            &[("net_b".into(), r#"{"x": 1}"#.into())],
            None,
            false,
        )
        .await
        .unwrap();
    assert_eq!(answers.len(), 1);
    let answer: Json = serde_json::from_str(answers[0].1.as_ref().unwrap()).unwrap();
    assert_eq!(answer, json!({"endpoint": "getNodes", "params": {"x": 1}}));
    assert_eq!(
        by_network(&s.requests()).keys().collect::<Vec<_>>(),
        vec!["net_b"]
    );

    let err = api
        .request("net_zz", "getTopology", "{}", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("unknown network 'net_zz' (known: net_a, net_b)"),
        "{err}"
    );
    let err = api
        .request("net_a", "getTopology", "{not json", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
}

/// A job's fan-out is bounded: at most `max_fanout` networks, each once, and at most
/// `max_concurrent_requests` requests in flight, the answers still in the order asked.
#[tokio::test]
async fn a_fan_out_is_bounded_in_networks_and_in_requests_at_once() {
    let names: Vec<String> = (0..6).map(|i| format!("net_{i}")).collect();
    let networks: Vec<(&str, Kind)> = names.iter().map(|n| (n.as_str(), Kind::Delayed)).collect();
    let s = StandIn::start(&networks, false).await;
    let mut config = s.config(false);
    config["max_fanout"] = json!(6);
    config["max_concurrent_requests"] = json!(2);
    let api = HttpApiService::start(&config).await.unwrap();
    let ask = |names: &[String]| -> Vec<(String, String)> {
        names.iter().map(|n| (n.clone(), "{}".to_owned())).collect()
    };

    let answers = api
        .request_many("getNodes", &ask(&names), None, false)
        .await
        .unwrap();
    let order: Vec<&str> = answers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(answers.iter().all(|(_, a)| a.is_ok()), "{answers:?}");
    assert_eq!(s.seen.most_in_flight.load(Ordering::SeqCst), 2);
    let answers = api.request_many("getNodes", &[], None, true).await.unwrap();
    assert_eq!(answers.len(), 6);
    assert_eq!(
        s.seen.most_in_flight.load(Ordering::SeqCst),
        2,
        "request_all too"
    );

    // Past the fan-out, or a network twice: refused before any request is sent.
    let sent = s.requests().len();
    let mut seven = names.clone();
    seven.push("net_0x".into());
    let err = api
        .request_many("getNodes", &ask(&seven), None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::LimitExceeded(_)), "{err:?}");
    assert!(err.to_string().contains("max_fanout"), "{err}");
    let twice = ask(&[names[1].clone(), names[2].clone(), names[1].clone()]);
    let err = api
        .request_many("getNodes", &twice, None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("'net_1' is given twice"), "{err}");
    assert_eq!(
        s.requests().len(),
        sent,
        "nothing was sent for the refused calls"
    );
}

#[tokio::test]
async fn an_answer_past_the_size_cap_is_refused() {
    let s = StandIn::start(&[("net_a", Kind::Good), ("net_huge", Kind::Huge)], false).await;
    let mut config = s.config(false);
    config["max_response_mb"] = json!(1);
    let api = HttpApiService::start(&config).await.unwrap();
    let answers = api
        .request_many("getTopology", &[], None, true)
        .await
        .unwrap();
    assert!(answers[0].1.is_ok(), "{:?}", answers[0]);
    let err = answers[1].1.clone().unwrap_err();
    assert!(matches!(err, ClientError::LimitExceeded(_)), "{err:?}");
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn keycloak_tokens_are_fetched_sent_and_refreshed_before_expiry() {
    let s = StandIn::start(&[("net_a", Kind::Good)], true).await;
    let api = client(&s, true).await;
    api.request("net_a", "getTopology", "{}", None)
        .await
        .unwrap();
    api.request("net_a", "getTopology", "{}", None)
        .await
        .unwrap();
    assert_eq!(
        s.seen.tokens_issued.load(Ordering::SeqCst),
        1,
        "a live token is reused"
    );
    // Tokens live 1 s; the stand-in accepts only the latest one.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    api.request("net_a", "getTopology", "{}", None)
        .await
        .unwrap();
    assert_eq!(s.seen.tokens_issued.load(Ordering::SeqCst), 2);
    let tokens: Vec<String> = s.requests().into_iter().map(|(_, _, t, _)| t).collect();
    assert_eq!(tokens, vec!["token-1", "token-1", "token-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_start_names_itself_and_the_address() {
    let port = crate::prometheus::free_port();
    let err = HttpApiService::start(&json!({"nms": {"host": "127.0.0.1", "port": port}}))
        .await
        .err()
        .expect("no NMS there")
        .to_string();
    assert!(err.contains("api-service"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}/api/v1/networks")),
        "{err}"
    );

    let dir = config_dir(r#"{"pipelines": {}}"#, &[]);
    std::fs::write(
        dir.path().join("config.json"),
        json!({"apiservice": {"nms": {"host": "127.0.0.1", "port": port}}}).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgrun"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("api-service") && text.contains(&format!("127.0.0.1:{port}")),
        "{text}"
    );
}

/// The topology fetcher in both languages: the same tests hold for each.
const FETCHERS: [&str; 2] = ["save_topology", "save_topology_py"];
/// The fetchers as (job, component): the Rust and Python SDK ones, then tglib's
/// documentation's `save_topology` in a tglib service's jobs.py (SQLAlchemy core over
/// `MySQLClient().lease()`), which writes into the table the first ones create.
const FETCHER_COMPONENTS: [(&str, &str); 3] = [
    ("save_topology", "save_topology"),
    ("save_topology_py", "save_topology_py"),
    ("save_topology", "tglib_service"),
];

/// Runs `job` (a topology fetcher) of component `module` against `standin` with `db`;
/// returns the outcome and the rows it wrote for its run (network name, topology JSON).
async fn save_topology(
    (job, module): (&str, &str),
    standin: &StandIn,
    db: Arc<dyn SqlApi>,
) -> (Outcome, Vec<(String, Json)>) {
    let services = HostClients {
        clients: Clients {
            api_service: Some(Arc::new(client(standin, false).await)),
            sql: Some(db.clone()),
            ..Clients::default()
        },
        ..HostClients::default()
    };
    let sb = Sandbox::new(settings(), Arc::new(services)).unwrap();
    let mut inv = invocation(job, "{}").of_module(&module.into());
    // A start time of its own (random, to the millisecond), to find this run's rows among
    // those of other runs sharing the database, concurrent ones included.
    use std::hash::{BuildHasher, RandomState};
    inv.scheduled_ms =
        1_500_000_000_000 + (RandomState::new().hash_one(0u8) % 100_000_000_000) as i64;
    let report = sb.run(&compile(&sb, module), &inv, false).await;
    let rows = db
        .query(
            "SELECT network_name, topology FROM topology WHERE last_updated = ? ORDER BY network_name",
            &[Value::Datetime(inv.scheduled_ms)],
        )
        .await
        .unwrap();
    let rows = rows
        .rows
        .into_iter()
        .map(|r| {
            let text = match &r[1] {
                Value::Text(s) | Value::Json(s) => s.clone(),
                Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
                other => panic!("{other:?}"),
            };
            let Value::Text(name) = &r[0] else {
                panic!("{:?}", r[0])
            };
            (name.clone(), serde_json::from_str(&text).unwrap())
        })
        .collect();
    db.execute(
        "DELETE FROM topology WHERE last_updated = ?",
        &[Value::Datetime(inv.scheduled_ms)],
    )
    .await
    .unwrap();
    (report.outcome, rows)
}

fn assert_two_topologies(rows: &[(String, Json)]) {
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "net_a");
    assert_eq!(rows[0].1["nodes"][0]["name"], "net_a-node1");
    assert_eq!(rows[1].0, "net_b");
    assert_eq!(rows[1].1["name"], "net_b");
}

#[tokio::test]
async fn the_topology_fetcher_saves_one_row_per_network_into_mariadb() {
    let s = StandIn::start(&[("net_a", Kind::Good), ("net_b", Kind::Good)], false).await;
    for fetcher in FETCHER_COMPONENTS {
        let (outcome, rows) = save_topology(fetcher, &s, mariadb().await).await;
        assert_eq!(outcome, Outcome::Ok, "{fetcher:?}");
        assert_two_topologies(&rows);
    }
}

#[tokio::test]
async fn the_topology_fetcher_saves_one_row_per_network_into_sqlite() {
    let s = StandIn::start(&[("net_a", Kind::Good), ("net_b", Kind::Good)], false).await;
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(&dir.path().join("t.sqlite3"), Caps::default())
        .await
        .unwrap();
    for fetcher in FETCHER_COMPONENTS {
        let (outcome, rows) = save_topology(fetcher, &s, db.clone()).await;
        assert_eq!(outcome, Outcome::Ok, "{fetcher:?}");
        assert_two_topologies(&rows);
    }
}

#[tokio::test]
async fn a_failing_network_does_not_lose_the_others_topologies() {
    let s = StandIn::start(
        &[
            ("net_a", Kind::Good),
            ("net_b", Kind::Good),
            ("net_fail", Kind::Failing),
        ],
        false,
    )
    .await;
    for job in FETCHERS {
        let (outcome, rows) = save_topology((job, job), &s, mariadb().await).await;
        let Outcome::Error { message, .. } = &outcome else {
            panic!("{job}: {outcome:?}")
        };
        assert!(message.contains("no topology from: net_fail"), "{message}");
        assert_two_topologies(&rows);
    }
}

// Several threads: the stand-in must answer while this thread waits for the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_run_fetches_topologies_into_the_embedded_sqlite() {
    let s = StandIn::start(&[("net_a", Kind::Good), ("net_b", Kind::Good)], false).await;
    for job in FETCHERS {
        let dir = config_dir(
            &r#"{"pipelines": {"topology": {"period_s": 600, "jobs": [
                {"name": "JOB", "enabled": true}]}}}"#
                .replace("JOB", job),
            &[job],
        );
        std::fs::write(
            dir.path().join("config.json"),
            json!({"apiservice": s.config(false)}).to_string(),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tgrun"))
            .args(["run", job, "--config-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{job}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The embedded default database is a file in the configuration directory.
        let db = sql::sqlite(&dir.path().join("tgrun.sqlite3"), Caps::default())
            .await
            .unwrap();
        let rows = db
            .query(
                "SELECT network_name FROM topology ORDER BY network_name",
                &[],
            )
            .await
            .unwrap();
        let names: Vec<String> = rows.rows.iter().map(|r| format!("{:?}", r[0])).collect();
        assert_eq!(
            names,
            vec![r#"Value::Text("net_a")"#, r#"Value::Text("net_b")"#],
            "{job}"
        );
    }
}

/// Issue 39: an endpoint is one name under `/api/`, never a path to another of the API
/// service's routes; nothing is sent for one that is not.
#[tokio::test]
async fn an_endpoint_that_is_not_one_api_name_is_refused_and_nothing_is_sent() {
    let s = StandIn::start(&[("net_a", Kind::Good)], false).await;
    let api = client(&s, false).await;
    for bad in [
        "",
        "..",
        "../admin",
        "getTopology/../../admin",
        "getTopology?x=1",
        "getTopology#x",
        "get Topology",
        "%2e%2e",
        &"a".repeat(129),
    ] {
        let err = api.request("net_a", bad, "{}", None).await.unwrap_err();
        assert!(
            matches!(err, ClientError::InvalidArgument(_)),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("is not one API name"), "{err}");
        let err = api.request_many(bad, &[], None, true).await.unwrap_err();
        assert!(
            matches!(err, ClientError::InvalidArgument(_)),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        s.requests().len(),
        0,
        "a refused endpoint reached the API service"
    );
    // Names with dots, dashes and digits are names.
    api.request("net_a", "getTopology", "{}", None)
        .await
        .unwrap();
    // Params are checked to be JSON without keeping them: not JSON is refused.
    let err = api
        .request("net_a", "getTopology", "{\"a\": [1, 2", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("params are not JSON"), "{err}");
}

/// Issue 39: what the host holds for a run is the run's. Every network answering 3 MiB at
/// once is 12 MiB the host would hold for a run whose `memory_mb` is 8: the call answers
/// `limit-exceeded` before the host grows past it, and the same call fits a run of 64 MiB.
#[tokio::test]
async fn answers_the_host_holds_for_a_run_are_charged_to_its_memory() {
    let s = StandIn::start(
        &[
            ("net_1", Kind::Huge),
            ("net_2", Kind::Huge),
            ("net_3", Kind::Huge),
            ("net_4", Kind::Huge),
        ],
        false,
    )
    .await;
    let services = HostClients {
        clients: Clients {
            api_service: Some(Arc::new(client(&s, false).await)),
            ..Clients::default()
        },
        ..HostClients::default()
    };
    let sb = Sandbox::new(settings(), Arc::new(services)).unwrap();
    let c = compile(&sb, "hostile");
    let run = |memory_mb: u64| {
        let mut inv = invocation("hostile", &json!({"mode": "api_all"}).to_string());
        inv.limits.memory_bytes = memory_mb << 20;
        inv
    };
    let small = sb.run(&c, &run(8), false).await;
    assert_eq!(small.outcome, Outcome::Ok, "{:?}", small.logs);
    let said = crate::fixtures::messages(&small).join("\n");
    // The networks whose answers came first fit; the others are refused, each saying why.
    assert!(
        !said.contains("ok 4 of 4") && said.contains("memory budget of 8388608 bytes"),
        "{said}"
    );
    let large = sb.run(&c, &run(64), false).await;
    let said = crate::fixtures::messages(&large).join("\n");
    assert!(said.contains("ok 4 of 4 answers"), "{said}");
}

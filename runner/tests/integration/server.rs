//! The HTTP routes, called with `oneshot` on the router of a real running service.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tgrun::config::Config;
use tgrun::server::{AppState, router};
use tgrun::service::{FixedLog, Service};
use tower::ServiceExt;

use crate::fixtures::config_dir;

const SERVICE: &str = r#"{"num_consumers": 2, "pipelines": {"p": {"period": 60, "jobs": [
    {"name": "echo", "enabled": true, "params": {"value": 4}}]}}, "site": "lab"}"#;

struct Fixture {
    service: Arc<Service>,
    dir: tempfile::TempDir,
}

async fn fixture(token: Option<&str>) -> Fixture {
    fixture_of(SERVICE, token).await
}

async fn fixture_of(service: &str, token: Option<&str>) -> Fixture {
    let dir = config_dir(service, &["echo"]);
    let config = Config::load(dir.path()).unwrap();
    let log = Arc::new(FixedLog(Mutex::new("info".into())));
    let service = Service::start(config, log, token.map(str::to_owned))
        .await
        .unwrap();
    Fixture { service, dir }
}

/// Calls the router as a client at `peer`.
async fn call(f: &Fixture, peer: &str, req: Request<Body>) -> (StatusCode, String) {
    let app = router(AppState::new(f.service.clone()))
        .layer(MockConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const LOCAL: &str = "127.0.0.1:5000";
const REMOTE: &str = "10.1.2.3:5000";

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn with_body(method: &str, path: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_json_errors() {
    let f = fixture(None).await;
    assert_eq!(
        call(&f, REMOTE, get("/status")).await,
        (StatusCode::OK, "Alive".into())
    );
    let (code, body) = call(&f, REMOTE, get("/health")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"success": true, "healthy": ["sql"], "unhealthy": []})
    );
    let (code, body) = call(&f, REMOTE, get("/nope")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "error", "message": "no route /nope"})
    );
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_a_400_and_changes_nothing() {
    let f = fixture(None).await;
    let file = f.dir.path().join("service_config.json");
    let before = std::fs::read_to_string(&file).unwrap();

    let typo = json!({"config": {"pipelines": {"p": {"period": 1, "jobs": [
        {"name": "echo", "enable": true}]}}}});
    let (code, body) = call(&f, LOCAL, with_body("PUT", "/config", typo)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("job 'echo'") && msg.contains("unknown key 'enable'"),
        "{msg}"
    );

    let (code, body) = call(
        &f,
        LOCAL,
        with_body("PUT", "/config", json!({"pipelines": {}})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("needs a 'config' object"), "{body}");
    let (code, _) = call(
        &f,
        LOCAL,
        with_body("PATCH", "/config", json!({"config": [1]})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "the file is untouched"
    );
    let (_, body) = call(&f, REMOTE, get("/config")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::from_str::<Value>(SERVICE).unwrap()
    );
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_re_times_a_pipeline_live_and_is_written_to_the_file() {
    let f = fixture(None).await;
    // The 60 s pipeline ran once at start (with value 4).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.service.shared.reports.book.of_name("echo").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, metrics) = call(&f, REMOTE, get("/metrics")).await;
    assert!(metrics.contains("echo_value{job=\"echo\"} 4"), "{metrics}");
    let mut events = f.service.shared.reports.events.subscribe();

    let patch = json!({"config": {"pipelines": {"p": {"period": 0.1, "jobs": [
        {"name": "echo", "enabled": true, "params": {"value": 9}}]}}}});
    let (code, body) = call(&f, LOCAL, with_body("PATCH", "/config", patch)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["applied"]["changed"], json!(["p"]));
    assert_eq!(v["applied"]["restart_required"], json!(false));

    // Without a restart, the pipeline now runs every 0.1 s (not 60 s) with the new params.
    // Four runs within 5 s: a wide margin for a loaded machine, none for a 60 s period.
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while values.len() < 4
        && let Ok(Ok(r)) = tokio::time::timeout_at(deadline, events.recv()).await
    {
        values.push(r.metrics[0].value);
    }
    assert!(values.len() >= 4, "{values:?}");
    assert!(values.iter().all(|v| *v == 9.0), "{values:?}");
    // Nothing was lost or broken by the change: every run so far ended ok.
    let record = f.service.shared.reports.book.of_name("echo").unwrap();
    assert_eq!(
        record.outcomes.keys().copied().collect::<Vec<_>>(),
        vec!["ok"],
        "{:?}",
        record.outcomes
    );
    // The first run, the ones seen since, and perhaps one that ended just after the window.
    assert!(record.outcomes["ok"] as usize > values.len());

    // Written to the file, merged: the service's own setting is still there.
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(f.dir.path().join("service_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk["pipelines"]["p"]["period"], json!(0.1));
    assert_eq!(on_disk["site"], "lab");
    assert_eq!(on_disk["num_consumers"], 2);
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left behind");
    let (_, body) = call(&f, REMOTE, get("/config")).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), on_disk);
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_routes_need_the_token_when_one_is_set() {
    let f = fixture(Some("s3cret")).await;
    let put = || with_body("PUT", "/log/DEBUG", json!({}));
    let (code, body) = call(&f, LOCAL, put()).await;
    assert_eq!(
        code,
        StatusCode::UNAUTHORIZED,
        "loopback is not enough with a token: {body}"
    );
    assert!(body.contains("\"status\":\"error\""), "{body}");

    let mut wrong = put();
    wrong
        .headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(call(&f, REMOTE, wrong).await.0, StatusCode::UNAUTHORIZED);

    let mut right = put();
    right
        .headers_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let (code, body) = call(&f, REMOTE, right).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body, "Log level set to DEBUG from INFO");

    // Reading routes stay open to anyone.
    assert_eq!(call(&f, REMOTE, get("/metrics")).await.0, StatusCode::OK);
    assert_eq!(call(&f, REMOTE, get("/config")).await.0, StatusCode::OK);
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_only_loopback_clients_may_change_things() {
    let f = fixture(None).await;
    let (code, body) = call(&f, REMOTE, with_body("PUT", "/log/WARNING", json!({}))).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("loopback"), "{body}");
    let (code, body) = call(&f, LOCAL, with_body("PUT", "/log/WARNING", json!({}))).await;
    assert_eq!(
        (code, body.as_str()),
        (StatusCode::OK, "Log level set to WARNING from INFO")
    );
    let (code, body) = call(&f, "[::1]:5000", with_body("PUT", "/log/FATAL", json!({}))).await;
    assert_eq!(
        (code, body.as_str()),
        (StatusCode::OK, "Log level set to FATAL from WARNING")
    );
    let (code, body) = call(&f, LOCAL, with_body("PUT", "/log/LOUD", json!({}))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_only_a_same_site_json_request_naming_loopback_acts() {
    let f = fixture(None).await;
    let put_log = |headers: &[(&str, &str)]| {
        let mut req = Request::put("/log/INFO");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(Body::from("{}")).unwrap()
    };
    let json = ("content-type", "application/json");
    for (headers, expect) in [
        (vec![json, ("host", "127.0.0.1:8080")], StatusCode::OK),
        (
            vec![
                json,
                ("host", "localhost:8080"),
                ("origin", "http://localhost:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
            StatusCode::OK,
        ),
        (
            vec![("host", "127.0.0.1:8080")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            vec![("content-type", "text/plain"), ("host", "127.0.0.1:8080")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            vec![
                json,
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                json,
                ("host", "127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![json, ("host", "evil.example:8080")],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                json,
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-for", "10.9.8.7"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                json,
                ("host", "127.0.0.1:8080"),
                ("forwarded", "for=10.9.8.7"),
            ],
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (code, body) = call(&f, LOCAL, put_log(&headers)).await;
        assert_eq!(code, expect, "{headers:?}: {body}");
    }
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_that_needs_a_restart_is_not_half_applied() {
    let f = fixture(None).await;
    let timeout_of_echo = |f: &Fixture| {
        let c = f.service.config();
        let (_, echo) = c.service.jobs().find(|(_, j)| &*j.name == "echo").unwrap();
        (c.runner.default_timeout, echo.limits.timeout)
    };
    let before = timeout_of_echo(&f);
    let patch = json!({"config": {"overrides": {"runner": {"default_timeout_s": 5}}}});
    let (code, body) = call(&f, LOCAL, with_body("PATCH", "/config", patch)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["applied"]["restart_required"], json!(true), "{body}");
    // Saved for the next start, and nothing of it in force until then.
    assert_eq!(timeout_of_echo(&f), before);
    let saved = std::fs::read_to_string(f.dir.path().join("service_config.json")).unwrap();
    assert!(saved.contains("default_timeout_s"), "{saved}");
    // A later change that applies live still does, and still says a restart is pending.
    let patch = json!({"config": {"site": "lab2"}});
    let (code, body) = call(&f, LOCAL, with_body("PATCH", "/config", patch)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["applied"]["restart_required"], json!(true), "{body}");
    assert_eq!(f.service.config().service.settings["site"], "lab2");
    assert_eq!(timeout_of_echo(&f), before);
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_token_is_what_counts_behind_any_proxy() {
    let f = fixture(Some("t0ken")).await;
    let req = |auth: Option<&str>| {
        let mut r = Request::put("/log/INFO")
            .header("content-type", "application/json")
            .header("host", "127.0.0.1:8080")
            .header("origin", "https://runner.example")
            .header("x-forwarded-for", "10.9.8.7");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.body(Body::from("{}")).unwrap()
    };
    let (code, body) = call(&f, REMOTE, req(Some("Bearer t0ken"))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = call(&f, REMOTE, req(None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_all_land() {
    let f = Arc::new(fixture(None).await);
    let mut patches = tokio::task::JoinSet::new();
    for i in 0..16 {
        let f = f.clone();
        patches.spawn(async move {
            let patch = json!({"config": {format!("setting_{i}"): i}});
            call(&f, LOCAL, with_body("PATCH", "/config", patch)).await
        });
    }
    while let Some(r) = patches.join_next().await {
        let (code, body) = r.unwrap();
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(f.dir.path().join("service_config.json")).unwrap(),
    )
    .unwrap();
    let missing: Vec<_> = (0..16)
        .filter(|i| saved[format!("setting_{i}")] != json!(i))
        .collect();
    assert!(missing.is_empty(), "lost updates: {missing:?} in {saved}");
    f.service.stop().await;
}

/// Calls the router and answers the status, the `ETag` header and the body.
async fn call_tagged(f: &Fixture, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let app = router(AppState::new(f.service.clone()))
        .layer(MockConnectInfo(LOCAL.parse::<SocketAddr>().unwrap()));
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let etag = res
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, etag, serde_json::from_slice(&body).unwrap())
}

fn if_match(method: &str, body: Value, tag: &str) -> Request<Body> {
    let mut req = with_body(method, "/config", body);
    req.headers_mut().insert("if-match", tag.parse().unwrap());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_stale_version_is_a_409_and_changes_nothing() {
    let f = Arc::new(fixture(None).await);
    let (code, v1, _) = call_tagged(&f, get("/config")).await;
    assert_eq!(code, StatusCode::OK);
    let v1 = v1.expect("GET /config has an ETag");
    assert!(v1.starts_with('"') && v1.ends_with('"'), "{v1}");

    // Two operators read v1 and PATCH at once: one lands, the other is told.
    let mut writes = tokio::task::JoinSet::new();
    for n in [3, 4] {
        let (f, v1) = (f.clone(), v1.clone());
        writes.spawn(async move {
            let patch = json!({"config": {"num_consumers": n}});
            (n, call_tagged(&f, if_match("PATCH", patch, &v1)).await)
        });
    }
    let mut landed = Vec::new();
    let mut refused = Vec::new();
    while let Some(r) = writes.join_next().await {
        let (n, (code, tag, body)) = r.unwrap();
        match code {
            StatusCode::OK => landed.push((n, tag.unwrap(), body)),
            StatusCode::CONFLICT => refused.push((n, tag.unwrap(), body)),
            other => panic!("PATCH answered {other}: {body}"),
        }
    }
    assert_eq!(
        (landed.len(), refused.len()),
        (1, 1),
        "{landed:?} {refused:?}"
    );
    let (won, v2, body) = &landed[0];
    assert_ne!(v2, &v1);
    assert_eq!(format!("\"{}\"", body["version"].as_str().unwrap()), *v2);
    let (_, current, body) = &refused[0];
    assert_eq!(current, v2, "the 409 names the version in force");
    assert!(
        body["message"].as_str().unwrap().contains("changed since"),
        "{body}"
    );
    let saved = || -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(f.dir.path().join("service_config.json")).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(saved()["num_consumers"], json!(won));
    assert_eq!(f.service.config().service.num_consumers, *won as usize);

    // A PUT on the stale version changes nothing either; on the current one it lands.
    let mut config: Value = serde_json::from_str(SERVICE).unwrap();
    config["site"] = json!("elsewhere");
    let (code, _, _) = call_tagged(&f, if_match("PUT", json!({"config": config}), &v1)).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(saved()["site"], "lab");
    let both = format!("\"0000\", W/{v2}");
    let (code, v3, body) = call_tagged(&f, if_match("PUT", json!({"config": config}), &both)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(saved()["site"], "elsewhere");
    assert_eq!(call_tagged(&f, get("/config")).await.1, v3);
    // `*` is any version; no If-Match at all is tglib's unconditional write.
    let patch = json!({"config": {"site": "any"}});
    assert_eq!(
        call_tagged(&f, if_match("PATCH", patch, "*")).await.0,
        StatusCode::OK
    );
    let patch = json!({"config": {"site": "tglib"}});
    assert_eq!(
        call_tagged(&f, with_body("PATCH", "/config", patch))
            .await
            .0,
        StatusCode::OK
    );
    // An If-Match that is not a version is a 400 naming it.
    let patch = json!({"config": {"site": "bad"}});
    let (code, _, body) = call_tagged(&f, if_match("PATCH", patch, "v1")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("If-Match"),
        "{body}"
    );
    assert_eq!(saved()["site"], "tglib");
    f.service.stop().await;
}

/// An upload of `job`'s module with `bytes`.
fn upload(job: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::put(format!("/jobs/{job}/module"))
        .header("content-type", "application/wasm")
        .body(Body::from(bytes))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_operations_answer_whose_mistake_it_was() {
    let f = fixture(None).await;
    let echo = std::fs::read(crate::fixtures::wasm("echo")).unwrap();
    // The operator's: a module that does not fit (400), nothing to roll back to (409), a
    // name no configuration has (404).
    let (code, body) = call(&f, LOCAL, upload("echo", b"not wasm".to_vec())).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, body) = call(
        &f,
        LOCAL,
        with_body("POST", "/jobs/echo/rollback", json!({})),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, body) = call(
        &f,
        LOCAL,
        with_body("POST", "/jobs/nobody/rollback", json!({})),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    // The runner's: the modules folder cannot be written (it is a file now). A 500 that
    // says nothing of the runner's insides, and the version in force stays.
    let before = f.service.module_version("echo");
    let modules = f.dir.path().join("modules");
    std::fs::rename(&modules, f.dir.path().join("modules.away")).unwrap();
    std::fs::write(&modules, "not a folder").unwrap();
    let (code, body) = call(&f, LOCAL, upload("echo", echo)).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("Internal server error"), "{body}");
    assert_eq!(f.service.module_version("echo"), before);
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_config_shows_secrets_redacted_and_sending_them_back_keeps_them() {
    let f = fixture(None).await;
    let mut config: Value = serde_json::from_str(SERVICE).unwrap();
    config["overrides"] = json!({
        "mysql": {"host": "127.0.0.1", "port": 3306, "password": "hunter2"},
        "apiservice": {"nms": {"host": "127.0.0.1", "port": 1},
                       "keycloak": {"client_secret": "s3cret"}}});
    // A job's params: a password, and secrets nested under a secret key (issue 39).
    config["pipelines"]["p"]["jobs"][0]["params"] = json!({"value": 4,
        "db_password": "job-pw-1", "credentials": {"users": ["nested-pw-2"], "pin": 98765}});
    // Its environment: a secret-named variable (issue 40).
    config["pipelines"]["p"]["jobs"][0]["env"] =
        json!({"NMS_TOKEN": "env-tok-3", "QUERY_SERVICE_URL": "http://query:8086"});
    let (code, body) = call(
        &f,
        LOCAL,
        with_body("PUT", "/config", json!({"config": config})),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    for path in ["/config", "/jobs", "/jobs/echo", "/dashboard/state"] {
        let (code, shown) = call(&f, REMOTE, get(path)).await;
        assert_eq!(code, StatusCode::OK, "{path}: {shown}");
        for secret in [
            "hunter2",
            "s3cret",
            "job-pw-1",
            "nested-pw-2",
            "98765",
            "env-tok-3",
        ] {
            assert!(!shown.contains(secret), "{path} shows {secret}: {shown}");
        }
    }
    let (_, jobs) = call(&f, REMOTE, get("/jobs/echo")).await;
    let jobs: Value = serde_json::from_str(&jobs).unwrap();
    assert_eq!(
        jobs["entries"][0]["params"],
        json!({"value": 4, "db_password": "***",
               "credentials": {"users": ["***"], "pin": "***"}})
    );
    assert_eq!(
        jobs["entries"][0]["env"],
        json!({"NMS_TOKEN": "***", "QUERY_SERVICE_URL": "http://query:8086"})
    );
    let (_, shown) = call(&f, REMOTE, get("/config")).await;
    let mut shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["overrides"]["mysql"]["password"], "***");
    // The operator edits what GET gave and PUTs it back; then PATCHes something else.
    shown["num_consumers"] = json!(3);
    let (code, body) = call(
        &f,
        LOCAL,
        with_body("PUT", "/config", json!({"config": shown})),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let patch = json!({"config": {"overrides": {"mysql": {"password": "***", "port": 3307}}}});
    let (code, body) = call(&f, LOCAL, with_body("PATCH", "/config", patch)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(f.dir.path().join("service_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["num_consumers"], 3);
    assert_eq!(saved["overrides"]["mysql"]["password"], "hunter2");
    assert_eq!(saved["overrides"]["mysql"]["port"], 3307);
    assert_eq!(
        saved["overrides"]["apiservice"]["keycloak"]["client_secret"],
        "s3cret"
    );
    assert_eq!(
        saved["pipelines"]["p"]["jobs"][0]["params"],
        config["pipelines"]["p"]["jobs"][0]["params"]
    );
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_is_not_a_configured_job_runs_nothing_and_reaches_no_file() {
    let f = fixture(None).await;
    // A component outside the modules directory, and one inside it that no pipeline names.
    let outside = tempfile::tempdir().unwrap();
    std::fs::copy(
        crate::fixtures::wasm("echo"),
        outside.path().join("evil.wasm"),
    )
    .unwrap();
    std::fs::copy(
        crate::fixtures::wasm("echo"),
        f.dir.path().join("modules").join("stray.wasm"),
    )
    .unwrap();
    let evil = outside.path().join("evil");
    let encoded = evil.display().to_string().replace('/', "%2F");
    for name in [
        encoded.as_str(),
        "..%2F..%2Fevil",
        "%2E%2E",
        "stray",
        "a%00b",
        "echo%2F..%2Fecho",
    ] {
        for action in ["run", "rollback"] {
            let path = format!("/jobs/{name}/{action}");
            let (code, body) = call(&f, LOCAL, with_body("POST", &path, json!({}))).await;
            assert_eq!(code, StatusCode::NOT_FOUND, "{path}: {body}");
        }
    }
    let (code, body) = call(
        &f,
        LOCAL,
        Request::put(format!("/jobs/{encoded}/module"))
            .header("content-type", "application/wasm")
            .body(Body::from(
                std::fs::read(crate::fixtures::wasm("echo")).unwrap(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    // Nothing ran: no run of any of those names reached the book or the metrics.
    let (_, metrics) = call(&f, REMOTE, get("/metrics")).await;
    assert!(
        !metrics.contains("stray") && !metrics.contains("evil"),
        "{metrics}"
    );
    assert!(f.service.shared.reports.book.of_name("stray").is_none());
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_run_by_hand_and_counted_on_metrics() {
    let f = fixture(None).await;
    // Let the pipeline's first (scheduled) run finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.service.shared.reports.book.of_name("echo").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled run never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, body) = call(
        &f,
        LOCAL,
        with_body("POST", "/jobs/echo/run", json!({"params": {"value": 21}})),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let run: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["outcome"], "ok");
    assert_eq!(run["metrics"][0]["value"], json!(21.0));
    let ctx_line = format!(
        "ctx job=echo pipeline=manual run_id={} ",
        run["run_id"].as_str().unwrap()
    );
    let logs = run["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["message"].as_str().unwrap().starts_with(&ctx_line)),
        "{body}"
    );
    let version = run["module_version"].as_str().unwrap().to_owned();
    assert_eq!(version.len(), 16);

    let (code, body) = call(&f, REMOTE, get("/jobs")).await;
    assert_eq!(code, StatusCode::OK);
    let jobs: Value = serde_json::from_str(&body).unwrap();
    let echo = &jobs["jobs"][0];
    assert_eq!(echo["name"], "echo");
    assert_eq!(echo["pipeline"], "p");
    assert_eq!(echo["period_s"], json!(60.0));
    assert_eq!(echo["enabled"], json!(true));
    assert_eq!(echo["module"]["version"], json!(version));
    assert_eq!(echo["last_run"]["last_outcome"], "ok");

    let (code, body) = call(&f, REMOTE, get("/jobs/nope")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    let (code, _) = call(&f, LOCAL, with_body("POST", "/jobs/nope/run", json!({}))).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = call(
        &f,
        LOCAL,
        with_body("POST", "/jobs/echo/run", json!({"params": 3})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    let (_, metrics) = call(&f, REMOTE, get("/metrics")).await;
    assert!(metrics.contains("echo_value{job=\"echo\"} 21"), "{metrics}");
    let ok_runs: u64 = metrics
        .lines()
        .find(|l| l.starts_with("tgrun_runs_total{tgrun_job=\"echo\",outcome=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        ok_runs >= 2,
        "the scheduled run and the manual one: {ok_runs}"
    );
    assert!(
        metrics.contains(&format!(
            "tgrun_module_info{{module=\"echo\",version=\"{version}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("tgrun_queue_depth 0"), "{metrics}");
    // A Rust job is cheap to instantiate: its runs make their own instance.
    assert!(
        metrics.contains("tgrun_runs_made_ahead_total 0"),
        "{metrics}"
    );
    // Nor does it take a slot of the large pool (Python's).
    for idle in [
        "tgrun_large_instances_running 0",
        "tgrun_large_instances_parked 0",
        "tgrun_large_memory_kept_bytes 0",
    ] {
        assert!(metrics.contains(idle), "{idle}: {metrics}");
    }
    assert!(
        metrics.contains("tgrun_run_duration_seconds_count{tgrun_job=\"echo\"}"),
        "{metrics}"
    );
    f.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_describe_every_route_and_every_documented_route_exists() {
    let f = fixture(None).await;
    for r in tgrun::server::docs::ROUTES {
        let path = r.path.replace("{level}", "INFO").replace("{name}", "echo");
        let body = match r.method {
            "PUT" | "PATCH" if path == "/config" => {
                json!({"config": serde_json::from_str::<Value>(SERVICE).unwrap()})
            }
            _ => json!({}),
        };
        let req = if r.method == "GET" {
            get(&path)
        } else {
            with_body(r.method, &path, body)
        };
        let (code, text) = call(&f, LOCAL, req).await;
        assert!(
            !text.contains("\"no route "),
            "{} {} is documented but not routed: {code} {text}",
            r.method,
            r.path
        );
    }
    let (code, yml) = call(&f, REMOTE, get("/docs.yml")).await;
    assert_eq!(code, StatusCode::OK);
    let spec: Value = serde_yaml::from_str(&yml).unwrap();
    assert_eq!(spec["openapi"], "3.0.3");
    for r in tgrun::server::docs::ROUTES {
        assert!(
            spec["paths"][r.path][r.method.to_ascii_lowercase()].is_object(),
            "{} {} missing from /docs.yml",
            r.method,
            r.path
        );
    }
    assert!(
        spec["paths"]["/config"]["put"]["security"].is_array(),
        "mutating routes say so"
    );
    let (code, html) = call(&f, REMOTE, get("/docs")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("<code>/jobs/{name}/run</code>"), "{html}");
    f.service.stop().await;
}

/// A module listed twice is two jobs: each row of `/jobs` and of the dashboard has its own
/// last run and recent runs; the runner's metrics add the module's rows up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rows_of_one_module_each_keep_their_own_runs() {
    // The second row may not write metrics, so its run fails.
    let f = fixture_of(
        r#"{"num_consumers": 2, "pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true, "params": {"value": 4}},
            {"name": "echo", "enabled": true, "capabilities": []}]},
            "q": {"period": 60, "jobs": [{"name": "echo", "enabled": false}]}}}"#,
        None,
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f
        .service
        .shared
        .reports
        .book
        .of_name("echo")
        .is_none_or(|r| r.outcomes.values().sum::<u64>() < 2)
    {
        assert!(std::time::Instant::now() < deadline, "the runs never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = call(&f, REMOTE, get("/jobs")).await;
    let jobs: Value = serde_json::from_str(&body).unwrap();
    let rows: Vec<_> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["pipeline"].as_str().unwrap().to_owned(),
                j["index"].as_u64().unwrap(),
                j["last_run"]["last_outcome"].clone(),
                j["last_run"]["outcomes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("p".into(), 0, json!("ok"), json!({"ok": 1})),
            ("p".into(), 1, json!("error"), json!({"error": 1})),
            ("q".into(), 0, Value::Null, json!({})),
        ],
        "{body}"
    );
    let (_, body) = call(&f, REMOTE, get("/dashboard/state")).await;
    let state: Value = serde_json::from_str(&body).unwrap();
    let shown = |p: usize, i: usize| {
        let row = &state["pipelines"][p]["jobs"][i];
        let outcomes: Vec<_> = row["recent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap().to_owned())
            .collect();
        (row["last_run"]["last_outcome"].clone(), outcomes)
    };
    assert_eq!(shown(0, 0), (json!("ok"), vec!["ok".to_owned()]), "{body}");
    assert_eq!(
        shown(0, 1),
        (json!("error"), vec!["error".to_owned()]),
        "{body}"
    );
    assert_eq!(shown(1, 0), (Value::Null, vec![]), "{body}");
    // A run by hand shows in every row of its module, and is counted once on /metrics.
    let (code, body) = call(&f, LOCAL, with_body("POST", "/jobs/echo/run", json!({}))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, body) = call(&f, REMOTE, get("/dashboard/state")).await;
    let state: Value = serde_json::from_str(&body).unwrap();
    for (p, i) in [(0, 0), (0, 1), (1, 0)] {
        let row = &state["pipelines"][p]["jobs"][i];
        let recent = row["recent"].as_array().unwrap();
        assert_eq!(recent.last().unwrap()["pipeline"], "manual", "{body}");
        assert_eq!(row["last_run"]["last_outcome"], "ok", "{body}");
    }
    let (_, metrics) = call(&f, REMOTE, get("/metrics")).await;
    assert!(
        metrics.contains("tgrun_runs_total{tgrun_job=\"echo\",outcome=\"ok\"} 2")
            && metrics.contains("tgrun_runs_total{tgrun_job=\"echo\",outcome=\"error\"} 1"),
        "{metrics}"
    );
    f.service.stop().await;
}

/// `/livez` answers while the runner serves; `/readyz` only when every enabled job's module
/// loads and every configured client answers, else 503 naming each reason (`/health` stays
/// tglib's: 200 whatever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_what_is_not_ready_and_livez_answers() {
    let f = fixture(None).await;
    let (code, body) = call(&f, REMOTE, get("/readyz")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"ready": true, "not_ready": []})
    );
    let (code, body) = call(&f, REMOTE, get("/livez")).await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, r#"{"live":true}"#));
    f.service.stop().await;

    // A Prometheus that does not answer (nothing listens on port 1) and a job whose
    // module is missing.
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true},
            {"name": "gone", "enabled": true},
            {"name": "off", "enabled": false}]}}}"#,
        &["echo"],
    );
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"prometheus": {"host": "127.0.0.1", "port": 1}}"#,
    )
    .unwrap();
    let config = Config::load(dir.path()).unwrap();
    let log = Arc::new(FixedLog(Mutex::new("info".into())));
    let service = Service::start(config, log, None).await.unwrap();
    let f = Fixture { service, dir };
    let (code, body) = call(&f, REMOTE, get("/readyz")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let reasons: Vec<&str> = v["not_ready"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{body}");
    assert!(reasons[0].starts_with("job module 'gone': "), "{body}");
    assert_eq!(reasons[1], "client prometheus: does not answer", "{body}");
    assert_eq!(v["ready"], json!(false));
    // tglib's /health is 200 whatever it reports.
    let (code, body) = call(&f, REMOTE, get("/health")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    f.service.stop().await;
}

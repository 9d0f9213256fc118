//! Shared fixtures: paths of the built job components, a sandbox, config directories.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tgrun::host::HostClients;
use tgrun::run::{Invocation, RunLimits};
use tgrun::sandbox::component::JobComponent;
use tgrun::sandbox::{Sandbox, SandboxSettings};

/// The built component of a job in `jobs-wasm/`. Panics (failing the test) if it was not
/// built: run `make jobs` (or `make test`, which does).
pub fn wasm(job: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/guest")
        .join(format!("{job}.wasm"));
    assert!(
        path.exists(),
        "fixture {} is missing: run `make jobs` first",
        path.display()
    );
    path
}

pub fn sandbox_with(settings: SandboxSettings, service_settings: serde_json::Value) -> Sandbox {
    let map = service_settings.as_object().cloned().unwrap_or_default();
    Sandbox::new(settings, Arc::new(HostClients::new(&map))).expect("sandbox")
}

/// Sandbox settings for tests: the defaults, with a compiled-code cache shared by every
/// test (a Python component takes seconds to compile; the cache makes that once per build).
pub fn settings() -> SandboxSettings {
    SandboxSettings {
        cache_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tgrun-test-cache")),
        ..SandboxSettings::default()
    }
}

pub fn sandbox() -> Sandbox {
    sandbox_with(settings(), serde_json::json!({}))
}

/// Compiles `job`. Tests run at once, each in a process of its own, take turns per job: a
/// job missing from the shared compiled-code cache (a Python component is seconds of
/// compiling) is compiled by the first, and the others find it in the cache.
pub fn compile(sandbox: &Sandbox, job: &str) -> Arc<JobComponent> {
    let _turn = compile_turn(job);
    sandbox
        .compile_file(&wasm(job))
        .unwrap_or_else(|e| panic!("compiling {job}: {e}"))
}

/// An exclusive lock on `job`'s lock file (beside the cache, whose own folder wasmtime
/// keeps), held until dropped.
fn compile_turn(job: &str) -> std::fs::File {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tgrun-test-locks");
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(format!("{job}.lock"))).unwrap();
    file.lock().unwrap();
    file
}

pub fn invocation(job: &str, params: &str) -> Invocation {
    Invocation::new(
        tgrun::run::JobId::new(&"test".into(), 0, &job.into()),
        format!("{job}-run"),
        1_700_000_000_000,
        params.into(),
        RunLimits {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
        },
        tgrun::run::Capabilities::ALL,
    )
}

/// Points a configuration directory's compiled-code cache (`.tgrun-cache`, the default) at
/// the tests' shared one, for tests of something else than the cache that load a Python
/// component (seconds of compiling, once per build with the cache).
pub fn share_compiled_code(dir: &Path) {
    let shared = settings().cache_dir.expect("the tests' cache directory");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(shared, dir.join(".tgrun-cache")).unwrap();
}

/// A configuration directory with `service_config.json` and the named jobs' modules.
pub fn config_dir(service_config: &str, modules: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("service_config.json"), service_config).unwrap();
    std::fs::create_dir(dir.path().join("modules")).unwrap();
    for m in modules {
        std::fs::copy(
            wasm(m),
            dir.path().join("modules").join(format!("{m}.wasm")),
        )
        .unwrap();
    }
    dir
}

/// The messages of a report's log lines.
pub fn messages(report: &tgrun::RunReport) -> Vec<String> {
    report.logs.iter().map(|l| l.message.clone()).collect()
}

/// Sends `req` to the router of a running service, as a loopback client: status, body
/// and content type.
pub async fn request_to(
    service: &Arc<tgrun::service::Service>,
    req: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, String, Option<String>) {
    use tower::ServiceExt;
    let app = tgrun::server::router(tgrun::server::AppState::new(service.clone())).layer(
        axum::extract::connect_info::MockConnectInfo(
            "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
        ),
    );
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned(), ctype)
}

/// GETs `path` from the router of a running service, as a loopback client.
pub async fn get_from(
    service: &Arc<tgrun::service::Service>,
    path: &str,
) -> (axum::http::StatusCode, String, Option<String>) {
    request_to(
        service,
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
}

/// A scheduler on the configuration directory `dir`, its modules compiled first (as
/// `tgrun serve` does, so the first due times do not include compiling), and a
/// subscription to its reports taken before its first due time.
pub async fn start_scheduler(
    dir: &Path,
) -> (
    tgrun::scheduler::Scheduler,
    tokio::sync::broadcast::Receiver<Arc<tgrun::RunReport>>,
) {
    let config = tgrun::config::Config::load(dir).expect("config");
    let sandbox = Arc::new(
        Sandbox::new(
            SandboxSettings::default(),
            Arc::new(HostClients::new(&config.service.settings)),
        )
        .unwrap(),
    );
    let modules = Arc::new(tgrun::modules::ModuleRegistry::new(
        config.runner.modules_dir.clone(),
        sandbox.clone(),
    ));
    for (_, job) in config.service.jobs() {
        let _ = modules.get(&job.name).await;
    }
    let shared = tgrun::scheduler::Shared::new(sandbox, modules);
    let rx = shared.reports.events.subscribe();
    let scheduler = tgrun::scheduler::Scheduler::start_shared(
        &config.service,
        config.runner.queue_capacity,
        shared,
    );
    (scheduler, rx)
}

/// The reports received within `window`.
pub async fn collect(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<tgrun::RunReport>>,
    window: Duration,
) -> Vec<Arc<tgrun::RunReport>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(r)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(r);
    }
    out
}

/// How long after its due time a run started, in ms.
pub fn start_slip_ms(r: &tgrun::RunReport) -> i64 {
    let started = r
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    started - r.scheduled_ms
}

/// The machine's MariaDB (127.0.0.1:3306, database `test`) as the runner's SQL client.
pub async fn mariadb() -> Arc<dyn tgrun::clients::SqlApi> {
    let config =
        serde_json::json!({"mysql": {"host": "127.0.0.1", "port": 3306, "database": "test"}});
    tgrun::clients::sql::start(
        config.as_object().unwrap(),
        Path::new("/unused"),
        tgrun::clients::Caps::default(),
    )
    .await
    .expect("the MariaDB on 127.0.0.1:3306")
}

/// This process's resident memory, in bytes (nextest runs each test in a process of its
/// own, so it is the test's).
pub fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb << 10
}

/// Runs `sql` as root on the machine's MariaDB, as the operator does (not through the
/// jobs' pool, which refuses statements on users and grants).
pub async fn mariadb_root(sql: &str) {
    let root = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect("mysql://root@127.0.0.1:3306/test")
        .await
        .expect("the MariaDB on 127.0.0.1:3306");
    sqlx::raw_sql(sql)
        .execute(&root)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    root.close().await;
}

/// A sandbox whose only client is `db` (the SQL tests').
pub fn sandbox_with_sql(db: Arc<dyn tgrun::clients::SqlApi>) -> Sandbox {
    let services = HostClients {
        clients: tgrun::clients::Clients {
            sql: Some(db),
            ..Default::default()
        },
        ..Default::default()
    };
    Sandbox::new(SandboxSettings::default(), Arc::new(services)).unwrap()
}

/// Writes a test CA and a server certificate for 127.0.0.1 signed by it into `dir`
/// (`ca.pem`, `server.pem`, `server.key`), with the machine's `openssl`.
pub fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &["-keyout", "ca.key", "-out", "ca.pem"],
    ]
    .concat()
    .into_iter()
    .chain(["-days", "2", "-subj", "/CN=tgrun test CA"])
    .collect::<Vec<_>>());
    run(&[
        &["req"],
        &ec[..],
        &["-keyout", "server.key", "-out", "server.csr"],
    ]
    .concat()
    .into_iter()
    .chain(["-subj", "/CN=127.0.0.1"])
    .collect::<Vec<_>>());
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

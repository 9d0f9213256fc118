//! Several runners as one service on the machine's NATS JetStream (127.0.0.1:4222): three
//! `tgrun serve` processes with the same configuration, their history in one MariaDB
//! database. Each test has a stream and a database of its own, deleted at the end.

use std::time::{Duration, Instant};

use tgrun::cluster::{Cluster, ClusterSettings, Published};
use tgrun::sql_value::Value;

use crate::cli::Served;
use crate::fixtures::{config_dir, mariadb};

const NATS: &str = "nats://127.0.0.1:4222";
/// The MariaDB user the tests' histories are written by (the jobs' is root).
const HISTORY_USER: &str = "tgrun_history_test";

/// A cluster name and database name of this test's own; both removed on drop.
struct Scope {
    settings: ClusterSettings,
    database: String,
}

impl Scope {
    async fn new(tag: &str) -> Self {
        use std::hash::{BuildHasher, RandomState};
        let unique = format!(
            "{tag}_{:08x}",
            RandomState::new().hash_one(std::process::id()) as u32
        );
        let database = format!("tgrun_{unique}");
        // The history in a database of its own, written by a user of its own (the runner
        // refuses one the jobs' credentials reach).
        for sql in [
            format!("CREATE DATABASE {database}"),
            format!("CREATE DATABASE {database}_h"),
            format!("CREATE USER IF NOT EXISTS '{HISTORY_USER}'@'localhost' IDENTIFIED BY 'pw-h'"),
            format!("CREATE USER IF NOT EXISTS '{HISTORY_USER}'@'%' IDENTIFIED BY 'pw-h'"),
            format!("GRANT ALL ON {database}_h.* TO '{HISTORY_USER}'@'localhost'"),
            format!("GRANT ALL ON {database}_h.* TO '{HISTORY_USER}'@'%'"),
        ] {
            crate::fixtures::mariadb_root(&sql).await;
        }
        Self {
            settings: ClusterSettings {
                name: unique,
                servers: vec![NATS.into()],
                ack_wait: Duration::from_secs(30),
                auth: Default::default(),
                tls: None,
            },
            database,
        }
    }

    /// `config.json` for every replica: the shared database and the cluster.
    fn config_json(&self, ack_wait_s: u32) -> String {
        self.config_json_with(ack_wait_s, "")
    }

    /// The same with more `runner` settings (`"key": value, ` each).
    fn config_json_with(&self, ack_wait_s: u32, runner: &str) -> String {
        format!(
            r#"{{"mysql": {{"host": "127.0.0.1", "port": 3306, "database": "{db}"}},
                "runner": {{{runner}"history": {{"user": "{HISTORY_USER}", "password": "pw-h", "database": "{db}_h"}},
                            "cluster": {{"name": "{}", "nats": ["{NATS}"], "ack_wait_s": {ack_wait_s}}}}}}}"#,
            self.settings.name,
            db = self.database,
        )
    }

    async fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        let sql = sql.replace("tgrun_runs", &format!("{}_h.tgrun_runs", self.database));
        mariadb().await.query(&sql, &[]).await.unwrap().rows
    }

    async fn cleanup(self) {
        self.cleanup_on_servers(vec![NATS.into()]).await;
    }

    /// As [`Scope::cleanup`], for a test with a NATS server of its own on `port`.
    async fn cleanup_on(self, port: u16) {
        self.cleanup_on_servers(vec![format!("nats://127.0.0.1:{port}")])
            .await;
    }

    async fn cleanup_on_servers(mut self, servers: Vec<String>) {
        self.settings.servers = servers;
        let _ = Cluster::delete(&self.settings).await;
        for db in [self.database.clone(), format!("{}_h", self.database)] {
            let _ = mariadb()
                .await
                .execute(&format!("DROP DATABASE IF EXISTS {db}"), &[])
                .await;
        }
    }
}

/// `n` replicas serving the one configuration directory `dir`.
fn start_replicas(dir: &std::path::Path, n: usize) -> Vec<Served> {
    (0..n)
        .map(|_| Served::start_on(dir, "127.0.0.1:0"))
        .collect()
}

/// `n` replicas serving `dir` for `time` once they all listen; then stopped.
async fn serve_for(dir: &std::path::Path, n: usize, time: Duration) {
    let mut replicas = start_replicas(dir, n);
    for r in &replicas {
        r.addr();
    }
    tokio::time::sleep(time).await;
    stop_all(&mut replicas);
}

/// SIGTERM to every replica still running; each must stop cleanly.
fn stop_all(replicas: &mut [Served]) {
    for r in replicas.iter() {
        r.terminate();
    }
    for r in replicas.iter_mut() {
        assert!(r.exit_within(Duration::from_secs(30)).success());
    }
}

/// A period (90-100 s, to the ms) whose last due time on the shared grid passed 1-5 s
/// ago: it runs at start (under a minute old) and the next is over a minute away, so a
/// test sees exactly one due time.
fn one_due_time_period_ms() -> u64 {
    period_passed_ms(90_000..100_000, 1_000..5_000)
}

/// A period in `periods` (ms) whose last due time on the shared grid passed `passed` ms ago.
fn period_passed_ms(periods: std::ops::Range<u64>, passed: std::ops::Range<u64>) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    periods
        .clone()
        .find(|p| passed.contains(&(now_ms % p)))
        .unwrap_or_else(|| panic!("no period in {periods:?} passed {passed:?} ms ago"))
}

/// Which replica logs `needle` first (the one that took a run says so in its log).
fn first_to_log(replicas: &[Served], needle: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no replica logged {needle:?}");
        if let Some(i) = (0..replicas.len()).find(|&i| {
            replicas[i]
                .saw(needle, Duration::from_millis(100))
                .is_some()
        }) {
            return i;
        }
    }
}

/// `(attempt, outcome)` rows as values.
fn attempts(rows: &[Vec<Value>]) -> Vec<(i64, String)> {
    rows.iter()
        .map(|r| match &r[1] {
            Value::Text(o) => (int(&r[0]), o.clone()),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Text(t) => t.parse().unwrap(),
        other => panic!("not a number: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_run_every_due_time_exactly_once() {
    let scope = Scope::new("once").await;
    // The same module twice in the pipeline: two runs a due time, told apart by place.
    // Overlap `allow`: this is about delivery (overlap across replicas has its own test; a
    // replica still loading at start may legitimately have its first run skipped).
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"p": {"period": 0.5, "jobs": [
            {"name": "noop", "enabled": true, "overlap": "allow"},
            {"name": "noop", "enabled": true, "overlap": "allow"}]}}}"#,
        &["noop"],
    );
    std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
    serve_for(dir.path(), 3, Duration::from_secs(60)).await;

    let rows = scope
        .query(
            "SELECT scheduled_ms, COUNT(*), CAST(SUM(outcome = 'ok') AS SIGNED), \
             GROUP_CONCAT(CONCAT(outcome, ' ', IFNULL(error, '')) SEPARATOR '; ') FROM tgrun_runs \
             WHERE pipeline = 'p' GROUP BY scheduled_ms ORDER BY scheduled_ms",
        )
        .await;
    let replicas_seen = scope
        .query("SELECT COUNT(DISTINCT SUBSTRING_INDEX(run_id, '-', 1)) FROM tgrun_runs")
        .await;
    scope.cleanup().await;

    let slots: Vec<(i64, i64, i64, String)> = rows
        .iter()
        .map(|r| {
            let how = match &r[3] {
                Value::Text(t) => t.clone(),
                Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            };
            (int(&r[0]), int(&r[1]), int(&r[2]), how)
        })
        .collect();
    // The last due times may have been published while the replicas stopped: not run.
    let interior = &slots[..slots.len().saturating_sub(4)];
    assert!(
        interior.len() >= 100,
        "only {} due times in a minute at 0.5 s",
        interior.len()
    );
    for w in interior.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 500, "a due time was lost: {w:?}");
    }
    for (at, runs, ok, how) in interior {
        assert_eq!(
            (*runs, *ok),
            (2, 2),
            "due time {at} (of {} to {}): {runs} runs, {ok} ok (two jobs, each exactly once): {how}",
            interior[0].0,
            interior[interior.len() - 1].0
        );
        assert_eq!(at % 500, 0, "due time {at} is off the shared grid");
    }
    assert!(
        int(&replicas_seen[0][0]) >= 2,
        "every run ran on one replica: the others took none"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_replica_is_killed_is_delivered_again_and_completes_elsewhere() {
    let scope = Scope::new("kill").await;
    // An 8-second job due once while the test runs.
    let period_ms = one_due_time_period_ms();
    let dir = config_dir(
        &format!(
            r#"{{"num_consumers": 2, "pipelines": {{"p": {{"period": {}, "jobs": [
            {{"name": "sleeper", "enabled": true, "timeout_s": 30, "params": {{"ms": 8000}}}}]}}}}}}"#,
            period_ms as f64 / 1000.0
        ),
        &["sleeper"],
    );
    std::fs::write(dir.path().join("config.json"), scope.config_json(3)).unwrap();
    let mut replicas = start_replicas(dir.path(), 3);
    let taker = first_to_log(&replicas, "sleeping 8000 ms");
    let deadline = Instant::now() + Duration::from_secs(30);
    replicas[taker].kill_hard();
    // Delivered again after ack_wait (3 s) to a live replica, which runs it to the end.
    let finisher = loop {
        assert!(
            Instant::now() < deadline,
            "the killed replica's run was never run again"
        );
        if let Some(i) = (0..3).filter(|&i| i != taker).find(|&i| {
            replicas[i]
                .saw("slept", Duration::from_millis(100))
                .is_some()
        }) {
            break i;
        }
    };
    drop(replicas.remove(taker));
    stop_all(&mut replicas);
    let rows = scope
        .query("SELECT outcome, attempt, scheduled_ms FROM tgrun_runs WHERE job = 'sleeper'")
        .await;
    scope.cleanup().await;
    assert_eq!(
        rows.len(),
        1,
        "one run in the history (the killed one recorded nothing): {rows:?}"
    );
    assert!(
        matches!(&rows[0][0], Value::Text(o) if o == "ok"),
        "{rows:?}"
    );
    assert_eq!(int(&rows[0][1]), 2, "the second delivery: {rows:?}");
    assert_eq!(
        int(&rows[0][2]) as u64 % period_ms,
        0,
        "on the shared grid: {rows:?}"
    );
    assert_ne!(finisher, taker);
}

/// The version of `job`'s module a replica runs, from its `GET /jobs`.
async fn running_version(addr: &str, job: &str) -> Option<String> {
    let jobs: serde_json::Value = reqwest::get(format!("http://{addr}/jobs"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    jobs["jobs"].as_array()?.iter().find(|j| j["name"] == job)?["module"]["version"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_uploaded_to_one_replica_runs_on_all_three_within_seconds() {
    let scope = Scope::new("mods").await;
    // Six runs every half second; each replica has a directory of its own, so that only
    // the cluster (not a shared modules folder) can bring the upload to the others.
    let jobs = [r#"{"name": "swapper", "enabled": true}"#; 6].join(",");
    let service = format!(
        r#"{{"num_consumers": 2, "pipelines": {{"p": {{"period": 0.5, "jobs": [{jobs}]}}}}}}"#
    );
    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| {
            let dir = config_dir(&service, &[]);
            std::fs::copy(
                crate::fixtures::wasm("swap_a"),
                dir.path().join("modules/swapper.wasm"),
            )
            .unwrap();
            std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
            dir
        })
        .collect();
    let mut replicas: Vec<Served> = dirs[..3]
        .iter()
        .map(|d| Served::start_on(d.path(), "127.0.0.1:0"))
        .collect();
    let mut addrs: Vec<String> = replicas.iter().map(Served::addr).collect();
    let b = std::fs::read(crate::fixtures::wasm("swap_b")).unwrap();
    let b_version = tgrun::sandbox::component::content_version(&b);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(
        running_version(&addrs[1], "swapper").await.as_deref(),
        Some(b_version.as_str())
    );

    let uploaded = Instant::now();
    let answer = reqwest::Client::new()
        .put(format!("http://{}/jobs/swapper/module", addrs[0]))
        .header("content-type", "application/wasm")
        .body(b)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
    let mut took = Vec::new();
    for addr in &addrs {
        loop {
            if running_version(addr, "swapper").await.as_deref() == Some(b_version.as_str()) {
                took.push(uploaded.elapsed());
                break;
            }
            assert!(
                uploaded.elapsed() < Duration::from_secs(10),
                "{addr} still runs the old version 10 s after the upload"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A replica started later, with the old file in its folder, takes the cluster's version.
    replicas.push(Served::start_on(dirs[3].path(), "127.0.0.1:0"));
    addrs.push(replicas[3].addr());
    let late = Instant::now();
    while running_version(&addrs[3], "swapper").await.as_deref() != Some(b_version.as_str()) {
        assert!(
            late.elapsed() < Duration::from_secs(10),
            "a replica started after the upload still runs the old version"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Runs on the new version on every replica, from the shared history.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_all(&mut replicas);
    let on_b = scope
        .query(&format!(
            "SELECT COUNT(DISTINCT SUBSTRING_INDEX(run_id, '-', 1)) FROM tgrun_runs \
             WHERE module_version = '{b_version}' AND outcome = 'ok'"
        ))
        .await;
    scope.cleanup().await;
    assert!(
        int(&on_b[0][0]) >= 3,
        "{} replicas ran the uploaded version (each switched after {took:?})",
        int(&on_b[0][0])
    );
    eprintln!("the upload reached the replicas after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_change_on_one_replica_reaches_all_three() {
    let scope = Scope::new("conf").await;
    let service = r#"{"num_consumers": 1, "pipelines": {"p": {"period": 0.5, "jobs": [
        {"name": "noop", "enabled": true}]}}}"#;
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| {
            let dir = config_dir(service, &["noop"]);
            std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
            dir
        })
        .collect();
    let mut replicas: Vec<Served> = dirs
        .iter()
        .map(|d| Served::start_on(d.path(), "127.0.0.1:0"))
        .collect();
    let addrs: Vec<String> = replicas.iter().map(Served::addr).collect();
    let http = reqwest::Client::new();
    let answer = http
        .patch(format!("http://{}/config", addrs[0]))
        .header("content-type", "application/json")
        .body(r#"{"config": {"site_name": "east", "pipelines": {"p": {"period": 2}}}}"#)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
    let changed = Instant::now();
    for (addr, dir) in addrs.iter().zip(&dirs) {
        loop {
            let config: serde_json::Value = http
                .get(format!("http://{addr}/config"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if config["site_name"] == "east" {
                assert_eq!(config["pipelines"]["p"]["period"], 2, "{config}");
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(10),
                "{addr} did not take the change within 10 s: {config}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Kept in its file too: a restart keeps it.
        let file = std::fs::read_to_string(dir.path().join("service_config.json")).unwrap();
        assert!(file.contains("east"), "{file}");
    }
    eprintln!(
        "the change reached every replica after {:?}",
        changed.elapsed()
    );
    stop_all(&mut replicas);
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_retried_through_the_cluster_as_many_times_as_configured() {
    let scope = Scope::new("retry").await;
    let dir = config_dir(
        &format!(
            r#"{{"num_consumers": 2, "pipelines": {{"p": {{"period": {}, "jobs": [
            {{"name": "fails", "enabled": true, "retries": 2, "retry_backoff_s": 0.5}}]}}}}}}"#,
            one_due_time_period_ms() as f64 / 1000.0
        ),
        &["fails"],
    );
    std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
    // The first attempt, then retries after 0.5 s and 1 s; then none.
    serve_for(dir.path(), 2, Duration::from_secs(7)).await;
    let rows = scope
        .query("SELECT attempt, outcome FROM tgrun_runs WHERE job = 'fails' ORDER BY attempt")
        .await;
    scope.cleanup().await;
    let attempts = attempts(&rows);
    assert_eq!(
        attempts,
        vec![
            (1, "error".into()),
            (2, "error".into()),
            (3, "error".into())
        ],
        "one due time: the first attempt and two retries, each once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_by_a_shutdown_is_handed_to_another_replica() {
    let scope = Scope::new("stop").await;
    let dir = config_dir(
        &format!(
            r#"{{"num_consumers": 2, "pipelines": {{"p": {{"period": {}, "jobs": [
            {{"name": "sleeper", "enabled": true, "timeout_s": 30, "params": {{"ms": 6000}}}}]}}}}}}"#,
            one_due_time_period_ms() as f64 / 1000.0
        ),
        &["sleeper"],
    );
    // A grace period of 1 s and an ack_wait of 30 s: only the hand-back can make the other
    // replica run it within the test.
    std::fs::write(
        dir.path().join("config.json"),
        scope.config_json_with(30, r#""shutdown_grace_s": 1, "#),
    )
    .unwrap();
    let mut replicas = start_replicas(dir.path(), 2);
    let taker = first_to_log(&replicas, "sleeping 6000 ms");
    let stopped = Instant::now();
    replicas[taker].terminate();
    assert!(
        replicas[taker]
            .exit_within(Duration::from_secs(10))
            .success()
    );
    let stop_took = stopped.elapsed();
    let other = 1 - taker;
    assert!(
        replicas[other]
            .saw("slept", Duration::from_secs(20))
            .is_some(),
        "the run cut short was not run by the other replica"
    );
    drop(replicas.remove(taker));
    stop_all(&mut replicas);
    let rows = scope
        .query("SELECT attempt, outcome FROM tgrun_runs WHERE job = 'sleeper' ORDER BY attempt")
        .await;
    scope.cleanup().await;
    let attempts = attempts(&rows);
    assert_eq!(
        attempts,
        vec![(1, "cancelled".into()), (2, "ok".into())],
        "cancelled at the shutdown (which took {stop_took:?}), then run elsewhere"
    );
    assert!(
        stop_took < Duration::from_secs(5),
        "the stop took {stop_took:?}"
    );
}

/// A NATS server of this test's own (Debian's `nats-server`, which runs the machine's NATS
/// too), with JetStream storing into `store`, so the test can stop and restart it.
struct OwnNats {
    child: std::process::Child,
}

impl OwnNats {
    fn start(port: u16, store: &std::path::Path) -> Self {
        let store = store.to_str().unwrap();
        Self::start_args(
            port,
            &[
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-js",
                "-sd",
                store,
            ],
        )
    }

    /// `nats-server ARGS`, once `port` answers.
    fn start_args(port: u16, args: &[&str]) -> Self {
        let child = std::process::Command::new("nats-server")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (Debian's package, installed on this machine)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lists(names: &serde_json::Value, name: &str) -> bool {
    names
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n == name))
}

async fn health(addr: &str) -> serde_json::Value {
    reqwest::get(format!("http://{addr}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_nats_stops_runs_with_a_clear_error_and_they_resume_when_it_returns() {
    let scope = Scope::new("lose").await;
    let port = crate::prometheus::free_port();
    let store = tempfile::tempdir().unwrap();
    let nats = OwnNats::start(port, store.path());
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period": 0.5, "jobs": [
            {"name": "noop", "enabled": true}]}}}"#,
        &["noop"],
    );
    let config = scope
        .config_json(30)
        .replace(NATS, &format!("nats://127.0.0.1:{port}"));
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let mut replicas = vec![Served::start_on(dir.path(), "127.0.0.1:0")];
    let addr = replicas[0].addr();
    let runs = || scope.query("SELECT COUNT(*) FROM tgrun_runs WHERE outcome = 'ok'");
    let wait_for_runs = |more_than: i64| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = int(&runs().await[0][0]);
            if n > more_than {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "no runs past {more_than} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let before = wait_for_runs(2).await;
    assert!(lists(&health(&addr).await["healthy"], "nats"));

    drop(nats);
    // One clear error (consumers or producers, whichever notices first).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = replicas[0]
            .saw("cluster: ", Duration::from_secs(1))
            .unwrap_or_default();
        if line.contains("ERROR")
            && (line.contains("published when NATS answers")
                || line.contains("no runs can be taken"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no error about NATS in the log");
    }
    assert_eq!(
        health(&addr).await["unhealthy"],
        serde_json::json!(["nats"])
    );
    // Nothing runs while NATS is away (the history writer may still be flushing).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = int(&runs().await[0][0]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        int(&runs().await[0][0]),
        during,
        "runs went on without NATS"
    );

    let _nats = OwnNats::start(port, store.path());
    let after = wait_for_runs(during + 2).await;
    assert!(lists(&health(&addr).await["healthy"], "nats"));
    // The due times of the outage were kept and published when NATS came back: none lost.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_all(&mut replicas);
    let due: Vec<i64> = scope
        .query("SELECT DISTINCT scheduled_ms FROM tgrun_runs WHERE outcome = 'ok' ORDER BY scheduled_ms")
        .await
        .iter()
        .map(|r| int(&r[0]))
        .collect();
    scope.cleanup_on(port).await;
    assert!(after > before);
    let gaps: Vec<_> = due.windows(2).filter(|w| w[1] - w[0] != 500).collect();
    assert!(
        gaps.is_empty(),
        "due times lost across the outage: {gaps:?} (of {} due times)",
        due.len()
    );
}

/// `(run_id, started_ms, ended_ms, scheduled_ms, outcome, error, attempt)` of `job`'s runs
/// by start.
async fn runs_of(scope: &Scope, job: &str) -> Vec<(String, i64, i64, i64, String, String, i64)> {
    let text = |v: &Value| match v {
        Value::Text(t) => t.clone(),
        Value::Null => String::new(),
        other => panic!("{other:?}"),
    };
    scope
        .query(&format!(
            "SELECT run_id, started_ms, CAST(started_ms + duration_ms AS SIGNED), scheduled_ms, \
             outcome, error, attempt FROM tgrun_runs WHERE job = '{job}' ORDER BY started_ms"
        ))
        .await
        .iter()
        .map(|r| {
            (
                text(&r[0]),
                int(&r[1]),
                int(&r[2]),
                int(&r[3]),
                text(&r[4]),
                text(&r[5]),
                int(&r[6]),
            )
        })
        .collect()
}

/// The replica a run id comes from (its prefix).
fn replica_of(run_id: &str) -> &str {
    run_id.split('-').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies_hold_across_replicas() {
    let scope = Scope::new("overlap").await;
    // Three 1.2 s jobs due every 0.5 s, one per policy, on two replicas with consumers to
    // spare: only the cluster-wide record keeps a job's runs from overlapping.
    let job = |name: &str, overlap: &str| {
        format!(
            r#"{{"name": "{name}", "enabled": true, "timeout_s": 30, "overlap": "{overlap}", "params": {{"ms": 1200}}}}"#
        )
    };
    let service = format!(
        r#"{{"num_consumers": 4, "pipelines": {{"p": {{"period": 0.5, "jobs": [{}, {}, {}]}}}}}}"#,
        job("skipper", "skip"),
        job("queuer", "queue"),
        job("replacer", "replace")
    );
    let dir = config_dir(&service, &[]);
    for name in ["skipper", "queuer", "replacer"] {
        std::fs::copy(
            crate::fixtures::wasm("sleeper"),
            dir.path().join(format!("modules/{name}.wasm")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
    serve_for(dir.path(), 2, Duration::from_secs(8)).await;
    let skipper = runs_of(&scope, "skipper").await;
    let queuer = runs_of(&scope, "queuer").await;
    let replacer = runs_of(&scope, "replacer").await;
    scope.cleanup().await;

    let ok = |runs: &[(String, i64, i64, i64, String, String, i64)]| {
        runs.iter()
            .filter(|r| r.4 == "ok")
            .cloned()
            .collect::<Vec<_>>()
    };
    let never_overlap = |name: &str, runs: &[(String, i64, i64, i64, String, String, i64)]| {
        for w in runs.windows(2) {
            assert!(
                w[1].1 >= w[0].2,
                "{name}: two runs at once, on replicas {} and {}: {w:?}",
                replica_of(&w[0].0),
                replica_of(&w[1].0)
            );
        }
    };

    // skip: one at a time however many replicas; the others recorded as skipped.
    let skip_ok = ok(&skipper);
    assert!(skip_ok.len() >= 3, "{skipper:?}");
    never_overlap("skip", &skip_ok);
    let skipped: Vec<_> = skipper.iter().filter(|r| r.4 == "skipped").collect();
    assert!(skipped.len() >= 5, "{skipper:?}");
    assert!(
        skipped[0].5.contains("still running on a replica"),
        "{skipped:?}"
    );

    // queue: one at a time, in due order, none lost, each a first attempt (the waits in
    // the stream are not attempts).
    let queue_ok = ok(&queuer);
    assert!(queue_ok.len() >= 3, "{queuer:?}");
    never_overlap("queue", &queue_ok);
    for w in queue_ok.windows(2) {
        assert_eq!(w[1].3 - w[0].3, 500, "queue: not the next due time: {w:?}");
    }
    assert!(queue_ok.iter().all(|r| r.6 == 1), "{queue_ok:?}");
    assert!(!queuer.iter().any(|r| r.4 == "skipped"), "{queuer:?}");

    // replace: each run cancelled by the next due time's, promptly, across replicas too.
    let cancelled: Vec<_> = replacer.iter().filter(|r| r.4 == "cancelled").collect();
    assert!(cancelled.len() >= 5, "{replacer:?}");
    let mut across = 0;
    for c in &cancelled {
        assert!(c.5.contains("replaced by the run"), "{c:?}");
        // Cancelled at the next due time (0.5 s), not at the 1.2 s sleep's end.
        assert!(c.2 - c.1 < 1000, "cancelled late: {c:?}");
        let by = c.5.split("replaced by the run ").nth(1).unwrap();
        if replica_of(by) != replica_of(&c.0) {
            across += 1;
        }
    }
    assert!(
        across >= 1,
        "no run was replaced by another replica's: {cancelled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_cluster_runs_the_due_time_just_passed_only_while_it_is_fresh() {
    let scope = Scope::new("fresh").await;
    // One pipeline whose due time passed 1-5 s ago, one whose passed 65-85 s ago (older
    // than half the de-duplication window: another replica might have run it), neither
    // due again while the test runs.
    let fresh = one_due_time_period_ms();
    let stale = period_passed_ms(150_000..250_000, 65_000..85_000);
    let dir = config_dir(
        &format!(
            r#"{{"num_consumers": 2, "pipelines": {{
                "fresh": {{"period": {}, "jobs": [{{"name": "noop", "enabled": true}}]}},
                "stale": {{"period": {}, "jobs": [{{"name": "noop", "enabled": true}}]}}}}}}"#,
            fresh as f64 / 1000.0,
            stale as f64 / 1000.0
        ),
        &["noop"],
    );
    std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
    serve_for(dir.path(), 2, Duration::from_secs(4)).await;
    let rows = scope
        .query("SELECT pipeline, scheduled_ms, outcome FROM tgrun_runs ORDER BY pipeline")
        .await;
    scope.cleanup().await;
    assert_eq!(
        rows.len(),
        1,
        "only the fresh due time runs, once: {rows:?}"
    );
    assert!(
        matches!(&rows[0][0], Value::Text(p) if p == "fresh"),
        "{rows:?}"
    );
    assert_eq!(int(&rows[0][1]) as u64 % fresh, 0, "{rows:?}");
}

/// Waits until the replica at `addr` runs `version` of `job`.
async fn wait_for_version(addr: &str, job: &str, version: &str, what: &str) -> Duration {
    let since = Instant::now();
    while running_version(addr, job).await.as_deref() != Some(version) {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{addr} does not run {what} ({version}) 10 s later"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_file_or_a_rollback_on_one_replica_reaches_the_other() {
    let scope = Scope::new("drop").await;
    let service = r#"{"num_consumers": 1, "pipelines": {"p": {"period": 0.5, "jobs": [
        {"name": "swapper", "enabled": true}]}}}"#;
    // Folders of their own: only the cluster can carry a change from one to the other.
    let dirs: Vec<tempfile::TempDir> = (0..2)
        .map(|_| {
            let dir = config_dir(service, &[]);
            std::fs::copy(
                crate::fixtures::wasm("swap_a"),
                dir.path().join("modules/swapper.wasm"),
            )
            .unwrap();
            std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
            dir
        })
        .collect();
    let mut replicas: Vec<Served> = dirs
        .iter()
        .map(|d| Served::start_on(d.path(), "127.0.0.1:0"))
        .collect();
    let addrs: Vec<String> = replicas.iter().map(Served::addr).collect();
    let a = tgrun::sandbox::component::content_version(
        &std::fs::read(crate::fixtures::wasm("swap_a")).unwrap(),
    );
    let b_bytes = std::fs::read(crate::fixtures::wasm("swap_b")).unwrap();
    let b = tgrun::sandbox::component::content_version(&b_bytes);
    wait_for_version(&addrs[1], "swapper", &a, "its own file").await;

    // A new file in replica 0's folder (written aside, then renamed in, as a deploy does).
    let folder = dirs[0].path().join("modules");
    std::fs::write(folder.join("swapper.wasm.tmp"), &b_bytes).unwrap();
    std::fs::rename(folder.join("swapper.wasm.tmp"), folder.join("swapper.wasm")).unwrap();
    let dropped =
        wait_for_version(&addrs[1], "swapper", &b, "the file dropped into the other").await;

    // A rollback on replica 1 takes replica 0 back too.
    let answer = reqwest::Client::new()
        .post(format!("http://{}/jobs/swapper/rollback", addrs[1]))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
    let rolled = wait_for_version(&addrs[0], "swapper", &a, "the version rolled back to").await;
    // It stays there: neither replica's follower brings the newer one back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for addr in &addrs {
        assert_eq!(
            running_version(addr, "swapper").await.as_deref(),
            Some(a.as_str())
        );
    }
    stop_all(&mut replicas);
    scope.cleanup().await;
    eprintln!("a dropped file reached the other replica in {dropped:?}, a rollback in {rolled:?}");
}

/// A run read from the stream is this replica's job as configured here (issue 19): a
/// message naming more grants than the job has runs with the job's own, and one naming a
/// job the configuration does not have at that place never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_the_wire_gets_the_local_jobs_grants_and_an_unknown_job_never_runs() {
    let scope = Scope::new("wire").await;
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 3600, "jobs": [
            {"name": "hostile", "enabled": true, "capabilities": [],
             "params": {"mode": "sql_rows", "n": 10}}]}}}"#,
        &["hostile", "spin"],
    );
    std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
    let mut replicas = start_replicas(dir.path(), 1);
    replicas[0].addr();

    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    let subject = format!("tgrun.{}.runs", scope.settings.name);
    let forge = |job: &str, scheduled_ms: i64| {
        serde_json::json!({
            "pipeline": "p", "index": 0, "job": job, "scheduled_ms": scheduled_ms,
            "params": r#"{"mode": "sql_rows", "n": 10}"#,
            "timeout_ms": 10_000, "memory_bytes": 67_108_864,
            "grants": {"prometheus": true, "api_service": true, "sql": true},
            "overlap": "allow"
        })
        .to_string()
    };
    let (granted, unknown) = (1_000_000_000_000_i64, 1_000_000_001_000_i64);
    for (job, at) in [("hostile", granted), ("spin", unknown)] {
        js.publish(subject.clone(), forge(job, at).into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // The forged run of the configured job ends; the unknown one is handed back a few
    // times (its configuration may be on its way) and then dropped.
    let deadline = Instant::now() + Duration::from_secs(30);
    let forged = loop {
        let rows = scope
            .query(&format!(
                "SELECT outcome, error FROM tgrun_runs WHERE scheduled_ms = {granted}"
            ))
            .await;
        if let Some(row) = rows.first() {
            break format!("{row:?}");
        }
        assert!(Instant::now() < deadline, "the forged run never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        forged.contains("error") && forged.contains("not-permitted"),
        "the message's grants were used: {forged}"
    );
    tokio::time::sleep(Duration::from_secs(7)).await;
    let spin = scope
        .query("SELECT COUNT(*) FROM tgrun_runs WHERE job = 'spin'")
        .await;
    assert_eq!(format!("{spin:?}").replace("Value::", ""), "[[Int(0)]]");
    stop_all(&mut replicas);
    scope.cleanup().await;
}

/// An object in the cluster's module store whose name is a path (issue 19) is never
/// written anywhere: the name is checked before it is read or joined to a path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_store_name_that_is_a_path_writes_no_file() {
    let scope = Scope::new("objname").await;
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 3600, "jobs": [{"name": "noop", "enabled": true}]}}}"#,
        &["noop"],
    );
    std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
    let mut replicas = start_replicas(dir.path(), 1);
    replicas[0].addr();
    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    let bucket = js
        .get_object_store(tgrun::cluster::modules::bucket_name(&scope.settings.name))
        .await
        .unwrap();
    let bytes = std::fs::read(crate::fixtures::wasm("noop")).unwrap();
    bucket.put("../evil", &mut &bytes[..]).await.unwrap();
    // Refused by name, logged (and nothing is written: checked once it is logged).
    replicas[0].wait_for("cannot name a module", Duration::from_secs(20));
    assert!(
        !dir.path().join("evil.wasm").exists(),
        "written outside the modules folder"
    );
    stop_all(&mut replicas);
    scope.cleanup().await;
}

/// A `nats-server` of this test's own started from a configuration file holding `body`.
fn nats_with(port: u16, dir: &std::path::Path, body: &str) -> OwnNats {
    let conf = dir.join(format!("nats-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{body}\n",
            dir.join(format!("js-{port}"))
        ),
    )
    .unwrap();
    OwnNats::start_args(port, &["-c", conf.to_str().unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_with_credentials_and_tls_takes_only_a_replica_configured_for_it() {
    use tgrun::cluster::auth::{NatsAuth, NatsTls};
    let scope = Scope::new("auth").await;
    let certs = tempfile::tempdir().unwrap();
    crate::fixtures::make_certificates(certs.path());
    let tls_port = crate::prometheus::free_port();
    let _tls_nats = nats_with(
        tls_port,
        certs.path(),
        &format!(
            "authorization {{ user: tgrun, password: \"pw-of-nats-4321\" }}\n\
             tls {{ cert_file: {:?}, key_file: {:?} }}",
            certs.path().join("server.pem"),
            certs.path().join("server.key")
        ),
    );
    let token_port = crate::prometheus::free_port();
    let _token_nats = nats_with(
        token_port,
        certs.path(),
        "authorization { token: \"tok-of-nats-8765\" }",
    );
    let settings = |port: u16, auth: NatsAuth, tls: Option<NatsTls>| ClusterSettings {
        servers: vec![format!("nats://127.0.0.1:{port}")],
        auth,
        tls,
        ..scope.settings.clone()
    };
    let user = |password: &str| NatsAuth::UserPassword {
        user: "tgrun".into(),
        password: password.into(),
    };
    let ca = Some(NatsTls {
        ca_file: Some(certs.path().join("ca.pem")),
        client: None,
    });
    let refused = |what: &str, r: anyhow::Result<Cluster>, needle: &str| {
        let e = format!(
            "{:#}",
            r.err().unwrap_or_else(|| panic!("{what}: connected"))
        );
        assert!(
            e.contains("runner.cluster") && e.to_lowercase().contains(needle),
            "{what}: {e}"
        );
        assert!(
            !e.contains("pw-of-nats"),
            "the error shows the password: {e}"
        );
    };
    // Wrong password, no password, no CA to check the server by: refused, each saying why.
    refused(
        "a wrong password",
        Cluster::connect(&settings(tls_port, user("guess"), ca.clone())).await,
        "authorization",
    );
    refused(
        "no credentials",
        Cluster::connect(&settings(tls_port, NatsAuth::None, ca.clone())).await,
        "authorization",
    );
    refused(
        "an unknown certificate authority",
        Cluster::connect(&settings(tls_port, user("pw-of-nats-4321"), None)).await,
        "tls.ca_file",
    );
    refused(
        "a wrong token",
        Cluster::connect(&settings(
            token_port,
            NatsAuth::Token("tok-guess".into()),
            None,
        ))
        .await,
        "authorization",
    );
    let token = settings(token_port, NatsAuth::Token("tok-of-nats-8765".into()), None);
    Cluster::connect(&token).await.expect("the right token");
    Cluster::delete(&token).await.unwrap();

    // A replica configured for it (the CA file relative to the configuration directory, the
    // password from the environment) runs its jobs through that server.
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period": 0.3, "jobs": [
            {"name": "noop", "enabled": true}]}}}"#,
        &["noop"],
    );
    std::fs::copy(certs.path().join("ca.pem"), dir.path().join("nats-ca.pem")).unwrap();
    let config = scope.config_json(30).replace(
        &format!(r#""nats": ["{NATS}"]"#),
        &format!(
            r#""nats": ["nats://127.0.0.1:{tls_port}"], "user": "tgrun",
               "tls": {{"ca_file": "nats-ca.pem"}}"#
        ),
    );
    assert!(config.contains("nats-ca.pem"), "{config}");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let mut replica = vec![Served::start_with_env(
        dir.path(),
        "127.0.0.1:0",
        &[("TGRUN_NATS_PASSWORD", "pw-of-nats-4321")],
    )];
    let addr = replica[0].addr();
    let deadline = Instant::now() + Duration::from_secs(30);
    while int(&scope
        .query("SELECT COUNT(*) FROM tgrun_runs WHERE outcome = 'ok'")
        .await[0][0])
        < 3
    {
        assert!(Instant::now() < deadline, "no runs through the TLS server");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(lists(&health(&addr).await["healthy"], "nats"));
    stop_all(&mut replica);

    // The same replica with a wrong password does not start, and says where to look.
    let mut wrong = Served::start_with_env(
        dir.path(),
        "127.0.0.1:0",
        &[("TGRUN_NATS_PASSWORD", "guess")],
    );
    let line = wrong.wait_for("runner.cluster", Duration::from_secs(30));
    assert!(line.to_lowercase().contains("authorization"), "{line}");
    assert!(!wrong.exit_within(Duration::from_secs(30)).success());
    // The NATS servers and their stores go with the test; the database is dropped.
    scope.cleanup_on(tls_port).await;
}

/// `tgrun_queue_depth` on a replica's `/metrics`. The replica's first run may start (and
/// log) before its HTTP server listens: a refused connection is asked again, for up to 10 s.
async fn queue_depth(addr: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match reqwest::get(format!("http://{addr}/metrics")).await {
            Err(e) if e.is_connect() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.unwrap(),
        }
    };
    let text = answer.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("tgrun_queue_depth "))
        .unwrap_or_else(|| panic!("no tgrun_queue_depth in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// The same four slow runs on one consumer, in-process and on the cluster's stream: while
/// the first runs, the other three wait, and the queue's depth says so in both modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_depth_counts_waiting_runs_in_process_and_in_a_cluster() {
    let scope = Scope::new("depth").await;
    for cluster in [false, true] {
        // One due time in the test: it runs at start, the next is over a minute away.
        let period_s = one_due_time_period_ms() as f64 / 1e3;
        let service = format!(
            r#"{{"num_consumers": 1, "pipelines": {{"p": {{"period": {period_s}, "jobs": [
            {{"name": "sleeper", "enabled": true, "params": {{"ms": 5000}}}},
            {{"name": "sleeper", "enabled": true, "params": {{"ms": 10}}}},
            {{"name": "sleeper", "enabled": true, "params": {{"ms": 10}}}},
            {{"name": "sleeper", "enabled": true, "params": {{"ms": 10}}}}]}}}}}}"#
        );
        let dir = config_dir(&service, &["sleeper"]);
        if cluster {
            std::fs::write(dir.path().join("config.json"), scope.config_json(30)).unwrap();
        }
        // A port of its own: the first run may log before the server says where it listens.
        let addr = format!("127.0.0.1:{}", crate::prometheus::free_port());
        let mut replica = vec![Served::start_on(dir.path(), &addr)];
        replica[0].wait_for("sleeping 5000 ms", Duration::from_secs(30));
        // The cluster's depth is asked of JetStream every second.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut depth = queue_depth(&addr).await;
        while depth != 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            depth = queue_depth(&addr).await;
        }
        assert_eq!(depth, 3, "cluster: {cluster}");
        // Once the slow run ends, the others run and nothing waits.
        let deadline = Instant::now() + Duration::from_secs(8);
        while queue_depth(&addr).await != 0 {
            assert!(
                Instant::now() < deadline,
                "cluster {cluster}: still waiting"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop_all(&mut replica);
    }
    scope.cleanup().await;
}

/// Replicas started at the same moment all find or create the cluster's stream and stores:
/// one that loses the race to create them finds them on its next try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_connecting_at_once_all_join_a_new_cluster() {
    for round in 0..5 {
        use std::hash::{BuildHasher, RandomState};
        let settings = ClusterSettings {
            name: format!(
                "race{round}_{:08x}",
                RandomState::new().hash_one((std::process::id(), round)) as u32
            ),
            servers: vec![NATS.into()],
            ack_wait: Duration::from_secs(30),
            auth: Default::default(),
            tls: None,
        };
        let joined =
            futures_util::future::join_all((0..4).map(|_| Cluster::connect(&settings))).await;
        for r in &joined {
            if let Err(e) = r {
                panic!("round {round}: a replica could not join: {e:#}");
            }
        }
        let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
        for name in [
            tgrun::cluster::connection::stream_name(&settings.name),
            tgrun::cluster::live::stream_name(&settings.name),
        ] {
            let _ = js.delete_stream(&name).await;
        }
        for bucket in [
            tgrun::cluster::modules::bucket_name(&settings.name),
            tgrun::cluster::config::bucket_name(&settings.name),
        ] {
            let _ = js.delete_object_store(&bucket).await;
        }
    }
}

/// A due run of pipeline `p` as a replica would publish it (`overlap: skip`, no grants).
fn wire_run(index: usize, job: &str, scheduled_ms: i64) -> tgrun::cluster::WireRun {
    serde_json::from_value(serde_json::json!({
        "pipeline": "p", "index": index, "job": job, "scheduled_ms": scheduled_ms,
        "params": "{}", "timeout_ms": 10_000, "memory_bytes": 67_108_864,
        "grants": {"prometheus": false, "api_service": false, "sql": false},
        "overlap": "skip"
    }))
    .unwrap()
}

/// A replica starts each change to a job's record of live runs from the record as it last
/// knew it (issue 23: one round trip, not a read and a write); a record another replica
/// changed since is refused by the compare-and-set and read again, and a decision to
/// leave the record be is never taken on what the replica saw last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_remembered_record_of_live_runs_never_decides_on_what_changed_since() {
    use tgrun::cluster::live::Decision;
    use tgrun::run::Overlap;

    let scope = Scope::new("known").await;
    let a = Cluster::connect(&scope.settings).await.unwrap();
    let b = Cluster::connect(&scope.settings).await.unwrap();
    let run = |scheduled_ms: i64| wire_run(0, "j", scheduled_ms);
    let admit = |replica: &'static str, who: &Cluster, at: i64| {
        let run = run(at);
        let live = who.live.clone();
        async move {
            let d = live.admit(Overlap::Skip, &run, replica).await.unwrap();
            matches!(d, Decision::Run { .. })
        }
    };
    assert!(admit("a1", &a, 1).await, "a's first run starts");
    // b reads the record (a1 live), skips, and keeps what it read.
    assert!(
        !admit("b2", &b, 2).await,
        "b's run is skipped while a1 is live"
    );
    // a1 ends, written on a's own record: b's still shows a1 live.
    a.live.release(&run(1)).await.unwrap();
    assert!(
        admit("b3", &b, 3).await,
        "b skipped on its remembered record instead of what the stream holds"
    );
    // a remembers the record it wrote (nothing live); b3 is live since. a's change on its
    // stale record is refused, a reads b's and skips.
    assert!(
        !admit("a4", &a, 4).await,
        "a ran beside b3 on a record b had changed"
    );
    b.live.release(&run(3)).await.unwrap();
    assert!(admit("a5", &a, 5).await, "a's run starts once b3 ended");
    a.live.release(&run(5)).await.unwrap();
    scope.cleanup().await;
}

/// Each replica follows the records the others write (the live stream's feed), so a job
/// whose runs go to one replica and then another changes its record in one round trip
/// each way, where a replica that only remembered its own writes read first, or wrote on a
/// stale record, was refused, and read and wrote again (issue 23: four round trips for a
/// run's admit and release at two replicas in turn, against two at one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_the_others_writes_and_changes_a_record_in_one_round_trip() {
    use tgrun::cluster::live::Decision;
    use tgrun::run::Overlap;

    let scope = Scope::new("feed").await;
    let a = Cluster::connect(&scope.settings).await.unwrap();
    let b = Cluster::connect(&scope.settings).await.unwrap();
    let run = |scheduled_ms: i64| wire_run(0, "j", scheduled_ms);
    // Waits until `to` knows the record at the sequence `from` wrote it at.
    let told = |from: &Cluster, to: &Cluster| {
        let (from, to, probe) = (from.live.clone(), to.live.clone(), run(0));
        async move {
            let wrote = from
                .known_sequence(&probe)
                .expect("the writer knows its write");
            let deadline = Instant::now() + Duration::from_secs(10);
            while to.known_sequence(&probe) != Some(wrote) {
                assert!(
                    Instant::now() < deadline,
                    "the other replica was never told of the write at {wrote}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let admit_release = |who: &Cluster, at: i64| {
        let (live, run) = (who.live.clone(), run(at));
        async move {
            let before = live.round_trips();
            let d = live.admit(Overlap::Skip, &run, "r").await.unwrap();
            assert!(matches!(d, Decision::Run { .. }), "{d:?}");
            live.release(&run).await.unwrap();
            live.round_trips() - before
        }
    };
    // a has never seen the job: it reads, writes, and writes the release.
    assert_eq!(admit_release(&a, 1).await, 3);
    told(&a, &b).await;
    assert_eq!(
        admit_release(&b, 2).await,
        2,
        "b read or was refused instead of starting from a's write"
    );
    told(&b, &a).await;
    assert_eq!(
        admit_release(&a, 3).await,
        2,
        "a wrote on its own stale record instead of b's"
    );
    scope.cleanup().await;
}

/// A due time of more runs than async-nats lets wait for their acknowledgement (5,000)
/// is published whole: the producer sends them in batches and awaits each batch, where it
/// used to send all first and wait for a permit that only its own unawaited
/// acknowledgements held, for ever. Published again, every run is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_time_of_more_runs_than_nats_lets_wait_is_published_whole() {
    use tgrun::cluster::WireRun;

    let scope = Scope::new("many").await;
    let cluster = Cluster::connect(&scope.settings).await.unwrap();
    let runs: Vec<WireRun> = (0..6_000)
        .map(|index| wire_run(index, "noop", 1_000))
        .collect();
    for expected in [Published::New, Published::Duplicate] {
        let outcomes = tokio::time::timeout(Duration::from_secs(60), cluster.publish(&runs))
            .await
            .unwrap_or_else(|_| panic!("publishing 6,000 runs ({expected:?}) never ended"));
        let wrong: Vec<_> = outcomes
            .iter()
            .filter(|o| !matches!(o, Ok(p) if *p == expected))
            .take(3)
            .collect();
        assert!(wrong.is_empty(), "expected all {expected:?}: {wrong:?}");
    }
    scope.cleanup().await;
}

/// A take given up while its request waits (its consumer stopped) leaves no request
/// behind to catch a run: the run goes at once to a take still waiting, here another
/// replica's, not to an inbox nobody reads until `ack_wait` (30 s here) delivers it again.
/// And an inbox whose take ended normally is used again by the next take (issue 23).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_given_up_leaves_no_request_behind_to_catch_a_run() {
    let scope = Scope::new("gaveup").await;
    let a = Cluster::connect(&scope.settings).await.unwrap();
    let b = Cluster::connect(&scope.settings).await.unwrap();
    // a's take asks to wait 5 s; its taker gives up after 0.2 s.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(200), a.next(Duration::from_secs(5))).await;
    assert!(gave_up.is_err(), "nothing was published: {gave_up:?}");
    let waiting = tokio::spawn(async move {
        let taken = b.next(Duration::from_secs(3)).await;
        (b, taken)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = wire_run(0, "noop", 1_000);
    let published = a.publish(std::slice::from_ref(&run)).await;
    assert!(
        matches!(published[..], [Ok(Published::New)]),
        "{published:?}"
    );
    let started = Instant::now();
    let (_b, taken) = waiting.await.unwrap();
    let taken = taken
        .unwrap()
        .expect("the run, taken by the replica still waiting");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let got: tgrun::cluster::WireRun = serde_json::from_slice(&taken.payload).unwrap();
    assert_eq!(got.id(), run.id());
    taken.ack().await.unwrap();
    // a takes again (through an inbox of its own): the next run is its.
    let next = wire_run(1, "noop", 1_000);
    a.publish(std::slice::from_ref(&next)).await;
    let m = a
        .next(Duration::from_secs(1))
        .await
        .unwrap()
        .expect("the next run, taken by a");
    let got: tgrun::cluster::WireRun = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(got.id(), next.id());
    m.ack().await.unwrap();
    assert!(a.next(Duration::from_millis(300)).await.unwrap().is_none());
    scope.cleanup().await;
}

//! The `runner` binary: `check`, `run`, and `serve` as a user starts them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::fixtures::{config_dir, wasm};

fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tgrun"))
}

/// Exit code and stdout as one JSON value (stderr, with any log lines, apart).
fn json_output(cmd: &mut Command) -> (i32, serde_json::Value) {
    let out = cmd.output().expect("running the runner binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn output(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("running the runner binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_says_whether_a_component_fits() {
    let (code, text) = output(runner().arg("check").arg(wasm("add_x")));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("fits the tgrun:job@0.1.0 world"), "{text}");

    let (code, text) = output(runner().arg("check").arg(wasm("wrong_world")));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("does not fit"), "{text}");
    assert!(text.contains("acme:gadgets/gadget"), "{text}");
    assert!(
        text.contains("exports `run` as `func(turns: u32) -> u32`"),
        "{text}"
    );
}

#[test]
fn run_a_file_prints_outcome_logs_and_metrics() {
    let (code, text) = output(
        runner()
            .args(["run", "--params", r#"{"value": 7}"#])
            .arg(wasm("echo"))
            .args(["--config-dir", "/nonexistent"]),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("outcome:  ok"), "{text}");
    assert!(text.contains("[info log] params {\"value\":7}"), "{text}");
    assert!(text.contains("[info stdout] to stdout"), "{text}");
    assert!(text.contains("echo_value{job=\"echo\"} 7"), "{text}");
}

#[test]
fn a_relative_config_dir_works_with_its_compiled_code_cache() {
    // `make run` passes `--config-dir config`: the cache inside it is a relative path,
    // which wasmtime's cache refuses unless the runner makes it absolute.
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true, "params": {"value": 3}}]}}}"#,
        &["echo"],
    );
    let (parent, name) = (
        dir.path().parent().unwrap(),
        dir.path().file_name().unwrap(),
    );
    let (code, text) = output(
        runner()
            .current_dir(parent)
            .args(["run", "echo", "--config-dir"])
            .arg(name),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("outcome:  ok"), "{text}");
    assert!(
        dir.path().join(".tgrun-cache").is_dir(),
        "the cache is inside the configuration directory"
    );
}

#[test]
fn run_exits_non_zero_on_failure_and_names_the_outcome() {
    let (code, text) = output(runner().arg("run").arg(wasm("fails")));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("outcome:  error (failed: fixture failure: the job said no)"),
        "{text}"
    );

    let (code, text) = output(
        runner()
            .arg("run")
            .arg(wasm("spin"))
            .args(["--timeout-s", "0.2"]),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("outcome:  timeout"), "{text}");
}

#[test]
fn run_by_name_takes_params_and_settings_from_the_configuration() {
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true, "params": {"value": 11}}]}}, "site": "lab"}"#,
        &["echo"],
    );
    let (code, text) = output(
        runner()
            .args(["run", "echo", "--config-dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("params {\"value\":11}"), "{text}");
    assert!(text.contains("settings {\"site\":\"lab\"}"), "{text}");

    let (code, text) = output(
        runner()
            .args(["run", "nope", "--config-dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no job 'nope'"), "{text}");
}

/// A job of a shared component (`module`) run by name runs as `serve` runs it: its
/// pipeline's tick (main.py's producer) is shown the job, with the params given, and its
/// consumer calls it with seconds.
#[test]
fn run_by_name_of_a_shared_components_job_goes_through_its_pipelines_tick() {
    let dir = config_dir(
        r#"{"pipelines": {"health": {"period": 900, "jobs": [
            {"name": "generate_health_labels", "module": "health_labels", "enabled": false,
             "params": {"period_s": 900}}]}},
            "thresholds": {"good": 0.9}, "label_prefix": "x_"}"#,
        &["health_labels"],
    );
    crate::fixtures::share_compiled_code(dir.path());
    let (code, text) = output(
        runner()
            .args([
                "run",
                "generate_health_labels",
                "--params",
                r#"{"period_s": 30}"#,
                "--config-dir",
            ])
            .arg(dir.path()),
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(r#"x_health_threshold{level="good",period="30"} 0.9"#),
        "{text}"
    );
}

#[test]
fn bad_params_and_bad_configuration_are_clear_errors() {
    let (code, text) = output(runner().args(["run", "--params", "[1]"]).arg(wasm("echo")));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--params must be a JSON object"), "{text}");

    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 1, "jobs": [{"name": "x", "enable": true}]}}}"#,
        &[],
    );
    let (code, text) = output(runner().args(["serve", "--config-dir"]).arg(dir.path()));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("unknown key 'enable'"), "{text}");
}

/// A `tgrun serve` child whose stderr lines arrive on a channel.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The last lines read, for the message of a wait that fails.
    seen: std::sync::Mutex<std::collections::VecDeque<String>>,
    /// Whether a wait has printed that the runner exited (once is enough).
    exit_reported: std::sync::atomic::AtomicBool,
}

impl Served {
    fn start(dir: &std::path::Path) -> Self {
        Self::start_on(dir, "127.0.0.1:0")
    }

    pub fn start_on(dir: &std::path::Path, listen: &str) -> Self {
        Self::start_with_env(dir, listen, &[])
    }

    /// As [`Served::start_on`], with more environment variables.
    pub fn start_with_env(dir: &std::path::Path, listen: &str, env: &[(&str, &str)]) -> Self {
        let mut child = runner()
            .args(["serve", "--listen", listen, "--config-dir"])
            .arg(dir)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Default::default(),
            exit_reported: Default::default(),
        }
    }

    /// The next line within `left`: `Err` with why not (time up, or the runner exited,
    /// with its last lines).
    fn next_line(&self, left: Duration) -> Result<String, String> {
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                let mut seen = self.seen.lock().unwrap();
                if seen.len() == 20 {
                    seen.pop_front();
                }
                seen.push_back(line.clone());
                Ok(line)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err("time is up".into()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let last: Vec<String> = self.seen.lock().unwrap().iter().cloned().collect();
                Err(format!(
                    "the runner exited; its last lines:\n{}",
                    last.join("\n")
                ))
            }
        }
    }

    /// The first line containing `needle` within `within`.
    pub fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(why) => panic!("no log line containing {needle:?} within {within:?}: {why}"),
            }
        }
    }
}

impl Served {
    /// The address its HTTP server listens on, from its log.
    pub fn addr(&self) -> String {
        let line = self.wait_for("HTTP server listening on ", Duration::from_secs(60));
        line.rsplit("listening on ")
            .next()
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The first line containing `needle` within `within`, if one comes. A runner that
    /// exited instead leaves its last lines in the test's output, so a failure that
    /// follows says why.
    pub fn saw(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(why) => {
                    if !self
                        .exit_reported
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                        && why.starts_with("the runner exited")
                    {
                        eprintln!("waiting for {needle:?}: {why}");
                    }
                    return None;
                }
            }
        }
    }

    /// SIGKILL, as a machine dying: nothing is flushed, nothing acknowledged.
    pub fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Its exit status, waiting at most `within` for it.
    /// Sends SIGTERM, as a service manager stopping the runner does.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}: {sent}");
    }

    pub fn exit_within(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the runner did not stop within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Reaped before the test ends: a runner still dying would hold the test's output
        // open (nextest reports the test as leaky).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_answers_status_runs_jobs_and_stops_on_sigterm() {
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"p": {"period": 0.2, "jobs": [
            {"name": "echo", "enabled": true}, {"name": "missing_one", "enabled": true}]}}}"#,
        &["echo"],
    );
    let mut served = Served::start(dir.path());
    let line = served.wait_for("HTTP server listening on ", Duration::from_secs(30));
    let addr = line.rsplit(' ').next().unwrap().to_owned();

    let body = reqwest::get(format!("http://{addr}/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "Alive");

    // A mutating route over real TCP from loopback (no token set): allowed.
    let answer = reqwest::Client::new()
        .put(format!("http://{addr}/log/DEBUG"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        "Log level set to DEBUG from INFO"
    );

    let missing = served.wait_for("missing_one", Duration::from_secs(10));
    assert!(missing.contains("missing_one.wasm"), "{missing}");
    let ran = served.wait_for("run finished job=echo", Duration::from_secs(10));
    assert!(ran.contains("outcome=\"ok\""), "{ran}");

    served.terminate();
    let status = served.exit_within(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn secrets_a_job_is_given_never_reach_a_log_line_or_an_answer() {
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 0.3, "jobs": [
            {"name": "echo", "enabled": true, "params": {"api_token": "tok-first-1234"}}]}},
           "service_password": "pw-setting-5678"}"#,
        &["echo"],
    );
    let served = Served::start(dir.path());
    let addr = served.addr();
    // The job logs its params and settings (as a careless job might): masked as they pass.
    let params = served.wait_for("params {", Duration::from_secs(30));
    assert!(
        params.contains(r#""api_token":"***""#) && !params.contains("tok-first"),
        "{params}"
    );
    let settings = served.wait_for("settings {", Duration::from_secs(10));
    assert!(
        settings.contains(r#""service_password":"***""#) && !settings.contains("pw-setting"),
        "{settings}"
    );
    let http = reqwest::Client::new();
    let ran = http
        .post(format!("http://{addr}/jobs/echo/run"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ran.contains("***") && !ran.contains("tok-first"), "{ran}");

    // A secret changed live is masked from the next run on.
    let config = http
        .get(format!("http://{addr}/config"))
        .send()
        .await
        .unwrap();
    let version = config.headers()["etag"].to_str().unwrap().to_owned();
    let shown = config.text().await.unwrap();
    assert!(
        !shown.contains("tok-first") && !shown.contains("pw-setting"),
        "{shown}"
    );
    let patch = serde_json::json!({"config": {"pipelines": {"p": {"period": 0.3, "jobs": [
        {"name": "echo", "enabled": true,
         "params": {"api_token": "tok-second-9876", "round": 2}}]}}}});
    let answer = http
        .patch(format!("http://{addr}/config"))
        .header("content-type", "application/json")
        .header("if-match", version)
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let line = served.wait_for(r#""round":2"#, Duration::from_secs(20));
    assert!(
        line.contains(r#""api_token":"***""#) && !line.contains("tok-second"),
        "{line}"
    );
}

#[tokio::test]
async fn sigterm_gives_runs_the_grace_period_then_records_them_cancelled() {
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {"p": {"period": 60, "jobs": [
            {"name": "spin", "enabled": true, "timeout_s": 60}]}},
           "overrides": {"runner": {"shutdown_grace_s": 0.5}}}"#,
        &["spin"],
    );
    let mut served = Served::start(dir.path());
    served.wait_for("spinning", Duration::from_secs(30));
    let asked = Instant::now();
    served.terminate();
    let line = served.wait_for("run not done: stopped", Duration::from_secs(10));
    assert!(
        line.contains("job=spin") && line.contains("grace period of 0.5s"),
        "{line}"
    );
    let status = served.exit_within(Duration::from_secs(10));
    let took = asked.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // The outcome reached the history before the process exited.
    let db = tgrun::clients::sql::sqlite(
        &dir.path().join("tgrun-history.sqlite3"),
        tgrun::clients::Caps::default(),
    )
    .await
    .unwrap();
    let rows = db
        .query("SELECT job, outcome, error FROM tgrun_runs", &[])
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), 1, "{:?}", rows.rows);
    assert!(
        matches!(&rows.rows[0][1], tgrun::sql_value::Value::Text(t) if t == "cancelled"),
        "{:?}",
        rows.rows[0]
    );
}

#[test]
fn run_honours_the_jobs_capabilities() {
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true, "capabilities": ["sql"]}]}}}"#,
        &["echo"],
    );
    let (code, text) = output(
        runner()
            .args(["run", "echo", "--config-dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("outcome:  error (not-permitted: this job may not use prometheus"),
        "{text}"
    );
}

#[test]
fn new_scaffolds_a_job_that_builds_passes_check_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Outside this repository, without --sdk: the registry's SDK of the runner's version.
    let (code, text) = output(runner().args(["new", "greeter", "--dir"]).arg(dir.path()));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("tgrun check"), "the next steps: {text}");
    assert!(
        text.contains("from crates.io") && text.contains("--sdk PATH/guest-sdk"),
        "where the SDK comes from: {text}"
    );
    let krate = dir.path().join("greeter");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("tgrun-sdk = \"{}\"\n", env!("CARGO_PKG_VERSION"))),
        "{manifest}"
    );

    // Built as the message says, into a target folder kept between test runs. The SDK is
    // not published from here: this repository's guest-sdk/ (which `cargo package`
    // accepts: `make test` packages it) stands in for the registry's.
    let target = repo.join("target/new-job");
    let sdk = repo.join("guest-sdk").canonicalize().unwrap();
    let built = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--config",
        ])
        .arg(format!(
            "patch.crates-io.tgrun-sdk.path={:?}",
            sdk.display().to_string()
        ))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&krate)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "the scaffolded crate does not build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let module = target.join("wasm32-wasip2/release/greeter.wasm");
    let (code, text) = output(runner().arg("check").arg(&module));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("fits the tgrun:job@0.1.0 world"), "{text}");
    let (code, text) = output(
        runner()
            .arg("run")
            .arg(&module)
            .args(["--params", r#"{"name": "operator"}"#]),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("outcome:  ok"), "{text}");
    assert!(text.contains("hello operator"), "{text}");
    assert!(
        text.contains(r#"greeter_runs{name="operator"} 1"#),
        "{text}"
    );

    // A name that cannot be a crate, a file and a job; a folder that exists.
    let (code, text) = output(runner().args(["new", "Greeter-2", "--dir"]).arg(dir.path()));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("'Greeter-2' cannot name a job"), "{text}");
    let (code, text) = output(runner().args(["new", "greeter", "--dir"]).arg(dir.path()));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("exists already"), "{text}");

    // A local SDK in place of the registry's.
    let (code, text) = output(
        runner()
            .args(["new", "local_sdk", "--dir"])
            .arg(dir.path())
            .arg("--sdk")
            .arg(repo.join("guest-sdk")),
    );
    assert_eq!(code, 0, "{text}");
    let manifest = std::fs::read_to_string(dir.path().join("local_sdk/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!(
            "tgrun-sdk = {{ path = {:?} }}",
            repo.join("guest-sdk").display().to_string()
        )),
        "{manifest}"
    );

    // `tgrun build` builds it where it is (cargo, for wasm32-wasip2), the component where
    // `-o` says; it runs.
    let out = dir.path().join("built/local.wasm");
    let (code, text) = output(
        runner()
            .arg("build")
            .arg(dir.path().join("local_sdk"))
            .arg("-o")
            .arg(&out)
            .env("CARGO_TARGET_DIR", &target),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(world job)"), "{text}");
    let (code, text) = output(runner().arg("run").arg(&out).args([
        "--job",
        "local_sdk",
        "--params",
        r#"{"name": "builder"}"#,
    ]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("hello builder"), "{text}");
}

#[test]
fn run_with_stand_in_clients_answers_from_the_file_and_reports_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("standin.json");
    std::fs::write(
        &file,
        r#"{
        "prometheus": [{"endpoint": "query", "query": "foo", "response": {"status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"__name__": "foo", "node": "n1"}, "value": [1700000000, "2.5"]}]}}}],
        "api_service": [
            {"network": "net1", "endpoint": "getTopology", "response": {"name": "net1", "nodes": []}},
            {"network": "net2", "endpoint": "getTopology", "error": "controller down"}],
        "sql": [
            {"statement": "CREATE TABLE IF NOT EXISTS topology (id INT AUTO_INCREMENT PRIMARY KEY, network_name VARCHAR(100) NOT NULL, topology JSON NOT NULL, last_updated DATETIME(3) NOT NULL)", "rows_affected": 0},
            {"statement": "INSERT INTO topology (network_name, topology, last_updated) VALUES (?, ?, ?)", "rows_affected": 1}]
    }"#,
    )
    .unwrap();

    // Prometheus: the recorded answer, the job's metric from it, the call reported.
    let (code, text) = output(
        runner()
            .arg("run")
            .arg(wasm("add_x"))
            .args(["--params", r#"{"metric_name": "foo", "x": 5}"#, "--standin"])
            .arg(&file),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(r#"foo_plus_5{node="n1"} 7.5"#), "{text}");
    assert!(
        text.contains("prometheus query query=foo (") && text.contains("): ok, "),
        "{text}"
    );

    // A call the file does not answer fails naming what was asked.
    let (code, text) = output(
        runner()
            .arg("run")
            .arg(wasm("add_x"))
            .args(["--params", r#"{"metric_name": "bar", "x": 5}"#, "--standin"])
            .arg(&file),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(r#"has no response for prometheus query "bar""#),
        "{text}"
    );

    // The API service (one network failing, as recorded) and SQL, with white space
    // differences in the statement; every call in order, with its result.
    let (code, text) = output(
        runner()
            .arg("run")
            .arg(wasm("save_topology"))
            .arg("--standin")
            .arg(&file),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("saved the others, but no topology from: net2"),
        "{text}"
    );
    assert!(text.contains("controller down"), "{text}");
    let calls: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("calls:"))
        .skip(1)
        .collect();
    assert_eq!(calls.len(), 3, "{text}");
    assert!(
        calls[0].contains("api_service getTopology on every network")
            && calls[0].ends_with("ok, 2 networks, 1 failed"),
        "{text}"
    );
    assert!(calls[1].contains("sql execute CREATE TABLE"), "{text}");
    assert!(
        calls[2].contains("sql execute INSERT INTO topology")
            && calls[2].ends_with("ok, 1 rows affected"),
        "{text}"
    );

    // A file with a mistake is refused before anything runs, naming the file and place.
    std::fs::write(
        &file,
        r#"{"prometheus": [{"endpoint": "query", "respons": {}}]}"#,
    )
    .unwrap();
    let (code, text) = output(
        runner()
            .arg("run")
            .arg(wasm("add_x"))
            .arg("--standin")
            .arg(&file),
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("standin.json") && text.contains("unknown field `respons`"),
        "{text}"
    );
}

/// Every flag has an environment variable (a service manager's unit or a container sets
/// them), and a `RUST_LOG` that is not a filter is said, not ignored in silence.
#[test]
fn flags_come_from_the_environment_and_a_bad_rust_log_is_a_warning() {
    let dir = crate::fixtures::config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [{"name": "echo", "enabled": true}]}}}"#,
        &["echo"],
    );
    let (code, text) = output(
        runner()
            .args(["run", "echo"])
            .env("TGRUN_CONFIG_DIR", dir.path())
            .env("TGRUN_PARAMS", r#"{"value": 17}"#)
            .env("RUST_LOG", "info,=[bad"),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(r#"params {"value":17}"#), "{text}");
    assert!(
        text.contains(r#"RUST_LOG="info,=[bad" is not a log filter"#),
        "{text}"
    );
}

/// `--log-format json` (here from `TGRUN_LOG_FORMAT`): every line on stderr is one JSON
/// object, and a run's report carries its fields at the top level for a log store to index.
#[test]
fn json_logs_are_one_object_a_line_with_every_field() {
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 0.2, "jobs": [{"name": "echo", "enabled": true}]}}}"#,
        &["echo"],
    );
    let served = Served::start_with_env(dir.path(), "127.0.0.1:0", &[("TGRUN_LOG_FORMAT", "json")]);
    let mut lines = Vec::new();
    // The first run may finish before the HTTP server says it listens (they start side by
    // side): read until both are there.
    let (mut finished, mut listening) = (None, false);
    while finished.is_none() || !listening {
        let line = served.wait_for("", Duration::from_secs(30));
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}\nafter {lines:#?}"));
        lines.push(line);
        assert!(
            event["timestamp"].is_string() && event["level"].is_string(),
            "{event}"
        );
        listening |= event["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP server listening on "));
        if event["message"] == "run finished" && finished.is_none() {
            finished = Some(event);
        }
    }
    let finished = finished.unwrap();
    assert_eq!(finished["job"], "echo", "{finished}");
    assert_eq!(finished["pipeline"], "p", "{finished}");
    assert_eq!(finished["outcome"], "ok", "{finished}");
    assert!(
        finished["run_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{finished}"
    );
}

/// `check --config-dir` knows a tglib service's jobs (its build lists `jobs.py`'s functions
/// in the component): a configured job the component has no function for is a problem
/// naming the jobs it has, a disabled one a warning; a Rust job, one job run under any
/// name, is never asked.
#[test]
fn check_a_config_dir_says_which_job_a_services_component_lacks() {
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "add_x", "module": "tglib_service", "enabled": true},
            {"name": "add_y", "module": "tglib_service", "enabled": true},
            {"name": "old_job", "module": "tglib_service", "enabled": false},
            {"name": "any_name", "module": "echo", "enabled": true}]}}}"#,
        &["tglib_service", "echo"],
    );
    crate::fixtures::share_compiled_code(dir.path());
    let (code, text) = output(runner().args(["check", "--config-dir"]).arg(dir.path()));
    assert_eq!(code, 1, "{text}");
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect();
    assert_eq!(problems.len(), 1, "{text}");
    assert!(
        problems[0].contains(
            "tglib_service.wasm (job 'add_y' of pipeline 'p'): the component has no job 'add_y' (its jobs: add_x, save_topology)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "the component has no job 'old_job' (its jobs: add_x, save_topology) (disabled)"
        ),
        "{text}"
    );
    let (_, v) = json_output(
        runner()
            .args(["check", "--output", "json", "--config-dir"])
            .arg(dir.path()),
    );
    let service = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == "tglib_service")
        .unwrap();
    assert_eq!(
        service["missing_jobs"],
        serde_json::json!(["add_y", "old_job"]),
        "{v}"
    );
}

/// `check --config-dir`: both files and every module they name, each problem said (a
/// missing module, one of the wrong world, a route whose module is a job, a disabled
/// job's module as a warning), exit 1; a good directory exits 0; JSON for scripts.
#[test]
fn check_a_config_dir_says_every_problem() {
    let dir = config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true},
            {"name": "ghost", "enabled": true},
            {"name": "odd", "module": "wrong_world", "enabled": true},
            {"name": "later", "module": "not_yet", "enabled": false}]}},
           "routes": {"GET /topology": {"module": "topology_route"},
                      "GET /echo": {"module": "echo"}}}"#,
        &["echo", "wrong_world", "topology_route"],
    );
    let (code, text) = output(runner().args(["check", "--config-dir"]).arg(dir.path()));
    assert_eq!(code, 1, "{text}");
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect();
    // wrong_world's three (an import, `run`'s type, the linker's refusal), one each of the others.
    assert_eq!(problems.len(), 5, "{text}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("ghost.wasm (job 'ghost' of pipeline 'p'): no such file")),
        "{text}"
    );
    assert!(
        problems.iter().any(|p| p.contains("wrong_world.wasm (job 'odd' of pipeline 'p'): as a job component")),
        "{text}"
    );
    assert!(
        problems.iter().any(|p| p.contains("echo.wasm (job 'echo' of pipeline 'p', route 'GET /echo'): as a handler component: does not export `handle`")),
        "{text}"
    );
    assert!(
        text.contains("warning: module ")
            && text.contains("not_yet.wasm (job 'later' of pipeline 'p'): no such file (disabled)"),
        "{text}"
    );
    assert!(text.contains(": 5 problems"), "{text}");

    // The same as one JSON object.
    let (code, v) = json_output(
        runner()
            .args(["check", "--output", "json", "--config-dir"])
            .arg(dir.path()),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 5, "{v}");
    let topology = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == "topology_route")
        .unwrap();
    assert_eq!(topology["problems"], serde_json::json!([]), "{v}");
    assert_eq!(topology["worlds"], serde_json::json!(["handler"]), "{v}");

    // Mended: valid, exit 0.
    std::fs::write(
        dir.path().join("service_config.json"),
        r#"{"pipelines": {"p": {"period": 60, "jobs": [{"name": "echo", "enabled": true}]}},
           "routes": {"GET /topology": {"module": "topology_route"}}}"#,
    )
    .unwrap();
    let (code, text) = output(runner().args(["check", "--config-dir"]).arg(dir.path()));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("the configuration is valid and its 2 modules fit"),
        "{text}"
    );

    // A configuration that does not load: the loader's error, naming file and place.
    std::fs::write(
        dir.path().join("service_config.json"),
        r#"{"pipelines": {"p": {"period": -1}}}"#,
    )
    .unwrap();
    let (code, text) = output(runner().args(["check", "--config-dir"]).arg(dir.path()));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("problem: ") && text.contains("service_config.json"),
        "{text}"
    );

    // A file, as JSON.
    let (code, v) = json_output(
        runner()
            .args(["check", "--output", "json"])
            .arg(wasm("wrong_world")),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["fits"], false, "{v}");
    assert_eq!(v["world"], "job", "{v}");
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");
}

/// `run --output json`: the outcome, logs, metrics and calls as one object.
#[test]
fn run_prints_json_for_scripts() {
    let (code, v) = json_output(runner().arg("run").arg(wasm("echo")).args([
        "--params",
        r#"{"value": 7}"#,
        "--output",
        "json",
    ]));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["job"], "echo", "{v}");
    assert_eq!(v["outcome"], "ok", "{v}");
    assert!(v["duration_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        v["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == r#"params {"value":7}"#),
        "{v}"
    );
    let metric = &v["metrics"][0];
    assert_eq!(metric["name"], "echo_value", "{v}");
    assert_eq!(metric["value"], 7.0, "{v}");
    assert_eq!(metric["labels"]["job"], "echo", "{v}");
}

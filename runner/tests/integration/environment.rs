//! A job's `env` (issue 40): what its runs see as their environment (WASI's, Rust's
//! `std::env`, Python's `os.environ`), its pipeline's under its own, nothing of the
//! runner's; a secret-named variable masked where the run's lines are kept.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tgrun::config::Config;
use tgrun::service::{FixedLog, Service};

use crate::fixtures::{config_dir, messages};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_runs_see_its_env_over_its_pipelines_and_nothing_of_the_runners() {
    let service_config = json!({"num_consumers": 2, "pipelines": {"health": {
        "period": 86400,
        "env": {"NETWORK_TEST_URL": "http://network_test:8080", "SHARED": "pipeline"},
        "jobs": [
            {"name": "sandbox_probe", "enabled": true,
                "env": {"SHARED": "job", "DB_PASSWORD": "pw-in-env-7"}},
            {"name": "py_probe", "enabled": true, "params": {"mode": "env"},
                "env": {"QUERY_SERVICE_URL": "http://127.0.0.1:8086"}},
            {"name": "bare", "module": "py_probe", "enabled": true,
                "params": {"mode": "env"}},
        ]
    }, "plain": {"period": 86400, "jobs": [
        {"name": "plain_probe", "module": "sandbox_probe", "enabled": true}
    ]}}});
    let dir = config_dir(&service_config.to_string(), &["sandbox_probe", "py_probe"]);
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("warn".into()))), None)
        .await
        .unwrap();

    // Rust: `std::env`, through WASI. The runner's own (PATH, HOME, ...) is not there.
    let rust = service.run_now("sandbox_probe", None).await.unwrap();
    let lines = messages(&rust);
    let vars: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("probe env "))
        .collect();
    assert_eq!(
        vars,
        [
            "probe env DB_PASSWORD=***",
            "probe env NETWORK_TEST_URL=http://network_test:8080",
            "probe env SHARED=job",
        ],
        "{lines:?}"
    );
    assert!(std::env::var_os("PATH").is_some());
    let plain = service.run_now("plain_probe", None).await.unwrap();
    assert!(
        messages(&plain).contains(&"probe env: 0 variables".to_owned()),
        "{:?}",
        messages(&plain)
    );

    // Python: `os.environ`, though the interpreter was made when the module was built,
    // in an instance made before the run was known; read as a tglib service does.
    for _ in 0..3 {
        let py = service.run_now("py_probe", None).await.unwrap();
        let lines = messages(&py);
        assert_eq!(py.outcome, tgrun::Outcome::Ok, "{lines:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&lines[0]).unwrap(),
            json!({"NETWORK_TEST_URL": "http://network_test:8080", "SHARED": "pipeline",
                   "QUERY_SERVICE_URL": "http://127.0.0.1:8086"}),
            "{lines:?}"
        );
        assert_eq!(lines[1], "query service at http://127.0.0.1:8086");
        // The same module as another job, right after: that job's environment only.
        let bare = service.run_now("bare", None).await.unwrap();
        let lines = messages(&bare);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&lines[0]).unwrap(),
            json!({"NETWORK_TEST_URL": "http://network_test:8080", "SHARED": "pipeline"}),
            "{lines:?}"
        );
        assert_eq!(lines[1], "query service at http://query_service:8086");
    }
    service.stop().await;
}

#[test]
fn an_env_that_is_not_one_is_refused_naming_the_job_and_variable() {
    let service_config = json!({"pipelines": {"p": {"period": 60, "jobs": [
        {"name": "echo", "env": {"PORT": 8080}}
    ]}}});
    let dir = config_dir(&service_config.to_string(), &["echo"]);
    let e = Config::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("job 'echo'") && e.contains("'env' variable PORT must be a string"),
        "{e}"
    );
}

//! Loading tglib's configuration files.

use std::time::Duration;

use runner::config::Config;
use serde_json::json;

use crate::fixtures::config_dir;

/// The seed document's example, byte for byte.
const SEED: &str = r#"{
    "num_consumers": 5,
    "pipelines": {
        "test_pipeline": {
            "period": 300,
            "jobs": [
                {
                    "name": "add_x",
                    "enabled": true,
                    "params": {
                        "metric_name": "foo",
                        "x": 5
                    }
                }
            ]
        }
    }
}"#;

fn load(service: &str) -> Result<Config, String> {
    let dir = config_dir(service, &[]);
    Config::load(dir.path()).map_err(|e| e.to_string())
}

#[test]
fn the_seed_example_loads_unchanged() {
    let c = load(SEED).unwrap();
    assert_eq!(c.service.num_consumers, 5);
    assert_eq!(c.service.pipelines.len(), 1);
    let p = &c.service.pipelines[0];
    assert_eq!(&*p.name, "test_pipeline");
    assert_eq!(p.period, Duration::from_secs(300));
    let j = &p.jobs[0];
    assert_eq!(&*j.name, "add_x");
    assert!(j.enabled);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&j.params).unwrap(),
        json!({"metric_name": "foo", "x": 5})
    );
    assert_eq!(
        j.limits.timeout,
        Duration::from_secs(60),
        "documented default"
    );
    assert_eq!(j.limits.memory_bytes, 128 << 20, "documented default");
    assert!(c.service.settings.is_empty());
    assert_eq!(c.runner.listen.port(), 8080);
    assert!(c.runner.modules_dir.ends_with("modules"));
}

#[test]
fn period_s_is_accepted_and_missing_keys_take_tglib_defaults() {
    let c = load(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period_s": 0.5, "jobs": [{"name": "a"}]}}}"#,
    )
    .unwrap();
    let p = &c.service.pipelines[0];
    assert_eq!(p.period, Duration::from_millis(500));
    assert!(!p.jobs[0].enabled, "missing enabled means disabled");
    assert_eq!(&*p.jobs[0].params, "{}", "missing params means {{}}");
}

#[test]
fn unknown_top_level_keys_are_the_services_settings() {
    let c = load(r#"{"num_consumers": 1, "pipelines": {}, "site": "lab", "limits": {"a": 1}}"#)
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(c.service.settings.clone()),
        json!({"site": "lab", "limits": {"a": 1}})
    );
}

#[test]
fn a_typo_in_a_job_names_file_pipeline_job_and_key() {
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"bumper": {"period": 30, "jobs": [
            {"name": "add_x", "enable": true}]}}}"#,
        &[],
    );
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("service_config.json"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(err.contains("pipeline 'bumper'"), "{err}");
    assert!(err.contains("job 'add_x'"), "{err}");
    assert!(err.contains("unknown key 'enable'"), "{err}");
    assert!(err.contains("did you mean 'enabled'"), "{err}");
}

#[test]
fn a_typo_in_a_pipeline_is_an_error() {
    let err = load(r#"{"pipelines": {"p": {"periode": 30, "jobs": []}}}"#).unwrap_err();
    assert!(
        err.contains("pipeline 'p'") && err.contains("unknown key 'periode'"),
        "{err}"
    );
}

#[test]
fn invalid_json_names_file_line_and_column() {
    let err = load("{\n  \"num_consumers\": 5,\n  \"pipelines\": {,}\n}").unwrap_err();
    assert!(err.contains("service_config.json"), "{err}");
    assert!(err.contains("line 3, column 17"), "{err}");
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("service_config.json") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn bad_values_are_errors_naming_what_was_found() {
    for (service, expect) in [
        (r#"{"pipelines": {"p": {"jobs": []}}}"#, "needs 'period'"),
        (
            r#"{"pipelines": {"p": {"period": 1, "period_s": 1}}}"#,
            "both 'period' and 'period_s'",
        ),
        (
            r#"{"pipelines": {"p": {"period": "300"}}}"#,
            r#"found the string "300""#,
        ),
        (
            r#"{"pipelines": {"p": {"period": 0}}}"#,
            "positive number of seconds",
        ),
        (r#"{"num_consumers": 0}"#, "'num_consumers'"),
        (
            r#"{"pipelines": {"p": {"period": 1, "jobs": [{"name": "a", "enabled": "yes"}]}}}"#,
            "'enabled' must be true or false",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1, "jobs": [{"name": "a", "params": [1]}]}}}"#,
            "'params' must be an object",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1, "jobs": [{"name": "../etc/x"}]}}}"#,
            "cannot name a module file",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1, "jobs": [{"enabled": true}]}}}"#,
            "needs a 'name'",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1, "jobs": [{"name": "a", "timeout_s": -1}]}}}"#,
            "'timeout_s'",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1, "jobs": [{"name": "a", "memory_mb": 99999}]}}}"#,
            "'memory_mb'",
        ),
        (r#"[1, 2]"#, "must be a JSON object"),
    ] {
        let err = load(service).expect_err(service);
        assert!(err.contains(expect), "{service}: {err}");
    }
}

#[test]
fn per_job_limits_are_read() {
    let c = load(
        r#"{"pipelines": {"p": {"period": 1, "jobs": [
        {"name": "a", "timeout_s": 2.5, "memory_mb": 32}]}}}"#,
    )
    .unwrap();
    let j = &c.service.pipelines[0].jobs[0];
    assert_eq!(j.limits.timeout, Duration::from_millis(2500));
    assert_eq!(j.limits.memory_bytes, 32 << 20);
}

#[test]
fn overrides_are_deep_merged_into_config_json() {
    let dir = config_dir(
        r#"{"pipelines": {}, "overrides": {"mysql": {"host": "localhost"},
            "runner": {"http_port": 9099, "default_timeout_s": 5}}}"#,
        &[],
    );
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"mysql": {"host": "db", "port": 3306}, "listen_on_ipv6": true,
            "runner": {"modules_dir": "wasm", "default_memory_mb": 64}}"#,
    )
    .unwrap();
    let c = Config::load(dir.path()).unwrap();
    assert_eq!(
        serde_json::Value::Object(c.clients.clone())["mysql"],
        json!({"host": "localhost", "port": 3306})
    );
    assert_eq!(c.runner.listen.to_string(), "[::]:9099");
    assert_eq!(c.runner.default_timeout, Duration::from_secs(5));
    assert_eq!(c.runner.default_memory_mb, 64);
    assert_eq!(c.runner.modules_dir, dir.path().join("wasm"));
    assert!(!c.service.settings.contains_key("overrides"));
}

#[test]
fn an_unknown_runner_setting_is_an_error() {
    let dir = config_dir(r#"{"pipelines": {}}"#, &[]);
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"runner": {"http_prot": 1}}"#,
    )
    .unwrap();
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("http_prot"),
        "{err}"
    );
}

#[test]
fn capabilities_are_read_and_checked() {
    let c = load(
        r#"{"pipelines": {"p": {"period": 1, "jobs": [
        {"name": "a", "capabilities": ["prometheus", "sql"]}, {"name": "b"}]}}}"#,
    )
    .unwrap();
    let jobs = &c.service.pipelines[0].jobs;
    assert!(jobs[0].grants.prometheus && jobs[0].grants.sql && !jobs[0].grants.api_service);
    assert_eq!(
        jobs[1].grants,
        runner::host::Capabilities::ALL,
        "no list: every client"
    );

    let err = load(
        r#"{"pipelines": {"p": {"period": 1, "jobs": [
        {"name": "a", "capabilities": ["prometheus", "kafka"]}]}}}"#,
    )
    .unwrap_err();
    assert!(
        err.contains("job 'a'") && err.contains("unknown capability 'kafka'"),
        "{err}"
    );
}

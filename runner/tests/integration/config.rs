//! Loading tglib's configuration files.

use std::time::Duration;

use serde_json::json;
use tgrun::config::Config;

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
    assert_eq!(p.timing.schedule.period(), Some(Duration::from_secs(300)));
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
    assert_eq!(p.timing.schedule.period(), Some(Duration::from_millis(500)));
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
fn the_cluster_setting_is_read_and_checked() {
    use tgrun::cluster::auth::NatsAuth;
    let dir = config_dir(r#"{"pipelines": {}}"#, &[]);
    let with = |cluster: &str| {
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"runner": {{"cluster": {cluster}}}}}"#),
        )
        .unwrap();
        Config::load(dir.path()).map_err(|e| e.to_string())
    };
    let c = with(r#"{"name": "tg-east_1", "nats": ["nats://10.0.0.1:4222"], "ack_wait_s": 45}"#)
        .unwrap();
    let cluster = c.runner.cluster.unwrap();
    assert_eq!(cluster.name, "tg-east_1");
    assert_eq!(cluster.servers, vec!["nats://10.0.0.1:4222".to_string()]);
    assert_eq!(cluster.ack_wait, Duration::from_secs(45));
    assert_eq!(
        with(r#"{"name": "a", "nats": ["nats://x:4222"]}"#)
            .unwrap()
            .runner
            .cluster
            .unwrap()
            .ack_wait,
        Duration::from_secs(30)
    );
    // Credentials and TLS, files relative to the configuration directory.
    std::fs::write(dir.path().join("ca.pem"), "-").unwrap();
    let c = with(
        r#"{"name": "a", "nats": ["tls://x:4222"], "token": "tok-1234",
            "tls": {"ca_file": "ca.pem"}}"#,
    )
    .unwrap()
    .runner
    .cluster
    .unwrap();
    assert_eq!(c.auth, NatsAuth::Token("tok-1234".into()));
    assert_eq!(c.tls.unwrap().ca_file.unwrap(), dir.path().join("ca.pem"));
    assert!(!format!("{:?}", c.auth).contains("tok-1234"));
    for (bad, says) in [
        (
            r#"{"name": "a.b", "nats": ["nats://x:4222"]}"#,
            "'name' \"a.b\"",
        ),
        (r#"{"name": "a", "nats": []}"#, "at least one server"),
        (
            r#"{"name": "a", "nats": ["n"], "ack_wait_s": 0.5}"#,
            "ack_wait_s",
        ),
        (r#"{"nats": ["n"]}"#, "name"),
        (
            r#"{"name": "a", "nats": ["n"], "user": "u"}"#,
            "'user' and 'password' go together",
        ),
        (
            r#"{"name": "a", "nats": ["n"], "token": "t", "user": "u", "password": "p"}"#,
            "one kind of credentials",
        ),
        (
            r#"{"name": "a", "nats": ["n"], "credentials_file": "none.creds"}"#,
            "none.creds is not a file",
        ),
        (
            r#"{"name": "a", "nats": ["n"], "tls": {"ca_file": "no-ca.pem"}}"#,
            "'tls.ca_file'",
        ),
        (
            r#"{"name": "a", "nats": ["n"], "tls": {"cert_file": "service_config.json"}}"#,
            "go together",
        ),
    ] {
        let err = with(bad).unwrap_err();
        // Names the file, the setting and what is wrong.
        assert!(
            err.contains("config.json") && err.contains("cluster") && err.contains(says),
            "{bad}: {err}"
        );
    }
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
        tgrun::run::Capabilities::ALL,
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

#[test]
fn scheduling_policy_mistakes_name_their_place() {
    let job = |extra: &str| {
        format!(r#"{{"pipelines": {{"p": {{"period": 1, "jobs": [{{"name": "a", {extra}}}]}}}}}}"#)
    };
    let pipe = |keys: &str| format!(r#"{{"pipelines": {{"p": {{{keys}, "jobs": []}}}}}}"#);
    for (service, expect) in [
        (
            pipe(r#""period": -5"#),
            "'period' must be a positive number",
        ),
        (
            pipe(r#""period": 1, "cron": "* * * * *""#),
            "both a period and 'cron'",
        ),
        (
            pipe(r#""cron": "61 * * * *""#),
            "pipeline 'p': 'cron': minute field",
        ),
        (pipe(r#""cron": "0 0 31 2 *""#), "never due"),
        (pipe(r#""cron": 5"#), "'cron' must be a string"),
        (
            pipe(r#""cron": "@daily", "timezone": "Europe/Paname""#),
            "\"Europe/Paname\" is not an IANA time zone",
        ),
        (
            pipe(r#""period": 60, "timezone": "UTC""#),
            "'timezone' applies to 'cron' only",
        ),
        (
            pipe(r#""period": 1, "jitter_s": 2"#),
            "'jitter_s' (2s) must be less than the period",
        ),
        (
            pipe(r#""period": 1, "jitter_s": -1"#),
            "'jitter_s' must be a number",
        ),
        (
            pipe(r#""period": 1, "missed": "burst""#),
            "'missed' must be one of run_once, skip",
        ),
        (
            pipe(r#""period": 1, "misssed": "skip""#),
            "did you mean 'missed'",
        ),
        (
            job(r#""overlap": "pile""#),
            "job 'a' (jobs[0]): 'overlap' must be one of skip, queue, replace, allow",
        ),
        (
            job(r#""retries": 11"#),
            "'retries' must be a whole number from 0 to 10",
        ),
        (job(r#""retries": -1"#), "'retries'"),
        (
            job(r#""retry_backoff_s": 0"#),
            "'retry_backoff_s' must be a positive number",
        ),
        (
            job(r#""capabilities": ["prometheus", "email"]"#),
            "'capabilities'",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1}, "q": {"period": 2},
                "p": {"period": 3}}}"#
                .to_owned(),
            "line 2",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1}}, "pipelines": {}}"#.to_owned(),
            "\"pipelines\" appears twice",
        ),
    ] {
        let err = load(&service).expect_err(&service);
        assert!(err.contains(expect), "{service}:\n  {err}");
        assert!(err.contains("service_config.json"), "names the file: {err}");
    }
}

#[test]
fn scheduling_policies_are_read() {
    let c = load(
        r#"{"pipelines": {
            "nightly": {"cron": "30 2 * * *", "timezone": "Europe/Berlin", "jitter_s": 30,
                        "missed": "skip",
                        "jobs": [{"name": "a", "overlap": "replace", "retries": 3,
                                  "retry_backoff_s": 0.5}]},
            "tglib": {"period": 300, "jobs": [{"name": "b"}]}}}"#,
    )
    .unwrap();
    let nightly = &c
        .service
        .pipelines
        .iter()
        .find(|p| &*p.name == "nightly")
        .unwrap();
    assert_eq!(
        nightly.timing.schedule.describe(),
        "cron \"30 2 * * *\" Europe/Berlin"
    );
    assert_eq!(nightly.timing.jitter, std::time::Duration::from_secs(30));
    assert_eq!(nightly.timing.missed, tgrun::schedule::Missed::Skip);
    let a = &nightly.jobs[0];
    assert_eq!(a.overlap, tgrun::run::Overlap::Replace);
    assert_eq!(a.retry.max, 3);
    assert_eq!(a.retry.backoff, std::time::Duration::from_millis(500));
    let tglib = &c
        .service
        .pipelines
        .iter()
        .find(|p| &*p.name == "tglib")
        .unwrap();
    assert_eq!(
        tglib.timing.schedule.period(),
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(tglib.jobs[0].overlap, tgrun::run::Overlap::Skip);
    assert_eq!(tglib.jobs[0].retry.max, 0);
}

/// Values that pass the old checks and crashed the runner later (issue 19): each refused at
/// load, naming its key, whether in `config.json` or in `overrides`.
#[test]
fn a_value_that_would_overflow_later_is_refused_at_load() {
    for (service, expect) in [
        (
            r#"{"pipelines": {"p": {"period": 1e13, "jobs": []}}}"#,
            "'period'",
        ),
        (
            r#"{"pipelines": {"route GET /x": {"period": 1, "jobs": []}}}"#,
            "may not start with 'route '",
        ),
        (
            r#"{"pipelines": {"p": {"period": 1, "jobs": [{"name": "a", "timeout_s": 1e20}]}}}"#,
            "'timeout_s'",
        ),
        (
            r#"{"pipelines": {}, "overrides": {"runner": {"default_timeout_s": 1e19}}}"#,
            "'runner.default_timeout_s'",
        ),
        (
            r#"{"pipelines": {}, "overrides": {"prometheus": {"host": "h", "port": 1, "timeout_s": 1e20}}}"#,
            "'prometheus.timeout_s'",
        ),
        (
            r#"{"pipelines": {}, "overrides": {"apiservice": {"nms": {"host": "h", "port": 1}, "refresh_s": 1e300}}}"#,
            "'apiservice.refresh_s'",
        ),
    ] {
        let err = load(service).expect_err(service);
        assert!(err.contains(expect), "{service}: {err}");
    }
    for (runner, key) in [
        (r#"{"sql_max_mb": 17592186044416}"#, "sql_max_mb"),
        (r#"{"max_log_kb": 18014398509481984}"#, "max_log_kb"),
        (r#"{"max_output_kb": 0}"#, "max_output_kb"),
        (
            r#"{"history_max_rows": 9223372036854775808}"#,
            "history_max_rows",
        ),
        (r#"{"history_max_age_s": 1e18}"#, "history_max_age_s"),
        (r#"{"metrics_ttl_s": 1e18}"#, "metrics_ttl_s"),
        (r#"{"shutdown_grace_s": 1e9}"#, "shutdown_grace_s"),
        (r#"{"queue_capacity": 100000000000}"#, "queue_capacity"),
        (r#"{"max_large_instances": 0}"#, "max_large_instances"),
        (
            r#"{"max_memory_mb": 64, "large_memory_kept_mb": 65}"#,
            "large_memory_kept_mb",
        ),
        (
            r#"{"sql_max_transactions_per_run": 0}"#,
            "sql_max_transactions_per_run",
        ),
        (
            r#"{"sql_max_statement_s": 18446744073709551}"#,
            "sql_max_statement_s",
        ),
        (
            r#"{"cluster": {"name": "c", "nats": ["nats://x"], "ack_wait_s": 1e12}}"#,
            "ack_wait_s",
        ),
    ] {
        let dir = config_dir(r#"{"pipelines": {}}"#, &[]);
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"runner": {runner}}}"#),
        )
        .unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains(key),
            "{runner}: {err}"
        );
    }
}

/// A job may name the component that runs it (several jobs of one tglib `jobs.py` share
/// one); by default it is the job's own name. A module is a file name, never a path.
#[test]
fn a_job_names_its_module_or_runs_its_own() {
    let c = load(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [
            {"name": "add_x", "module": "tglib_service", "enabled": true},
            {"name": "echo", "enabled": true}]}}}"#,
    )
    .unwrap();
    let modules: Vec<(&str, &str)> = c
        .service
        .jobs()
        .map(|(_, j)| (&*j.name, &*j.module))
        .collect();
    assert_eq!(modules, vec![("add_x", "tglib_service"), ("echo", "echo")]);
    for bad in [r#""../etc/passwd""#, r#"".hidden""#, "5", r#""""#] {
        let err = load(&format!(
            r#"{{"pipelines": {{"p": {{"period": 60, "jobs": [{{"name": "a", "module": {bad}}}]}}}}}}"#
        ))
        .unwrap_err();
        assert!(
            err.contains("job 'a' (jobs[0])") && err.contains("'module' must name a module file"),
            "{bad}: {err}"
        );
    }
}

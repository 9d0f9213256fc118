//! `PUT`/`PATCH /config` bodies: parsed strictly, merged into the configuration in force
//! (PATCH) and validated, as the routes do; an error or a configuration, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const IN_FORCE: &str = r#"{"num_consumers": 2, "pipelines": {"p": {"period": 60, "jobs": [
    {"name": "echo", "enabled": true, "params": {"x": 1}}]}}, "site": "a"}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(body) = runner::config::values::parse_strict(text) else {
        return;
    };
    let Some(Value::Object(patch)) = body.get("config") else {
        return;
    };
    let dir = std::path::Path::new("/nonexistent-tgrun-fuzz");
    // PUT: the body is the whole configuration.
    let _ = runner::config::Config::with_service(dir, Value::Object(patch.clone()));
    // PATCH: deep-merged into the configuration in force.
    let Ok(Value::Object(mut merged)) = serde_json::from_str::<Value>(IN_FORCE) else {
        return;
    };
    runner::config::merge::deep_merge(&mut merged, patch);
    let _ = runner::config::Config::with_service(dir, Value::Object(merged));
});

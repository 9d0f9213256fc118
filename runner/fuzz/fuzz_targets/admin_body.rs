//! `PUT`/`PATCH /config` bodies: parsed strictly, merged into the configuration in force
//! (PATCH) and validated as the service does (`Config::applied_to`: as the next start reads
//! it, runner settings kept); what is accepted is applied live to a running scheduler on a
//! virtual clock. An error or a working scheduler, never a panic.
#![no_main]

mod common;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tgrun::config::Config;
use serde_json::Value;

const IN_FORCE: &str = r#"{"num_consumers": 2, "pipelines": {"p": {"period": 60, "jobs": [
    {"name": "echo", "enabled": true, "params": {"x": 1}}]}}, "site": "a"}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(body) = tgrun::config::values::parse_strict(text) else {
        return;
    };
    let Some(Value::Object(patch)) = body.get("config") else {
        return;
    };
    let dir = Path::new(common::DIR);
    let Ok(in_force_raw) = serde_json::from_str::<Value>(IN_FORCE) else {
        return;
    };
    let Ok(in_force) = Config::with_service(dir, in_force_raw.clone()) else {
        return;
    };
    // PUT: the body is the whole configuration.
    let put = Config::applied_to(dir, Value::Object(patch.clone()), &in_force);
    // PATCH: deep-merged into the configuration in force.
    let Value::Object(mut merged) = in_force_raw else {
        return;
    };
    tgrun::config::merge::deep_merge(&mut merged, patch);
    let patched = Config::applied_to(dir, Value::Object(merged), &in_force);
    let start_ms = i64::try_from(data.len()).unwrap_or(0) * 86_400_007;
    for (config, _restart_required) in [put, patched].into_iter().flatten() {
        common::tick(&in_force, Some(&config), start_ms);
    }
});

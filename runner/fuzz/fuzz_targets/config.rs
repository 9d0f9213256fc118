//! The configuration loader on any `service_config.json`: an error or a configuration,
//! never a panic; and a configuration it accepts runs (a scheduler built from it, ticking
//! on a virtual clock) without a panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new(common::DIR).join("service_config.json");
    let Ok(value) = tgrun::config::parse_json(&path, text) else {
        return;
    };
    let Ok(config) = tgrun::config::Config::with_service(std::path::Path::new(common::DIR), value)
    else {
        return;
    };
    for p in &config.service.pipelines {
        let _ = p.timing.schedule.describe();
    }
    // The start time from the input, so due-time arithmetic meets every era.
    let start_ms = data
        .iter()
        .fold(0i64, |a, b| a.wrapping_mul(31).wrapping_add(i64::from(*b)));
    common::tick(&config, None, start_ms);
});

//! The configuration loader on any `service_config.json`: an error or a configuration,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/nonexistent-tgrun-fuzz/service_config.json");
    let Ok(value) = runner::config::parse_json(path, text) else {
        return;
    };
    let dir = std::path::Path::new("/nonexistent-tgrun-fuzz");
    if let Ok(config) = runner::config::Config::with_service(dir, value) {
        // What the scheduler derives from it at start must not panic either.
        let now = chrono::Utc::now();
        for p in &config.service.pipelines {
            let _ = p.timing.schedule.next_after(now);
            let _ = p.timing.schedule.describe();
        }
    }
});

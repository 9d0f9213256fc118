//! What guests (and upstream answers) hand to host functions: metric batches for
//! `write-metrics` (validated, stored, rendered on `/metrics`), range steps, Prometheus
//! range answers, cron expressions. An error value or a result, never a panic.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tgrun::bindings::tgrun::job::prometheus::{Metric, Range};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{0}');
    let first = parts.next().unwrap_or_default().to_owned();
    let rest: Vec<String> = parts.map(str::to_owned).collect();

    // A metric: name, then label pairs; the value from the input's length.
    let labels: Vec<(String, String)> = rest
        .chunks(2)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect();
    let metric = Metric {
        name: first.clone(),
        labels: labels.clone(),
        value: f64::from_bits(data.len() as u64 * 0x9E37_79B9_7F4A_7C15),
        time_ms: data.first().map(|b| i64::from(*b) * 1_000_000_007),
    };
    if tgrun::host::prometheus::validate(&metric).is_ok() {
        let cache = tgrun::metrics::MetricsCache::new(Duration::from_secs(300), 4);
        let sample = tgrun::metrics::Sample {
            name: metric.name.clone(),
            labels: metric.labels.clone(),
            value: metric.value,
            time_ms: metric.time_ms,
        };
        let _ = cache.write("fuzz", &[sample.clone(), sample]);
        let exposition = cache.render();
        assert!(exposition.lines().all(|l| !l.contains('\n')));
    }

    let range = Range {
        query: first.clone(),
        step: rest.first().cloned().unwrap_or_default(),
        start: data.len() as f64,
        end: data.last().map(|b| f64::from(*b)),
    };
    let _ = tgrun::host::prometheus::check_range(&range);
    let _ = tgrun::clients::range::duration_seconds(&first);

    if let Ok(answer) = serde_json::from_str::<serde_json::Value>(&first) {
        let timestamps = serde_json::from_str(rest.first().map_or("[]", String::as_str))
            .unwrap_or(serde_json::Value::Null);
        let _ = tgrun::clients::range::drop_stale_and_held(answer, &timestamps, 0.0, 15);
    }

    let tz = rest.first().map_or("UTC", String::as_str);
    if let Ok(cron) = tgrun::schedule::cron::Cron::parse(&first, tz) {
        let _ = cron.next_after(chrono::Utc::now());
    }
});

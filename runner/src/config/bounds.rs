//! Upper bounds of every duration and size in the configuration: a value that passes
//! validation never overflows later (a deadline, a byte count, a SQL `OFFSET`), in the
//! files or in `overrides`. Each bound is in the README's configuration reference.

use std::time::Duration;

use serde_json::{Map, Value};

use super::values::kind;

/// A day: the longest a run, a request or a statement may be given.
pub const DAY: Duration = Duration::from_secs(86_400);
/// The longest a pipeline's period may be: a leap year.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);
/// The longest anything is kept or waited for: ten years.
pub const MAX_KEEP: Duration = Duration::from_secs(3_650 * 86_400);
/// The largest size in MiB (answers, query results).
pub const MAX_MB: usize = 4_096;
/// The largest per-run output or log budget, KiB.
pub const MAX_KB: usize = 65_536;
/// The largest count (rows, series, queue places).
pub const MAX_COUNT: u64 = 1_000_000_000;

/// `v` seconds, or `default` when absent: refused unless in (0, max] (or [0, max] when
/// `zero_ok`), with a message saying so.
pub fn seconds(
    v: Option<f64>,
    default: Duration,
    max: Duration,
    zero_ok: bool,
) -> Result<Duration, String> {
    let Some(s) = v else {
        return Ok(default);
    };
    let least = if zero_ok { "0" } else { "more than 0" };
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| (zero_ok || !d.is_zero()) && *d <= max)
        .ok_or_else(|| {
            format!(
                "must be a number of seconds, {least} and at most {}, found {s}",
                max.as_secs()
            )
        })
}

/// `v`, or `default` when absent: refused unless in `lo..=hi`.
pub fn count<T>(v: Option<T>, default: T, lo: T, hi: T) -> Result<T, String>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    match v {
        None => Ok(default),
        Some(n) if n >= lo && n <= hi => Ok(n),
        Some(n) => Err(format!(
            "must be a whole number from {lo} to {hi}, found {n}"
        )),
    }
}

/// The clients' numbers in `config.json` (with the overrides merged in), checked before
/// anything is saved or started: `prometheus` and `apiservice`.
pub fn check_clients(clients: &Map<String, Value>) -> Result<(), (String, String)> {
    let secs = |key: &str, max: Duration, zero_ok: bool| (key.to_owned(), max, zero_ok);
    let checks = [
        (
            "prometheus",
            vec![secs("timeout_s", DAY, false)],
            vec![("max_response_mb", MAX_MB as u64)],
        ),
        (
            "apiservice",
            vec![secs("timeout_s", DAY, false), secs("refresh_s", DAY, true)],
            vec![
                ("max_response_mb", MAX_MB as u64),
                ("max_fanout", 1_024),
                ("max_concurrent_requests", 256),
            ],
        ),
    ];
    for (client, durations, sizes) in checks {
        let Some(Value::Object(obj)) = clients.get(client) else {
            continue;
        };
        for (key, max, zero_ok) in durations {
            if let Some(v) = obj.get(&key) {
                let where_ = format!("'{client}.{key}'");
                let n = v.as_f64().ok_or_else(|| {
                    (
                        where_.clone(),
                        format!("must be a number of seconds, found {}", kind(v)),
                    )
                })?;
                seconds(Some(n), Duration::ZERO, max, zero_ok).map_err(|m| (where_, m))?;
            }
        }
        for (key, hi) in sizes {
            if let Some(v) = obj.get(key) {
                let where_ = format!("'{client}.{key}'");
                let n = v.as_u64().ok_or_else(|| {
                    (
                        where_.clone(),
                        format!("must be a whole number from 1 to {hi}, found {}", kind(v)),
                    )
                })?;
                count(Some(n), 1, 1, hi).map_err(|m| (where_, m))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_counts_past_their_bounds_are_refused() {
        assert!(seconds(Some(1e19), DAY, DAY, false).is_err());
        assert!(seconds(Some(f64::NAN), DAY, DAY, false).is_err());
        assert!(seconds(Some(0.0), DAY, DAY, false).is_err());
        assert_eq!(seconds(Some(0.0), DAY, DAY, true), Ok(Duration::ZERO));
        assert_eq!(seconds(None, DAY, DAY, true), Ok(DAY));
        assert!(count(Some(0u64), 5, 1, 10).is_err());
        assert_eq!(count(Some(10u64), 5, 1, 10), Ok(10));
        let clients = serde_json::json!({"prometheus": {"host": "h", "port": 1, "timeout_s": 1e20},
                                         "apiservice": {"max_response_mb": 1u64 << 50}});
        let (at, msg) = check_clients(clients.as_object().unwrap()).unwrap_err();
        assert_eq!(at, "'prometheus.timeout_s'");
        assert!(msg.contains("at most 86400"), "{msg}");
        let clients = serde_json::json!({"apiservice": {"max_response_mb": 1u64 << 50}});
        let (at, _) = check_clients(clients.as_object().unwrap()).unwrap_err();
        assert_eq!(at, "'apiservice.max_response_mb'");
    }
}

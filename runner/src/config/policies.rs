//! Scheduling policies in `service_config.json`, beyond tglib's `period`:
//!
//! - per pipeline: `cron` and `timezone` instead of `period`, `jitter_s`, `missed`;
//! - per job: `overlap`, `retries`, `retry_backoff_s`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::values::kind;
use crate::run::Overlap;
use crate::run::retry::{MAX_BACKOFF, MAX_RETRIES, Retry};
use crate::schedule::cron::Cron;
use crate::schedule::{Missed, Schedule};

/// Shortest period a pipeline may have.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);

/// A pipeline's schedule and what it does about missed and simultaneous runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub schedule: Schedule,
    /// Each due run waits a random time from 0 up to this before it is enqueued.
    pub jitter: Duration,
    pub missed: Missed,
}

/// `period` / `period_s` or `cron` (+ `timezone`), `jitter_s`, `missed`.
pub fn timing(obj: &Map<String, Value>) -> Result<Timing, String> {
    let period = match (obj.get("period"), obj.get("period_s")) {
        (Some(_), Some(_)) => return Err("has both 'period' and 'period_s'; give one".into()),
        (Some(p), None) | (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    let schedule = match (period, obj.get("cron")) {
        (Some(_), Some(_)) => {
            return Err("has both a period and 'cron'; give one of them".into());
        }
        (None, None) => {
            return Err(
                "needs 'period' (seconds between runs) or 'cron' (such as \"*/5 * * * *\")".into(),
            );
        }
        (Some(p), None) => {
            if obj.contains_key("timezone") {
                return Err("'timezone' applies to 'cron' only; a period has none".into());
            }
            let max = super::bounds::MAX_PERIOD;
            Schedule::Every(
                seconds(p)
                    .filter(|d| *d >= MIN_PERIOD && *d <= max)
                    .ok_or_else(|| {
                        format!(
                            "'period' must be a positive number of seconds, from 0.001 to {} (366 days), found {}",
                            max.as_secs(),
                            kind(p)
                        )
                    })?,
            )
        }
        (None, Some(Value::String(expr))) => {
            let tz = match obj.get("timezone") {
                None => "UTC",
                Some(Value::String(tz)) => tz.as_str(),
                Some(other) => {
                    return Err(format!(
                        "'timezone' must be a string such as \"Europe/Berlin\", found {}",
                        kind(other)
                    ));
                }
            };
            Schedule::Cron(Arc::new(
                Cron::parse(expr, tz).map_err(|e| format!("'cron': {e}"))?,
            ))
        }
        (None, Some(other)) => {
            return Err(format!(
                "'cron' must be a string such as \"30 2 * * *\", found {}",
                kind(other)
            ));
        }
    };
    let jitter = match obj.get("jitter_s") {
        None => Duration::ZERO,
        Some(j) => match j.as_f64() {
            Some(0.0) => Duration::ZERO,
            _ => seconds(j).ok_or_else(|| {
                format!(
                    "'jitter_s' must be a number of seconds, 0 or more, found {}",
                    kind(j)
                )
            })?,
        },
    };
    if let Some(p) = schedule.period().filter(|p| jitter >= *p) {
        return Err(format!(
            "'jitter_s' ({}s) must be less than the period ({}s), or runs would overlap the next",
            jitter.as_secs_f64(),
            p.as_secs_f64()
        ));
    }
    let missed = match obj.get("missed") {
        None => Missed::default(),
        Some(v) => v.as_str().and_then(Missed::parse).ok_or_else(|| {
            format!(
                "'missed' must be one of {}, found {}",
                Missed::NAMES.join(", "),
                kind(v)
            )
        })?,
    };
    Ok(Timing {
        schedule,
        jitter,
        missed,
    })
}

/// A job's `overlap`, `retries` and `retry_backoff_s`.
pub fn job_policies(obj: &Map<String, Value>) -> Result<(Overlap, Retry), String> {
    let overlap = match obj.get("overlap") {
        None => Overlap::default(),
        Some(v) => v.as_str().and_then(Overlap::parse).ok_or_else(|| {
            format!(
                "'overlap' must be one of {}, found {}",
                Overlap::NAMES.join(", "),
                kind(v)
            )
        })?,
    };
    let max = match obj.get("retries") {
        None => 0,
        Some(v) => match v.as_u64() {
            Some(n) if n <= u64::from(MAX_RETRIES) => n as u32,
            _ => {
                return Err(format!(
                    "'retries' must be a whole number from 0 to {MAX_RETRIES}, found {}",
                    kind(v)
                ));
            }
        },
    };
    let backoff = match obj.get("retry_backoff_s") {
        None => Retry::DEFAULT_BACKOFF,
        Some(v) => seconds(v).filter(|d| *d <= MAX_BACKOFF).ok_or_else(|| {
            format!(
                "'retry_backoff_s' must be a positive number of seconds up to {}, found {}",
                MAX_BACKOFF.as_secs(),
                kind(v)
            )
        })?,
    };
    Ok((overlap, Retry { max, backoff }))
}

/// A positive, finite number of seconds.
pub fn seconds(v: &Value) -> Option<Duration> {
    v.as_f64()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

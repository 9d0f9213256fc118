//! When a pipeline is due (every `period`, or on a cron expression), what becomes of due
//! times missed while the runner was down or behind, and the clock all of it reads: the
//! system's, or a virtual one that follows tokio's paused time in tests.

pub mod cron;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use cron::Cron;

/// When a pipeline's jobs are due.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// tglib's `period`: due times `period` apart.
    Every(Duration),
    /// A cron expression in a time zone.
    Cron(Arc<Cron>),
}

/// What a pipeline does about due times that passed while the runner was down, paused or
/// too busy: run once as soon as it can (default), or wait for the next due time. Never a
/// burst of every missed run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    #[default]
    RunOnce,
    Skip,
}

impl Missed {
    pub const NAMES: &[&str] = &["run_once", "skip"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "run_once" => Some(Self::RunOnce),
            "skip" => Some(Self::Skip),
            _ => None,
        }
    }
}

/// How late a due time may be acted on and still count as on time (a slow timer, a busy
/// machine): later than this, it counts as missed.
pub const ON_TIME: Duration = Duration::from_secs(1);
/// Missed due times counted one by one at most (a cron job down for a year).
const MAX_COUNTED: u64 = 100_000;

/// What a producer does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Enqueue the run due at `due` now. `missed` due times before it were not run.
    Fire { due: DateTime<Utc>, missed: u64 },
    /// Nothing is due: wait until `until`. `missed` due times were skipped; the producer
    /// continues from `last`.
    Wait {
        until: Option<DateTime<Utc>>,
        missed: u64,
        last: DateTime<Utc>,
    },
}

impl Schedule {
    /// The first due time strictly after `t` (none for a cron expression never due again).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(p) => Some(t + *p),
            Self::Cron(c) => c.next_after(t),
        }
    }

    /// The period, for a periodic schedule.
    pub fn period(&self) -> Option<Duration> {
        match self {
            Self::Every(p) => Some(*p),
            Self::Cron(_) => None,
        }
    }

    /// Due times in `(last, now]`: how many (counted up to a cap) and the latest.
    fn due_between(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> (u64, Option<DateTime<Utc>>) {
        if now <= last {
            return (0, None);
        }
        match self {
            Self::Every(p) => {
                let n = ((now - last).to_std().unwrap_or_default().as_nanos() / p.as_nanos().max(1))
                    as u64;
                let latest = (n > 0).then(|| last + *p * n.min(u64::from(u32::MAX)) as u32);
                (n, latest)
            }
            Self::Cron(c) => {
                let (mut n, mut latest, mut t) = (0, None, last);
                while let Some(next) = c.next_after(t).filter(|d| *d <= now) {
                    n += 1;
                    latest = Some(next);
                    t = next;
                    if n >= MAX_COUNTED {
                        // Only the latest matters beyond here: jump close to `now`.
                        t = t.max(now - chrono::Duration::days(1));
                    }
                }
                (n, latest)
            }
        }
    }

    /// What to do at `now`, the last due time acted on being `last`.
    pub fn step(&self, missed: Missed, last: DateTime<Utc>, now: DateTime<Utc>) -> Step {
        let (n, latest) = self.due_between(last, now);
        let Some(latest) = latest else {
            return Step::Wait {
                until: self.next_after(last),
                missed: 0,
                last,
            };
        };
        let late = (now - latest).to_std().unwrap_or_default();
        if late <= ON_TIME || missed == Missed::RunOnce {
            return Step::Fire {
                due: latest,
                missed: n - 1,
            };
        }
        Step::Wait {
            until: self.next_after(latest),
            missed: n,
            last: latest,
        }
    }

    /// The schedule for people: `every 300s` or `cron "30 2 * * *" Europe/Berlin`.
    pub fn describe(&self) -> String {
        match self {
            Self::Every(p) => format!("every {}s", p.as_secs_f64()),
            Self::Cron(c) => format!("cron {:?} {}", c.text(), c.tz()),
        }
    }
}

/// The clock producers read and sleep on.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system's wall clock (re-read at least every [`Clock::RECHECK`], so a clock
    /// step or a suspended machine is noticed).
    #[default]
    System,
    /// Wall time that starts at `start_wall` and advances with tokio's clock: with tokio's
    /// time paused, days pass in milliseconds (tests across a daylight-saving change).
    Virtual {
        start_wall: DateTime<Utc>,
        start: tokio::time::Instant,
    },
}

impl Clock {
    const RECHECK: Duration = Duration::from_secs(30);

    pub fn virtual_from(start_wall: DateTime<Utc>) -> Self {
        Self::Virtual {
            start_wall,
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Virtual { start_wall, start } => *start_wall + start.elapsed(),
        }
    }

    /// Sleeps until the clock reads `t` or later.
    pub async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let left = (t - self.now()).to_std().unwrap_or_default();
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(Self::RECHECK)).await;
        }
    }
}

/// Milliseconds since the Unix epoch of a due time (tglib's `start_time_ms`).
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A due time from milliseconds since the Unix epoch.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn on_time_and_late_by_less_than_a_second_fire() {
        let s = Schedule::Every(Duration::from_secs(60));
        let last = t("2026-01-01T00:00:00Z");
        let step = s.step(Missed::Skip, last, t("2026-01-01T00:01:00.500Z"));
        assert_eq!(
            step,
            Step::Fire {
                due: t("2026-01-01T00:01:00Z"),
                missed: 0
            }
        );
    }

    #[test]
    fn after_downtime_run_once_fires_once_and_skip_waits() {
        let s = Schedule::Every(Duration::from_secs(60));
        let last = t("2026-01-01T00:00:00Z");
        let now = t("2026-01-01T01:00:30Z");
        assert_eq!(
            s.step(Missed::RunOnce, last, now),
            Step::Fire {
                due: t("2026-01-01T01:00:00Z"),
                missed: 59
            }
        );
        assert_eq!(
            s.step(Missed::Skip, last, now),
            Step::Wait {
                until: Some(t("2026-01-01T01:01:00Z")),
                missed: 60,
                last: t("2026-01-01T01:00:00Z")
            }
        );
    }

    #[test]
    fn cron_downtime_counts_every_missed_due_time() {
        let s = Schedule::Cron(Arc::new(Cron::parse("*/10 * * * *", "UTC").unwrap()));
        let step = s.step(
            Missed::RunOnce,
            t("2026-01-01T00:00:00Z"),
            t("2026-01-01T02:05:00Z"),
        );
        assert_eq!(
            step,
            Step::Fire {
                due: t("2026-01-01T02:00:00Z"),
                missed: 11
            }
        );
    }

    #[test]
    fn nothing_due_waits_for_the_next() {
        let s = Schedule::Every(Duration::from_secs(60));
        let last = t("2026-01-01T00:00:00Z");
        assert_eq!(
            s.step(Missed::RunOnce, last, t("2026-01-01T00:00:30Z")),
            Step::Wait {
                until: Some(t("2026-01-01T00:01:00Z")),
                missed: 0,
                last
            }
        );
    }
}

//! What the dashboard shows of recent runs, kept in memory as runs finish (with or without
//! a database): per job its last runs in brief, and the last failures whole, with their
//! log lines.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::run::outcome::RunReport;
use crate::sandbox::journal::LINE_COST;

/// Runs kept per job (the chart's bars).
pub const PER_JOB: usize = 60;
/// Failures kept, across jobs.
pub const FAILURES: usize = 25;
/// Bytes of log lines kept of each failure (its first lines; lines cost their text and
/// [`LINE_COST`]): the dashboard's memory and answer stay bounded whatever jobs log.
pub const FAILURE_LOG_BYTES: usize = 64 << 10;

/// One run, in brief.
#[derive(Debug, Clone, Serialize)]
pub struct Brief {
    pub run_id: String,
    pub pipeline: String,
    pub started_ms: i64,
    pub duration_ms: f64,
    pub outcome: &'static str,
    pub attempt: u32,
}

#[derive(Default)]
pub struct RecentRuns {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_job: HashMap<String, VecDeque<Brief>>,
    failures: VecDeque<Arc<RunReport>>,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What the dashboard keeps of a failed run: no metrics (it shows none), the first
/// [`FAILURE_LOG_BYTES`] of its log lines.
fn kept_of_failure(r: &RunReport) -> RunReport {
    let mut bytes = 0;
    let logs: Vec<_> = r
        .logs
        .iter()
        .take_while(|l| {
            bytes += l.message.len() + LINE_COST;
            bytes <= FAILURE_LOG_BYTES
        })
        .cloned()
        .collect();
    // Field by field: a failure's metrics (up to megabytes) are never copied.
    RunReport {
        job: r.job.clone(),
        run_id: r.run_id.clone(),
        pipeline: r.pipeline.clone(),
        scheduled_ms: r.scheduled_ms,
        started_at: r.started_at,
        duration: r.duration,
        outcome: r.outcome.clone(),
        logs_dropped: r.logs_dropped + (r.logs.len() - logs.len()) as u64,
        logs,
        output_dropped: r.output_dropped,
        metrics: Vec::new(),
        module_version: r.module_version.clone(),
        attempt: r.attempt,
    }
}

impl RecentRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, r: &Arc<RunReport>) {
        let brief = Brief {
            run_id: r.run_id.clone(),
            pipeline: r.pipeline.clone(),
            started_ms: ms(r.started_at),
            duration_ms: r.duration.as_secs_f64() * 1e3,
            outcome: r.outcome.name(),
            attempt: r.attempt,
        };
        let mut inner = self.lock();
        let runs = match inner.by_job.get_mut(&r.job) {
            Some(runs) => runs,
            None => inner.by_job.entry(r.job.clone()).or_default(),
        };
        if runs.len() == PER_JOB {
            runs.pop_front();
        }
        runs.push_back(brief);
        if r.outcome.is_failure() {
            if inner.failures.len() == FAILURES {
                inner.failures.pop_front();
            }
            inner.failures.push_back(Arc::new(kept_of_failure(r)));
        }
    }

    /// `job`'s last runs, oldest first.
    pub fn of(&self, job: &str) -> Vec<Brief> {
        self.lock()
            .by_job
            .get(job)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last failures, newest first.
    pub fn failures(&self) -> Vec<Arc<RunReport>> {
        self.lock().failures.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::run::outcome::{Outcome, WrittenMetric};
    use crate::sandbox::journal::{LogLevel, LogLine, LogStream};

    #[test]
    fn a_failure_is_kept_without_metrics_and_with_its_first_64_kib_of_lines() {
        let line = |n: usize| LogLine {
            level: LogLevel::Info,
            stream: LogStream::Log,
            message: format!("{n:04} {}", "x".repeat(1000)),
        };
        let report = RunReport {
            job: "j".into(),
            run_id: "r".into(),
            pipeline: "p".into(),
            scheduled_ms: 0,
            started_at: SystemTime::now(),
            duration: Duration::from_millis(1),
            outcome: Outcome::Trap {
                message: "boom".into(),
            },
            logs: (0..1000).map(line).collect(),
            logs_dropped: 7,
            output_dropped: 0,
            metrics: vec![
                WrittenMetric {
                    name: "m".into(),
                    labels: vec![],
                    value: 1.0,
                    time_ms: None,
                };
                100
            ],
            module_version: None,
            attempt: 1,
        };
        let recent = RecentRuns::default();
        for _ in 0..2 * FAILURES {
            recent.record(&Arc::new(report.clone()));
        }
        let kept = recent.failures();
        assert_eq!(kept.len(), FAILURES);
        let f = &kept[0];
        let bytes: usize = f.logs.iter().map(|l| l.message.len() + LINE_COST).sum();
        assert!(bytes <= FAILURE_LOG_BYTES && bytes > FAILURE_LOG_BYTES - 1100);
        assert!(f.logs[0].message.starts_with("0000 "), "the first lines");
        assert_eq!(f.logs_dropped, 7 + (1000 - f.logs.len()) as u64);
        assert!(f.metrics.is_empty());
        assert_eq!(f.outcome, report.outcome);
    }
}

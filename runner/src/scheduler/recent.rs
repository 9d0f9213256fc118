//! What the dashboard shows of recent runs, kept in memory as runs finish (with or without
//! a database): per job ([`JobId`]) its last runs in brief, and the last failures whole, with their
//! log lines.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::per_job::PerJob;
use crate::host::journal::LINE_COST;
use crate::run::JobId;
use crate::run::outcome::RunReport;

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

/// One run as kept: its job (and so its pipeline) is where it is kept.
#[derive(Debug, Default)]
struct Kept {
    run_id: String,
    started_ms: i64,
    duration_ms: f64,
    outcome: &'static str,
    attempt: u32,
}

impl Kept {
    fn brief(&self, pipeline: &str) -> Brief {
        Brief {
            run_id: self.run_id.clone(),
            pipeline: pipeline.to_owned(),
            started_ms: self.started_ms,
            duration_ms: self.duration_ms,
            outcome: self.outcome,
            attempt: self.attempt,
        }
    }
}

#[derive(Default)]
pub struct RecentRuns {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_job: PerJob<VecDeque<Kept>>,
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
        index: r.index,
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
        let mut inner = self.lock();
        let runs = inner.by_job.entry(&r.job, &r.pipeline, r.index);
        // A full job's oldest entry is reused, its run id's buffer with it: a run recorded
        // allocates nothing once its job has run PER_JOB times.
        let mut kept = match runs.len() {
            PER_JOB => runs.pop_front().unwrap_or_default(),
            _ => Kept::default(),
        };
        kept.run_id.clear();
        kept.run_id.push_str(&r.run_id);
        kept.started_ms = ms(r.started_at);
        kept.duration_ms = r.duration.as_secs_f64() * 1e3;
        kept.outcome = r.outcome.name();
        kept.attempt = r.attempt;
        runs.push_back(kept);
        if r.outcome.is_failure() {
            if inner.failures.len() == FAILURES {
                inner.failures.pop_front();
            }
            inner.failures.push_back(Arc::new(kept_of_failure(r)));
        }
    }

    /// `job`'s last runs, oldest first.
    pub fn of(&self, job: &JobId) -> Vec<Brief> {
        self.lock()
            .by_job
            .get(job)
            .map(|r| r.iter().map(|k| k.brief(&job.pipeline)).collect())
            .unwrap_or_default()
    }

    /// The last runs of a configured job's row, oldest first: its own and its module's
    /// runs by hand, the last [`PER_JOB`] of them.
    pub fn of_row(&self, job: &JobId) -> Vec<Brief> {
        let inner = self.lock();
        let by_hand = JobId::manual(&job.name);
        let own = inner.by_job.get(job).into_iter().flatten();
        let own = own.map(|k| k.brief(&job.pipeline));
        let manual = inner.by_job.get(&by_hand).into_iter().flatten();
        let manual = manual.map(|k| k.brief(&by_hand.pipeline));
        let mut runs: Vec<Brief> = own.chain(manual).collect();
        runs.sort_by_key(|b| b.started_ms);
        let over = runs.len().saturating_sub(PER_JOB);
        runs.drain(..over);
        runs
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
    use crate::host::journal::{LogLevel, LogLine, LogStream};
    use crate::run::outcome::{Outcome, WrittenMetric};

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
            index: 0,
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

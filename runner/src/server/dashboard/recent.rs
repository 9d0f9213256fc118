//! What the dashboard shows of recent runs, kept in memory as runs finish (with or without
//! a database): per job its last runs in brief, and the last failures whole, with their
//! log lines.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::sandbox::outcome::RunReport;

/// Runs kept per job (the chart's bars).
pub const PER_JOB: usize = 60;
/// Failures kept, across jobs.
pub const FAILURES: usize = 25;

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
            inner.failures.push_back(r.clone());
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

    /// Keeps every report `events` sends from now on, for as long as it sends.
    pub fn follow(self: Arc<Self>, mut events: broadcast::Receiver<Arc<RunReport>>) {
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(r) => self.record(&r),
                    // Behind a burst: the dashboard misses some, nothing else does.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

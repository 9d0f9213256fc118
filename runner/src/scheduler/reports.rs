//! Where every finished run goes ([`Reports`]): logged, counted ([`Stats`], the run book),
//! kept for the dashboard, persisted to the history, and published to subscribers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use super::book::RunBook;
use super::history;
use super::recent::RecentRuns;
use crate::run::{Outcome, RunReport};

/// Counters of the scheduler as a whole.
#[derive(Debug, Default)]
pub struct Stats {
    /// Runs finished, whatever their outcome.
    pub runs: AtomicU64,
    /// Runs that failed (error, timeout, memory limit, trap, module missing or invalid).
    pub failed: AtomicU64,
    /// Runs a producer could not enqueue because the queue was full.
    pub dropped: AtomicU64,
    /// Due times that passed without a run (runner down, paused or behind).
    pub missed_ticks: AtomicU64,
    /// Due runs not started because the job's previous run was live (overlap policy).
    pub skipped: AtomicU64,
    /// Runs cancelled (replaced by a newer run, or stopped at shutdown).
    pub cancelled: AtomicU64,
    /// Retries started.
    pub retried: AtomicU64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What is kept and told of finished runs.
pub struct Reports {
    pub stats: Stats,
    /// Every finished run's report, to whoever subscribes (tests, the server's streams).
    pub events: broadcast::Sender<Arc<RunReport>>,
    /// Last run and counters per job (for `/jobs`, the dashboard and `/metrics`).
    pub book: RunBook,
    /// The last runs per job and the last failures (for the dashboard).
    pub recent: RecentRuns,
    /// Where finished runs are persisted, when there is a database.
    pub history: Option<history::Recorder>,
}

impl Reports {
    pub fn new(history: Option<history::Recorder>) -> Self {
        Self {
            stats: Stats::default(),
            events: broadcast::channel(4096).0,
            book: RunBook::default(),
            recent: RecentRuns::default(),
            history,
        }
    }

    /// Everything done with a finished run's report: logged, counted, remembered,
    /// published.
    pub fn finish(&self, report: RunReport) -> Arc<RunReport> {
        log_outcome(&report);
        self.finish_quietly(report)
    }

    /// [`Reports::finish`] without the log line (when one line already speaks for many).
    pub fn finish_quietly(&self, report: RunReport) -> Arc<RunReport> {
        let counter = match &report.outcome {
            o if o.is_failure() => Some(&self.stats.failed),
            Outcome::Skipped { .. } => Some(&self.stats.skipped),
            Outcome::Cancelled { .. } => Some(&self.stats.cancelled),
            _ => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if report.outcome.was_run() {
            self.stats.runs.fetch_add(1, Ordering::Relaxed);
        }
        let report = Arc::new(report);
        self.book.record(&report);
        self.recent.record(&report);
        if let Some(h) = &self.history {
            h.record(&report);
        }
        // No subscriber is fine: the report has been logged and booked.
        let _ = self.events.send(report.clone());
        report
    }

    /// Receives the report of every run that finishes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunReport>> {
        self.events.subscribe()
    }
}

fn log_outcome(r: &RunReport) {
    let ms = r.duration.as_secs_f64() * 1e3;
    let outcome = r.outcome.name();
    let attempt = r.attempt;
    if r.outcome.is_ok() {
        tracing::info!(job = %r.job, run_id = %r.run_id, pipeline = %r.pipeline, outcome,
            attempt, duration_ms = format_args!("{ms:.3}"), "run finished");
    } else if r.outcome.is_failure() {
        tracing::error!(job = %r.job, run_id = %r.run_id, pipeline = %r.pipeline, outcome,
            attempt, duration_ms = format_args!("{ms:.3}"), "run failed: {}", r.outcome.detail());
    } else {
        tracing::warn!(job = %r.job, run_id = %r.run_id, pipeline = %r.pipeline, outcome,
            attempt, "run not done: {}", r.outcome.detail());
    }
}

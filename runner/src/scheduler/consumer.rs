//! A consumer: takes runs from the queue, runs each in a fresh instance, reports it, and
//! deals with what follows: a retry after its backoff, or the job's next held run.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use tokio_util::sync::CancellationToken;

use super::{Due, Shared};
use crate::run::Invocation;
use crate::run::outcome::{Outcome, RunReport};

pub async fn consume(
    (queue, from): (Sender<Due>, Receiver<Due>),
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let due = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            next = from.recv() => match next {
                Ok(due) => due,
                Err(_) => return,
            },
        };
        let mut next = Some(due);
        while let Some(due) = next {
            next = run_due(&shared, due, &queue).await;
        }
    }
}

/// Runs one due run and deals with its end: a retry, or the job's next held run, which
/// is answered to be run now (`overlap: queue`).
async fn run_due(shared: &Arc<Shared>, due: Due, queue: &Sender<Due>) -> Option<Due> {
    let report = if due.inv.cancel.is_cancelled() {
        due.inv.not_run(Outcome::Cancelled {
            reason: due.inv.cancel.reason(),
        })
    } else {
        run_one(shared, &due.inv).await
    };
    let retry_in = if report.outcome.is_retryable() && !shared.stopping.is_cancelled() {
        due.retry.delay_before(due.inv.attempt + 1)
    } else {
        None
    };
    shared.finish(report);
    if let Some(delay) = retry_in {
        // The run stays live while it waits, so the overlap policy sees it.
        shared
            .retries
            .spawn(retry(shared.clone(), due, delay, queue.clone()));
        return None;
    }
    let next = due.slot.finished(&due.inv.cancel);
    match next {
        Some(held) if shared.stopping.is_cancelled() => {
            shared.not_started(held);
            None
        }
        next => next,
    }
}

/// Waits out a retry's backoff, then queues the next attempt with a run id of its own.
async fn retry(shared: Arc<Shared>, mut due: Due, delay: Duration, queue: Sender<Due>) {
    let cancelled = tokio::select! {
        _ = tokio::time::sleep(delay) => None,
        reason = due.inv.cancel.cancelled() => Some(reason),
        _ = shared.stopping.cancelled() => Some("retry not started: the runner stopped".into()),
    };
    due.inv.attempt += 1;
    due.inv.run_id = shared.run_ids.next();
    let outcome = match cancelled {
        Some(reason) => Outcome::Cancelled { reason },
        None => match queue.try_send(due) {
            Ok(()) => {
                shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                due = e.into_inner();
                shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Outcome::Dropped {
                    reason: "retry dropped: the queue was full".into(),
                }
            }
        },
    };
    shared.finish(due.inv.not_run(outcome));
    // Nothing else runs this job's held runs: start the next one on the queue.
    if let Some(next) = due.slot.finished(&due.inv.cancel)
        && let Err(e) = queue.try_send(next)
    {
        let next = e.into_inner();
        shared.finish(next.inv.not_run(Outcome::Dropped {
            reason: "dropped: the queue was full".into(),
        }));
        let _ = next.slot.finished(&next.inv.cancel);
    }
}

/// Runs one invocation in the sandbox, or reports why its module cannot run.
pub async fn run_one(shared: &Shared, inv: &Invocation) -> RunReport {
    match shared.modules.get(&inv.job).await {
        Ok(component) => shared.sandbox.run(&component, inv, true).await,
        Err(outcome) => inv.not_run(outcome),
    }
}

pub(crate) fn log_outcome(r: &RunReport) {
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

//! Where due runs wait between the producers and the consumers: the [`RunQueue`] the
//! scheduler owns, whichever it is. A producer offers each due time's runs; a consumer
//! takes the next run with a [`Lease`], runs it, records its report and settles the lease:
//! done, to be retried after a backoff, or handed back for another runner.
//!
//! [`LocalQueue`] is the in-process one: a bounded channel, each job's overlap policy
//! applied as runs are offered, retries waiting here. The cluster's (`cluster::jetstream`)
//! publishes to NATS JetStream and applies the policy across replicas instead.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_channel::{Receiver, Sender, TrySendError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::overlap::{Admission, JobRuns};
use super::{Due, Shared};
use crate::config::Pipeline;
use crate::run::Outcome;
use crate::schedule::ms;

/// A queue of due runs.
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Offers `pipeline`'s enabled jobs due at `due_at`. `slots` are their live runs, by
    /// place in the pipeline (looked up once per configuration).
    async fn offer(&self, pipeline: &Pipeline, slots: &[Arc<JobRuns>], due_at: DateTime<Utc>);

    /// The next run to do, held by a lease; none once `stop` is cancelled.
    async fn take(&self, stop: &CancellationToken) -> Option<Box<dyn Lease>>;

    /// Runs waiting to be taken.
    fn depth(&self) -> usize;

    /// Whether due times are on the grid every replica shares (multiples of the period
    /// since the Unix epoch), and for how long after a due time passed it may still be
    /// run by a runner that starts: none for a queue of one process.
    fn shared_grid(&self) -> Option<Duration> {
        None
    }

    /// What the queue does beside offers and takes, until `stop`.
    async fn background(&self, _stop: CancellationToken) {}

    /// Runs still waiting when the scheduler stops, to be recorded as never started.
    fn take_waiting(&self) -> Vec<Due> {
        Vec::new()
    }
}

/// How a run that ended is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Done,
    /// A failed attempt with retries left: the next attempt after this backoff.
    RetryAfter(Duration),
    /// Cut short by this runner's shutdown: another runner may take it (where there is
    /// one).
    HandBack,
}

/// A run taken from a queue, until it is settled.
#[async_trait]
pub trait Lease: Send + Sync {
    fn due(&self) -> &Due;

    /// Keeps the run leased while it goes (where a lease can run out); never returns.
    async fn keep_alive(&self) -> Infallible {
        std::future::pending().await
    }

    /// Settles the run once its report is recorded. Answers a run of the same job to do
    /// next at once (one it held back behind this one: `overlap: queue`).
    async fn settle(self: Box<Self>, how: Settle) -> Option<Box<dyn Lease>>;
}

/// The in-process queue.
pub struct LocalQueue {
    inner: Arc<Local>,
}

struct Local {
    tx: Sender<Due>,
    rx: Receiver<Due>,
    shared: Arc<Shared>,
}

impl LocalQueue {
    pub fn new(capacity: usize, shared: Arc<Shared>) -> Self {
        let (tx, rx) = async_channel::bounded(capacity);
        Self {
            inner: Arc::new(Local { tx, rx, shared }),
        }
    }
}

#[async_trait]
impl RunQueue for LocalQueue {
    async fn offer(&self, pipeline: &Pipeline, slots: &[Arc<JobRuns>], due_at: DateTime<Utc>) {
        self.inner.offer(pipeline, slots, due_at);
    }

    async fn take(&self, stop: &CancellationToken) -> Option<Box<dyn Lease>> {
        // A run waiting is taken at once: waiting on `stop` registers with the token every
        // consumer and producer shares, which a busy queue need not pay for on every run.
        let waiting = match stop.is_cancelled() {
            true => return None,
            false => self.inner.rx.try_recv().ok(),
        };
        let due = match waiting {
            Some(due) => due,
            None => tokio::select! {
                biased;
                _ = stop.cancelled() => return None,
                next = self.inner.rx.recv() => next.ok()?,
            },
        };
        Some(Box::new(LocalLease {
            due,
            queue: self.inner.clone(),
        }))
    }

    fn depth(&self) -> usize {
        self.inner.rx.len()
    }

    fn take_waiting(&self) -> Vec<Due> {
        std::iter::from_fn(|| self.inner.rx.try_recv().ok()).collect()
    }
}

impl Local {
    /// Each enabled job's run through its overlap policy, onto the channel; a full channel
    /// drops the run and counts it.
    fn offer(&self, pipeline: &Pipeline, slots: &[Arc<JobRuns>], due_at: DateTime<Utc>) {
        let shared = &self.shared;
        let scheduled_ms = ms(due_at);
        let (mut enqueued, mut dropped) = (0usize, Vec::new());
        let jobs = pipeline.jobs.iter().enumerate().zip(slots);
        for ((index, job), live) in jobs.filter(|((_, j), _)| j.enabled) {
            if self.tx.is_full() {
                // Known before anything is made for the run (an overloaded queue is when a
                // producer must cost least).
                dropped.push((index, job.name.clone()));
                continue;
            }
            let due = Due {
                inv: job.invocation((&pipeline.name, index), shared.run_ids.next(), scheduled_ms),
                live: live.clone(),
                retry: job.retry,
            };
            let (admission, replaced) = due.live.clone().admit(job.overlap, due);
            for r in replaced {
                let reason = r.inv.cancel.reason();
                shared
                    .reports
                    .finish(r.inv.not_run(Outcome::Cancelled { reason }));
            }
            match admission {
                Admission::Enqueue(due) => match self.tx.try_send(due) {
                    Ok(()) => enqueued += 1,
                    Err(TrySendError::Full(due)) => {
                        // Never live: forgotten, so that the job's next run is admitted.
                        let _ = due.live.finished(&due.inv.cancel);
                        dropped.push((due.inv.index, due.inv.job));
                    }
                    Err(TrySendError::Closed(_)) => return,
                },
                Admission::Held => {}
                Admission::Skipped(due, reason) => {
                    shared
                        .reports
                        .finish(due.inv.not_run(Outcome::Skipped { reason }));
                }
            }
        }
        if !dropped.is_empty() {
            count_dropped(shared, &pipeline.name, &dropped);
        }
        tracing::debug!(pipeline = %pipeline.name, enqueued, "enqueued the pipeline's jobs");
    }
}

/// Counts runs of one due time a full queue dropped: one log line, and per job on
/// `/metrics` and `/jobs` without a report each (an overloaded queue drops them by the
/// hundred thousand).
fn count_dropped(shared: &Shared, pipeline: &Arc<str>, dropped: &[(usize, Arc<str>)]) {
    let count = dropped.len();
    shared
        .reports
        .stats
        .dropped
        .fetch_add(count as u64, Ordering::Relaxed);
    let mut names: Vec<&str> = dropped.iter().map(|(_, j)| &**j).collect();
    names.dedup();
    tracing::warn!(%pipeline, dropped = count, jobs = %names.join(","),
        "queue full: runs of this due time dropped (consumers are not keeping up)");
    let jobs = dropped.iter().map(|(index, job)| (*index, &**job));
    shared
        .reports
        .book
        .count_not_run_in(pipeline, jobs, "dropped");
}

struct LocalLease {
    due: Due,
    queue: Arc<Local>,
}

#[async_trait]
impl Lease for LocalLease {
    fn due(&self) -> &Due {
        &self.due
    }

    async fn settle(self: Box<Self>, how: Settle) -> Option<Box<dyn Lease>> {
        let Self { due, queue } = *self;
        let shared = &queue.shared;
        if let Settle::RetryAfter(delay) = how {
            // The run stays live while it waits, so the overlap policy sees it.
            shared
                .retries
                .spawn(retry(shared.clone(), due, delay, queue.tx.clone()));
            return None;
        }
        // Nowhere to hand a run back to: done here.
        match due.live.finished(&due.inv.cancel) {
            Some(held) if shared.stopping.is_cancelled() => {
                shared.not_started(held);
                None
            }
            Some(held) => Some(Box::new(LocalLease {
                due: held,
                queue: queue.clone(),
            })),
            None => None,
        }
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
                shared.reports.stats.retried.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                due = e.into_inner();
                shared.reports.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Outcome::Dropped {
                    reason: "retry dropped: the queue was full".into(),
                }
            }
        },
    };
    shared.reports.finish(due.inv.not_run(outcome));
    // Nothing else runs this job's held runs: start the next one on the queue.
    if let Some(next) = due.live.finished(&due.inv.cancel)
        && let Err(e) = queue.try_send(next)
    {
        let next = e.into_inner();
        shared.reports.finish(next.inv.not_run(Outcome::Dropped {
            reason: "dropped: the queue was full".into(),
        }));
        let _ = next.live.finished(&next.inv.cancel);
    }
}

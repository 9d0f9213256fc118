//! The cluster's [`RunQueue`]: due runs published to the cluster's JetStream stream and
//! pulled by every replica's consumers.
//!
//! Offering publishes each enabled job's run with an id of its pipeline, place, job and due
//! time, so replicas publishing the same due time make one message; a run that cannot be
//! published (NATS away) waits in the outbox. Taking pulls one due run, resolves it against
//! this replica's own configuration, and applies its job's overlap policy across the
//! cluster ([`super::live`]): a run may be skipped, handed back to wait behind the live one
//! (`queue`), or cancel it (`replace`). While a run goes, its lease tells JetStream it is in
//! progress (and renews its live record), so only a replica that stops answering loses it.
//! Settling acknowledges it once its report is recorded, hands a failed attempt with
//! retries left back to be delivered again after its backoff, and a run cut short by this
//! replica's shutdown at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::connection::DEDUP_WINDOW;
use super::live::{Decision, WAIT_AGAIN};
use super::{Cluster, Published, WireRun};
use crate::config::Pipeline;
use crate::run::{Outcome, Overlap};
use crate::schedule::ms;
use crate::scheduler::overlap::{Admission, JobRuns};
use crate::scheduler::queue::{Lease, RunQueue, Settle};
use crate::scheduler::{Due, Shared};

/// Deliveries of a run for a job this replica does not know before it is dropped.
const UNKNOWN_DELIVERIES: u32 = 5;

/// How long one pull waits for a due run before asking again (and looking at `stop`).
const PULL_WAIT: Duration = Duration::from_secs(1);

pub struct JetStreamQueue {
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
    /// Due runs in the stream no replica has taken, as last asked (every second) or
    /// told by a pull.
    pending: AtomicU64,
}

impl JetStreamQueue {
    pub fn new(cluster: Arc<Cluster>, shared: Arc<Shared>) -> Self {
        Self {
            cluster,
            shared,
            pending: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl RunQueue for JetStreamQueue {
    /// Publishes the due time's enabled jobs; the overlap policy is applied by the replica
    /// that takes a run.
    async fn offer(&self, pipeline: &Pipeline, _slots: &[Arc<JobRuns>], due_at: DateTime<Utc>) {
        let (cluster, shared) = (&*self.cluster, &*self.shared);
        let scheduled_ms = ms(due_at);
        let runs: Vec<_> = pipeline
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.enabled)
            .map(|(index, job)| {
                // The consumer that takes it gives it a run id of its replica's.
                let inv = job.invocation((&pipeline.name, index), String::new(), scheduled_ms);
                WireRun::new(&inv, job.retry, job.overlap)
            })
            .collect();
        // Not connected: kept at once rather than each waiting out a publish timeout.
        if !cluster.connected() {
            super::outbox::keep(cluster, shared, runs);
            cluster.note_publishing(Some(&anyhow::anyhow!("not connected to NATS")));
            return;
        }
        let (mut new, mut duplicate, mut failure, mut unsent) = (0usize, 0usize, None, Vec::new());
        for (run, outcome) in runs.iter().zip(cluster.publish(&runs).await) {
            match outcome {
                Ok(Published::New) => new += 1,
                Ok(Published::Duplicate) => duplicate += 1,
                Err(e) => {
                    unsent.push(run.clone());
                    failure = Some(e);
                }
            }
        }
        if !runs.is_empty() {
            cluster.note_publishing(failure.as_ref());
        }
        super::outbox::keep(cluster, shared, unsent);
        tracing::debug!(pipeline = %pipeline.name, new, duplicate, "published the pipeline's jobs to the cluster");
    }

    async fn take(&self, stop: &CancellationToken) -> Option<Box<dyn Lease>> {
        let mut failing = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.cancelled() => return None,
                next = self.cluster.next(PULL_WAIT) => next,
            };
            let msg = match next {
                Ok(Some(msg)) => msg,
                Ok(None) => {
                    self.pending.store(0, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    // Once per outage, not once per pull.
                    if !failing {
                        tracing::error!(
                            "cluster: no runs can be taken: {e:#}; retrying every second"
                        );
                        failing = true;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return None,
                        _ = tokio::time::sleep(PULL_WAIT) => continue,
                    }
                }
            };
            if failing {
                tracing::info!("cluster: taking runs again");
                failing = false;
            }
            if let Ok(info) = msg.info() {
                self.pending.store(info.pending, Ordering::Relaxed);
            }
            if let Some(lease) = self.admit(msg).await {
                return Some(Box::new(lease));
            }
        }
    }

    fn depth(&self) -> usize {
        self.pending.load(Ordering::Relaxed) as usize
    }

    fn shared_grid(&self) -> Option<Duration> {
        // A due time just passed is run at start only while JetStream would still
        // recognise it as published: a replica joining later could run it a second time.
        Some(DEDUP_WINDOW / 2)
    }

    async fn background(&self, stop: CancellationToken) {
        let outbox = super::outbox::drain(self.cluster.clone(), self.shared.clone(), stop.clone());
        let depth = async {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if let Ok(n) = self.cluster.waiting().await {
                    self.pending.store(n, Ordering::Relaxed);
                }
            }
        };
        tokio::join!(outbox, depth);
    }
}

impl JetStreamQueue {
    /// The run `msg` carries, as this replica's job at that place, through its overlap
    /// policy: a lease, or none when it is not to run here now (answered to JetStream).
    async fn admit(&self, msg: Message) -> Option<ClusterLease> {
        let (cluster, shared) = (&self.cluster, &self.shared);
        let run: WireRun = match serde_json::from_slice(&msg.payload) {
            Ok(run) => run,
            Err(e) => {
                // Not ours to run (another version, another program): never deliver it again.
                tracing::error!(subject = %msg.subject, "cluster: a message that is not a due run: {e}; dropped");
                let _ = msg.ack_with(AckKind::Term).await;
                return None;
            }
        };
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1).max(1) as u32;
        // What runs is this replica's job at that place, as configured here.
        let Some(run) = run.resolved(&shared.known) else {
            // A replica with a newer configuration may have published it: ask again a few
            // times while the configuration spreads, then drop it.
            if delivered < UNKNOWN_DELIVERIES {
                let _ = msg.ack_with(AckKind::Nak(Some(PULL_WAIT))).await;
            } else {
                tracing::error!(id = %run.id(), "cluster: a run of a job this replica's configuration does not have at that place; dropped");
                let _ = msg.ack_with(AckKind::Term).await;
            }
            return None;
        };
        let run_id = shared.run_ids.next();
        // The job's overlap policy, across replicas (`allow` keeps no record).
        let policed = run.overlap != Overlap::Allow;
        let waits = if policed {
            match cluster.live.admit(run.overlap, &run, &run_id).await {
                Ok(Decision::Run { waits, .. }) => waits,
                Ok(Decision::Wait) => {
                    let _ = msg.ack_with(AckKind::Nak(Some(WAIT_AGAIN))).await;
                    return None;
                }
                Ok(Decision::Skip(reason)) => {
                    let inv = run.invocation(run_id, delivered);
                    shared
                        .reports
                        .finish(inv.not_run(Outcome::Skipped { reason }));
                    if let Err(e) = msg.double_ack().await {
                        tracing::warn!(id = %run.id(), "cluster: answering JetStream for a skipped run: {e}");
                    }
                    return None;
                }
                Err(e) => {
                    tracing::warn!(id = %run.id(), "cluster: the overlap policy could not be applied: {e:#}; the run is handed back");
                    let _ = msg.ack_with(AckKind::Nak(Some(PULL_WAIT))).await;
                    return None;
                }
            }
        } else {
            0
        };
        // Deliveries that only waited behind a live run (`queue`) were not attempts.
        let attempt = delivered.saturating_sub(waits).max(1);
        if attempt > 1 {
            tracing::warn!(id = %run.id(), attempt, "cluster: a run delivered again (a retry, or its replica stopped answering)");
        }
        let inv = run.invocation(run_id, attempt);
        // Live among its job's runs, as a local run is, so that a shutdown whose grace period
        // ends cancels it (the policy was applied above, cluster-wide: `allow` here).
        let live = shared.live_runs.get(&inv.pipeline, run.index, &inv.job);
        let due = Due {
            inv,
            live: live.clone(),
            retry: run.retry(),
        };
        let Admission::Enqueue(due) = live.admit(Overlap::Allow, due).0 else {
            unreachable!("`allow` admits every run")
        };
        if policed {
            cluster.live.track(run.id(), due.inv.cancel.clone());
        }
        Some(ClusterLease {
            msg,
            run,
            due,
            policed,
            cluster: cluster.clone(),
            shared: shared.clone(),
        })
    }
}

/// A run pulled from the stream, not yet acknowledged.
struct ClusterLease {
    msg: Message,
    run: WireRun,
    due: Due,
    /// Whether its job's overlap policy keeps a live record of it.
    policed: bool,
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
}

#[async_trait]
impl Lease for ClusterLease {
    fn due(&self) -> &Due {
        &self.due
    }

    /// Tells JetStream the run is in progress well within `ack_wait`, and renews its live
    /// record; a record lost to a later run cancels it (`overlap: replace` elsewhere).
    async fn keep_alive(&self) -> Infallible {
        let (run, inv) = (&self.run, &self.due.inv);
        let mut every = tokio::time::interval(self.cluster.settings.ack_wait / 3);
        every.tick().await;
        loop {
            every.tick().await;
            let _ = self.msg.ack_with(AckKind::Progress).await;
            if self.policed {
                match self
                    .cluster
                    .live
                    .renew(run, &inv.run_id, Duration::ZERO)
                    .await
                {
                    Ok(true) => {}
                    // A message cancelling it was lost: the record says the same.
                    Ok(false) => inv
                        .cancel
                        .cancel("replaced by a later run on another replica (overlap: replace)"),
                    Err(e) => {
                        tracing::warn!(id = %run.id(), "cluster: renewing a live run's lease: {e:#}")
                    }
                }
            }
        }
    }

    async fn settle(self: Box<Self>, how: Settle) -> Option<Box<dyn Lease>> {
        let Self {
            msg,
            run,
            due,
            policed,
            cluster,
            shared,
        } = *self;
        let _ = due.live.finished(&due.inv.cancel);
        if policed {
            cluster.live.untrack(&run.id());
            // A run handed back (a retry after its backoff, or to another replica) stays
            // live meanwhile, as a local retry does; its next delivery is itself.
            let kept = match how {
                Settle::HandBack => Some(Duration::ZERO),
                Settle::RetryAfter(delay) => Some(delay),
                Settle::Done => None,
            };
            let answered = match kept {
                Some(extra) => cluster
                    .live
                    .renew(&run, &due.inv.run_id, extra)
                    .await
                    .map(|_| ()),
                None => cluster.live.release(&run).await,
            };
            if let Err(e) = answered {
                tracing::warn!(id = %run.id(), "cluster: updating the live runs after a run: {e:#}; its lease runs out by itself");
            }
        }
        // Acknowledged after the report is recorded: a replica dying in between means the
        // run is delivered again (at least once), never lost. A retry goes back to the
        // stream to be delivered again (to any replica) after its backoff; its next
        // delivery is the next attempt.
        let answered = match how {
            Settle::HandBack => msg.ack_with(AckKind::Nak(None)).await,
            Settle::RetryAfter(delay) => {
                shared.reports.stats.retried.fetch_add(1, Ordering::Relaxed);
                msg.ack_with(AckKind::Nak(Some(delay))).await
            }
            Settle::Done => msg.double_ack().await,
        };
        if let Err(e) = answered {
            tracing::warn!(id = %run.id(), "cluster: answering JetStream for a finished run: {e}; it may be delivered again");
        }
        None
    }
}

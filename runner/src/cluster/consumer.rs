//! A consumer in cluster mode: pulls one due run at a time from the cluster's stream,
//! runs it in a fresh instance, and acknowledges it when it has ended. While it runs, it
//! tells JetStream it is in progress, so only a replica that stops answering loses it. A
//! failed attempt with retries left is handed back to be delivered again after its backoff,
//! and a run cancelled by this replica's shutdown at once. Before a run starts, its job's
//! overlap policy is applied across the cluster ([`super::live`]): a run may be skipped,
//! or handed back to wait behind the live one (`queue`), or cancel it (`replace`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use tokio_util::sync::CancellationToken;

use super::live::{Decision, WAIT_AGAIN};
use super::{RunQueue, WireRun};

use crate::run::Overlap;
use crate::run::outcome::Outcome;
use crate::scheduler::consumer::run_one;
use crate::scheduler::overlap::Admission;
use crate::scheduler::{Due, Shared};

/// Deliveries of a run for a job this replica does not know before it is dropped.
const UNKNOWN_DELIVERIES: u32 = 5;

/// How long one pull waits for a due run before asking again (and looking at `stop`).
const PULL_WAIT: Duration = Duration::from_secs(1);

pub async fn consume(queue: Arc<RunQueue>, shared: Arc<Shared>, stop: CancellationToken) {
    let mut failing = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            next = queue.next(PULL_WAIT) => next,
        };
        let msg = match next {
            Ok(Some(msg)) => msg,
            Ok(None) => continue,
            Err(e) => {
                // Once per outage, not once per pull.
                if !failing {
                    tracing::error!("cluster: no runs can be taken: {e:#}; retrying every second");
                    failing = true;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(PULL_WAIT) => continue,
                }
            }
        };
        if failing {
            tracing::info!("cluster: taking runs again");
            failing = false;
        }
        let run: WireRun = match serde_json::from_slice(&msg.payload) {
            Ok(run) => run,
            Err(e) => {
                // Not ours to run (another version, another program): never deliver it again.
                tracing::error!(subject = %msg.subject, "cluster: a message that is not a due run: {e}; dropped");
                let _ = msg.ack_with(AckKind::Term).await;
                continue;
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
            continue;
        };
        let run_id = shared.run_ids.next();
        // The job's overlap policy, across replicas (`allow` keeps no record).
        let policed = run.overlap != Overlap::Allow;
        let waits = if policed {
            match queue.live.admit(run.overlap, &run, &run_id).await {
                Ok(Decision::Run { waits, .. }) => waits,
                Ok(Decision::Wait) => {
                    let _ = msg.ack_with(AckKind::Nak(Some(WAIT_AGAIN))).await;
                    continue;
                }
                Ok(Decision::Skip(reason)) => {
                    let inv = run.invocation(run_id, delivered);
                    shared.finish(inv.not_run(Outcome::Skipped { reason }));
                    if let Err(e) = msg.double_ack().await {
                        tracing::warn!(id = %run.id(), "cluster: answering JetStream for a skipped run: {e}");
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(id = %run.id(), "cluster: the overlap policy could not be applied: {e:#}; the run is handed back");
                    let _ = msg.ack_with(AckKind::Nak(Some(PULL_WAIT))).await;
                    continue;
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
        // Live in its job's slot, as a local run is, so that a shutdown whose grace period
        // ends cancels it (the policy was applied above, cluster-wide: `allow` here).
        let slot = shared.slots.get(&inv.pipeline, run.index, &inv.job);
        let due = Due {
            inv,
            slot: slot.clone(),
            retry: run.retry(),
        };
        let Admission::Enqueue(due) = slot.admit(Overlap::Allow, due).0 else {
            unreachable!("`allow` admits every run")
        };
        if policed {
            queue.live.track(run.id(), due.inv.cancel.clone());
        }
        let inv = &due.inv;
        let in_progress = async {
            let mut every = tokio::time::interval(queue.settings.ack_wait / 3);
            every.tick().await;
            loop {
                every.tick().await;
                let _ = msg.ack_with(AckKind::Progress).await;
                if policed {
                    match queue.live.renew(&run, &inv.run_id, Duration::ZERO).await {
                        Ok(true) => {}
                        // A message cancelling it was lost: the record says the same.
                        Ok(false) => inv.cancel.cancel(
                            "replaced by a later run on another replica (overlap: replace)",
                        ),
                        Err(e) => {
                            tracing::warn!(id = %run.id(), "cluster: renewing a live run's lease: {e:#}")
                        }
                    }
                }
            }
        };
        let report = tokio::select! {
            report = run_one(&shared, inv) => report,
            never = in_progress => never,
        };
        // A failed attempt with retries left goes back to the stream to be delivered again
        // (to any replica) after its backoff; its next delivery is the next attempt.
        // (Not when the runner stops; a consumer told to stop by a smaller configuration
        // still hands its retry on.)
        let retry_in = if report.outcome.is_retryable() && !shared.stopping.is_cancelled() {
            run.retry().delay_before(inv.attempt + 1)
        } else {
            None
        };
        // Cancelled by this replica's shutdown: handed back at once for another replica.
        let hand_back =
            matches!(report.outcome, Outcome::Cancelled { .. }) && shared.stopping.is_cancelled();
        shared.finish(report);
        let _ = due.slot.finished(&due.inv.cancel);
        if policed {
            queue.live.untrack(&run.id());
            // A run handed back (a retry after its backoff, or to another replica) stays
            // live meanwhile, as a local retry does; its next delivery is itself.
            let kept = match (hand_back, retry_in) {
                (true, _) => Some(Duration::ZERO),
                (false, Some(delay)) => Some(delay),
                (false, None) => None,
            };
            let answered = match kept {
                Some(extra) => queue
                    .live
                    .renew(&run, &due.inv.run_id, extra)
                    .await
                    .map(|_| ()),
                None => queue.live.release(&run).await,
            };
            if let Err(e) = answered {
                tracing::warn!(id = %run.id(), "cluster: updating the live runs after a run: {e:#}; its lease runs out by itself");
            }
        }
        // Acknowledged after the report is recorded: a replica dying in between means the
        // run is delivered again (at least once), never lost.
        let answered = match retry_in {
            _ if hand_back => msg.ack_with(AckKind::Nak(None)).await,
            Some(delay) => {
                shared.stats.retried.fetch_add(1, Ordering::Relaxed);
                msg.ack_with(AckKind::Nak(Some(delay))).await
            }
            None => msg.double_ack().await,
        };
        if let Err(e) = answered {
            tracing::warn!(id = %run.id(), "cluster: answering JetStream for a finished run: {e}; it may be delivered again");
        }
    }
}

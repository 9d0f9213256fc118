//! A pipeline's producer: every `period`, stamp the tick once and enqueue every enabled job.
//!
//! The pipeline comes through a watch channel, so a configuration change reaches the
//! producer between ticks: the next tick uses the new jobs and params, and a new period
//! counts from the last tick (a tick that is already due then fires at once, once).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_channel::{Sender, TrySendError};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Shared, unix_ms};
use crate::config::Pipeline;
use crate::sandbox::run::Invocation;

pub async fn produce(
    mut pipeline: watch::Receiver<Pipeline>,
    queue: Sender<Invocation>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    // Ticks are due at start + k * period, whatever enqueueing costs: no drift.
    let mut tick = Instant::now();
    loop {
        let current = pipeline.borrow_and_update().clone();
        enqueue(&current, &queue, &shared);

        let period = current.period;
        let mut next = tick + period;
        let now = Instant::now();
        if next < now {
            // Behind by at least a whole period (a suspended machine, an overloaded one):
            // skip the missed ticks rather than enqueue a burst of them.
            let missed = ((now - next).as_nanos() / period.as_nanos()) as u32 + 1;
            next += period * missed;
            shared
                .stats
                .missed_ticks
                .fetch_add(u64::from(missed), Ordering::Relaxed);
            tracing::warn!(pipeline = %current.name, missed, "producer fell behind; skipped missed ticks");
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => break,
                changed = pipeline.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A new period counts from the last tick; if that is past, tick now.
                    next = (tick + pipeline.borrow().period).max(Instant::now());
                }
                _ = cancel.cancelled() => return,
            }
        }
        tick = next;
    }
}

fn enqueue(pipeline: &Pipeline, queue: &Sender<Invocation>, shared: &Shared) {
    let start_time_ms = unix_ms();
    let (mut enqueued, mut dropped) = (0usize, Vec::new());
    for job in pipeline.jobs.iter().filter(|j| j.enabled) {
        let inv = Invocation {
            job: job.name.clone(),
            pipeline: pipeline.name.clone(),
            run_id: shared.run_ids.next(),
            scheduled_ms: start_time_ms,
            params: job.params.clone(),
            limits: job.limits,
            grants: job.grants,
        };
        match queue.try_send(inv) {
            Ok(()) => enqueued += 1,
            Err(TrySendError::Full(inv)) => dropped.push(inv.job),
            Err(TrySendError::Closed(_)) => return,
        }
    }
    if !dropped.is_empty() {
        // One line per tick, not per run: a full queue must not also flood the log.
        let count = dropped.len();
        shared
            .stats
            .dropped
            .fetch_add(count as u64, Ordering::Relaxed);
        dropped.dedup();
        let jobs: Vec<&str> = dropped.iter().map(|j| &**j).collect();
        tracing::warn!(pipeline = %pipeline.name, dropped = count, jobs = %jobs.join(","),
            "queue full: runs of this tick dropped (consumers are not keeping up)");
    }
    tracing::debug!(pipeline = %pipeline.name, enqueued, "enqueued the pipeline's jobs");
}

//! A pipeline's producer: at each due time, stamp it once and offer every enabled job to
//! its overlap policy and the queue.
//!
//! The pipeline comes through a watch channel, so a configuration change reaches the
//! producer between due times: the next one uses the new schedule, jobs and params,
//! counted from the last due time (one that is already due then fires at once, once).
//! Due times are on the wall clock ([`Clock`]), anchored on the pipeline's last due time in
//! the run history, so a restart neither runs early nor loses the grid; see
//! [`Schedule::step`] for what becomes of due times missed meanwhile.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_channel::{Sender, TrySendError};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::overlap::{Admission, Slot};
use super::{Due, Shared};
use crate::config::Pipeline;
use crate::run::Invocation;
use crate::run::outcome::Outcome;
use crate::schedule::{Clock, Missed, Schedule, Step, from_ms, ms};

pub async fn produce(
    mut pipeline: watch::Receiver<Pipeline>,
    queue: Sender<Due>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    clock: Clock,
) {
    let mut current = pipeline.borrow_and_update().clone();
    let mut slots = slots_of(&shared, &current);
    let timing = &current.timing;
    let mut last = anchor(
        &shared,
        &current.name,
        (&timing.schedule, timing.missed),
        &clock,
    )
    .await;
    loop {
        let now = clock.now();
        let step = current
            .timing
            .schedule
            .step(current.timing.missed, last, now);
        let until = match step {
            Step::Fire { slot, missed } => {
                count_missed(&shared, &current, missed);
                if !current.timing.jitter.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(jitter(current.timing.jitter)) => {}
                        _ = cancel.cancelled() => return,
                    }
                }
                match &shared.cluster {
                    Some(cluster) => publish(&current, slot, cluster, &shared).await,
                    None => enqueue(&current, &slots, slot, &queue, &shared),
                }
                last = slot;
                continue;
            }
            Step::Wait {
                until,
                missed,
                last: skipped_to,
            } => {
                count_missed(&shared, &current, missed);
                last = skipped_to;
                shared.next_due.set(&current.name, until.map(ms));
                until
            }
        };
        tokio::select! {
            _ = async {
                match until {
                    Some(t) => clock.sleep_until(t).await,
                    // A cron expression never due again: wait for a new configuration.
                    None => std::future::pending().await,
                }
            } => {}
            changed = pipeline.changed() => {
                if changed.is_err() {
                    return;
                }
                current = pipeline.borrow_and_update().clone();
                slots = slots_of(&shared, &current);
            }
            _ = cancel.cancelled() => return,
        }
    }
}

/// Each job's slot, looked up once per configuration rather than per run.
fn slots_of(shared: &Shared, pipeline: &Pipeline) -> Vec<Arc<Slot>> {
    pipeline
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| shared.slots.get(&pipeline.name, i, &j.name))
        .collect()
}

/// The last due time to count from: the pipeline's latest in the run history; else, for a
/// period, one period ago (tglib runs at start), and for cron, now. A periodic pipeline
/// with `missed: run_once` always runs at start, as tglib's does.
async fn anchor(
    shared: &Arc<Shared>,
    pipeline: &str,
    (schedule, missed): (&Schedule, Missed),
    clock: &Clock,
) -> DateTime<Utc> {
    let now = clock.now();
    // In a cluster every replica must stamp the same due times, whenever it started: a
    // period's due times are its multiples since the Unix epoch. The one just passed runs
    // at start (once in all, however many replicas start together) only while JetStream
    // would still recognise it as published: a replica joining later than that would run
    // it a second time.
    if shared.cluster.is_some()
        && let Schedule::Every(p) = schedule
    {
        let period_ms = ms_of(*p).max(1);
        let passed = from_ms(ms(now).div_euclid(period_ms) * period_ms);
        let fresh =
            (now - passed).to_std().unwrap_or_default() < crate::cluster::queue::DEDUP_WINDOW / 2;
        return if fresh { passed - *p } else { passed };
    }
    // tglib runs a periodic pipeline at start; with `missed: run_once` that run is also
    // the catch-up, so there is nothing to look up.
    if let Schedule::Every(p) = schedule
        && missed == Missed::RunOnce
    {
        return now - *p;
    }
    if shared.history.is_some() {
        // On the runtime the database connections belong to, not the producers' own: a
        // connection opened here would die with this thread's runtime.
        let (query_shared, name) = (shared.clone(), pipeline.to_owned());
        let query = async move {
            match &query_shared.history {
                Some(h) => h.last_scheduled(&name).await.map_err(|e| e.to_string()),
                None => Ok(None),
            }
        };
        let last = match &shared.home {
            Some(home) => home
                .spawn(query)
                .await
                .unwrap_or_else(|e| Err(e.to_string())),
            None => query.await,
        };
        match last {
            Ok(Some(last)) if from_ms(last) <= now => return from_ms(last),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%pipeline, "reading the last due time from the run history: {e}; starting afresh")
            }
        }
    }
    match schedule.period() {
        Some(p) => now - p,
        None => now,
    }
}

fn count_missed(shared: &Shared, pipeline: &Pipeline, missed: u64) {
    if missed == 0 {
        return;
    }
    shared
        .stats
        .missed_ticks
        .fetch_add(missed, Ordering::Relaxed);
    let policy = match pipeline.timing.missed {
        Missed::RunOnce => "ran once instead",
        Missed::Skip => "skipped (missed: skip)",
    };
    tracing::warn!(pipeline = %pipeline.name, missed, schedule = %pipeline.timing.schedule.describe(),
        "due times passed while the runner was down or behind: {policy}");
}

/// A random wait from 0 up to `max`.
fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let r = RandomState::new().hash_one(std::time::Instant::now());
    max.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
}

fn enqueue(
    pipeline: &Pipeline,
    slots: &[Arc<Slot>],
    due_at: DateTime<Utc>,
    queue: &Sender<Due>,
    shared: &Shared,
) {
    let scheduled_ms = ms(due_at);
    let (mut enqueued, mut dropped) = (0usize, Vec::new());
    for (job, slot) in pipeline.jobs.iter().zip(slots).filter(|(j, _)| j.enabled) {
        if queue.is_full() {
            // Known before anything is made for the run (an overloaded queue is when a
            // producer must cost least).
            dropped.push(job.name.clone());
            continue;
        }
        let due = Due {
            inv: first_attempt(pipeline, job, shared.run_ids.next(), scheduled_ms),
            slot: slot.clone(),
            retry: job.retry,
        };
        let (admission, replaced) = due.slot.clone().admit(job.overlap, due);
        for r in replaced {
            let reason = r.inv.cancel.reason();
            shared.finish(r.inv.not_run(Outcome::Cancelled { reason }));
        }
        match admission {
            Admission::Enqueue(due) => match queue.try_send(due) {
                Ok(()) => enqueued += 1,
                Err(TrySendError::Full(due)) => {
                    // The run never became live: forget it so the job's next run is admitted.
                    let _ = due.slot.finished(&due.inv.cancel);
                    dropped.push(due.inv.job);
                }
                Err(TrySendError::Closed(_)) => return,
            },
            Admission::Held => {}
            Admission::Skipped(due, reason) => {
                shared.finish(due.inv.not_run(Outcome::Skipped { reason }));
            }
        }
    }
    if !dropped.is_empty() {
        // One log line per due time, not per run: a full queue must not also flood the log.
        let count = dropped.len();
        shared
            .stats
            .dropped
            .fetch_add(count as u64, Ordering::Relaxed);
        let jobs: Vec<&str> = dropped.iter().map(|j| &**j).collect();
        let mut names = jobs.clone();
        names.dedup();
        tracing::warn!(pipeline = %pipeline.name, dropped = count, jobs = %names.join(","),
            "queue full: runs of this due time dropped (consumers are not keeping up)");
        // Counted per job (runs by outcome `dropped` on `/metrics` and `/jobs`), without a
        // report each: an overloaded queue drops them by the hundred thousand.
        let mut per_job: Vec<(&str, u64)> = Vec::new();
        for j in &jobs {
            match per_job.last_mut() {
                Some((last, n)) if last == j => *n += 1,
                _ => per_job.push((j, 1)),
            }
        }
        for (job, n) in per_job {
            shared.book.count_not_run(job, "dropped", n);
        }
    }
    tracing::debug!(pipeline = %pipeline.name, enqueued, "enqueued the pipeline's jobs");
}

/// The first attempt of `job`'s run due at `scheduled_ms`.
fn first_attempt(
    pipeline: &Pipeline,
    job: &crate::config::JobSpec,
    run_id: String,
    scheduled_ms: i64,
) -> Invocation {
    Invocation {
        job: job.name.clone(),
        pipeline: pipeline.name.clone(),
        run_id,
        scheduled_ms,
        params: job.params.clone(),
        limits: job.limits,
        grants: job.grants,
        cancel: Default::default(),
        attempt: 1,
    }
}

fn ms_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Cluster mode: publishes the due time's enabled jobs to the cluster's stream, each with
/// an id of its pipeline, place, job and due time, so replicas publishing the same due
/// time make one message. The overlap policy is applied by the consumer that takes a run
/// ([`crate::cluster::live`]).
async fn publish(
    pipeline: &Pipeline,
    due_at: DateTime<Utc>,
    cluster: &crate::cluster::RunQueue,
    shared: &Shared,
) {
    let scheduled_ms = ms(due_at);
    let runs: Vec<_> = pipeline
        .jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| j.enabled)
        .map(|(index, job)| {
            // The consumer that takes it gives it a run id of its replica's.
            let inv = first_attempt(pipeline, job, String::new(), scheduled_ms);
            crate::cluster::WireRun::new(&inv, index, job.retry, job.overlap)
        })
        .collect();
    // Not connected: kept at once rather than each waiting out a publish timeout.
    if !cluster.connected() {
        crate::cluster::outbox::keep(cluster, shared, runs);
        cluster.note_publishing(Some(&anyhow::anyhow!("not connected to NATS")));
        return;
    }
    let (mut new, mut duplicate, mut failure, mut unsent) = (0usize, 0usize, None, Vec::new());
    for (run, outcome) in runs.iter().zip(cluster.publish(&runs).await) {
        match outcome {
            Ok(crate::cluster::Published::New) => new += 1,
            Ok(crate::cluster::Published::Duplicate) => duplicate += 1,
            Err(e) => {
                unsent.push(run.clone());
                failure = Some(e);
            }
        }
    }
    if !runs.is_empty() {
        cluster.note_publishing(failure.as_ref());
    }
    crate::cluster::outbox::keep(cluster, shared, unsent);
    tracing::debug!(pipeline = %pipeline.name, new, duplicate, "published the pipeline's jobs to the cluster");
}

//! A pipeline's producer: at each due time, stamp it once and offer the pipeline's enabled
//! jobs to the queue (which applies their overlap policies).
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

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::overlap::JobRuns;
use super::queue::RunQueue;
use crate::config::Pipeline;
use crate::schedule::{Clock, Missed, Schedule, Step, from_ms, ms};

pub async fn produce(
    mut pipeline: watch::Receiver<Pipeline>,
    queue: Arc<dyn RunQueue>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    clock: Clock,
) {
    let mut current = pipeline.borrow_and_update().clone();
    let mut slots = slots_of(&shared, &current);
    let timing = &current.timing;
    let mut last = anchor(
        &shared,
        queue.shared_grid(),
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
            Step::Fire { due, missed } => {
                count_missed(&shared, &current, missed);
                if !current.timing.jitter.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(jitter(current.timing.jitter)) => {}
                        _ = cancel.cancelled() => return,
                    }
                }
                queue.offer(&current, &slots, due).await;
                last = due;
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

/// Each job's live runs, looked up once per configuration rather than per run.
fn slots_of(shared: &Shared, pipeline: &Pipeline) -> Vec<Arc<JobRuns>> {
    pipeline
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| shared.live_runs.get(&pipeline.name, i, &j.name))
        .collect()
}

/// The last due time to count from: the pipeline's latest in the run history; else, for a
/// period, one period ago (tglib runs at start), and for cron, now. A periodic pipeline
/// with `missed: run_once` always runs at start, as tglib's does.
async fn anchor(
    shared: &Arc<Shared>,
    shared_grid: Option<Duration>,
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
    if let Some(fresh_for) = shared_grid
        && let Schedule::Every(p) = schedule
    {
        let period_ms = ms_of(*p).max(1);
        let passed = from_ms(ms(now).div_euclid(period_ms) * period_ms);
        let fresh = (now - passed).to_std().unwrap_or_default() < fresh_for;
        return if fresh { passed - *p } else { passed };
    }
    // tglib runs a periodic pipeline at start; with `missed: run_once` that run is also
    // the catch-up, so there is nothing to look up.
    if let Schedule::Every(p) = schedule
        && missed == Missed::RunOnce
    {
        return now - *p;
    }
    if shared.reports.history.is_some() {
        // On the runtime the database connections belong to, not the producers' own: a
        // connection opened here would die with this thread's runtime.
        let (query_shared, name) = (shared.clone(), pipeline.to_owned());
        let query = async move {
            match &query_shared.reports.history {
                Some(h) => h.last_scheduled(&name).await.map_err(|e| e.to_string()),
                None => Ok(None),
            }
        };
        let last = match &shared.execution.home {
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
        .reports
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

fn ms_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

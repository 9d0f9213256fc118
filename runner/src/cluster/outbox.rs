//! Due runs a producer could not publish (NATS unreachable), kept and published once
//! NATS answers again, so an outage loses no scheduled run.
//!
//! Only while JetStream's de-duplication would still know the run if another replica did
//! publish it meanwhile: a run is kept up to half the window after its due time (the rest
//! covers clock skew between replicas), then dropped and counted as `dropped`. Publishing
//! it later could run it twice.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::connection::DEDUP_WINDOW;
use super::{Cluster, Published, WireRun};
use crate::scheduler::Shared;

/// How often the outbox tries again.
const EVERY: Duration = Duration::from_secs(1);
/// Most runs kept; past it the oldest are dropped (a long outage with many jobs).
const MOST: usize = 100_000;

/// Runs kept for publishing, oldest first.
#[derive(Default)]
pub struct Outbox {
    runs: Mutex<VecDeque<WireRun>>,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<WireRun>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps runs that could not be published. Answers how many older ones made room.
    pub fn keep(&self, runs: impl IntoIterator<Item = WireRun>) -> Vec<WireRun> {
        let mut kept = self.lock();
        kept.extend(runs);
        let over = kept.len().saturating_sub(MOST);
        kept.drain(..over).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Removes and answers the runs too old to publish.
    fn expire(&self, now_ms: i64) -> Vec<WireRun> {
        let limit = (DEDUP_WINDOW / 2).as_millis() as i64;
        let mut kept = self.lock();
        let (young, old): (VecDeque<_>, VecDeque<_>) = kept
            .drain(..)
            .partition(|r| now_ms - r.scheduled_ms <= limit);
        *kept = young;
        old.into()
    }

    /// Takes every kept run.
    fn take(&self) -> Vec<WireRun> {
        self.lock().drain(..).collect()
    }

    /// Puts back runs that failed again, ahead of the ones kept meanwhile (oldest first).
    fn put_back(&self, runs: Vec<WireRun>) -> Vec<WireRun> {
        let mut kept = self.lock();
        for r in runs.into_iter().rev() {
            kept.push_front(r);
        }
        let over = kept.len().saturating_sub(MOST);
        kept.drain(..over).collect()
    }
}

/// Counts runs that will never be published as `dropped`, and says so once.
fn drop_runs(shared: &Shared, runs: &[WireRun], why: &str) {
    if runs.is_empty() {
        return;
    }
    shared
        .reports
        .stats
        .dropped
        .fetch_add(runs.len() as u64, Ordering::Relaxed);
    for r in runs {
        shared.reports.book.count_not_run(&r.job_id(), "dropped");
    }
    tracing::warn!(
        dropped = runs.len(),
        "cluster: due runs missed while NATS was unreachable were dropped: {why}"
    );
}

/// Publishes kept runs whenever NATS answers, until `stop`.
pub async fn drain(queue: Arc<Cluster>, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        if queue.outbox.is_empty() {
            continue;
        }
        // Also while NATS is away: the count of dropped runs is current, memory bounded.
        let old = queue.outbox.expire(chrono::Utc::now().timestamp_millis());
        drop_runs(
            &shared,
            &old,
            "older than half JetStream's de-duplication window (another replica may have run them)",
        );
        if !queue.connected() {
            continue;
        }
        let young = queue.outbox.take();
        let mut again = Vec::new();
        let mut published = 0usize;
        for (run, outcome) in young.iter().zip(queue.publish(&young).await) {
            match outcome {
                Ok(Published::New) => published += 1,
                Ok(Published::Duplicate) => {}
                Err(_) => again.push(run.clone()),
            }
        }
        if published > 0 {
            tracing::info!(
                published,
                "cluster: published due runs missed while NATS was unreachable"
            );
        }
        let evicted = queue.outbox.put_back(again);
        drop_runs(&shared, &evicted, "too many kept");
    }
}

/// Keeps `runs` in `queue`'s outbox, counting any it had to evict.
pub fn keep(queue: &Cluster, shared: &Shared, runs: Vec<WireRun>) {
    let evicted = queue.outbox.keep(runs);
    drop_runs(shared, &evicted, "too many kept");
}

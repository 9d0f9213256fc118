//! tglib's producer/consumer scheduling: one producer per pipeline, `num_consumers`
//! consumers, one queue between them.
//!
//! Better than tglib: the queue is bounded (a full queue drops and counts, never grows
//! without end), a producer that falls behind skips the ticks it missed instead of
//! bursting, and every run's report is published to subscribers (logs, history, tests).

mod consumer;
mod producer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::ServiceConfig;
use crate::modules::ModuleRegistry;
use crate::sandbox::Sandbox;
use crate::sandbox::outcome::RunReport;
use crate::sandbox::run::Invocation;

/// Counters of the scheduler as a whole.
#[derive(Debug, Default)]
pub struct Stats {
    /// Runs finished, whatever their outcome.
    pub runs: AtomicU64,
    /// Runs finished with an outcome other than `ok`.
    pub failed: AtomicU64,
    /// Runs a producer could not enqueue because the queue was full.
    pub dropped: AtomicU64,
    /// Producer ticks skipped because the producer fell behind by a whole period.
    pub missed_ticks: AtomicU64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Makes run ids unique across runners: a random prefix per process, then a sequence.
pub struct RunIds {
    prefix: String,
    next: AtomicU64,
}

impl Default for RunIds {
    fn default() -> Self {
        use std::hash::{BuildHasher, RandomState};
        let random = RandomState::new().hash_one(std::process::id());
        Self {
            prefix: format!("{:08x}", random as u32),
            next: AtomicU64::new(1),
        }
    }
}

impl RunIds {
    pub fn next(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// What every task of the scheduler shares.
pub struct Shared {
    pub sandbox: Arc<Sandbox>,
    pub modules: Arc<ModuleRegistry>,
    pub stats: Stats,
    pub run_ids: RunIds,
    pub events: broadcast::Sender<Arc<RunReport>>,
}

/// A running scheduler. Dropping it does not stop it: call [`Scheduler::stop`].
pub struct Scheduler {
    pub shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Scheduler {
    /// Starts the producers and consumers of `service` on the current runtime.
    pub fn start(
        service: &ServiceConfig,
        queue_capacity: usize,
        sandbox: Arc<Sandbox>,
        modules: Arc<ModuleRegistry>,
    ) -> Self {
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            sandbox,
            modules,
            stats: Stats::default(),
            run_ids: RunIds::default(),
            events,
        });
        let cancel = CancellationToken::new();
        let (tx, rx) = async_channel::bounded::<Invocation>(queue_capacity);
        let mut tasks = JoinSet::new();
        for pipeline in &service.pipelines {
            tasks.spawn(producer::produce(
                pipeline.clone(),
                tx.clone(),
                shared.clone(),
                cancel.clone(),
            ));
        }
        drop(tx);
        for _ in 0..service.num_consumers {
            tasks.spawn(consumer::consume(
                rx.clone(),
                shared.clone(),
                cancel.clone(),
            ));
        }
        Self {
            shared,
            cancel,
            tasks,
        }
    }

    /// Receives the report of every run that finishes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunReport>> {
        self.shared.events.subscribe()
    }

    /// Stops producing and waits for the runs in flight to finish (each is still bounded
    /// by its own time limit). Runs still queued are not started.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Milliseconds since the Unix epoch now, as tglib's `start_time_ms`.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

//! tglib's producer/consumer scheduling: one producer per pipeline, `num_consumers`
//! consumers, one queue between them.
//!
//! Better than tglib: the queue is bounded (a full queue drops and counts, never grows
//! without end), a producer that falls behind skips the ticks it missed instead of
//! bursting, and every run's report is published to subscribers (logs, history, tests).

pub mod book;
pub mod consumer;
pub mod history;
mod producer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_channel::{Receiver, Sender};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use book::{JobRecord, RunBook};

use crate::config::{Pipeline, ServiceConfig};
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
    /// Last run and counters per job (for `/jobs` and `/metrics`).
    pub book: RunBook,
    /// Where finished runs are persisted, when there is a database.
    pub history: Option<history::Recorder>,
}

impl Shared {
    pub fn new(sandbox: Arc<Sandbox>, modules: Arc<ModuleRegistry>) -> Arc<Self> {
        Self::with_history(sandbox, modules, None)
    }

    pub fn with_history(
        sandbox: Arc<Sandbox>,
        modules: Arc<ModuleRegistry>,
        history: Option<history::Recorder>,
    ) -> Arc<Self> {
        Arc::new(Self {
            history,
            sandbox,
            modules,
            stats: Stats::default(),
            run_ids: RunIds::default(),
            events: broadcast::channel(4096).0,
            book: RunBook::default(),
        })
    }

    /// Everything done with a finished run's report: counted, remembered, published.
    pub fn finish(&self, report: RunReport) -> Arc<RunReport> {
        consumer::log_outcome(&report);
        self.stats.runs.fetch_add(1, Ordering::Relaxed);
        if !report.outcome.is_ok() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        let report = Arc::new(report);
        self.book.record(&report);
        if let Some(h) = &self.history {
            h.record(&report);
        }
        // No subscriber is fine: the report has been logged and booked.
        let _ = self.events.send(report.clone());
        report
    }
}

struct Producer {
    pipeline: watch::Sender<Pipeline>,
    cancel: CancellationToken,
}

/// A running scheduler. Dropping it does not stop it: call [`Scheduler::stop`].
pub struct Scheduler {
    pub shared: Arc<Shared>,
    queue: (Sender<Invocation>, Receiver<Invocation>),
    producers: BTreeMap<Arc<str>, Producer>,
    consumers: Vec<CancellationToken>,
    /// Parent of every task's token: cancelling it stops them all.
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
        Self::start_shared(service, queue_capacity, Shared::new(sandbox, modules))
    }

    pub fn start_shared(
        service: &ServiceConfig,
        queue_capacity: usize,
        shared: Arc<Shared>,
    ) -> Self {
        let mut s = Self {
            shared,
            queue: async_channel::bounded(queue_capacity),
            producers: BTreeMap::new(),
            consumers: Vec::new(),
            cancel: CancellationToken::new(),
            tasks: JoinSet::new(),
        };
        s.reconfigure(service);
        s
    }

    /// Applies a new service configuration from the next tick, without stopping anything
    /// that runs: added pipelines start now, removed ones stop, a changed one (period, jobs,
    /// params) keeps its last tick and takes the new values from its next; consumers are
    /// added, or told to stop after their current run. Runs in flight are not disturbed.
    pub fn reconfigure(&mut self, service: &ServiceConfig) -> Changes {
        let mut changes = Changes::default();
        let wanted: BTreeMap<Arc<str>, &Pipeline> = service
            .pipelines
            .iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        self.producers.retain(|name, producer| {
            let keep = wanted.contains_key(name);
            if !keep {
                producer.cancel.cancel();
                changes.removed.push(name.to_string());
            }
            keep
        });
        for (name, pipeline) in wanted {
            match self.producers.get(&name) {
                Some(p) => {
                    let same = {
                        let current = p.pipeline.borrow();
                        current.period == pipeline.period && current.jobs == pipeline.jobs
                    };
                    if !same {
                        p.pipeline.send_replace(pipeline.clone());
                        changes.changed.push(name.to_string());
                    }
                }
                None => {
                    let (tx, rx) = watch::channel(pipeline.clone());
                    let cancel = self.cancel.child_token();
                    self.tasks.spawn(producer::produce(
                        rx,
                        self.queue.0.clone(),
                        self.shared.clone(),
                        cancel.clone(),
                    ));
                    self.producers.insert(
                        name.clone(),
                        Producer {
                            pipeline: tx,
                            cancel,
                        },
                    );
                    changes.added.push(name.to_string());
                }
            }
        }
        while self.consumers.len() > service.num_consumers {
            if let Some(c) = self.consumers.pop() {
                c.cancel();
            }
        }
        while self.consumers.len() < service.num_consumers {
            let cancel = self.cancel.child_token();
            self.tasks.spawn(consumer::consume(
                self.queue.1.clone(),
                self.shared.clone(),
                cancel.clone(),
            ));
            self.consumers.push(cancel);
        }
        changes.consumers = self.consumers.len();
        // Reap tasks that have ended (stopped producers and consumers).
        while self.tasks.try_join_next().is_some() {}
        changes
    }

    /// Runs waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.0.len()
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

/// What a [`Scheduler::reconfigure`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub consumers: usize,
}

/// Milliseconds since the Unix epoch now, as tglib's `start_time_ms`.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

//! tglib's producer/consumer scheduling: one producer per pipeline, `num_consumers`
//! consumers, one queue between them.
//!
//! Better than tglib: the queue is bounded (a full queue drops and counts, never grows
//! without end), a job's runs do not pile up ([`overlap`]), pipelines may run on cron in a
//! time zone ([`crate::schedule`]), due times missed while down or behind run once or
//! are skipped, never in a burst, failed runs may be retried ([`crate::run::retry`]), a shutdown gives
//! runs a grace period and records what it cancels, and every run's report is published
//! to subscribers (logs, history, tests).

pub mod book;
pub mod consumer;
pub mod execution;
pub mod history;
pub mod overlap;
pub mod per_job;
mod producer;
pub mod queue;
pub mod recent;
pub mod reports;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::schedule::Clock;
pub use book::{JobRecord, RunBook};
pub use execution::Execution;
use overlap::{AllJobRuns, JobRuns};
pub use reports::{Reports, Stats};

use crate::config::{Pipeline, ServiceConfig};
use crate::modules::ModuleRegistry;
use crate::run::{Invocation, Outcome, Retry, RunReport};
use crate::sandbox::Sandbox;
use queue::RunQueue;

/// A run on its way through the queue, with what the scheduler needs after it ends.
#[derive(Debug)]
pub struct Due {
    pub inv: Invocation,
    /// Its job's live runs (overlap policy).
    pub live: Arc<JobRuns>,
    pub retry: Retry,
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

/// What every task of the scheduler shares, by what each part owns.
pub struct Shared {
    /// What runs a run: the sandbox and the modules.
    pub execution: Execution,
    /// Where every finished run goes.
    pub reports: Reports,
    /// Every job's live runs.
    pub live_runs: AllJobRuns,
    pub run_ids: RunIds,
    /// Retries waiting for their backoff.
    pub retries: TaskTracker,
    /// Cancelled when the scheduler stops: nothing new starts after it.
    pub stopping: CancellationToken,
    /// Each pipeline's next due time, as its producer waits for it.
    pub next_due: NextDue,
    /// The jobs this runner's configuration has, by (pipeline, place): what a run from
    /// elsewhere (the cluster's stream) is resolved against.
    pub known: KnownJobs,
}

/// A job's place: its pipeline and its index in the pipeline's list.
type Place = (Arc<str>, usize);

/// The configured jobs by place, replaced on every reconfiguration.
#[derive(Debug, Default)]
pub struct KnownJobs(
    std::sync::RwLock<std::collections::HashMap<Place, Arc<crate::config::service::JobSpec>>>,
);

impl KnownJobs {
    pub fn set(&self, service: &ServiceConfig) {
        let jobs = service
            .pipelines
            .iter()
            .flat_map(|p| {
                p.jobs
                    .iter()
                    .enumerate()
                    .map(|(i, j)| ((p.name.clone(), i), j.clone()))
            })
            .collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = jobs;
    }

    /// The job configured at `index` of `pipeline`, if it is `job` and enabled.
    pub fn get(
        &self,
        pipeline: &str,
        index: usize,
        job: &str,
    ) -> Option<Arc<crate::config::service::JobSpec>> {
        let key = (Arc::<str>::from(pipeline), index);
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|j| *j.name == *job && j.enabled)
            .cloned()
    }
}

/// Each pipeline's next due time (ms since the Unix epoch; none: a cron expression never
/// due again), for the dashboard.
#[derive(Debug, Default)]
pub struct NextDue(std::sync::Mutex<std::collections::HashMap<Arc<str>, Option<i64>>>);

impl NextDue {
    pub fn set(&self, pipeline: &Arc<str>, due_ms: Option<i64>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(pipeline) {
            Some(d) => *d = due_ms,
            None => {
                m.insert(pipeline.clone(), due_ms);
            }
        }
    }

    pub fn get(&self, pipeline: &str) -> Option<i64> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(pipeline).copied().flatten()
    }
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
            execution: Execution::new(sandbox, modules),
            reports: Reports::new(history),
            live_runs: AllJobRuns::default(),
            next_due: NextDue::default(),
            known: KnownJobs::default(),
            run_ids: RunIds::default(),
            retries: TaskTracker::new(),
            stopping: CancellationToken::new(),
        })
    }
}

struct Producer {
    pipeline: watch::Sender<Pipeline>,
    cancel: CancellationToken,
}

/// A running scheduler. Stop it with [`Scheduler::stop`], which gives runs their grace
/// period and records every run it ends; dropping it instead aborts its tasks at once
/// (runs cut off where they stand, nothing recorded).
pub struct Scheduler {
    pub shared: Arc<Shared>,
    queue: Arc<dyn RunQueue>,
    producers: BTreeMap<Arc<str>, Producer>,
    consumers: Vec<CancellationToken>,
    tasks: JoinSet<()>,
    clock: Clock,
    /// Where producers run: a thread of their own, so guests that keep the job threads
    /// busy (or a host call that holds one) cannot make a due time late. None with a
    /// virtual clock, whose time is the test's runtime's.
    clock_thread: Option<tokio::runtime::Runtime>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // A runtime may not be dropped inside another: let its thread go in the background.
        if let Some(rt) = self.clock_thread.take() {
            rt.shutdown_background();
        }
    }
}

/// The producers' own runtime, on one worker thread that drives itself.
fn clock_thread() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("tgrun-producers")
        .build()
        .inspect_err(|e| tracing::warn!("no thread of their own for producers: {e}"))
        .ok()
}

/// What [`Scheduler::stop`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stopped {
    /// Runs that were still running when the grace period ended, cancelled.
    pub cancelled_running: usize,
    /// Runs queued, held back or waiting to retry, never started.
    pub cancelled_waiting: usize,
    /// Whether every run's report reached the history before the runner let go.
    pub history_flushed: bool,
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
        Self::start_with_clock(service, queue_capacity, shared, Clock::System)
    }

    /// As [`Scheduler::start_shared`], on `clock` (a virtual one in tests).
    pub fn start_with_clock(
        service: &ServiceConfig,
        queue_capacity: usize,
        shared: Arc<Shared>,
        clock: Clock,
    ) -> Self {
        let queue = Arc::new(queue::LocalQueue::new(queue_capacity, shared.clone()));
        Self::start_with_queue(service, queue, shared, clock)
    }

    /// Starts on `queue` (the in-process one, or a cluster's).
    pub fn start_with_queue(
        service: &ServiceConfig,
        queue: Arc<dyn RunQueue>,
        shared: Arc<Shared>,
        clock: Clock,
    ) -> Self {
        let mut s = Self {
            shared,
            queue,
            producers: BTreeMap::new(),
            consumers: Vec::new(),
            tasks: JoinSet::new(),
            clock_thread: match clock {
                Clock::System => clock_thread(),
                Clock::Virtual { .. } => None,
            },
            clock,
        };
        let (queue, stop) = (s.queue.clone(), s.shared.stopping.child_token());
        s.tasks.spawn(async move { queue.background(stop).await });
        s.reconfigure(service);
        s
    }

    /// Applies a new service configuration from the next tick, without stopping anything
    /// that runs: added pipelines start now, removed ones stop, a changed one (period, jobs,
    /// params) keeps its last tick and takes the new values from its next; consumers are
    /// added, or told to stop after their current run. Runs in flight are not disturbed.
    pub fn reconfigure(&mut self, service: &ServiceConfig) -> Changes {
        self.shared.known.set(service);
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
                        current.timing == pipeline.timing && current.jobs == pipeline.jobs
                    };
                    if !same {
                        p.pipeline.send_replace(pipeline.clone());
                        changes.changed.push(name.to_string());
                    }
                }
                None => {
                    let (tx, rx) = watch::channel(pipeline.clone());
                    let cancel = self.shared.stopping.child_token();
                    let task = producer::produce(
                        rx,
                        self.queue.clone(),
                        self.shared.clone(),
                        cancel.clone(),
                        self.clock,
                    );
                    match &self.clock_thread {
                        Some(rt) => self.tasks.spawn_on(task, rt.handle()),
                        None => self.tasks.spawn(task),
                    };
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
            let cancel = self.shared.stopping.child_token();
            self.tasks.spawn(consumer::consume(
                self.queue.clone(),
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
        self.queue.depth()
    }

    /// Receives the report of every run that finishes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RunReport>> {
        self.shared.reports.subscribe()
    }

    /// Stops: producers stop, nothing new starts, runs in flight get `grace` to finish and
    /// are then cancelled. Every run that does not finish by itself is recorded as
    /// `cancelled` (running, queued, held back or waiting to retry), and the history is
    /// flushed.
    pub async fn stop(mut self, grace: Duration) -> Stopped {
        let shared = self.shared.clone();
        let cancelled_before = Stats::get(&shared.reports.stats.cancelled);
        shared.stopping.cancel();
        shared.retries.close();
        let mut stopped = Stopped::default();
        self.drain_queue();
        let all_done = async {
            while self.tasks.join_next().await.is_some() {}
            shared.retries.wait().await;
        };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            let reason = format!(
                "stopped: the runner shut down and the run did not end within the grace period of {}s",
                grace.as_secs_f64()
            );
            stopped.cancelled_running = shared.cancel_every_slot(&reason);
            // Cancelled runs end at their next epoch tick or wherever a host call waits.
            while self.tasks.join_next().await.is_some() {}
            shared.retries.wait().await;
        }
        // Again: a producer may have enqueued between the first drain and its own stop.
        self.drain_queue();
        shared.cancel_every_slot(STOPPED);
        // Consumers and retry tasks record what they cancel themselves: count it all.
        let cancelled = (Stats::get(&shared.reports.stats.cancelled) - cancelled_before) as usize;
        stopped.cancelled_waiting = cancelled.saturating_sub(stopped.cancelled_running);
        stopped.history_flushed = match &shared.reports.history {
            Some(h) => h.flush(Duration::from_secs(10)).await,
            None => true,
        };
        stopped
    }

    /// Records every queued run as cancelled, never started.
    fn drain_queue(&self) {
        for due in self.queue.take_waiting() {
            self.shared.not_started(due);
        }
    }
}

/// Why runs that never started at a shutdown did not.
pub(crate) const STOPPED: &str = "not started: the runner stopped";

impl Shared {
    /// Cancels every job's live runs for `reason` and records its held runs as never
    /// started; answers how many runs were live.
    fn cancel_every_slot(&self, reason: &str) -> usize {
        let mut live = 0;
        for runs in self.live_runs.all() {
            live += runs.counts().0;
            for held in runs.cancel_all(reason) {
                self.not_started(held);
            }
        }
        live
    }

    /// Records `due` as cancelled before it started (a shutdown) and lets go of it, and
    /// the same for every run its job held back behind it.
    pub(crate) fn not_started(&self, due: Due) {
        let mut next = Some(due);
        while let Some(due) = next {
            self.reports.finish(due.inv.not_run(Outcome::Cancelled {
                reason: STOPPED.into(),
            }));
            next = due.live.finished(&due.inv.cancel);
        }
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

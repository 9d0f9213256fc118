//! A run's `Store`: its state (the job, its grants and memory limit, its outputs and
//! journal) and its deadline. Made for its run, or ahead of it ([`super::warm`]) and then
//! readied for the run that takes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::SandboxSettings;
use super::output::CappedOutput;
use crate::host::HostClients;
use crate::host::journal::{EchoTags, Journal};
use crate::host::limits::MemoryLimiter;
use crate::host::state::{LazyWasi, RunState};
use crate::run::{Capabilities, Invocation};

/// How long past the deadline a run may still take before it is dropped from outside:
/// covers a host call that does not return (the epoch check only runs in guest code).
pub(crate) const HOST_CALL_GRACE: Duration = Duration::from_millis(100);

/// Makes stores. State built once: the clients lent to jobs, the limits every run shares.
/// A store is made on its component's engine (the sandbox's, or the large pool's).
#[derive(Clone)]
pub(crate) struct Stores {
    services: Arc<HostClients>,
    max_output_bytes: usize,
    max_log_bytes: usize,
    epoch_deadlines: bool,
}

impl Stores {
    pub(crate) fn new(services: Arc<HostClients>, s: &SandboxSettings) -> Self {
        Self {
            services,
            max_output_bytes: s.max_output_bytes,
            max_log_bytes: s.max_log_bytes,
            epoch_deadlines: s.epoch_deadlines,
        }
    }

    /// A store for `inv`'s run, due to stop at `deadline`.
    pub(crate) fn for_run(
        &self,
        engine: &Engine,
        inv: &Invocation,
        deadline: Instant,
        tags: Option<EchoTags>,
    ) -> Store<RunState> {
        let mut store = self.make(
            engine,
            [&inv.job, &inv.pipeline, &inv.module].map(|s| s.to_string()),
            inv.grants,
            inv.limits.memory_bytes,
            deadline,
            tags,
        );
        store.data_mut().wasi.set_env(&inv.env);
        store.data_mut().outbound = inv.outbound.clone();
        store
    }

    /// A store made before its run is known: no client granted (the run's grants are
    /// given when it takes the store), no echo.
    pub(crate) fn ahead(
        &self,
        engine: &Engine,
        memory_bytes: u64,
        deadline: Instant,
    ) -> Store<RunState> {
        self.make(
            engine,
            [String::new(), String::new(), String::new()],
            Capabilities::NONE,
            memory_bytes,
            deadline,
            None,
        )
    }

    fn make(
        &self,
        engine: &Engine,
        [job, pipeline, module]: [String; 3],
        grants: Capabilities,
        memory_bytes: u64,
        deadline: Instant,
        tags: Option<EchoTags>,
    ) -> Store<RunState> {
        // The run's budget covers what the host keeps for it: its output and journal too.
        let limiter = MemoryLimiter::new(usize::try_from(memory_bytes).unwrap_or(usize::MAX));
        let budget = limiter.budget.clone();
        let stdout = CappedOutput::new(self.max_output_bytes).charged_to(budget.clone());
        let stderr = CappedOutput::new(self.max_output_bytes).charged_to(budget.clone());
        let state = RunState {
            job,
            pipeline,
            module,
            grants,
            wasi: LazyWasi::new(stdout, stderr),
            table: ResourceTable::new(),
            limiter,
            services: self.services.clone(),
            journal: self.journal(tags).charged_to(budget),
            open_transactions: 0,
            outbound: Default::default(),
            http_requests: 0,
            refused: false,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        self.arm(&mut store, deadline);
        store
    }

    /// Readies a store made ahead for `inv`'s run: its job, pipeline, grants, journal and
    /// deadline.
    pub(crate) fn ready(
        &self,
        store: &mut Store<RunState>,
        inv: &Invocation,
        deadline: Instant,
        tags: Option<EchoTags>,
    ) {
        self.arm(store, deadline);
        let journal = self
            .journal(tags)
            .charged_to(store.data().limiter.budget.clone());
        let state = store.data_mut();
        state.job = inv.job.to_string();
        state.pipeline = inv.pipeline.to_string();
        state.module = inv.module.to_string();
        state.grants = inv.grants;
        state.journal = journal;
        state.wasi.set_env(&inv.env);
        state.outbound = inv.outbound.clone();
    }

    /// An empty journal with the configuration's secrets as they are now.
    pub(crate) fn journal(&self, tags: Option<EchoTags>) -> Journal {
        Journal::new(self.max_log_bytes, tags, self.services.mask())
    }

    fn arm(&self, store: &mut Store<RunState>, deadline: Instant) {
        if self.epoch_deadlines {
            store.set_epoch_deadline(1);
            // At each epoch tick: stop the guest if its time is up, else let other tasks run.
            store.epoch_deadline_callback(move |_| {
                Ok(if Instant::now() >= deadline {
                    UpdateDeadline::Interrupt
                } else {
                    UpdateDeadline::Yield(1)
                })
            });
        }
    }
}

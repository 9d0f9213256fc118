//! The sandbox: a wasmtime engine and linker built once, and a fresh `Store` and instance
//! for every run.
//!
//! - [`engine`]: engine configuration (pooling allocator, epoch interruption) and the
//!   ticker that advances epochs.
//! - [`component`]: compiling a `.wasm` file into a [`component::JobComponent`], checked
//!   against the job world.
//! - [`output`]: a run's stdout and stderr, capped. Its store's data (what host calls
//!   see) is [`crate::host::state::RunState`].
//! - [`store`]: a run's `Store` and its state, made for its run or ahead of it.
//! - [`warm`]: instances made ahead of their run, for components dear to instantiate.
//! - [`run`]: one invocation, from instantiation to [`crate::run::RunReport`].
//! - [`check`]: `tgrun check`'s explanation of why a component does not fit.

pub mod check;
pub mod code_cache;
pub mod component;
pub mod engine;
pub mod jobs_section;
pub mod output;
pub mod run;
pub mod store;
pub mod warm;

use std::sync::Arc;

use anyhow::Result;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::Job;
use crate::host::HostClients;
use crate::host::state::RunState;

/// Limits that hold for every run of this sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Bytes of stdout and of stderr kept per run (each); the rest is dropped and counted.
    /// Protects the runner's memory and log from a guest that prints without end.
    pub max_output_bytes: usize,
    /// Bytes of `log` messages kept per run, for the same reason.
    pub max_log_bytes: usize,
    /// Instances that may exist at once (pool slots). Runs beyond it wait in the queue.
    pub max_instances: u32,
    /// Largest linear memory any job may be given, in bytes (the pool reserves this much
    /// address space per slot; a job's own `memory_mb` is enforced below it).
    pub max_memory_bytes: u64,
    /// Where compiled code is cached, keyed by content hash and engine settings, so a
    /// restart does not compile every module again. `None`: no cache.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Instances from a pool of pre-reserved slots (the default: cheap to create and
    /// recycle), or memory mapped per instance (`false`; benchmarks compare the two).
    pub pooling: bool,
    /// Deadlines by epoch interruption (the default). Off only for benchmarks measuring
    /// their cost: without them a CPU-bound guest cannot be stopped at its timeout.
    pub epoch_deadlines: bool,
    /// Instances of components dear to instantiate made ahead of their runs (the
    /// default; see [`warm`]). Off only for benchmarks measuring an instance made in
    /// its run.
    pub make_ahead: bool,
    /// Ended runs' instances whose pages are returned to the kernel together; `None`:
    /// as many as keep at most [`engine::MAX_PENDING_BYTES`] of ended runs' pages resident
    /// (one for the default `max_memory_mb`). Set only by benchmarks comparing batches.
    pub decommit_batch: Option<usize>,
    /// A run's stack reset when it ends (the default: what it touched is not kept
    /// resident). Off only for benchmarks measuring its cost.
    pub stack_zeroing: bool,
}

impl SandboxSettings {
    /// Whether instances are made ahead: asked for, and with deadlines (without them a
    /// component's start that never returns would hold its place for ever).
    pub(crate) fn makes_ahead(&self) -> bool {
        self.make_ahead && self.epoch_deadlines
    }
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            max_output_bytes: 64 * 1024,
            max_log_bytes: 256 * 1024,
            max_instances: 256,
            max_memory_bytes: 4 << 30,
            cache_dir: None,
            pooling: true,
            epoch_deadlines: true,
            make_ahead: true,
            decommit_batch: None,
            stack_zeroing: true,
        }
    }
}

/// State built once: the engine, the linker with every host capability, the maker of
/// stores (with the services lent to jobs), and the epoch ticker behind deadlines.
pub struct Sandbox {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RunState>,
    pub(crate) settings: SandboxSettings,
    pub(crate) stores: store::Stores,
    pub(crate) ahead: Arc<warm::Ahead>,
    pub(crate) cache: Option<code_cache::CodeCache>,
    _ticker: engine::EpochTicker,
}

impl Sandbox {
    pub fn new(settings: SandboxSettings, services: Arc<HostClients>) -> Result<Self> {
        let (engine, cache) = engine::build(&settings)?;
        let mut linker = Linker::<RunState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Job::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let ticker = engine::EpochTicker::start(engine.clone());
        Ok(Self {
            stores: store::Stores::new(engine.clone(), services.clone(), &settings),
            ahead: Arc::new(warm::Ahead::new(settings.makes_ahead())),
            engine,
            linker,
            settings,
            cache,
            _ticker: ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn settings(&self) -> &SandboxSettings {
        &self.settings
    }

    /// Runs that took an instance made ahead of them, and instances made ahead and thrown
    /// away unused (see [`warm`]).
    pub fn ahead_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.ahead.served.load(Relaxed),
            self.ahead.discarded.load(Relaxed),
        )
    }

    /// Compiles served from the compiled-code cache and compiles that filled it, since
    /// this sandbox was built; `None` without a cache.
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.cache.as_ref().map(code_cache::CodeCache::stats)
    }
}

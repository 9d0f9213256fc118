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
//! - [`large`]: the large components' (Python's) engine and pool: slots that keep their
//!   memory, bounded, given back when idle.
//! - [`warm`]: instances made ahead of their run, for components dear to instantiate.
//! - [`run`]: one invocation, from instantiation to [`crate::run::RunReport`].
//! - [`check`]: `tgrun check`'s explanation of why a component does not fit.

pub mod check;
pub mod code_cache;
pub mod component;
pub mod engine;
pub mod jobs_section;
pub mod large;
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
    /// Instances of components under 1 MiB (Rust jobs) that may exist at once (pool
    /// slots). Runs beyond it wait in the queue.
    pub max_instances: u32,
    /// Instances of components of 1 MiB or more (Python jobs) that may exist at once,
    /// running or made ahead: the large pool's slots. A run beyond it waits for one.
    pub large_instances: u32,
    /// Bytes of each large pool slot's memory kept resident between runs, reset by copy
    /// (about a Python component's snapshot and the heap a run writes past it).
    pub large_memory_kept_bytes: u64,
    /// The large pool unused this long gives its memory back ([`large::TRIM_AFTER`]).
    pub large_trim_after: std::time::Duration,
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

/// `runner.large_memory_kept_mb`'s default: a `tglib_service` component's snapshot is
/// 22.6 MB, and its runs write a few MiB of heap past it.
pub const DEFAULT_LARGE_MEMORY_KEPT_MB: u64 = 32;

/// `runner.max_large_instances`' default: one per core (a Python run is CPU-bound: more at
/// once only share the cores, at 32 MiB each), and at least 2.
pub fn default_large_instances() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() as u32)
        .max(2)
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            max_output_bytes: 64 * 1024,
            max_log_bytes: 256 * 1024,
            max_instances: 256,
            large_instances: default_large_instances(),
            large_memory_kept_bytes: DEFAULT_LARGE_MEMORY_KEPT_MB << 20,
            large_trim_after: large::TRIM_AFTER,
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
    pub(crate) large: Arc<large::LargePool>,
    pub(crate) cache: Option<Arc<code_cache::CodeCache>>,
    _ticker: engine::EpochTicker,
}

/// A linker of every host capability, for `engine`.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<RunState>> {
    let mut linker = Linker::<RunState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Job::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl Sandbox {
    pub fn new(settings: SandboxSettings, services: Arc<HostClients>) -> Result<Self> {
        let engine = engine::build(&settings, engine::Pool::Small)?;
        let cache = engine::cache(&settings, &engine)?.map(Arc::new);
        let linker = linker(&engine)?;
        let ticked = engine::Ticked::default();
        ticked.add(&engine);
        let large = Arc::new(large::LargePool::new(
            &settings,
            ticked.clone(),
            cache.clone(),
        ));
        let ahead = Arc::new(warm::Ahead::new(settings.makes_ahead()));
        let trim: engine::Chore = {
            let (large, ahead) = (Arc::downgrade(&large), Arc::downgrade(&ahead));
            Box::new(move || {
                if let (Some(large), Some(ahead)) = (large.upgrade(), ahead.upgrade()) {
                    large.trim_if_idle(&ahead);
                }
            })
        };
        Ok(Self {
            stores: store::Stores::new(services.clone(), &settings),
            ahead,
            large,
            engine,
            linker,
            settings,
            cache,
            _ticker: engine::EpochTicker::start(ticked, vec![trim]),
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
        self.cache.as_deref().map(code_cache::CodeCache::stats)
    }

    /// The large pool as it stands: instances running and made ahead, bytes its free slots
    /// keep resident, and the times it gave its memory back.
    pub fn large_stats(&self) -> LargeStats {
        LargeStats {
            running: self.large.running() as u64,
            parked: self.ahead.parked() as u64,
            kept_bytes: self.large.kept_bytes(),
            trims: self.large.trims.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// See [`Sandbox::large_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LargeStats {
    pub running: u64,
    pub parked: u64,
    pub kept_bytes: u64,
    pub trims: u64,
}

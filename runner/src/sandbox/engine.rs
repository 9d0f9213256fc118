//! The wasmtime engines: pooling allocator (instances are cheap to create and recycle) and
//! epoch interruption (deadlines that cost almost nothing while a guest runs). One engine
//! for every component but the large ones, and one (rebuilt after an idle spell) for the
//! large ones ([`super::large`]): their pools want opposite settings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use super::SandboxSettings;

/// How often the epoch advances. A run's deadline is checked at each tick, so a timeout
/// fires at most this late, and a CPU-bound guest yields to other runs this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of ended runs' pages that may wait to be returned to the kernel: after a burst of
/// runs at 512 MiB, the runner's memory is back within this of idle.
pub const MAX_PENDING_BYTES: u64 = 64 << 20;
/// The most instances whose pages are returned together.
const MAX_DECOMMIT_BATCH: usize = 32;

/// Instances whose pages are returned to the kernel together: a batch pays the other
/// cores' TLB flush once, but each instance waiting in it may hold up to the largest
/// memory a job may have, so the batch holds at most [`MAX_PENDING_BYTES`] of them.
fn decommit_batch(settings: &SandboxSettings, slots: u32) -> usize {
    settings.decommit_batch.unwrap_or_else(|| {
        let fits = MAX_PENDING_BYTES / settings.max_memory_bytes.max(1);
        usize::try_from(fits)
            .unwrap_or(MAX_DECOMMIT_BATCH)
            .min(MAX_DECOMMIT_BATCH)
            .min(slots as usize / 4)
            .max(1)
    })
}

/// The components an engine's pool is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pool {
    /// Every component but the large ones: many slots, each given back to the kernel as its
    /// run ends (64 KiB kept).
    Small,
    /// Components of [`super::large::SMALLEST_LARGE`] or more: a few slots, each keeping
    /// `large_memory_kept_bytes` of its memory resident and reset by copy.
    Large,
}

/// An engine for `pool`'s components.
pub(crate) fn build(settings: &SandboxSettings, kind: Pool) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let slots = match kind {
        Pool::Small => settings.max_instances,
        // Running and made-ahead instances alike (one permit each, see `large`).
        Pool::Large => settings.large_instances,
    };
    pool.total_component_instances(slots)
        // A Rust wasip2 component holds 3 core instances (the job and its adapters), a
        // Python one from componentize-py 14 (CPython, libc, the runtime, shims): room for
        // every slot to run Python. A core instance slot is only a count, not memory.
        .total_core_instances(slots * 16)
        .total_memories(slots * 2)
        .total_tables(slots * 8)
        .total_stacks(slots)
        // One run takes at most its share: a component of many memories, tables or
        // instances is refused at load (`component::within_a_run`) and cannot
        // instantiate past these either.
        .max_memories_per_component(super::component::MAX_MEMORIES)
        .max_tables_per_component(super::component::MAX_TABLES)
        .max_core_instances_per_component(super::component::MAX_CORE_INSTANCES)
        .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX))
        .table_keep_resident(16 * 1024)
        // The same for a run's stack: without zeroing (below) a stack slot keeps every page
        // a run touched (a deep recursion: its whole stack) resident for good, slot after
        // slot (100 recursing runs, 8 at once: +3 MiB; every slot of the pool: its stacks).
        // 16 KiB zeroed a run: the trivial job's whole path at 0.93x of stacks kept as they
        // were (`make bench`, stack_zeroing).
        .async_stack_keep_resident(16 * 1024)
        // Returning a slot's pages to the kernel (madvise) makes it interrupt every other
        // core running the runner to flush their TLBs; batching pays that once per batch,
        // as long as the pages waiting stay bounded (see `decommit_batch`).
        .decommit_batch_size(decommit_batch(settings, slots));
    match kind {
        Pool::Small => {
            // Keep a little of each memory resident between runs: a fresh instance then
            // reuses warm pages instead of faulting them in again.
            pool.linear_memory_keep_resident(64 * 1024)
                // Where the kernel can say which pages a run dirtied (Linux >= 6.7), reset
                // only those.
                .pagemap_scan(Enabled::Auto);
        }
        Pool::Large => {
            // CPython writes all over its snapshot's pages (refcounts, dicts): mapped from
            // the image, each write is a copy-on-write fault and a TLB flush of every core
            // (43% of a loaded Python run's CPU, BENCHMARKS.md). Kept resident, a slot's
            // pages stay private and writable, and the reset copies back what the run
            // dirtied (the kernel's pagemap scan, which our patched wasmtime takes past its
            // 32 regions: runner/vendor/wasmtime/PATCHED.md); without the scan (Linux
            // < 6.7) the whole kept region is copied back. About 6x the runs per second of the
            // tglib service's job.
            pool.linear_memory_keep_resident(
                usize::try_from(settings.large_memory_kept_bytes).unwrap_or(usize::MAX),
            )
            .pagemap_scan(Enabled::Auto);
        }
    }

    let mut config = Config::new();
    // For a profiler (`perf`): jobs' compiled functions named in /tmp/perf-<pid>.map.
    if std::env::var_os("TGRUN_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
        .epoch_interruption(settings.epoch_deadlines)
        // A run's stack is reset when it ends: what it kept resident zeroed, the rest
        // returned to the kernel; no run reads another's stack, none leaves it resident.
        .async_stack_zeroing(settings.stack_zeroing)
        .allocation_strategy(if settings.pooling {
            InstanceAllocationStrategy::Pooling(pool)
        } else {
            InstanceAllocationStrategy::OnDemand
        })
        .wasm_component_model(true);
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("building the wasmtime engine")
}

/// The compiled-code cache of `engine`'s code, when the settings have one.
pub(crate) fn cache(
    settings: &SandboxSettings,
    engine: &Engine,
) -> Result<Option<super::code_cache::CodeCache>> {
    match &settings.cache_dir {
        Some(dir) => Ok(Some(super::code_cache::CodeCache::new(dir, engine)?)),
        None => Ok(None),
    }
}

/// Engines the ticker advances, held weakly: one no longer used by any component or store
/// is gone, and one still used (a run on a large pool's old engine) keeps its deadlines.
#[derive(Clone, Default)]
pub(crate) struct Ticked(Arc<Mutex<Vec<EngineWeak>>>);

impl Ticked {
    /// Ticks `engine` too, for as long as anything holds it.
    pub(crate) fn add(&self, engine: &Engine) {
        self.lock().push(engine.weak());
    }

    fn alive(&self) -> Vec<Engine> {
        let mut engines = self.lock();
        let alive: Vec<Engine> = engines.iter().filter_map(EngineWeak::upgrade).collect();
        if alive.len() < engines.len() {
            *engines = alive.iter().map(Engine::weak).collect();
        }
        alive
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EngineWeak>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Work the ticker's thread does about once a second.
pub(crate) type Chore = Box<dyn Fn() + Send>;

/// Ticks between two calls of the chores.
const CHORE_TICKS: u32 = 100;

/// Advances the epoch of the engines in its [`Ticked`] every [`EPOCH_TICK`] on its own
/// thread, until dropped, and calls its chores (the large pool's trim) about once a second.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engines: Ticked, chores: Vec<Chore>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                let mut ticks = 0u32;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in engines.alive() {
                        engine.increment_epoch();
                    }
                    ticks += 1;
                    if ticks >= CHORE_TICKS {
                        ticks = 0;
                        for chore in &chores {
                            chore();
                        }
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! The wasmtime engine: pooling allocator (instances are cheap to create and recycle) and
//! epoch interruption (deadlines that cost almost nothing while a guest runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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
fn decommit_batch(settings: &SandboxSettings) -> usize {
    settings.decommit_batch.unwrap_or_else(|| {
        let fits = MAX_PENDING_BYTES / settings.max_memory_bytes.max(1);
        usize::try_from(fits)
            .unwrap_or(MAX_DECOMMIT_BATCH)
            .min(MAX_DECOMMIT_BATCH)
            .min(settings.max_instances as usize / 4)
            .max(1)
    })
}

/// The engine, and the compiled-code cache of its code.
pub fn build(settings: &SandboxSettings) -> Result<(Engine, Option<super::code_cache::CodeCache>)> {
    let mut pool = PoolingAllocationConfig::default();
    // Instances made ahead of their run have slots of their own: they never take a run's.
    let ahead = if settings.makes_ahead() {
        super::warm::MAX_AHEAD
    } else {
        0
    };
    let slots = settings.max_instances + ahead;
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
        // Keep a little of each memory resident between runs: a fresh instance then reuses
        // warm pages instead of faulting them in again.
        .linear_memory_keep_resident(64 * 1024)
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
        .decommit_batch_size(decommit_batch(settings))
        // Where the kernel can say which pages a run dirtied (Linux >= 6.7), reset only those.
        .pagemap_scan(Enabled::Auto);

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
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("building the wasmtime engine")?;
    let cache = match &settings.cache_dir {
        Some(dir) => Some(super::code_cache::CodeCache::new(dir, &engine)?),
        None => None,
    };
    Ok((engine, cache))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own thread, until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
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

//! The large pool: components of [`SMALLEST_LARGE`] or more (every Python job: CPython and
//! its 20-30 MB snapshot) run on an engine of their own, whose few slots keep the pages a
//! run wrote (up to `large_memory_kept_bytes`) resident between runs and reset them by
//! copying the image back ([`super::engine::Pool::Large`]). A run of CPython then writes private pages instead
//! of taking a copy-on-write fault, and a TLB flush of every core, at each page of its
//! snapshot it touches. Rust jobs (tens to hundreds of KB) never come here.
//!
//! Bounded: `large_instances` permits, each one slot of the pool, held by a running
//! instance or by one made ahead of its run ([`super::warm`]). A run without one waits for
//! one (within its deadline), after dropping another component's instance made ahead.
//!
//! Given back: after `large_trim_after` ([`TRIM_AFTER`]) with no large run, the instances made ahead are
//! dropped and the engine is let go with its pool (every page a slot kept goes back to the
//! kernel once no run holds the engine). Each component is bound again to the next engine
//! at its next run, from its compiled code's file (a few milliseconds): a component whose
//! code is not on file (no `cache_dir`) keeps the engine and its pool as they are.

#![allow(unsafe_code)]

use std::fs::File;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::SandboxSettings;
use super::code_cache::CodeCache;
use super::component::World;
use super::engine::{Pool, Ticked};
use super::warm::Ahead;
use crate::host::state::RunState;
use crate::run::RunCancel;

/// A component this large or larger runs in the large pool (a Rust job is tens to hundreds
/// of KB, a Python one 20-40 MB).
pub(crate) const SMALLEST_LARGE: usize = 1 << 20;

/// How often a run waiting for a slot looks again for an instance made ahead to drop.
const RECHECK: Duration = Duration::from_millis(50);

/// The large pool unused this long gives its memory back (`large_trim_after`'s default).
pub const TRIM_AFTER: Duration = Duration::from_secs(10);

/// The large pool's engine of the moment, and what is built with it.
pub(crate) struct LargeEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RunState>,
    generation: u64,
}

/// A large component's code as bound to an engine.
pub(crate) struct Bound<W> {
    pub(crate) engine: Engine,
    pub(crate) pre: W,
    generation: u64,
}

impl<W> Bound<W> {
    /// Code bound for good to the sandbox's own engine.
    pub(crate) fn new(engine: Engine, pre: W) -> Self {
        Self {
            engine,
            pre,
            generation: 0,
        }
    }
}

impl<W: Clone> Clone for Bound<W> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            generation: self.generation,
        }
    }
}

/// A large component: its code bound to the engine of the moment, and the file it is bound
/// again from after a trim.
pub(crate) struct Binding<W> {
    /// The compiled code's file, open: an entry the cache removed meanwhile is still read
    /// through it.
    file: Option<File>,
    bound: Mutex<Option<Bound<W>>>,
}

impl<W> Binding<W> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Bound<W>>> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A binding as the pool sees it when it trims.
trait Unbind: Send + Sync {
    fn rebindable(&self) -> bool;
    /// Lets its engine go: its next run binds it again.
    fn unbind(&self);
}

impl<W: Send + Sync> Unbind for Binding<W> {
    fn rebindable(&self) -> bool {
        self.file.is_some()
    }

    fn unbind(&self) {
        let gone = self.lock().take();
        drop(gone);
    }
}

pub(crate) struct LargePool {
    settings: SandboxSettings,
    ticked: Ticked,
    /// The sandbox's own cache: the pool's engines read the same entries (their settings
    /// are not code settings).
    cache: Option<Arc<CodeCache>>,
    current: Mutex<Option<Arc<LargeEngine>>>,
    generations: AtomicU64,
    permits: Arc<Semaphore>,
    /// Runs waiting for a permit: a run that ends gives its permit to them rather than to
    /// an instance made ahead.
    waiting: AtomicUsize,
    /// Runs holding a permit (not counting instances made ahead).
    running: AtomicUsize,
    /// When a large run last started or ended, in ms since `since`.
    last_used_ms: AtomicU64,
    since: Instant,
    bindings: Mutex<Vec<Weak<dyn Unbind>>>,
    /// Times the pool gave its memory back.
    pub(crate) trims: AtomicU64,
}

/// What a run of a large component holds while it runs: its slot's permit, and its count
/// among the running.
pub(crate) struct Seat {
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    pool: Arc<LargePool>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.pool.running.fetch_sub(1, Ordering::AcqRel);
        self.pool.used();
    }
}

/// Why a run of a large component did not get its slot.
pub(crate) enum NoSeat {
    Timeout,
    Cancelled(String),
}

impl LargePool {
    /// The pool, its first engine built at its first compile.
    pub(crate) fn new(
        settings: &SandboxSettings,
        ticked: Ticked,
        cache: Option<Arc<CodeCache>>,
    ) -> Self {
        Self {
            settings: settings.clone(),
            ticked,
            cache,
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
            permits: Arc::new(Semaphore::new(settings.large_instances as usize)),
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            last_used_ms: AtomicU64::new(0),
            since: Instant::now(),
            bindings: Mutex::new(Vec::new()),
            trims: AtomicU64::new(0),
        }
    }

    /// The engine of the moment, built if the last was let go.
    pub(crate) fn engine(&self) -> Result<Arc<LargeEngine>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = &*current {
            return Ok(e.clone());
        }
        let engine = super::engine::build(&self.settings, Pool::Large)?;
        let linker = super::linker(&engine)?;
        self.ticked.add(&engine);
        let made = Arc::new(LargeEngine {
            engine,
            linker,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        });
        *current = Some(made.clone());
        Ok(made)
    }

    /// `bytes` compiled for the large pool (their SHA-256 `hash`), from the compiled-code
    /// cache when there is one, with the file it is bound again from. Blocking.
    pub(crate) fn component_of(
        &self,
        bytes: &[u8],
        hash: &str,
    ) -> Result<(Component, Option<File>, Arc<LargeEngine>)> {
        let large = self.engine()?;
        let (component, file) = match &self.cache {
            Some(cache) => cache.load_with_file(&large.engine, bytes, hash)?,
            None => (Component::new(&large.engine, bytes)?, None),
        };
        Ok((component, file, large))
    }

    /// A binding of `pre`, made from `component` on `large`, noted for the trim.
    pub(crate) fn bind<W: World>(
        &self,
        pre: W,
        file: Option<File>,
        large: &LargeEngine,
    ) -> Arc<Binding<W>> {
        let binding = Arc::new(Binding {
            file,
            bound: Mutex::new(Some(Bound {
                engine: large.engine.clone(),
                pre,
                generation: large.generation,
            })),
        });
        let mut bindings = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
        bindings.retain(|b| b.strong_count() > 0);
        bindings.push(Arc::downgrade(&binding) as Weak<dyn Unbind>);
        binding
    }

    /// `binding`'s code on the engine of the moment: as bound, or bound again after a trim
    /// (from its file, on a blocking thread).
    pub(crate) async fn bound<W: World>(&self, binding: &Arc<Binding<W>>) -> Result<Bound<W>> {
        let large = self.engine()?;
        if let Some(b) = &*binding.lock()
            && (b.generation == large.generation || binding.file.is_none())
        {
            return Ok(b.clone());
        }
        let file = binding
            .file
            .as_ref()
            .context("this component's compiled code is not on file")?
            .try_clone()
            .context("reopening this component's compiled code")?;
        let engine = large.clone();
        let pre = tokio::task::spawn_blocking(move || rebind::<W>(&file, &engine))
            .await
            .context("binding the component again")??;
        let b = Bound {
            engine: large.engine.clone(),
            pre,
            generation: large.generation,
        };
        *binding.lock() = Some(b.clone());
        Ok(b)
    }

    /// Waits for a slot of the pool (until `deadline`, unless `cancel`led first), making
    /// room by dropping an instance another component made ahead.
    pub(crate) async fn seat(
        self: &Arc<Self>,
        ahead: &Ahead,
        deadline: Instant,
        cancel: &RunCancel,
    ) -> Result<Seat, NoSeat> {
        // Counted as waiting first: a run ending meanwhile then leaves its slot to this one
        // rather than to an instance made ahead.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = loop {
            if let Ok(p) = self.permits.clone().try_acquire_owned() {
                break Ok(p);
            }
            if ahead.drop_oldest() {
                continue;
            }
            // In slices: an instance parked while this run began to wait is found at the
            // next look.
            let slice = deadline.min(Instant::now() + RECHECK);
            tokio::select! {
                biased;
                p = tokio::time::timeout_at(slice.into(), self.permits.clone().acquire_owned()) => match p {
                    Ok(Ok(p)) => break Ok(p),
                    Err(_) if Instant::now() < deadline => {}
                    // The semaphore is never closed.
                    Ok(Err(_)) | Err(_) => break Err(NoSeat::Timeout),
                },
                reason = cancel.cancelled() => break Err(NoSeat::Cancelled(reason)),
            }
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit?;
        Ok(self.seated(Some(permit)))
    }

    /// A run that took an instance made ahead, with its permit.
    pub(crate) fn seated(self: &Arc<Self>, permit: Option<OwnedSemaphorePermit>) -> Seat {
        self.running.fetch_add(1, Ordering::AcqRel);
        self.used();
        Seat {
            permit,
            pool: self.clone(),
        }
    }

    /// Whether runs wait for a slot.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    fn used(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used_ms.store(ms, Ordering::Release);
    }

    /// Runs holding a slot now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Bytes the pool's free slots keep resident for the next runs.
    pub(crate) fn kept_bytes(&self) -> u64 {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .and_then(|c| c.engine.pooling_allocator_metrics())
            .map_or(0, |m| m.unused_memory_bytes_resident() as u64)
    }

    /// Gives the pool's memory back if no large run started or ended for `large_trim_after`
    /// (the ticker's chore, once a second): drops the instances made ahead, unbinds every
    /// component and lets the engine go. Answers whether it did.
    pub(crate) fn trim_if_idle(&self, ahead: &Ahead) -> bool {
        let last = Duration::from_millis(self.last_used_ms.load(Ordering::Acquire));
        if self.running() > 0
            || self.has_waiters()
            || self.since.elapsed().saturating_sub(last) < self.settings.large_trim_after
        {
            return false;
        }
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.is_none() {
            return false;
        }
        let bindings = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
        let alive: Vec<_> = bindings.iter().filter_map(Weak::upgrade).collect();
        if !alive.iter().all(|b| b.rebindable()) {
            return false;
        }
        ahead.drop_all();
        for b in &alive {
            b.unbind();
        }
        // The engine goes with the last run or store that holds it.
        let gone = current.take();
        drop(bindings);
        drop(current);
        drop(gone);
        self.trims.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// `file`'s compiled component, on `large`'s engine and linker.
fn rebind<W: World>(file: &File, large: &LargeEngine) -> Result<W> {
    use std::os::fd::AsRawFd;
    // Through the descriptor: the cache may have removed the entry's name meanwhile.
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    // SAFETY: the file is a compiled-code cache entry, written whole before it was named
    // and never changed after (`code_cache`); wasmtime refuses one of other settings.
    let component = unsafe { Component::deserialize_file(&large.engine, &path) }
        .map_err(anyhow::Error::from)?;
    let pre = large
        .linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)?;
    W::from_instance_pre(pre).map_err(anyhow::Error::from)
}

//! Instances made ahead of their run, for components whose instantiation is dear (a
//! componentize-py job's CPython: a millisecond of function tables and copy-on-write
//! pages). When such a run ends, its store is dropped and the next run's instance made in
//! the background, and parked with the component; the next run takes it and only calls.
//!
//! Each instance still serves exactly one run, and no job code has run in it before: only
//! the component's own start, as in any instantiation, with no client granted (a start
//! that calls one, or writes a log line, is thrown away and its run makes its own). What
//! moves is when the instance is made, not what it is.
//!
//! Bounded: one parked instance per component, each holding a slot of the large pool
//! ([`super::large`]) that a run ended with and no run was waiting for (a run that finds
//! none free drops the instance parked longest), and only components of the large pool
//! whose fastest instantiation seen (of two at least) took [`DEAR`] or more (a Rust job's
//! takes a few µs: it never parks one, and its runs pay nothing for this). A component
//! whose instances made ahead are thrown away [`DISCARDS_TO_STOP`] times in a row makes no
//! more.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

use super::component::{Compiled, World};
use super::large::Bound;
use super::store::{HOST_CALL_GRACE, Stores};
use crate::config::bounds::DAY;
use crate::host::state::RunState;

/// An instantiation this slow or slower is worth making ahead.
const DEAR: Duration = Duration::from_micros(100);

/// Instances of one component made ahead and thrown away in a row, after which it makes no
/// more (until its module is loaded again): a start that always fails or runs out its time
/// would otherwise cost its instantiation twice a run, once ahead and once in the run.
const DISCARDS_TO_STOP: u32 = 3;

/// Instantiations seen before a component may be found dear: a first one is slow for any
/// component (its code's pages mapped in, its caches cold).
const SEEN_BEFORE_DEAR: u32 = 2;

/// A component's parked instance, and what decides whether it gets one.
pub(crate) struct WarmSlot<I> {
    parked: Mutex<Option<Parked<I>>>,
    /// Whether `parked` holds one: a run of a component that never parks looks no further.
    has: AtomicBool,
    /// The fastest instantiation seen, in ns (`u64::MAX`: none yet).
    fastest_ns: AtomicU64,
    /// Instantiations seen, up to [`SEEN_BEFORE_DEAR`].
    seen: AtomicU32,
    /// An instance is being made: one at a time per component.
    making: AtomicBool,
    /// Instances made ahead and thrown away since the last one parked.
    discards: AtomicU32,
}

struct Parked<I> {
    store: Store<RunState>,
    instance: I,
    at: Instant,
    /// The memory limit it was made under (the limiter saw its initial memory).
    memory_bytes: u64,
    /// Dropped after the store: the slot is free before another run may take it.
    permit: OwnedSemaphorePermit,
}

impl<I> Default for WarmSlot<I> {
    fn default() -> Self {
        Self {
            parked: Mutex::new(None),
            has: AtomicBool::new(false),
            fastest_ns: AtomicU64::new(u64::MAX),
            seen: AtomicU32::new(0),
            making: AtomicBool::new(false),
            discards: AtomicU32::new(0),
        }
    }
}

impl<I> WarmSlot<I> {
    /// The parked instance and its slot's permit, if it was made under `memory_bytes`; one
    /// made under another limit (the job's configuration changed) is dropped.
    pub(crate) fn take(
        &self,
        memory_bytes: u64,
    ) -> Option<(Store<RunState>, I, OwnedSemaphorePermit)> {
        if !self.has.load(Ordering::Acquire) {
            return None;
        }
        // `has` changes under the lock, as in `park`.
        let parked = {
            let mut slot = self.lock();
            self.has.store(false, Ordering::Release);
            slot.take()
        };
        let p = parked?;
        (p.memory_bytes == memory_bytes).then_some((p.store, p.instance, p.permit))
    }

    /// Notes how long an instantiation took.
    pub(crate) fn observe(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX - 1);
        // Read first: consumers running one component on several cores would otherwise
        // write the same cache line at every run.
        if ns < self.fastest_ns.load(Ordering::Relaxed) {
            self.fastest_ns.fetch_min(ns, Ordering::Relaxed);
        }
        if self.seen.load(Ordering::Relaxed) < SEEN_BEFORE_DEAR {
            self.seen.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.has.load(Ordering::Acquire)
    }

    /// Whether the next run's instance of a large component should be made ahead.
    fn worth_it(&self) -> bool {
        self.seen.load(Ordering::Relaxed) >= SEEN_BEFORE_DEAR
            && Duration::from_nanos(self.fastest_ns.load(Ordering::Relaxed)) >= DEAR
            && self.discards.load(Ordering::Relaxed) < DISCARDS_TO_STOP
            // One waits already: the run that ended ran beside it (runs of one job at once).
            && !self.is_parked()
    }

    /// Answers whether it was parked (not if one already was).
    fn park(&self, parked: Parked<I>) -> bool {
        let mut slot = self.lock();
        if slot.is_some() {
            return false;
        }
        *slot = Some(parked);
        self.has.store(true, Ordering::Release);
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Parked<I>>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A component's slot as the sandbox sees it, to make room for another's.
trait Idle: Send + Sync {
    /// When its instance was parked, if one is.
    fn parked_at(&self) -> Option<Instant>;
    /// Drops the parked instance (its slot free again); answers whether there was one.
    fn drop_parked(&self) -> bool;
}

impl<I: Send + Sync> Idle for WarmSlot<I> {
    fn parked_at(&self) -> Option<Instant> {
        self.lock().as_ref().map(|p| p.at)
    }

    fn drop_parked(&self) -> bool {
        let mut slot = self.lock();
        let parked = slot.take();
        self.has.store(false, Ordering::Release);
        drop(slot);
        // Outside the lock: dropping a store resets its slot's memory.
        parked.is_some()
    }
}

/// The sandbox's side: which components have parked instances, and counts.
pub(crate) struct Ahead {
    enabled: bool,
    /// The slots that have parked an instance (each once; gone with their component).
    slots: Mutex<Vec<Weak<dyn Idle>>>,
    /// Runs that took an instance made ahead.
    pub(crate) served: AtomicU64,
    /// Instances made ahead and thrown away unused (their start called a client, logged,
    /// or failed).
    pub(crate) discarded: AtomicU64,
}

impl Ahead {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            slots: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
        }
    }

    /// Whether the next instance of `component`, whose run just ended, should be made now
    /// (in the background, with the slot the run held). Answering yes, it marks one as
    /// being made: the caller must call [`make_ahead`].
    pub(crate) fn wants<W: World>(&self, component: &Compiled<W>) -> bool {
        self.enabled
            && component.is_large()
            && component.warm.worth_it()
            && !component.warm.making.swap(true, Ordering::AcqRel)
    }

    /// Drops the instance parked longest, for a run that needs its slot; answers whether
    /// there was one.
    pub(crate) fn drop_oldest(&self) -> bool {
        let slots = self.alive();
        let oldest = slots
            .iter()
            .filter_map(|s| Some((s.parked_at()?, s)))
            .min_by_key(|(at, _)| *at);
        oldest.is_some_and(|(_, s)| s.drop_parked())
    }

    /// Drops every parked instance (the large pool gives its memory back).
    pub(crate) fn drop_all(&self) {
        for s in self.alive() {
            s.drop_parked();
        }
    }

    /// Instances parked now.
    pub(crate) fn parked(&self) -> usize {
        self.alive()
            .iter()
            .filter(|s| s.parked_at().is_some())
            .count()
    }

    fn alive(&self) -> Vec<Arc<dyn Idle>> {
        self.lock().iter().filter_map(Weak::upgrade).collect()
    }

    /// Notes that `slot` has parked an instance.
    fn parked_in(&self, slot: &Arc<dyn Idle>) {
        let mut slots = self.lock();
        slots.retain(|s| s.strong_count() > 0);
        if !slots
            .iter()
            .any(|s| std::ptr::addr_eq(s.as_ptr(), Arc::as_ptr(slot)))
        {
            slots.push(Arc::downgrade(slot));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<dyn Idle>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops `used` and makes the next run's instance of `component`, under the last run's
/// memory limit and timeout, and parks it. On the current runtime, in the background.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_ahead<W: World>(
    stores: Stores,
    ahead: Arc<Ahead>,
    component: Arc<Compiled<W>>,
    code: Bound<W>,
    used: Store<RunState>,
    memory_bytes: u64,
    timeout: Duration,
    permit: OwnedSemaphorePermit,
) {
    tokio::spawn(async move {
        drop(used);
        let deadline = Instant::now() + timeout.min(DAY);
        let mut store = stores.ahead(&code.engine, memory_bytes, deadline);
        let started = Instant::now();
        let made = tokio::time::timeout_at(
            (deadline + HOST_CALL_GRACE).into(),
            W::instantiate(&code.pre, &mut store),
        )
        .await;
        let slot = &component.warm;
        match made {
            Ok(Ok(instance)) if untouched(&store) => {
                slot.observe(started.elapsed());
                let parked = Parked {
                    store,
                    instance,
                    at: Instant::now(),
                    memory_bytes,
                    permit,
                };
                if slot.park(parked) {
                    ahead.parked_in(&(slot.clone() as Arc<dyn Idle>));
                }
                slot.discards.store(0, Ordering::Relaxed);
            }
            _ => {
                drop(store);
                drop(permit);
                ahead.discarded.fetch_add(1, Ordering::Relaxed);
                slot.discards.fetch_add(1, Ordering::Relaxed);
            }
        }
        slot.making.store(false, Ordering::Release);
    });
}

/// Whether instantiating left nothing a run would report or hold: no client call (all
/// refused), no log line, metric or output, no open transaction.
fn untouched(store: &Store<RunState>) -> bool {
    let s = store.data();
    !s.refused
        && s.journal.logs.is_empty()
        && s.journal.logs_dropped == 0
        && s.journal.metrics.is_empty()
        && s.open_transactions == 0
        && s.wasi.stdout().is_untouched()
        && s.wasi.stderr().is_untouched()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostClients;
    use tokio::sync::Semaphore;

    /// A slot with an instance parked `ago`, holding one of `permits`.
    fn parked(
        ahead: &Ahead,
        permits: &Arc<Semaphore>,
        engine: &wasmtime::Engine,
        ago: Duration,
    ) -> Arc<WarmSlot<()>> {
        let slot = Arc::new(WarmSlot::default());
        let state = RunState::for_test(Arc::new(HostClients::default()));
        let parked = Parked {
            store: Store::new(engine, state),
            instance: (),
            at: Instant::now() - ago,
            memory_bytes: 1,
            permit: permits.clone().try_acquire_owned().unwrap(),
        };
        assert!(slot.park(parked));
        ahead.parked_in(&(slot.clone() as Arc<dyn Idle>));
        slot
    }

    #[test]
    fn a_run_needing_a_slot_drops_the_instance_parked_longest() {
        let ahead = Ahead::new(true);
        let permits = Arc::new(Semaphore::new(3));
        let engine = wasmtime::Engine::default();
        let newer = parked(&ahead, &permits, &engine, Duration::from_secs(1));
        let oldest = parked(&ahead, &permits, &engine, Duration::from_secs(30));
        let newest = parked(&ahead, &permits, &engine, Duration::ZERO);
        assert_eq!(permits.available_permits(), 0);
        assert_eq!(ahead.parked(), 3);

        assert!(ahead.drop_oldest());
        assert!(!oldest.is_parked());
        assert!(oldest.take(1).is_none());
        assert_eq!(permits.available_permits(), 1);
        assert!(newer.is_parked() && newest.is_parked());
        assert!(ahead.drop_oldest());
        assert!(!newer.is_parked());

        // A slot gone with its component is forgotten; one parked again is noted once.
        drop(newest);
        assert!(!ahead.drop_oldest(), "the last one went with its component");
        assert_eq!(permits.available_permits(), 3);
        let again = parked(&ahead, &permits, &engine, Duration::ZERO);
        ahead.parked_in(&(again.clone() as Arc<dyn Idle>));
        assert_eq!(ahead.lock().len(), 3, "the two dropped and the new one");
        ahead.drop_all();
        assert!(!again.is_parked());
        assert_eq!((ahead.parked(), permits.available_permits()), (0, 3));
    }

    #[test]
    fn an_instance_whose_start_called_a_client_or_wrote_anything_is_not_kept() {
        use crate::host::journal::{LogLevel, LogStream};
        let engine = wasmtime::Engine::default();
        let store = || {
            Store::new(
                &engine,
                RunState::for_test(Arc::new(HostClients::default())),
            )
        };
        assert!(untouched(&store()));

        let mut refused = store();
        assert!(!refused.data_mut().may(false));
        assert!(!untouched(&refused));
        let mut logged = store();
        let line = "hello".to_string();
        logged
            .data_mut()
            .journal
            .log(LogLevel::Info, LogStream::Log, line);
        assert!(!untouched(&logged));
        let printed = store();
        printed.data().wasi.stderr().append(b"x");
        assert!(!untouched(&printed));
        let mut in_transaction = store();
        in_transaction.data_mut().open_transactions = 1;
        assert!(!untouched(&in_transaction));
    }

    #[test]
    fn only_a_component_slow_to_instantiate_gets_instances_made_ahead() {
        let slot = WarmSlot::<()>::default();
        slot.observe(Duration::from_millis(1));
        assert!(!slot.worth_it(), "one instantiation seen is not enough");
        slot.observe(Duration::from_micros(900));
        assert!(slot.worth_it());

        // Thrown away three times in a row: no more.
        slot.discards.store(DISCARDS_TO_STOP, Ordering::Relaxed);
        assert!(!slot.worth_it());
        slot.discards.store(0, Ordering::Relaxed);

        // One instantiation under the bar, and it is cheap.
        slot.observe(Duration::from_micros(20));
        assert!(!slot.worth_it());
    }

    #[test]
    fn an_instance_parked_under_another_memory_limit_is_not_taken() {
        let ahead = Ahead::new(true);
        let permits = Arc::new(Semaphore::new(1));
        let engine = wasmtime::Engine::default();
        let slot = parked(&ahead, &permits, &engine, Duration::ZERO);
        assert!(slot.take(2).is_none());
        assert!(!slot.is_parked());
        assert_eq!(permits.available_permits(), 1);
        let slot = parked(&ahead, &permits, &engine, Duration::ZERO);
        assert!(slot.take(1).is_some());
    }
}

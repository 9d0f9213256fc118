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
//! Bounded: one parked instance per component, [`MAX_AHEAD`] in a sandbox (the pool holds
//! that many slots beyond `max_instances` for them, so they never take a run's slot; one
//! unused for [`IDLE`] gives its place up to another component's), and only components of
//! [`SMALLEST_DEAR`] or more whose fastest instantiation seen (of two at least) took
//! [`DEAR`] or more (a Rust job's takes a few µs: it never parks one, and its runs pay
//! nothing for this). A component whose instances made ahead are thrown away
//! [`DISCARDS_TO_STOP`] times in a row makes no more.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;

use super::component::{Compiled, World};
use super::store::{HOST_CALL_GRACE, Stores};
use crate::config::bounds::DAY;
use crate::host::state::RunState;

/// Instances parked (or being made) at once in one sandbox.
pub const MAX_AHEAD: u32 = 16;

/// An instantiation this slow or slower is worth making ahead.
const DEAR: Duration = Duration::from_micros(100);
/// A component smaller than this never is (a Rust job is tens to hundreds of KB, a Python
/// one 20 MB): on a loaded machine a small one's instantiations can all be slow for a while,
/// and time alone would then make it ahead for nothing.
const SMALLEST_DEAR: usize = 1 << 20;

/// A parked instance unused this long gives its permit up when another component needs one
/// and none is left (a disabled job's, a route no longer asked). Not sooner: components run
/// in turn would take each other's at every run and none would be served.
const IDLE: Duration = Duration::from_secs(60);

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
    _permit: OwnedSemaphorePermit,
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
    /// The parked instance, if it was made under `memory_bytes`; one made under another
    /// limit (the job's configuration changed) is dropped.
    pub(crate) fn take(&self, memory_bytes: u64) -> Option<(Store<RunState>, I)> {
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
        (p.memory_bytes == memory_bytes).then_some((p.store, p.instance))
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

    /// Whether the next run's instance of a component of `size` bytes should be made ahead.
    fn worth_it(&self, size: usize) -> bool {
        size >= SMALLEST_DEAR
            && self.seen.load(Ordering::Relaxed) >= SEEN_BEFORE_DEAR
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
    /// Drops the parked instance if it has waited [`IDLE`] or more; answers whether it did.
    fn drop_if_idle(&self, now: Instant) -> bool;
}

impl<I: Send + Sync> Idle for WarmSlot<I> {
    fn drop_if_idle(&self, now: Instant) -> bool {
        let mut slot = self.lock();
        if slot.as_ref().is_none_or(|p| now - p.at < IDLE) {
            return false;
        }
        let idle = slot.take();
        self.has.store(false, Ordering::Release);
        drop(slot);
        drop(idle);
        true
    }
}

/// The sandbox's side: the permits that bound parked instances, and counts.
pub(crate) struct Ahead {
    enabled: bool,
    permits: Arc<Semaphore>,
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
            permits: Arc::new(Semaphore::new(MAX_AHEAD as usize)),
            slots: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
        }
    }

    /// Where a run of `component` that ended should go: `Some` is a permit to drop its
    /// store in the background and make the next run's instance there; `None`, drop it
    /// now (the component is cheap to instantiate, one waits or is being made, or every
    /// permit is taken).
    pub(crate) fn permit<W: World>(&self, component: &Compiled<W>) -> Option<OwnedSemaphorePermit> {
        if !self.enabled || !component.warm.worth_it(component.size) {
            return None;
        }
        if component.warm.making.swap(true, Ordering::AcqRel) {
            return None;
        }
        let permit = self.permits.clone().try_acquire_owned().ok().or_else(|| {
            self.room()
                .then(|| self.permits.clone().try_acquire_owned().ok())?
        });
        if permit.is_none() {
            component.warm.making.store(false, Ordering::Release);
        }
        permit
    }

    /// Frees a permit by dropping an instance parked [`IDLE`] or more; answers whether one
    /// was.
    fn room(&self) -> bool {
        let now = Instant::now();
        let slots: Vec<_> = self.lock().iter().filter_map(Weak::upgrade).collect();
        slots.iter().any(|s| s.drop_if_idle(now))
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
pub(crate) fn make_ahead<W: World>(
    stores: Stores,
    ahead: Arc<Ahead>,
    component: Arc<Compiled<W>>,
    used: Store<RunState>,
    memory_bytes: u64,
    timeout: Duration,
    permit: OwnedSemaphorePermit,
) {
    tokio::spawn(async move {
        drop(used);
        let deadline = Instant::now() + timeout.min(DAY);
        let mut store = stores.ahead(memory_bytes, deadline);
        let started = Instant::now();
        let made = tokio::time::timeout_at(
            (deadline + HOST_CALL_GRACE).into(),
            W::instantiate(&component.pre, &mut store),
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
                    _permit: permit,
                };
                if slot.park(parked) {
                    ahead.parked_in(&(slot.clone() as Arc<dyn Idle>));
                }
                slot.discards.store(0, Ordering::Relaxed);
            }
            _ => {
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

    /// A slot with an instance parked `ago`, holding one of `ahead`'s permits.
    fn parked(ahead: &Ahead, engine: &wasmtime::Engine, ago: Duration) -> Arc<WarmSlot<()>> {
        let slot = Arc::new(WarmSlot::default());
        let state = RunState::for_test(Arc::new(HostClients::default()));
        let parked = Parked {
            store: Store::new(engine, state),
            instance: (),
            at: Instant::now() - ago,
            memory_bytes: 1,
            _permit: ahead.permits.clone().try_acquire_owned().unwrap(),
        };
        assert!(slot.park(parked));
        ahead.parked_in(&(slot.clone() as Arc<dyn Idle>));
        slot
    }

    #[test]
    fn only_an_instance_parked_long_enough_gives_its_permit_up() {
        let ahead = Ahead::new(true);
        let engine = wasmtime::Engine::default();
        let fresh: Vec<_> = (1..MAX_AHEAD)
            .map(|_| parked(&ahead, &engine, Duration::ZERO))
            .collect();
        let idle = parked(&ahead, &engine, IDLE + Duration::from_secs(1));
        assert_eq!(ahead.permits.available_permits(), 0);

        // Room is made by dropping the idle one, and then there is none to drop.
        assert!(ahead.room());
        assert!(!idle.is_parked());
        assert!(idle.take(1).is_none());
        assert_eq!(ahead.permits.available_permits(), 1);
        assert!(!ahead.room());
        assert!(fresh.iter().all(|s| s.is_parked()));

        // A slot gone with its component is forgotten; one parked again is noted once.
        drop(fresh);
        let again = parked(&ahead, &engine, Duration::ZERO);
        ahead.parked_in(&(again.clone() as Arc<dyn Idle>));
        assert_eq!(ahead.lock().len(), 2, "the idle slot and the new one");
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
    fn only_a_large_component_slow_to_instantiate_gets_instances_made_ahead() {
        let (large, small) = (SMALLEST_DEAR, SMALLEST_DEAR - 1);
        let slot = WarmSlot::<()>::default();
        slot.observe(Duration::from_millis(1));
        assert!(
            !slot.worth_it(large),
            "one instantiation seen is not enough"
        );
        slot.observe(Duration::from_micros(900));
        assert!(slot.worth_it(large));
        assert!(!slot.worth_it(small));

        // Thrown away three times in a row: no more.
        slot.discards.store(DISCARDS_TO_STOP, Ordering::Relaxed);
        assert!(!slot.worth_it(large));
        slot.discards.store(0, Ordering::Relaxed);

        // One instantiation under the bar, and it is cheap.
        slot.observe(Duration::from_micros(20));
        assert!(!slot.worth_it(large));
    }

    #[test]
    fn an_instance_parked_under_another_memory_limit_is_not_taken() {
        let ahead = Ahead::new(true);
        let engine = wasmtime::Engine::default();
        let slot = parked(&ahead, &engine, Duration::ZERO);
        assert!(slot.take(2).is_none());
        assert!(!slot.is_parked());
        assert_eq!(ahead.permits.available_permits(), MAX_AHEAD as usize);
        let slot = parked(&ahead, &engine, Duration::ZERO);
        assert!(slot.take(1).is_some());
    }
}

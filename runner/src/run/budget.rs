//! A run's memory budget: its job's `memory_mb` covers the run's linear memories and tables
//! and every buffer the host makes for it (SQL statements and rows, API and Prometheus
//! answers, parsed documents), together. A host call charges what it is about to hold
//! before it holds it, and gives the call's charges back when the call returns (what it
//! made is then the guest's, in the guest's own memory, or dropped); the guest's memories
//! are given back when the run's store is dropped.
//!
//! The budget travels with a host call as a task-local ([`within`]), so a client charges
//! it ([`charge`]) as an answer arrives without every signature naming it; outside a call
//! (the runner's own history, health checks) nothing is charged.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one run may hold, and holds now.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

/// A charge past the budget: the call answers `limit-exceeded` (or a memory grows no more
/// and the run ends `memory_limit`).
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the run's memory budget of {limit} bytes (memory_mb) is spent: its memory and the host's buffers for it hold {used} bytes, and {asked} more were asked{what}"
)]
pub struct Exceeded {
    pub limit: usize,
    pub used: usize,
    pub asked: usize,
    what: String,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now: the run's memories and tables, and its calls' buffers.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes`, or nothing if they do not fit.
    pub fn take(&self, bytes: usize) -> Result<(), Exceeded> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|after| *after <= self.limit)
            })
            .map(|_| ())
            .map_err(|used| Exceeded {
                limit: self.limit,
                used,
                asked: bytes,
                what: String::new(),
            })
    }

    /// Gives `bytes` back.
    pub fn give_back(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// Bytes a run's keeper (its journal, its stdout) holds for it beyond any one call: charged
/// as they are kept, given back when the keeper lets them go or is dropped. Without a
/// budget (the runner's own journals) nothing is charged.
#[derive(Debug, Default)]
pub struct Held {
    budget: Option<Arc<Budget>>,
    bytes: usize,
}

impl Held {
    pub fn on(budget: Arc<Budget>) -> Self {
        Self {
            budget: Some(budget),
            bytes: 0,
        }
    }

    /// Charges `bytes`, or answers the charge past the budget and holds nothing.
    pub fn hold(&mut self, bytes: usize) -> Result<(), Exceeded> {
        if let Some(budget) = &self.budget {
            budget.take(bytes)?;
            self.bytes += bytes;
        }
        Ok(())
    }

    /// Gives back everything held.
    pub fn release(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(std::mem::take(&mut self.bytes));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

/// One host call's charges, given back together when the call ends.
struct Call {
    budget: Arc<Budget>,
    held: Arc<AtomicUsize>,
}

tokio::task_local! {
    static CALL: Call;
}

/// Gives a call's charges back when dropped: at the call's end, or when it is cancelled.
struct GiveBack(Arc<Budget>, Arc<AtomicUsize>);

impl Drop for GiveBack {
    fn drop(&mut self) {
        let held = self.1.swap(0, Ordering::AcqRel);
        self.0.give_back(held);
        if held >= super::trim::LARGE {
            super::trim::ask();
        }
    }
}

/// Runs `call` (a host call's work) with `budget` charged by whatever it holds; what it
/// charged is given back when it ends, however it ends (a cancelled call too).
pub async fn within<F: Future>(budget: &Arc<Budget>, call: F) -> F::Output {
    let held = Arc::new(AtomicUsize::new(0));
    let _back = GiveBack(budget.clone(), held.clone());
    CALL.scope(
        Call {
            budget: budget.clone(),
            held,
        },
        call,
    )
    .await
}

/// Charges the current host call's run `bytes` for `what` (named in the error), before the
/// host holds them. Outside a host call, nothing is charged.
pub fn charge(bytes: usize, what: &str) -> Result<(), Exceeded> {
    CALL.try_with(|call| {
        call.budget.take(bytes).map_err(|mut e| {
            e.what = format!(" ({what})");
            e
        })?;
        call.held.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    })
    .unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_charges_its_run_and_gives_back_at_its_end() {
        let budget = Budget::new(1000);
        budget.take(300).unwrap(); // the run's memory
        let seen = within(&budget, async {
            charge(500, "an answer").unwrap();
            let err = charge(201, "another answer").unwrap_err();
            assert_eq!((err.used, err.asked), (800, 201));
            assert!(err.to_string().contains("(another answer)"), "{err}");
            charge(200, "the rest").unwrap();
            budget.used()
        })
        .await;
        assert_eq!(seen, 1000);
        assert_eq!(budget.used(), 300, "the call's charges are given back");
        // Outside a call nothing is charged.
        charge(1 << 40, "the runner's own").unwrap();
        assert_eq!(budget.used(), 300);
        // A call dropped half-way gives back what it took too.
        let call = within(&budget, async {
            charge(600, "x").unwrap();
            std::future::pending::<()>().await
        });
        let _ = tokio::time::timeout(std::time::Duration::from_millis(10), call).await;
        assert_eq!(budget.used(), 300);
    }
}

//! The memory limit of one run.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use crate::run::budget::Budget;

/// A run asked for more linear memory than its job's `memory_mb`. Raised as a trap from
/// `memory.grow` so the run stops at once and is reported as `memory_limit`.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {desired} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub desired: usize,
}

/// Table elements a run may have: a table is host memory too (a pointer per element).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// What a table element costs the host, charged to the run's memory beside its memories.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Enforces a run's memory limit over the sum of its memories and tables (a component
/// may hold several of each; each alone under the limit is not enough), on the run's
/// [`Budget`], which the host's buffers for the run share; remembers that it was hit.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub limit: usize,
    pub hit: bool,
    /// The run's budget: its memories and tables, and its host calls' buffers.
    pub budget: Arc<Budget>,
    /// Bytes of memories and tables taken from the budget, given back with the store.
    held: usize,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            hit: false,
            budget: Budget::new(limit),
            held: 0,
        }
    }

    /// Grows one memory or table from `current` to `desired` bytes.
    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<()> {
        let more = desired.saturating_sub(current);
        if let Err(e) = self.budget.take(more) {
            self.hit = true;
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired: e.used.saturating_add(more),
            }
            .into());
        }
        self.held += more;
        Ok(())
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)?;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_covers_all_memories_and_tables_together() {
        let mut l = MemoryLimiter::new(100 << 20);
        // Two memories of 40 MiB each fit; a third does not, though it alone would.
        assert!(l.memory_growing(0, 40 << 20, None).unwrap());
        assert!(l.memory_growing(0, 40 << 20, None).unwrap());
        assert!(l.memory_growing(0, 40 << 20, None).is_err());
        assert!(l.hit);
        assert_eq!(l.budget.used(), 80 << 20);
        // Growing one memory counts only what it adds.
        assert!(l.memory_growing(40 << 20, 55 << 20, None).unwrap());
        assert_eq!(l.budget.used(), 95 << 20);
        // A table's elements count too: 8 MiB of them do not fit in the 5 MiB left.
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS, None).is_err());
        assert!(!l.table_growing(0, MAX_TABLE_ELEMENTS + 1, None).unwrap());
        assert!(l.table_growing(0, 1024, None).unwrap());
        assert_eq!(l.budget.used(), (95 << 20) + 1024 * TABLE_ELEMENT_BYTES);
        // The host's buffers for the run share the budget: with the memories at 95 MiB, a
        // call may hold what is left and no more.
        let budget = l.budget.clone();
        assert!(budget.take(5 << 20).is_err());
        budget.take((5 << 20) - 1024 * TABLE_ELEMENT_BYTES).unwrap();
        assert!(l.memory_growing(55 << 20, (55 << 20) + 1, None).is_err());
        drop(l);
        assert_eq!(budget.used(), (5 << 20) - 1024 * TABLE_ELEMENT_BYTES);
    }
}

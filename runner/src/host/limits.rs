//! The memory limit of one run.

use wasmtime::ResourceLimiter;

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
/// may hold several of each; each alone under the limit is not enough), and remembers
/// that it was hit.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub limit: usize,
    pub hit: bool,
    /// Bytes of memories and tables the run holds now.
    pub used: usize,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            hit: false,
            used: 0,
        }
    }

    /// Grows the run's total from `current` to `desired` bytes of one memory or table.
    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<()> {
        let after = (self.used - current.min(self.used)).saturating_add(desired);
        if after > self.limit {
            self.hit = true;
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired: after,
            }
            .into());
        }
        self.used = after;
        Ok(())
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
        assert_eq!(l.used, 80 << 20);
        // Growing one memory counts only what it adds.
        assert!(l.memory_growing(40 << 20, 55 << 20, None).unwrap());
        assert_eq!(l.used, 95 << 20);
        // A table's elements count too: 8 MiB of them do not fit in the 5 MiB left.
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS, None).is_err());
        assert!(!l.table_growing(0, MAX_TABLE_ELEMENTS + 1, None).unwrap());
        assert!(l.table_growing(0, 1024, None).unwrap());
        assert_eq!(l.used, (95 << 20) + 1024 * TABLE_ELEMENT_BYTES);
    }
}

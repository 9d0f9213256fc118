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

/// Enforces a run's memory limit and remembers that it was hit.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub limit: usize,
    pub hit: bool,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        Self { limit, hit: false }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

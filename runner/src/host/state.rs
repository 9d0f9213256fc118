//! The data of one run's `Store`: made fresh for every run and dropped with it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::journal::Journal;
use super::limits::MemoryLimiter;
use crate::host::HostClients;
use crate::run::Capabilities;

pub struct RunState {
    /// The job this run belongs to (owner of the metrics it writes).
    pub(crate) job: String,
    /// The clients this run may call (the job's `capabilities`).
    pub(crate) grants: Capabilities,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) services: Arc<HostClients>,
    pub(crate) journal: Journal,
    /// SQL transactions this run has open (each holds a pooled connection).
    pub(crate) open_transactions: usize,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
impl RunState {
    /// A run's state outside any store, for unit tests of the host functions.
    pub(crate) fn for_test(services: Arc<HostClients>) -> Self {
        Self {
            job: "test_job".into(),
            grants: Capabilities::ALL,
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(64 << 20),
            services,
            journal: Journal::new(1 << 20, None, Default::default()),
            open_transactions: 0,
        }
    }
}

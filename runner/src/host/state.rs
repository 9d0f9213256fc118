//! The data of one run's `Store`: made fresh for every run and dropped with it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::journal::Journal;
use super::limits::MemoryLimiter;
use crate::host::HostClients;
use crate::run::outbound::Outbound;
use crate::run::{Capabilities, Env};
use crate::sandbox::output::CappedOutput;

pub struct RunState {
    /// The job this run belongs to (owner of the metrics it writes).
    pub(crate) job: String,
    /// The pipeline that enqueued it (`manual`, or `route ...` for a request), and the
    /// component it runs: what `pipeline-config` shows it.
    pub(crate) pipeline: String,
    pub(crate) module: String,
    /// The clients this run may call (the job's `capabilities`).
    pub(crate) grants: Capabilities,
    pub(crate) wasi: LazyWasi,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) services: Arc<HostClients>,
    pub(crate) journal: Journal,
    /// SQL transactions this run has open (each holds a pooled connection).
    pub(crate) open_transactions: usize,
    /// Where this run may send HTTP requests, and how many it has sent.
    pub(crate) outbound: Arc<Outbound>,
    pub(crate) http_requests: usize,
    /// A client call was refused for want of a grant. A store made ahead of its run has
    /// none; if its instantiation called a client, it is thrown away unused.
    pub(crate) refused: bool,
}

impl RunState {
    /// Whether this run may call a client `granted` says it may; a refusal is remembered.
    pub(crate) fn may(&mut self, granted: bool) -> bool {
        self.refused |= !granted;
        granted
    }
}

/// A run's WASI context, made at the guest's first WASI call: most runs make none, and
/// making one (its random generators seeded, its clocks and streams boxed) and dropping
/// it was a tenth of a trivial run's host time.
pub(crate) struct LazyWasi {
    ctx: Option<WasiCtx>,
    stdout: CappedOutput,
    stderr: CappedOutput,
    /// The run's environment (its job's `env`): WASI's, and the SDK's `environment`.
    env: Env,
}

impl LazyWasi {
    /// Nothing granted: no preopened directories, no arguments, no network (sockets and
    /// name lookups denied), only stdout and stderr into memory, and no environment but
    /// the job's own `env` (none of the runner's).
    pub(crate) fn new(stdout: CappedOutput, stderr: CappedOutput) -> Self {
        Self {
            ctx: None,
            stdout,
            stderr,
            env: Env::default(),
        }
    }

    /// The run's environment.
    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    /// Gives the run `env`. A context made before (by an instance made ahead of its run)
    /// is made again at the next WASI call, with it.
    pub(crate) fn set_env(&mut self, env: &Env) {
        if !Arc::ptr_eq(&self.env, env) {
            self.env = env.clone();
            self.ctx = None;
        }
    }

    /// The run's stdout, for the SDK's `logging.write-output` as for WASI's stream.
    pub(crate) fn stdout(&self) -> &CappedOutput {
        &self.stdout
    }

    /// The run's stderr, likewise.
    pub(crate) fn stderr(&self) -> &CappedOutput {
        &self.stderr
    }

    fn get(&mut self) -> &mut WasiCtx {
        let (stdout, stderr, env) = (&self.stdout, &self.stderr, &self.env);
        self.ctx.get_or_insert_with(|| {
            WasiCtxBuilder::new()
                .envs(&env[..])
                .stdout(stdout.clone())
                .stderr(stderr.clone())
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build()
        })
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get(),
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
            pipeline: "test_pipeline".into(),
            module: "test_job".into(),
            grants: Capabilities::ALL,
            wasi: LazyWasi::new(CappedOutput::new(1 << 20), CappedOutput::new(1 << 20)),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(64 << 20),
            journal: Journal::new(1 << 20, None, services.mask()),
            services,
            open_transactions: 0,
            outbound: Arc::default(),
            http_requests: 0,
            refused: false,
        }
    }
}

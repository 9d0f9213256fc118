//! tgrun's runner: tglib's periodic producer/consumer job service, where every job is a
//! WebAssembly component run in a fresh sandboxed instance.
//!
//! The modules, in the order a run passes through them (`ARCHITECTURE.md` draws it):
//!
//! - [`run`]: the words every module shares about a run (which job, what to run, its limits
//!   and grants, its job's policies, how it ended). A leaf: it uses no other module.
//! - [`schedule`]: when a pipeline is due (period, cron in a time zone, missed due times)
//!   and the clock it reads. A leaf too.
//! - [`config`]: reads `service_config.json` and `config.json` (tglib's files) and resolves
//!   them once into a validated [`config::Config`]; uses only the two leaves.
//! - [`service`]: builds everything once from the configuration, chooses the run queue
//!   (in-process or the cluster's), and applies configuration changes live.
//! - [`scheduler`]: one producer per pipeline (on a thread of their own) stamps each due
//!   time and offers its enabled jobs to the [`scheduler::queue::RunQueue`]; consumers take
//!   runs from it with a lease, run them ([`scheduler::Execution`]), report them
//!   ([`scheduler::Reports`]: counters, book, recent runs, history, events, each kept per
//!   job) and settle the lease (done, retry, hand back); a shutdown gives runs a grace
//!   period and records what it cancels.
//! - [`cluster`]: the queue as a NATS JetStream stream shared by several runners, with
//!   overlap policies across them and modules and configuration shared; depends on the
//!   scheduler, never the other way.
//! - [`modules`]: maps a module name (a job's `module`, by default its name) to its
//!   compiled component, loaded from the modules directory, watched and swapped while the
//!   service runs.
//! - [`sandbox`]: the wasmtime engine, built once, and one fresh `Store` and instance per run
//!   with its time and output limits; turns how a run ended into an [`Outcome`].
//! - [`host`]: what the instance sees: its per-run state (journal, memory limit,
//!   resources) and the capabilities lent to jobs, one file per WIT interface, over
//!   [`clients`] (Prometheus, the API service, SQL) and the [`metrics`] cache.
//! - [`bindings`]: the types and traits `bindgen!` makes of the WIT worlds. A leaf.
//! - [`server`]: the HTTP server: tglib's routes, `/jobs`, `/runs`, `/docs`, the dashboard,
//!   and routes answered by components.
//! - [`build`]: `tgrun build`: a Rust crate or a Python folder, anywhere, into a component.
//! - [`cli`]: `tgrun serve`, `tgrun run`, `tgrun check`, `tgrun new`, `tgrun build`.

// No `unsafe` but in one audited module, `clients::sql::sqlite_guard` (SQLite's authorizer,
// which sqlx does not expose), which allows it for itself.
#![deny(unsafe_code)]

pub mod bindings;
pub mod build;
pub mod cli;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod host;
pub mod metrics;
pub mod modules;
pub mod run;
pub mod sandbox;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod service;

pub use run::{Outcome, RunReport};

/// The SQL value type of the WIT `sql` interface, for callers of [`clients::SqlApi`].
pub mod sql_value {
    pub use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};
}

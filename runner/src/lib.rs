//! tgrun's runner: tglib's periodic producer/consumer job service, where every job is a
//! WebAssembly component run in a fresh sandboxed instance.
//!
//! The modules, in the order a run passes through them:
//!
//! - [`config`]: reads `service_config.json` and `config.json` (tglib's files) and resolves
//!   them once into a validated [`config::Config`].
//! - [`scheduler`]: one producer per pipeline (on a thread of their own) stamps each due
//!   time (period or cron) and offers its enabled jobs to their overlap policy and one
//!   bounded queue; a pool of consumers runs them, retries failures, and a shutdown gives
//!   runs a grace period and records what it cancels.
//! - [`modules`]: maps a job name to its compiled component, loaded from the modules
//!   directory, watched and swapped while the service runs.
//! - [`sandbox`]: the wasmtime engine, built once, and one fresh `Store` and instance per run
//!   with its time, memory and output limits; turns how a run ended into an [`Outcome`].
//! - [`host`]: the capabilities lent to jobs, one file per WIT interface, over
//!   [`clients`] (Prometheus, ...) and the [`metrics`] cache.
//! - [`server`]: the HTTP server: tglib's routes, `/jobs`, `/runs`, `/docs`, and routes
//!   answered by components.
//! - [`service`]: the running service (configuration, clients, scheduler) that the routes
//!   share; applies configuration changes live.
//! - [`cluster`]: several runners as one service: due runs go through a NATS JetStream
//!   stream instead of the in-process queue.
//! - [`cli`]: `runner serve`, `runner run`, `runner check`.

// No `unsafe` but in one audited module, `clients::sql::sqlite_guard` (SQLite's authorizer,
// which sqlx does not expose), which allows it for itself.
#![deny(unsafe_code)]

pub mod bindings;
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

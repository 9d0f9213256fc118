//! Several runners as one service on NATS JetStream (`runner.cluster` in `config.json`).
//!
//! Every replica runs the same configuration. Producers in every replica publish each due
//! run to the cluster's stream with an id made of pipeline, job and due time, so the
//! stream keeps one message per scheduled run however many replicas publish it
//! ([`queue`]); consumers in every replica pull from it and acknowledge a run when it has
//! ended ([`consumer`]); a run whose replica dies is delivered again after `ack_wait`
//! (at least once: jobs get the due time and run id to be idempotent). A module uploaded
//! to any replica reaches every replica through an object store ([`modules`]), a
//! configuration change through another ([`config`]). A job's overlap policy holds across
//! replicas: its live runs are a record in JetStream changed by compare-and-set
//! ([`live`]). Periodic due
//! times are on a grid every replica shares: multiples of the period since the Unix epoch.
//! Without `runner.cluster`, the runner keeps its in-process queue.

pub mod auth;
pub mod config;
pub mod consumer;
pub mod live;
pub mod modules;
mod objects;
pub mod outbox;
pub mod queue;
pub mod replica;
pub mod wire;

pub use queue::{Published, RunQueue};
pub use wire::WireRun;

pub use crate::config::cluster::{ClusterSettings, DEFAULT_ACK_WAIT, valid_name};

//! Several runners as one service on NATS JetStream (`runner.cluster` in `config.json`).
//!
//! Every replica runs the same configuration. The scheduler's queue is the cluster's
//! stream ([`jetstream`], over the [`connection`]): producers in every replica publish each
//! due run with an id made of pipeline, place, job and due time, so the stream keeps one
//! message per scheduled run however many replicas publish it; consumers in every replica
//! pull from it and acknowledge a run when it has ended; a run whose replica dies is
//! delivered again after `ack_wait` (at least once: jobs get the due time and run id to be
//! idempotent). A module uploaded to any replica reaches every replica through an object
//! store ([`modules`]), a configuration change through another ([`config`]); both reach the
//! service through the narrow [`replica::Replica`]. A job's overlap policy holds across
//! replicas: its live runs are a record in JetStream changed by compare-and-set
//! ([`live`]), each replica following the others' changes (`known`). Periodic due times
//! are on a grid every replica shares: multiples of the period since the Unix epoch.
//! Without `runner.cluster`, the runner keeps its in-process queue
//! (`scheduler::queue::LocalQueue`).

pub mod auth;
pub mod config;
pub mod connection;
pub mod jetstream;
mod known;
pub mod live;
pub mod modules;
mod objects;
pub mod outbox;
mod pull;
pub mod replica;
pub mod wire;

pub use connection::{Cluster, Published};
pub use jetstream::JetStreamQueue;
pub use wire::WireRun;

pub use crate::config::cluster::{ClusterSettings, DEFAULT_ACK_WAIT, valid_name};

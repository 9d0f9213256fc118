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
pub mod wire;

use std::time::Duration;

pub use queue::{Published, RunQueue};
pub use wire::WireRun;

/// `runner.cluster`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// Names the cluster's stream: replicas with the same name are one service.
    pub name: String,
    /// NATS server URLs (`nats://host:port`).
    pub servers: Vec<String>,
    /// A run not acknowledged within this is delivered again (its replica is taken for
    /// dead); a live run tells JetStream it is still in progress well within it.
    pub ack_wait: Duration,
    /// Credentials for the servers.
    pub auth: auth::NatsAuth,
    /// TLS to the servers; none: plain TCP unless a server URL says `tls://`.
    pub tls: Option<auth::NatsTls>,
}

pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// A cluster name fit for a stream and subject name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

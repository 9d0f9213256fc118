//! The route handlers, one file per group.

pub mod basic;
pub mod config;
pub mod handlers;
pub mod jobs;
pub mod log;
pub mod metrics;
pub mod probes;
pub mod runs;

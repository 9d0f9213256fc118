//! The words every part of the runner shares about a run: which job ([`JobId`]), what to
//! run ([`Invocation`]),
//! its [`RunLimits`] and [`Capabilities`], its job's [`Overlap`] and [`Retry`] policies,
//! how it can be cancelled ([`RunCancel`]), how much memory it may hold ([`budget`]) and
//! how what it freed goes back to the kernel ([`trim`]), and how it ended ([`Outcome`],
//! [`RunReport`]).
//!
//! A leaf: it uses no other module of the runner, and every other module may use it.

pub mod budget;
pub mod cancel;
pub mod interfaces;
pub mod invocation;
pub mod limits;
pub mod log;
pub mod outbound;
pub mod outcome;
pub mod overlap;
pub mod retry;
pub mod trim;

pub use cancel::RunCancel;
pub use invocation::{Env, Invocation, JobId, MANUAL};
pub use limits::{Capabilities, RunLimits};
pub use log::{LogLevel, LogLine, LogStream};
pub use outcome::{Outcome, RunReport, WrittenMetric};
pub use overlap::Overlap;
pub use retry::Retry;

//! Logging from a job: lines go to the runner's log, tagged with the job and run id.
//!
//! Use the macros: `info!("read {} series", n)`. Plain `println!`/`eprintln!` also reach
//! the runner's log (as the run's stdout and stderr), but without a level.
//!
//! ```no_run
//! use tgrun_sdk::prelude::*;
//! use tgrun_sdk::log::{Level, log};
//!
//! fn chatty(_: &Ctx, _: serde_json::Value) -> Result<()> {
//!     let series = 3;
//!     debug!("asking Prometheus");
//!     info!("read {series} series");
//!     warn!("one network did not answer");
//!     error!("giving up on node {}", "n7");
//!     log(Level::Trace, "the same, without a macro");
//!     Ok(())
//! }
//!
//! export_job!(chatty);
//! ```

use crate::wit::tgrun::job::logging;

pub use logging::Level;

/// Logs one message at `level`.
pub fn log(level: Level, message: &str) {
    logging::log(level, message);
}

/// Logs a `format!` message at level Trace.
#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)*)) }; }
/// Logs a `format!` message at level Debug.
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)*)) }; }
/// Logs a `format!` message at level Info.
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)*)) }; }
/// Logs a `format!` message at level Warn.
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)*)) }; }
/// Logs a `format!` message at level Error.
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)*)) }; }

//! Logging from a job: lines go to the runner's log, tagged with the job and run id.
//!
//! Use the macros: `info!("read {} series", n)`. Plain `println!`/`eprintln!` also reach
//! the runner's log (as the run's stdout and stderr), but without a level.

use crate::wit::tgrun::job::logging;

pub use logging::Level;

/// Logs one message at `level`.
pub fn log(level: Level, message: &str) {
    logging::log(level, message);
}

#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)*)) }; }
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)*)) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)*)) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)*)) }; }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)*)) }; }

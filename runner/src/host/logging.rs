//! `tgrun:job/logging`: a job's log lines, kept in the run's journal and echoed to the
//! runner's log with the job name and run id.

use crate::bindings::tgrun::job::logging::{Host, Level, StdStream};
use crate::host::journal::{LogLevel, LogStream};
use crate::host::state::RunState;

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

impl Host for RunState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        // Past the budget lines are dropped and counted, not trapped: a chatty job is
        // still a working job.
        self.journal.log(level.into(), LogStream::Log, message);
        Ok(())
    }

    fn write_output(&mut self, to: StdStream, bytes: Vec<u8>) -> wasmtime::Result<()> {
        // The same buffers WASI's stdout and stderr write to: one cap, one set of lines.
        match to {
            StdStream::Stdout => self.wasi.stdout().append(&bytes),
            StdStream::Stderr => self.wasi.stderr().append(&bytes),
        }
        Ok(())
    }
}

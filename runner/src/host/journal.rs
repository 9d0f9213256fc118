//! What a run says: its log lines (from `log` calls, stdout and stderr) and the metrics it
//! wrote, kept for the run's report and echoed to the runner's log as they come.

use std::sync::Arc;

use crate::config::secrets::Mask;
use crate::metrics::Sample;
pub use crate::run::log::{LogLevel, LogLine, LogStream};

/// Names the run in echoed lines.
#[derive(Debug, Clone)]
pub struct EchoTags {
    pub job: String,
    pub run_id: String,
}

#[derive(Debug)]
pub struct Journal {
    pub logs: Vec<LogLine>,
    /// Log lines dropped for the budget.
    pub logs_dropped: u64,
    /// The samples written, as the metrics cache took them.
    pub metrics: Vec<Sample>,
    /// Bytes of the metrics' names and labels, for the per-run budget.
    pub metric_bytes: usize,
    bytes: usize,
    budget: usize,
    echo: Option<EchoTags>,
    /// The configuration's secret values, masked out of every line before it is kept.
    mask: Arc<Mask>,
}

/// What one kept line costs beside its text.
pub const LINE_COST: usize = std::mem::size_of::<LogLine>();

impl Journal {
    /// `echo`: also write each kept line to the runner's log (`tgrun serve`), or only keep
    /// it for the report (`tgrun run` prints the report itself).
    pub fn new(budget: usize, echo: Option<EchoTags>, mask: Arc<Mask>) -> Self {
        Self {
            mask,
            logs: Vec::new(),
            logs_dropped: 0,
            metrics: Vec::new(),
            metric_bytes: 0,
            bytes: 0,
            budget,
            echo,
        }
    }

    /// `text` with the configuration's secret values masked.
    pub fn mask(&self, text: String) -> String {
        self.mask.apply(text)
    }

    pub fn log(&mut self, level: LogLevel, stream: LogStream, message: String) {
        let message = self.mask.apply(message);
        // A line costs at least what keeping it costs, so that a flood of empty lines is
        // bounded as one of long lines.
        let cost = message.len() + LINE_COST;
        if self.bytes + cost > self.budget {
            if self.logs_dropped == 0
                && let Some(tags) = &self.echo
            {
                tracing::warn!(job = %tags.job, run_id = %tags.run_id,
                    "log budget of {} bytes used up: dropping this run's further log lines", self.budget);
            }
            self.logs_dropped += 1;
            return;
        }
        self.bytes += cost;
        if let Some(tags) = &self.echo {
            echo(tags, level, stream, &message);
        }
        self.logs.push(LogLine {
            level,
            stream,
            message,
        });
    }
}

fn echo(tags: &EchoTags, level: LogLevel, stream: LogStream, message: &str) {
    let (job, run_id) = (&tags.job, &tags.run_id);
    let stream = match stream {
        LogStream::Log => "log",
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    };
    match level {
        LogLevel::Trace => tracing::trace!(target: "job", job, run_id, stream, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "job", job, run_id, stream, "{message}"),
        LogLevel::Info => tracing::info!(target: "job", job, run_id, stream, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "job", job, run_id, stream, "{message}"),
        LogLevel::Error => tracing::error!(target: "job", job, run_id, stream, "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lines_spend_the_budget_too() {
        let mut j = Journal::new(1024, None, Default::default());
        for _ in 0..10_000 {
            j.log(LogLevel::Info, LogStream::Log, String::new());
        }
        assert_eq!(j.logs.len(), 1024 / LINE_COST);
        assert_eq!(j.logs_dropped as usize, 10_000 - 1024 / LINE_COST);
    }
}

//! What a run says: its log lines (from `log` calls, stdout and stderr) and the metrics it
//! wrote, kept for the run's report and echoed to the runner's log as they come.

use std::sync::Arc;

use crate::config::secrets::Mask;
use crate::metrics::Sample;
use crate::run::budget::{Budget, Exceeded, Held};
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
    /// What the kept lines and metrics cost the run's memory budget.
    held: Held,
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
            held: Held::default(),
            echo,
        }
    }

    /// Charges what it keeps to a run's memory budget (`memory_mb`): a run's log lines and
    /// metrics are host memory held for it.
    pub fn charged_to(mut self, budget: Arc<Budget>) -> Self {
        self.held = Held::on(budget);
        self
    }

    /// The run has ended: what the journal keeps is given back to its budget (the report
    /// is bounded by its own caps), and nothing more is charged.
    pub fn settle(&mut self) {
        self.held = Held::default();
    }

    /// Charges `bytes` kept for the run's metrics.
    pub fn hold_metrics(&mut self, bytes: usize) -> Result<(), Exceeded> {
        self.held.hold(bytes)
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
        let refused = if self.bytes + cost > self.budget {
            Some(format!("log budget of {} bytes used up", self.budget))
        } else {
            self.held.hold(cost).err().map(|e| e.to_string())
        };
        if let Some(why) = refused {
            if self.logs_dropped == 0
                && let Some(tags) = &self.echo
            {
                tracing::warn!(job = %tags.job, run_id = %tags.run_id,
                    "{why}: dropping this run's further log lines");
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

    #[test]
    fn kept_lines_are_charged_to_the_run_and_given_back_with_the_journal() {
        let budget = Budget::new(1000 + 2 * LINE_COST);
        budget.take(900).unwrap(); // the run's memory
        let mut j = Journal::new(1 << 20, None, Default::default()).charged_to(budget.clone());
        j.log(LogLevel::Info, LogStream::Log, "x".repeat(100));
        j.log(LogLevel::Info, LogStream::Log, "y".to_owned());
        assert_eq!((j.logs.len(), j.logs_dropped), (1, 1));
        assert_eq!(budget.used(), 1000 + LINE_COST);
        assert!(j.hold_metrics(LINE_COST + 1).is_err());
        drop(j);
        assert_eq!(budget.used(), 900);
    }
}

//! How a run ended, and everything the runner keeps of it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::log::LogLine;

/// How a run ended. Every run ends in exactly one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `run` returned `ok`.
    Ok,
    /// `run` returned an `error` value (the job's own failure, or a host error it passed on).
    Error { kind: String, message: String },
    /// The run passed its `timeout_s` and was stopped.
    Timeout { limit: Duration },
    /// The run asked for more memory than its `memory_mb` and was stopped.
    MemoryLimit { limit_bytes: u64 },
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access).
    Trap { message: String },
    /// No `<modules dir>/<job>.wasm` to run.
    ModuleMissing { path: PathBuf },
    /// The module file exists but is not a component that fits the job world.
    ModuleInvalid { message: String },
    /// The run was not started: its job's previous run was still live (overlap policy).
    Skipped { reason: String },
    /// The run was not started: the queue was full (consumers not keeping up).
    Dropped { reason: String },
    /// The run was stopped, or never started, because something else ended it: a newer
    /// run replaced it, or the runner shut down.
    Cancelled { reason: String },
}

impl Outcome {
    /// The outcome's name in logs, metrics and history.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error { .. } => "error",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Trap { .. } => "trap",
            Self::ModuleMissing { .. } => "module_missing",
            Self::ModuleInvalid { .. } => "module_invalid",
            Self::Skipped { .. } => "skipped",
            Self::Dropped { .. } => "dropped",
            Self::Cancelled { .. } => "cancelled",
        }
    }

    /// Whether the job failed: its own doing or its module's (not skipped, dropped or
    /// cancelled by the runner).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Self::Ok | Self::Skipped { .. } | Self::Dropped { .. } | Self::Cancelled { .. }
        )
    }

    /// Whether the run was started at all.
    pub fn was_run(&self) -> bool {
        !matches!(self, Self::Skipped { .. } | Self::Dropped { .. })
    }

    /// Whether running the job again may succeed (what retries are for).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Error { .. }
                | Self::Timeout { .. }
                | Self::MemoryLimit { .. }
                | Self::Trap { .. }
        )
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok)
    }

    /// A one-line explanation for people.
    pub fn detail(&self) -> String {
        match self {
            Self::Ok => "ok".into(),
            Self::Error { kind, message } => format!("{kind}: {message}"),
            Self::Timeout { limit } => format!("stopped after its time limit of {limit:?}"),
            Self::MemoryLimit { limit_bytes } => format!(
                "stopped at its memory limit of {} MiB",
                limit_bytes / (1024 * 1024)
            ),
            Self::Trap { message } => message.clone(),
            Self::ModuleMissing { path } => format!("no module file {}", path.display()),
            Self::ModuleInvalid { message } => message.clone(),
            Self::Skipped { reason } | Self::Dropped { reason } | Self::Cancelled { reason } => {
                reason.clone()
            }
        }
    }
}

/// Bytes of a run's error or trap message the runner keeps: a guest's error string may be
/// as large as its memory, and it goes to the log, the history, the dashboard and `/runs`.
pub const MAX_ERROR_BYTES: usize = 8 * 1024;

/// `message` cut to [`MAX_ERROR_BYTES`], keeping both ends (where an error usually says
/// what and why) and saying how much was cut in the middle.
pub fn clip_error(message: String) -> String {
    if message.len() <= MAX_ERROR_BYTES {
        return message;
    }
    if message.len() >= super::trim::LARGE {
        // The guest's text, copied out whole before the host saw it, is freed here.
        super::trim::ask();
    }
    let half = MAX_ERROR_BYTES / 2;
    let head_end = message.floor_char_boundary(half);
    let tail_start = message.ceil_char_boundary(message.len() - half);
    format!(
        "{} [... {} bytes cut ...] {}",
        &message[..head_end],
        tail_start - head_end,
        &message[tail_start..]
    )
}

/// A metric a run wrote, as the report keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WrittenMetric {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub time_ms: Option<i64>,
}

/// Everything kept of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub job: String,
    pub run_id: String,
    pub pipeline: String,
    /// The job's place in its pipeline's list (see [`super::JobId`]).
    pub index: usize,
    /// The producer's tick that enqueued the run, ms since the Unix epoch.
    pub scheduled_ms: i64,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub outcome: Outcome,
    pub logs: Vec<LogLine>,
    /// Log lines dropped for the per-run budget.
    pub logs_dropped: u64,
    /// Bytes of stdout and stderr dropped for the per-run cap.
    pub output_dropped: u64,
    pub metrics: Vec<WrittenMetric>,
    /// The version (content hash) of the module the run ran, if it got that far.
    pub module_version: Option<String>,
    /// 1 for the first run of a due time, 2 for its first retry, ...
    pub attempt: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_keeps_both_ends_and_says_what_was_cut() {
        assert_eq!(clip_error("short".into()), "short");
        let long = format!("start {} end", "é".repeat(10_000));
        let clipped = clip_error(long.clone());
        assert!(clipped.len() <= MAX_ERROR_BYTES + 40, "{}", clipped.len());
        assert!(clipped.starts_with("start "), "{clipped}");
        assert!(clipped.ends_with(" end"), "{clipped}");
        let cut: usize = clipped
            .split("[... ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        let kept = clipped.len() - format!(" [... {cut} bytes cut ...] ").len();
        assert_eq!(kept + cut, long.len(), "what was cut is counted exactly");
    }
}

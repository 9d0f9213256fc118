//! `tgrun:job/prometheus`: writes go to the run's journal (validated); queries need a
//! Prometheus client, which this runner does not have yet, so they answer
//! `not-configured`.

use crate::bindings::GuestError;
use crate::bindings::tgrun::job::prometheus::{Host, Metric, Range};
use crate::host::not_configured;
use crate::sandbox::state::RunState;

/// Series one run may write: stops a job from flooding the metrics cache.
pub const MAX_SERIES_PER_RUN: usize = 10_000;

fn no_prometheus() -> GuestError {
    not_configured(
        "prometheus",
        "set \"prometheus\": {\"host\", \"port\"} in config.json",
    )
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, Prometheus' rule for metric names.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved by Prometheus).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn validate(m: &Metric) -> Result<(), GuestError> {
    if !valid_metric_name(&m.name) {
        return Err(GuestError::InvalidArgument(format!(
            "metric name {:?} is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
            m.name
        )));
    }
    if let Some((label, _)) = m.labels.iter().find(|(l, _)| !valid_label_name(l)) {
        return Err(GuestError::InvalidArgument(format!(
            "metric {:?}: label name {label:?} is not valid ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)",
            m.name
        )));
    }
    Ok(())
}

impl Host for RunState {
    async fn query_latest(
        &mut self,
        _query: String,
        _time: Option<f64>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        Ok(Err(no_prometheus()))
    }

    async fn query_range_raw(
        &mut self,
        _range: Range,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        Ok(Err(no_prometheus()))
    }

    async fn query_range(&mut self, _range: Range) -> wasmtime::Result<Result<String, GuestError>> {
        Ok(Err(no_prometheus()))
    }

    async fn write_metrics(
        &mut self,
        metrics: Vec<Metric>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        // The whole batch is checked before any of it is kept: a bad batch writes nothing.
        if let Err(e) = metrics.iter().try_for_each(validate) {
            return Ok(Err(e));
        }
        if self.journal.metrics.len() + metrics.len() > MAX_SERIES_PER_RUN {
            return Ok(Err(GuestError::LimitExceeded(format!(
                "a run may write at most {MAX_SERIES_PER_RUN} series; this batch of {} would pass it",
                metrics.len()
            ))));
        }
        self.journal.metrics.extend(metrics);
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_metric_name("foo_plus_5"));
        assert!(valid_metric_name("ns:foo"));
        assert!(!valid_metric_name("5foo"));
        assert!(!valid_metric_name("foo-bar"));
        assert!(!valid_metric_name(""));
        assert!(valid_label_name("network"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name("a b"));
    }
}

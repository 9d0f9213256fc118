//! `tgrun:job/prometheus`: queries through the configured Prometheus client; writes
//! validated into the metrics cache served at `/metrics` (and the run's journal).

use crate::bindings::GuestError;
use crate::bindings::tgrun::job::prometheus::{Host, Metric, Range};
use crate::clients::PrometheusApi;
use crate::clients::range::{drop_stale_and_held, duration_seconds};
use crate::host::state::RunState;
use crate::host::types::HostError;
use crate::host::{not_configured, not_permitted};
use crate::metrics::{Sample, WriteRefused};
use crate::run::budget::within;

/// Series one run may write: stops a job from flooding the metrics cache in one run.
pub const MAX_SERIES_PER_RUN: usize = 10_000;
/// Bytes of metric names, label names and values one run may write (the run's report
/// keeps them): with the sizes below, what bounds a run's metrics in the runner's memory.
pub const MAX_METRIC_BYTES_PER_RUN: usize = 4 << 20;
/// Bytes of a metric name.
pub const MAX_NAME_BYTES: usize = 256;
/// Labels of one series.
pub const MAX_LABELS: usize = 32;
/// Bytes of a label name.
pub const MAX_LABEL_NAME_BYTES: usize = 128;
/// Bytes of a label value.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// The runner's own series (`tgrun_runs_total`, ...): a job may not write (forge) them.
pub const RUNNER_PREFIX: &str = "tgrun_";

/// Bytes a parsed Prometheus answer holds per byte of its text (a matrix's samples as
/// `serde_json` values: about 150 bytes for a sample of 20 characters).
const PARSED_COST: usize = 8;

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

/// What `write-metrics` checks of each metric before anything is stored.
pub fn validate(m: &Metric) -> Result<(), GuestError> {
    if m.name.len() > MAX_NAME_BYTES {
        return Err(GuestError::LimitExceeded(format!(
            "metric name {:?}... is {} bytes; at most {MAX_NAME_BYTES}",
            head(&m.name),
            m.name.len()
        )));
    }
    if !valid_metric_name(&m.name) {
        return Err(GuestError::InvalidArgument(format!(
            "metric name {:?} is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
            m.name
        )));
    }
    if m.name.starts_with(RUNNER_PREFIX) {
        return Err(GuestError::NotPermitted(format!(
            "metric {:?}: names starting with {RUNNER_PREFIX} are the runner's own series",
            m.name
        )));
    }
    // A second family of one of these names would make the whole scrape invalid.
    if crate::metrics::process::NAMES.contains(&m.name.as_str()) {
        return Err(GuestError::NotPermitted(format!(
            "metric {:?}: the runner's process series are its own",
            m.name
        )));
    }
    if m.labels.len() > MAX_LABELS {
        return Err(GuestError::LimitExceeded(format!(
            "metric {:?} has {} labels; at most {MAX_LABELS}",
            m.name,
            m.labels.len()
        )));
    }
    if let Some((label, value)) = m
        .labels
        .iter()
        .find(|(l, v)| l.len() > MAX_LABEL_NAME_BYTES || v.len() > MAX_LABEL_VALUE_BYTES)
    {
        return Err(GuestError::LimitExceeded(format!(
            "metric {:?}: label {:?}... has a name of {} bytes and a value of {} bytes; at most {MAX_LABEL_NAME_BYTES} and {MAX_LABEL_VALUE_BYTES}",
            m.name,
            head(label),
            label.len(),
            value.len()
        )));
    }
    if let Some((label, _)) = m.labels.iter().find(|(l, _)| !valid_label_name(l)) {
        return Err(GuestError::InvalidArgument(format!(
            "metric {:?}: label name {label:?} is not valid ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)",
            m.name
        )));
    }
    if m.labels.len() < 2 {
        return Ok(());
    }
    let mut names: Vec<&str> = m.labels.iter().map(|(l, _)| l.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(GuestError::InvalidArgument(format!(
            "metric {:?}: label {:?} is given twice",
            m.name, w[0]
        )));
    }
    Ok(())
}

/// The first 32 characters of a (too long) name, to name it in an error.
fn head(text: &str) -> &str {
    text.char_indices()
        .nth(32)
        .map_or(text, |(end, _)| &text[..end])
}

/// Bytes of a metric's name and labels.
fn metric_bytes(m: &Metric) -> usize {
    m.name.len()
        + m.labels
            .iter()
            .map(|(l, v)| l.len() + v.len())
            .sum::<usize>()
}

/// What `n` samples cost the host beside their names' and labels' bytes.
fn samples_cost(n: usize) -> usize {
    n * std::mem::size_of::<Sample>()
}

/// Checks a range and returns its step in seconds and its end (default now).
pub fn check_range(range: &Range) -> Result<(u64, f64), GuestError> {
    let step = duration_seconds(&range.step)?;
    let end = range.end.unwrap_or_else(now_seconds);
    if range.start > end {
        return Err(GuestError::InvalidArgument(format!(
            "range start {} is after its end {end}",
            range.start
        )));
    }
    Ok((step, end))
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn range_raw(
    p: &dyn PrometheusApi,
    query: &str,
    step: &str,
    start: f64,
    end: f64,
) -> Result<String, GuestError> {
    let params = [
        ("query", query.to_owned()),
        ("step", step.to_owned()),
        ("start", start.to_string()),
        ("end", end.to_string()),
    ];
    Ok(p.get("query_range", &params).await?)
}

impl RunState {
    fn prometheus(&mut self) -> Result<std::sync::Arc<dyn PrometheusApi>, GuestError> {
        if !self.may(self.grants.prometheus) {
            return Err(not_permitted("prometheus"));
        }
        self.services
            .clients
            .prometheus
            .clone()
            .ok_or_else(no_prometheus)
    }
}

impl Host for RunState {
    async fn query_latest(
        &mut self,
        query: String,
        time: Option<f64>,
    ) -> Result<String, HostError> {
        let p = self.prometheus()?;
        let mut params = vec![("query", query)];
        if let Some(t) = time {
            params.push(("time", t.to_string()));
        }
        Ok(within(&self.limiter.budget, p.get("query", &params)).await?)
    }

    async fn query_range_raw(&mut self, range: Range) -> Result<String, HostError> {
        let p = self.prometheus()?;
        let (_, end) = check_range(&range)?;
        Ok(within(
            &self.limiter.budget,
            range_raw(&*p, &range.query, &range.step, range.start, end),
        )
        .await?)
    }

    async fn query_range(&mut self, range: Range) -> Result<String, HostError> {
        let p = self.prometheus()?;
        let budget = self.limiter.budget.clone();
        let answer: Result<String, GuestError> = within(&budget, async move {
            let (step, end) = check_range(&range)?;
            let ts_query = format!("timestamp({})", range.query);
            let (values, stamps) = tokio::join!(
                range_raw(&*p, &range.query, &range.step, range.start, end),
                range_raw(&*p, &ts_query, &range.step, range.start, end),
            );
            // A parsed document costs several times its text: charged before it is made.
            let parse = |s: String| {
                crate::run::budget::charge(
                    s.len().saturating_mul(PARSED_COST),
                    "Prometheus' answer, parsed",
                )
                .map_err(|e| GuestError::LimitExceeded(e.to_string()))?;
                serde_json::from_str::<serde_json::Value>(&s).map_err(|e| {
                    GuestError::Upstream(format!("prometheus answered invalid JSON: {e}"))
                })
            };
            let (values, stamps) = (parse(values?)?, parse(stamps?)?);
            Ok(drop_stale_and_held(values, &stamps, range.start, step).to_string())
        })
        .await;
        Ok(answer?)
    }

    fn write_metrics(&mut self, metrics: Vec<Metric>) -> Result<(), HostError> {
        if !self.may(self.grants.prometheus) {
            return Err(not_permitted("prometheus").into());
        }
        // The whole batch is checked before any of it is kept: a bad batch writes nothing.
        metrics.iter().try_for_each(validate)?;
        if self.journal.metrics.len() + metrics.len() > MAX_SERIES_PER_RUN {
            return Err(GuestError::LimitExceeded(format!(
                "a run may write at most {MAX_SERIES_PER_RUN} series; this batch of {} would pass it",
                metrics.len()
            ))
            .into());
        }
        let bytes: usize = metrics.iter().map(metric_bytes).sum();
        if self.journal.metric_bytes + bytes > MAX_METRIC_BYTES_PER_RUN {
            return Err(GuestError::LimitExceeded(format!(
                "a run may write at most {MAX_METRIC_BYTES_PER_RUN} bytes of metric names and labels; it wrote {} and this batch has {bytes}",
                self.journal.metric_bytes
            ))
            .into());
        }
        // Kept for the report (and in the cache meanwhile): host memory held for the run.
        self.journal
            .hold_metrics(bytes + samples_cost(metrics.len()))
            .map_err(|e| GuestError::LimitExceeded(e.to_string()))?;
        // Moved, not copied: the cache reads them, the journal keeps them for the report.
        // A label value holding a secret of the configuration (a token the job was given
        // in its params) is masked as its log lines are: `/metrics` is open.
        let samples: Vec<Sample> = metrics
            .into_iter()
            .map(|m| Sample {
                name: m.name,
                labels: m
                    .labels
                    .into_iter()
                    .map(|(k, v)| (k, self.journal.mask(v)))
                    .collect(),
                value: m.value,
                time_ms: m.time_ms,
            })
            .collect();
        if let Err(refused) = self.services.metrics.write(&self.job, &samples) {
            return Err(match refused {
                WriteRefused::Owned { .. } => GuestError::NotPermitted(refused.to_string()),
                _ => GuestError::LimitExceeded(refused.to_string()),
            }
            .into());
        }
        self.journal.metric_bytes += bytes;
        self.journal.metrics.extend(samples);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::clients::{ClientError, Clients};
    use crate::host::HostClients;

    /// The guest's error, or the test fails on a trap.
    fn guest(e: HostError) -> GuestError {
        match e {
            HostError::Guest(e) => e,
            HostError::Trap(t) => panic!("trapped: {t:#}"),
        }
    }

    /// One recorded call: endpoint and query parameters.
    type Call = (String, Vec<(String, String)>);

    /// Answers `q` and `timestamp(q)` range queries from canned JSON; records every call.
    #[derive(Default)]
    struct FakePrometheus {
        calls: Mutex<Vec<Call>>,
    }

    #[async_trait]
    impl PrometheusApi for FakePrometheus {
        async fn get(
            &self,
            endpoint: &str,
            params: &[(&str, String)],
        ) -> Result<String, ClientError> {
            let params: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let query = params.iter().find(|(k, _)| k == "query").unwrap().1.clone();
            self.calls.lock().unwrap().push((endpoint.into(), params));
            let values = if query.starts_with("timestamp(") {
                json!([[100, "60"], [130, "125"], [160, "125"]])
            } else {
                json!([[100, "1"], [130, "2"], [160, "2"]])
            };
            Ok(json!({"status": "success", "data": {"resultType": "matrix",
                "result": [{"metric": {"a": "x"}, "values": values}]}})
            .to_string())
        }
        async fn healthy(&self) -> bool {
            true
        }
        fn address(&self) -> String {
            "fake".into()
        }
    }

    fn state_with(fake: Option<Arc<FakePrometheus>>) -> RunState {
        let services = HostClients {
            clients: Clients {
                prometheus: fake.map(|f| f as Arc<dyn PrometheusApi>),
                ..Clients::default()
            },
            ..HostClients::default()
        };
        RunState::for_test(Arc::new(services))
    }

    fn range(step: &str, start: f64, end: Option<f64>) -> Range {
        Range {
            query: "m".into(),
            step: step.into(),
            start,
            end,
        }
    }

    #[tokio::test]
    async fn query_range_drops_stale_and_held_samples_from_both_answers() {
        let fake = Arc::new(FakePrometheus::default());
        let mut state = state_with(Some(fake.clone()));
        let answer = Host::query_range(&mut state, range("30s", 100.0, Some(160.0)))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["data"]["result"][0]["values"], json!([[130, "2"]]));
        let calls = fake.calls.lock().unwrap();
        let queries: Vec<&str> = calls
            .iter()
            .map(|(_, p)| p.iter().find(|(k, _)| k == "query").unwrap().1.as_str())
            .collect();
        assert_eq!(calls.len(), 2);
        assert!(queries.contains(&"m") && queries.contains(&"timestamp(m)"));
        assert!(calls.iter().all(|(e, p)| e == "query_range"
            && p.contains(&("step".into(), "30s".into()))
            && p.contains(&("end".into(), "160".into()))));
    }

    #[tokio::test]
    async fn bad_ranges_are_the_guests_error_and_reach_no_server() {
        let fake = Arc::new(FakePrometheus::default());
        let mut state = state_with(Some(fake.clone()));
        for r in [range("30", 1.0, Some(2.0)), range("30s", 5.0, Some(2.0))] {
            let err = Host::query_range_raw(&mut state, r)
                .await
                .map_err(guest)
                .unwrap_err();
            assert!(matches!(err, GuestError::InvalidArgument(_)), "{err:?}");
        }
        assert!(fake.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn query_latest_passes_the_evaluation_time() {
        let fake = Arc::new(FakePrometheus::default());
        let mut state = state_with(Some(fake.clone()));
        Host::query_latest(&mut state, "m".into(), Some(42.5))
            .await
            .unwrap();
        let calls = fake.calls.lock().unwrap();
        assert_eq!(calls[0].0, "query");
        assert!(calls[0].1.contains(&("time".into(), "42.5".into())));
    }

    #[tokio::test]
    async fn without_a_client_queries_are_not_configured() {
        let mut state = state_with(None);
        let err = Host::query_latest(&mut state, "m".into(), None)
            .await
            .map_err(guest)
            .unwrap_err();
        assert!(matches!(err, GuestError::NotConfigured(m) if m.contains("prometheus")));
    }

    #[tokio::test]
    async fn a_bad_batch_writes_nothing() {
        let mut state = state_with(None);
        let good = Metric {
            name: "ok_metric".into(),
            labels: vec![("a".into(), "1".into())],
            value: 1.0,
            time_ms: None,
        };
        let bad = Metric {
            name: "bad-name".into(),
            ..good.clone()
        };
        let err = Host::write_metrics(&mut state, vec![good.clone(), bad])
            .map_err(guest)
            .unwrap_err();
        assert!(matches!(err, GuestError::InvalidArgument(m) if m.contains("bad-name")));
        assert!(state.services.metrics.is_empty());
        let twice = Metric {
            labels: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ..good.clone()
        };
        let err = Host::write_metrics(&mut state, vec![twice])
            .map_err(guest)
            .unwrap_err();
        assert!(matches!(err, GuestError::InvalidArgument(m) if m.contains("given twice")));
        // The runner's own families, which a second one of would make the scrape invalid.
        for name in ["tgrun_runs_total", "process_open_fds"] {
            let forged = Metric {
                name: name.into(),
                ..good.clone()
            };
            let err = Host::write_metrics(&mut state, vec![forged])
                .map_err(guest)
                .unwrap_err();
            assert!(
                matches!(&err, GuestError::NotPermitted(m) if m.contains(name)),
                "{err:?}"
            );
        }
        assert!(state.services.metrics.is_empty());
        Host::write_metrics(&mut state, vec![good]).unwrap();
        assert!(
            state
                .services
                .metrics
                .render()
                .ends_with("\nok_metric{a=\"1\"} 1\n")
        );
    }

    #[tokio::test]
    async fn a_label_holding_a_configured_secret_is_masked() {
        let services = HostClients::default();
        services.set_service_file(&json!({"pipelines": {"p": {"jobs": [
            {"name": "j", "params": {"api_token": "tok-123456"}}]}}}));
        let mut state = RunState::for_test(Arc::new(services));
        let leaky = Metric {
            name: "leaky".into(),
            labels: vec![("auth".into(), "Bearer tok-123456".into())],
            value: 1.0,
            time_ms: None,
        };
        Host::write_metrics(&mut state, vec![leaky]).unwrap();
        let shown = state.services.metrics.render();
        assert!(!shown.contains("tok-123456"), "{shown}");
        assert!(shown.contains("leaky{auth=\"Bearer ***\"} 1"), "{shown}");
    }

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

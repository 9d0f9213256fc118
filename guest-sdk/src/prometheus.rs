//! Prometheus from a job: build PromQL with tglib's `format_query`, read, and write series
//! that the runner serves at `/metrics`.
//!
//! ```no_run
//! use tgrun_sdk::prelude::*;
//! use tgrun_sdk::prometheus::{duration_seconds, format_query, promql, regex};
//!
//! fn link_health(ctx: &Ctx, _: serde_json::Value) -> Result<()> {
//!     // snr{network="east", node=~"n.*"}: tglib's rules for label matchers.
//!     let query = format_query("snr", &[("network", "east".into())], &[("node", regex("n.*"))]);
//!     // The latest values, typed.
//!     for s in prometheus::query_latest(&query)?.vector()? {
//!         info!("{:?}: {}", s.labels.get("node"), s.value);
//!     }
//!     // The last hour at 30 s steps, stale and held samples removed (as tglib).
//!     let now = ctx.start_time_ms as f64 / 1e3;
//!     let hour = duration_seconds("1h")? as f64;
//!     let rate = promql::rate("tx_bytes", "5m");
//!     for series in prometheus::query_range(&rate, "30s", now - hour, Some(now))?.matrix()? {
//!         info!("{} points", series.values.len());
//!     }
//!     // Series for the runner's /metrics, stamped with the due time.
//!     prometheus::write_metrics(&[Metric::new("links_checked", 12.0)
//!         .label("network", "east")
//!         .at(ctx.start_time_ms)])
//! }
//!
//! export_job!(link_health);
//! ```

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::lift;
use crate::wit::tgrun::job::prometheus as host;
use crate::{Error, Result};

/// A label value in [`format_query`]: a string matches exactly, a regex with `=~`/`!~`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelValue {
    /// Matches exactly (`=`, or `!=` among the negated matchers).
    Str(String),
    /// Matches a regular expression (`=~`, or `!~`); made by [`regex`].
    Regex(String),
    /// `true` or `false`, as tglib writes booleans.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number.
    Float(f64),
}

/// A regex label value: `format_query("m", &[("a", regex("x.*"))], &[])` gives `m{a=~"x.*"}`.
pub fn regex(pattern: impl Into<String>) -> LabelValue {
    LabelValue::Regex(pattern.into())
}

impl From<&str> for LabelValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}
impl From<String> for LabelValue {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}
impl From<bool> for LabelValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}
impl From<i64> for LabelValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}
impl From<f64> for LabelValue {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}

impl LabelValue {
    fn matcher(&self, name: &str, negate: bool) -> String {
        let (eq, re) = if negate { ("!=", "!~") } else { ("=", "=~") };
        match self {
            Self::Str(s) => format!("{name}{eq}\"{s}\""),
            Self::Regex(r) => format!("{name}{re}\"{r}\""),
            Self::Bool(b) => format!("{name}{eq}\"{b}\""),
            Self::Int(i) => format!("{name}{eq}\"{i}\""),
            Self::Float(f) => format!("{name}{eq}\"{f}\""),
        }
    }
}

/// tglib's `format_query`: `name{a="x",b=~"re",c!="y",d!~"re"}`, labels in the order
/// given, negated ones after; booleans are `true`/`false`; no labels gives the bare name.
pub fn format_query(
    name: &str,
    labels: &[(&str, LabelValue)],
    negate_labels: &[(&str, LabelValue)],
) -> String {
    if labels.is_empty() && negate_labels.is_empty() {
        return name.to_owned();
    }
    let matchers: Vec<String> = labels
        .iter()
        .map(|(n, v)| v.matcher(n, false))
        .chain(negate_labels.iter().map(|(n, v)| v.matcher(n, true)))
        .collect();
    format!("{name}{{{}}}", matchers.join(","))
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` included).
    pub labels: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// The sample's value.
    pub value: f64,
}

/// One series of a range vector (matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels (`__name__` included).
    pub labels: BTreeMap<String, String>,
    /// `(seconds since the Unix epoch, value)` in time order.
    pub values: Vec<(f64, f64)>,
}

/// Prometheus' answer to a query: the JSON as is ([`Response::raw`]) with typed accessors.
#[derive(Debug, Clone)]
pub struct Response(pub Value);

impl Response {
    /// The JSON exactly as Prometheus answered.
    pub fn raw(&self) -> &Value {
        &self.0
    }

    /// `status` of the answer (`success` or `error`).
    pub fn status(&self) -> &str {
        self.0["status"].as_str().unwrap_or("")
    }

    fn data_of(&self, kind: &str) -> Result<&Value> {
        if self.status() != "success" {
            return Err(Error::msg(format!("prometheus answered: {}", self.0)));
        }
        let data = &self.0["data"];
        if data["resultType"] != kind {
            return Err(Error::msg(format!(
                "expected a {kind}, got {}",
                data["resultType"]
            )));
        }
        Ok(&data["result"])
    }

    /// The result as an instant vector; an error if it is not one.
    pub fn vector(&self) -> Result<Vec<Sample>> {
        let items = self
            .data_of("vector")?
            .as_array()
            .cloned()
            .unwrap_or_default();
        items.iter().map(parse_sample).collect()
    }

    /// The result as a range vector (from the range queries); an error if it is not one.
    pub fn matrix(&self) -> Result<Vec<Series>> {
        let items = self
            .data_of("matrix")?
            .as_array()
            .cloned()
            .unwrap_or_default();
        items
            .iter()
            .map(|item| {
                let values = item["values"]
                    .as_array()
                    .map(|vs| vs.iter().map(pair).collect::<Result<Vec<_>>>())
                    .transpose()?
                    .unwrap_or_default();
                Ok(Series {
                    labels: labels(item),
                    values,
                })
            })
            .collect()
    }

    /// The result as a scalar `(time, value)`; an error if it is not one.
    pub fn scalar(&self) -> Result<(f64, f64)> {
        pair(self.data_of("scalar")?)
    }
}

fn labels(item: &Value) -> BTreeMap<String, String> {
    item["metric"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `[time, "value"]` as Prometheus writes a sample.
fn pair(v: &Value) -> Result<(f64, f64)> {
    let time = v[0].as_f64();
    let value = v[1].as_str().and_then(parse_value);
    match (time, value) {
        (Some(t), Some(x)) => Ok((t, x)),
        _ => Err(Error::msg(format!("not a sample: {v}"))),
    }
}

/// Prometheus' float text, including `NaN`, `+Inf` and `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn parse_sample(item: &Value) -> Result<Sample> {
    let (time, value) = pair(&item["value"])?;
    Ok(Sample {
        labels: labels(item),
        time,
        value,
    })
}

/// tglib's `duration2seconds`: `"2m"` → 120. A whole number and one unit of `s`, `m`, `h`,
/// `d`, `w`.
pub fn duration_seconds(duration: &str) -> Result<u64> {
    let bad = || {
        Error::new(
            crate::ErrorKind::InvalidArgument,
            format!("duration {duration:?} must be a whole number and a unit (s, m, h, d, w)"),
        )
    };
    let unit = duration.chars().last().ok_or_else(bad)?;
    let digits = &duration[..duration.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

/// Helpers that write PromQL function calls, as tglib's: `rate(q, "5m")` gives
/// `rate(q[5m])`, `sum_by(q, &["site"])` gives `sum by (site) (q)`.
pub mod promql {
    fn range(f: &str, query: &str, interval: &str) -> String {
        format!("{f}({query}[{interval}])")
    }
    fn by(f: &str, query: &str, labels: &[&str]) -> String {
        format!("{f} by ({}) ({query})", labels.join(", "))
    }

    /// `rate(query[interval])`.
    pub fn rate(query: &str, interval: &str) -> String {
        range("rate", query, interval)
    }
    /// `irate(query[interval])`.
    pub fn irate(query: &str, interval: &str) -> String {
        range("irate", query, interval)
    }
    /// `increase(query[interval])`.
    pub fn increase(query: &str, interval: &str) -> String {
        range("increase", query, interval)
    }
    /// `delta(query[interval])`.
    pub fn delta(query: &str, interval: &str) -> String {
        range("delta", query, interval)
    }
    /// `resets(query[interval])`.
    pub fn resets(query: &str, interval: &str) -> String {
        range("resets", query, interval)
    }
    /// `changes(query[interval])`.
    pub fn changes(query: &str, interval: &str) -> String {
        range("changes", query, interval)
    }
    /// `avg_over_time(query[interval])`.
    pub fn avg_over_time(query: &str, interval: &str) -> String {
        range("avg_over_time", query, interval)
    }
    /// `min_over_time(query[interval])`.
    pub fn min_over_time(query: &str, interval: &str) -> String {
        range("min_over_time", query, interval)
    }
    /// `max_over_time(query[interval])`.
    pub fn max_over_time(query: &str, interval: &str) -> String {
        range("max_over_time", query, interval)
    }
    /// `sum_over_time(query[interval])`.
    pub fn sum_over_time(query: &str, interval: &str) -> String {
        range("sum_over_time", query, interval)
    }
    /// `count_over_time(query[interval])`.
    pub fn count_over_time(query: &str, interval: &str) -> String {
        range("count_over_time", query, interval)
    }
    /// `quantile_over_time(φ, query[interval])`.
    pub fn quantile_over_time(quantile: f64, query: &str, interval: &str) -> String {
        format!("quantile_over_time({quantile}, {query}[{interval}])")
    }
    /// `sum by (labels) (query)`.
    pub fn sum_by(query: &str, labels: &[&str]) -> String {
        by("sum", query, labels)
    }
    /// `avg by (labels) (query)`.
    pub fn avg_by(query: &str, labels: &[&str]) -> String {
        by("avg", query, labels)
    }
    /// `min by (labels) (query)`.
    pub fn min_by(query: &str, labels: &[&str]) -> String {
        by("min", query, labels)
    }
    /// `max by (labels) (query)`.
    pub fn max_by(query: &str, labels: &[&str]) -> String {
        by("max", query, labels)
    }
    /// `count by (labels) (query)`.
    pub fn count_by(query: &str, labels: &[&str]) -> String {
        by("count", query, labels)
    }
    /// `abs(query)`.
    pub fn abs(query: &str) -> String {
        format!("abs({query})")
    }
    /// `timestamp(query)`.
    pub fn timestamp(query: &str) -> String {
        format!("timestamp({query})")
    }
}

fn parse(raw: String) -> Result<Response> {
    Ok(Response(serde_json::from_str(&raw)?))
}

/// The latest value of `query` (GET /api/v1/query).
pub fn query_latest(query: &str) -> Result<Response> {
    parse(lift(host::query_latest(query, None))?)
}

/// `query` evaluated at `time` (seconds since the Unix epoch).
pub fn query_latest_at(query: &str, time: f64) -> Result<Response> {
    parse(lift(host::query_latest(query, Some(time)))?)
}

/// tglib's `query_latest_ts`: the timestamps of the latest samples.
pub fn query_latest_ts(query: &str) -> Result<Response> {
    query_latest(&format!("timestamp({query})"))
}

fn range(query: &str, step: &str, start: f64, end: Option<f64>) -> host::Range {
    host::Range {
        query: query.to_owned(),
        step: step.to_owned(),
        start,
        end,
    }
}

/// GET /api/v1/query_range as is. `step` like `30s`; times in seconds since the epoch.
pub fn query_range_raw(query: &str, step: &str, start: f64, end: Option<f64>) -> Result<Response> {
    parse(lift(host::query_range_raw(&range(
        query, step, start, end,
    )))?)
}

/// A range query without stale and held samples, as tglib's `query_range`.
pub fn query_range(query: &str, step: &str, start: f64, end: Option<f64>) -> Result<Response> {
    parse(lift(host::query_range(&range(query, step, start, end)))?)
}

/// tglib's `query_range_ts`: the range query of `timestamp(query)`.
pub fn query_range_ts(query: &str, step: &str, start: f64, end: Option<f64>) -> Result<Response> {
    query_range(&format!("timestamp({query})"), step, start, end)
}

/// A sample to write, as tglib's `PrometheusMetric(name, labels, value, time_ms)`: the WIT
/// record itself (`name`, `labels`, `value`, `time_ms`), so writing hands the runner the
/// slice as it is, with nothing copied on the way.
pub use host::Metric;

impl Metric {
    /// A sample of series `name` with `value`, no labels, stamped when written.
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            labels: Vec::new(),
            value,
            time_ms: None,
        }
    }

    /// Adds one label.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// Adds labels copied from a query result, leaving out `__name__`.
    pub fn labels<'a>(
        mut self,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        self.labels.extend(
            labels
                .into_iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self
    }

    /// Sets the sample time (ms since the Unix epoch).
    pub fn at(mut self, time_ms: i64) -> Self {
        self.time_ms = Some(time_ms);
        self
    }
}

/// Puts the metrics into the runner's cache, served at `/metrics`.
pub fn write_metrics(metrics: &[Metric]) -> Result<()> {
    lift(host::write_metrics(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_as_tglib() {
        assert_eq!(duration_seconds("2m").unwrap(), 120);
        assert_eq!(duration_seconds("1w").unwrap(), 604_800);
        assert!(duration_seconds("2").is_err());
        assert!(duration_seconds("1.5h").is_err());
        assert!(duration_seconds("5y").is_err());
    }

    #[test]
    fn promql_helpers() {
        assert_eq!(promql::rate("foo", "5m"), "rate(foo[5m])");
        assert_eq!(
            promql::quantile_over_time(0.9, "foo", "1h"),
            "quantile_over_time(0.9, foo[1h])"
        );
        assert_eq!(
            promql::sum_by(&promql::rate("foo", "1m"), &["site", "node"]),
            "sum by (site, node) (rate(foo[1m]))"
        );
    }

    #[test]
    fn typed_results() {
        let v = Response(json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {"__name__": "foo", "a": "x"}, "value": [10.5, "3"]}]}}));
        let s = &v.vector().unwrap()[0];
        assert_eq!((s.time, s.value, s.labels["a"].as_str()), (10.5, 3.0, "x"));
        assert!(v.matrix().is_err(), "a vector is not a matrix");

        let m = Response(json!({"status": "success", "data": {"resultType": "matrix",
            "result": [{"metric": {"a": "x"}, "values": [[1, "1"], [2, "+Inf"]]}]}}));
        assert_eq!(
            m.matrix().unwrap()[0].values,
            vec![(1.0, 1.0), (2.0, f64::INFINITY)]
        );

        let sc = Response(json!({"status": "success", "data": {"resultType": "scalar",
            "result": [5, "2.5"]}}));
        assert_eq!(sc.scalar().unwrap(), (5.0, 2.5));

        let e = Response(json!({"status": "error", "error": "bad"}));
        assert!(e.vector().is_err());
    }

    #[test]
    fn format_query_matches_tglib() {
        assert_eq!(format_query("foo", &[], &[]), "foo");
        assert_eq!(
            format_query(
                "foo",
                &[("a", "x".into()), ("b", regex("r.*")), ("c", true.into())],
                &[("d", "y".into()), ("e", regex("z|w"))]
            ),
            r#"foo{a="x",b=~"r.*",c="true",d!="y",e!~"z|w"}"#
        );
    }
}

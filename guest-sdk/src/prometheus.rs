//! Prometheus from a job: build PromQL with tglib's `format_query`, read, and write series
//! that the runner serves at `/metrics`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::lift;
use crate::wit::tgrun::job::prometheus as host;
use crate::{Error, Result};

/// A label value in [`format_query`]: a string matches exactly, a regex with `=~`/`!~`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelValue {
    Str(String),
    Regex(String),
    Bool(bool),
    Int(i64),
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
    pub labels: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub value: f64,
}

/// Prometheus' answer to a query, as JSON, with typed accessors.
#[derive(Debug, Clone)]
pub struct Response(pub Value);

impl Response {
    /// `status` of the answer (`success` or `error`).
    pub fn status(&self) -> &str {
        self.0["status"].as_str().unwrap_or("")
    }

    /// The result as an instant vector; an error if the answer is not a vector.
    pub fn vector(&self) -> Result<Vec<Sample>> {
        if self.status() != "success" {
            return Err(Error::msg(format!("prometheus answered: {}", self.0)));
        }
        let data = &self.0["data"];
        if data["resultType"] != "vector" {
            return Err(Error::msg(format!(
                "expected a vector, got {}",
                data["resultType"]
            )));
        }
        let items = data["result"].as_array().cloned().unwrap_or_default();
        items.iter().map(parse_sample).collect()
    }
}

fn parse_sample(item: &Value) -> Result<Sample> {
    let labels = item["metric"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let pair = &item["value"];
    let time = pair[0].as_f64().unwrap_or(f64::NAN);
    let value = pair[1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| Error::msg(format!("sample without a numeric value: {item}")))?;
    Ok(Sample {
        labels,
        time,
        value,
    })
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

/// A sample to write, as tglib's `PrometheusMetric(name, labels, value, time_ms)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub time_ms: Option<i64>,
}

impl Metric {
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
    let wire: Vec<host::Metric> = metrics
        .iter()
        .map(|m| host::Metric {
            name: m.name.clone(),
            labels: m.labels.clone(),
            value: m.value,
            time_ms: m.time_ms,
        })
        .collect();
    lift(host::write_metrics(&wire))
}

#[cfg(test)]
mod tests {
    use super::*;

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

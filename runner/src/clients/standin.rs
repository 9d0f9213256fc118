//! Stand-in clients for trying a job without Prometheus, the API service or a database
//! (`tgrun run --standin FILE`): each answers from responses recorded in a JSON file.
//!
//! ```json
//! {
//!   "prometheus": [{"endpoint": "query", "query": "foo", "response": {"status": "success", ...}}],
//!   "api_service": [{"network": "net1", "endpoint": "getTopology", "response": {...}}],
//!   "sql": [{"statement": "SELECT name FROM t", "columns": ["name"], "rows": [["a"]]},
//!           {"statement": "INSERT INTO t VALUES (?)", "rows_affected": 1}]
//! }
//! ```
//!
//! An entry without `query` (Prometheus) or `params` (API service) answers any; an entry
//! with `"error": "..."` answers that failure instead, to try the job's error paths. A call
//! nothing answers fails naming what was asked, so the file is easy to complete.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value as Json;

use super::api_service::NetworkAnswer;
use super::{ApiServiceApi, ClientError, Clients, PrometheusApi, SqlApi, SqlTx};
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    prometheus: Option<Vec<PromEntry>>,
    api_service: Option<Vec<ApiEntry>>,
    sql: Option<Vec<SqlEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromEntry {
    /// `query`, `query_range`, ... (the part of `/api/v1/...`).
    endpoint: String,
    query: Option<String>,
    #[serde(flatten)]
    answer: Answer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiEntry {
    network: String,
    endpoint: String,
    params: Option<Json>,
    #[serde(flatten)]
    answer: Answer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlEntry {
    statement: String,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    rows: Vec<Vec<Json>>,
    rows_affected: Option<u64>,
    last_insert_id: Option<u64>,
    error: Option<String>,
}

/// A recorded answer: the response body, or a failure.
#[derive(Debug, Deserialize)]
struct Answer {
    response: Option<Json>,
    error: Option<String>,
}

impl Answer {
    fn give(&self) -> Result<String, ClientError> {
        match (&self.error, &self.response) {
            (Some(e), _) => Err(ClientError::Upstream(e.clone())),
            (None, Some(r)) => Ok(r.to_string()),
            (None, None) => Ok("null".into()),
        }
    }
}

/// The clients the file describes; a client it does not mention is not configured.
pub fn load(path: &Path) -> Result<Clients> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the stand-in file {}", path.display()))?;
    let file: File = serde_json::from_str(&text)
        .with_context(|| format!("the stand-in file {}", path.display()))?;
    let source: Arc<str> = path.display().to_string().into();
    Ok(Clients {
        prometheus: file.prometheus.map(|entries| {
            Arc::new(StandinPrometheus {
                entries,
                source: source.clone(),
            }) as Arc<dyn PrometheusApi>
        }),
        api_service: file.api_service.map(|entries| {
            Arc::new(StandinApi {
                entries,
                source: source.clone(),
            }) as Arc<dyn ApiServiceApi>
        }),
        sql: file.sql.map(|entries| {
            Arc::new(StandinSql {
                entries: Arc::new(entries),
                source,
            }) as Arc<dyn SqlApi>
        }),
    })
}

fn unanswered(source: &str, what: String) -> ClientError {
    ClientError::Upstream(format!(
        "the stand-in file {source} has no response for {what}"
    ))
}

struct StandinPrometheus {
    entries: Vec<PromEntry>,
    source: Arc<str>,
}

#[async_trait]
impl PrometheusApi for StandinPrometheus {
    async fn get(&self, endpoint: &str, params: &[(&str, String)]) -> Result<String, ClientError> {
        let query = params.iter().find(|(k, _)| *k == "query").map(|(_, v)| v);
        self.entries
            .iter()
            .find(|e| e.endpoint == endpoint && e.query.as_ref().is_none_or(|q| Some(q) == query))
            .ok_or_else(|| {
                unanswered(
                    &self.source,
                    format!("prometheus {endpoint} {:?}", query.map_or("", |q| q)),
                )
            })?
            .answer
            .give()
    }

    async fn healthy(&self) -> bool {
        true
    }

    fn address(&self) -> String {
        format!("stand-in {}", self.source)
    }
}

struct StandinApi {
    entries: Vec<ApiEntry>,
    source: Arc<str>,
}

impl StandinApi {
    fn answer(&self, network: &str, endpoint: &str, params: &str) -> Result<String, ClientError> {
        let asked: Json = serde_json::from_str(params).unwrap_or(Json::Null);
        self.entries
            .iter()
            .find(|e| {
                e.network == network
                    && e.endpoint == endpoint
                    && e.params.as_ref().is_none_or(|p| *p == asked)
            })
            .ok_or_else(|| {
                unanswered(
                    &self.source,
                    format!("api_service {endpoint} on {network} with {params}"),
                )
            })?
            .answer
            .give()
    }
}

#[async_trait]
impl ApiServiceApi for StandinApi {
    async fn network_names(&self) -> Result<Vec<String>, ClientError> {
        let mut names: Vec<String> = self.entries.iter().map(|e| e.network.clone()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn request(
        &self,
        network: &str,
        endpoint: &str,
        params: &str,
        _timeout: Option<Duration>,
    ) -> Result<String, ClientError> {
        self.answer(network, endpoint, params)
    }

    async fn request_many(
        &self,
        endpoint: &str,
        params: &[(String, String)],
        _timeout: Option<Duration>,
        all: bool,
    ) -> Result<Vec<NetworkAnswer>, ClientError> {
        let mut asked: Vec<(String, String)> = params.to_vec();
        if all {
            for n in self.network_names().await? {
                if !asked.iter().any(|(a, _)| *a == n) {
                    asked.push((n, "{}".into()));
                }
            }
        }
        Ok(asked
            .into_iter()
            .map(|(n, p)| {
                let answer = self.answer(&n, endpoint, &p);
                (n, answer)
            })
            .collect())
    }

    async fn healthy(&self) -> bool {
        true
    }

    fn address(&self) -> String {
        format!("stand-in {}", self.source)
    }
}

struct StandinSql {
    entries: Arc<Vec<SqlEntry>>,
    source: Arc<str>,
}

/// A statement for matching: white space kept (as one space) only between two word
/// characters, so line breaks and indentation, and spaces beside `(` or `,`, do not matter.
fn normal(statement: &str) -> String {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(statement.len());
    let mut gap = false;
    for c in statement.chars() {
        if c.is_whitespace() {
            gap = true;
            continue;
        }
        if gap && out.ends_with(word) && word(c) {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    out
}

fn value_of(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Int(*b as i64),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Json(other.to_string()),
    }
}

fn find<'a>(
    entries: &'a [SqlEntry],
    source: &str,
    statement: &str,
) -> Result<&'a SqlEntry, ClientError> {
    let wanted = normal(statement);
    let entry = entries
        .iter()
        .find(|e| normal(&e.statement) == wanted)
        .ok_or_else(|| unanswered(source, format!("sql {wanted:?}")))?;
    match &entry.error {
        Some(e) => Err(ClientError::Upstream(e.clone())),
        None => Ok(entry),
    }
}

fn rows(entries: &[SqlEntry], source: &str, statement: &str) -> Result<RowSet, ClientError> {
    let e = find(entries, source, statement)?;
    Ok(RowSet {
        columns: e.columns.clone(),
        rows: e
            .rows
            .iter()
            .map(|r| r.iter().map(value_of).collect())
            .collect(),
    })
}

fn exec(entries: &[SqlEntry], source: &str, statement: &str) -> Result<ExecResult, ClientError> {
    let e = find(entries, source, statement)?;
    Ok(ExecResult {
        rows_affected: e.rows_affected.unwrap_or(0),
        last_insert_id: e.last_insert_id,
    })
}

#[async_trait]
impl SqlApi for StandinSql {
    async fn query(&self, statement: &str, _params: &[Value]) -> Result<RowSet, ClientError> {
        rows(&self.entries, &self.source, statement)
    }

    async fn execute(&self, statement: &str, _params: &[Value]) -> Result<ExecResult, ClientError> {
        exec(&self.entries, &self.source, statement)
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>, ClientError> {
        Ok(Box::new(StandinTx {
            entries: self.entries.clone(),
            source: self.source.clone(),
        }))
    }

    async fn healthy(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("stand-in {}", self.source)
    }

    /// A stand-in answers for the database a tglib service has: MySQL.
    fn dialect(&self) -> &'static str {
        "mysql"
    }
}

/// A transaction on the stand-in: the same answers; commit and rollback do nothing.
struct StandinTx {
    entries: Arc<Vec<SqlEntry>>,
    source: Arc<str>,
}

#[async_trait]
impl SqlTx for StandinTx {
    async fn query(&mut self, statement: &str, _params: &[Value]) -> Result<RowSet, ClientError> {
        rows(&self.entries, &self.source, statement)
    }

    async fn execute(
        &mut self,
        statement: &str,
        _params: &[Value],
    ) -> Result<ExecResult, ClientError> {
        exec(&self.entries, &self.source, statement)
    }

    async fn commit(self: Box<Self>) -> Result<(), ClientError> {
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<(), ClientError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normal;

    #[test]
    fn statements_match_whatever_their_layout() {
        assert_eq!(
            normal("CREATE TABLE t (\n    id INT,\n    name TEXT )"),
            normal("CREATE TABLE t (id INT, name TEXT)")
        );
        assert_eq!(normal("SELECT  a,b FROM t"), "SELECT a,b FROM t");
        assert_ne!(normal("SELECT a FROM t"), normal("SELECT aFROM t"));
    }
}

//! The service's SQL database from a job, through the runner's pool.
//!
//! ```no_run
//! use tgrun_sdk::prelude::*;
//! use tgrun_sdk::sql::{Value, datetime_ms};
//!
//! fn bookkeeping(ctx: &Ctx, _: serde_json::Value) -> Result<()> {
//!     // Statements without rows: rows affected and the last insert id.
//!     sql::execute("CREATE TABLE IF NOT EXISTS seen (node VARCHAR(64), at DATETIME(3))", &[])?;
//!     let done = sql::execute(
//!         "INSERT INTO seen (node, at) VALUES (?, ?)",
//!         &["n1".into(), datetime_ms(ctx.start_time_ms)],
//!     )?;
//!     info!("{} row(s), id {:?}", done.rows_affected, done.last_insert_id);
//!     // Rows as typed values, in the order of `columns`.
//!     let rows = sql::query("SELECT node, at FROM seen WHERE node = ?", &["n1".into()])?;
//!     for row in &rows.rows {
//!         if let [Value::Text(node), Value::Datetime(ms)] = row.as_slice() {
//!             info!("{node} at {ms}");
//!         }
//!     }
//!     // A transaction: rolled back unless committed (also if the run ends first).
//!     let tx = sql::begin()?;
//!     tx.execute("DELETE FROM seen WHERE at < ?", &[datetime_ms(ctx.start_time_ms - 86_400_000)])?;
//!     tx.commit()
//! }
//!
//! export_job!(bookkeeping);
//! ```

use crate::Result;
use crate::error::lift;
use crate::wit::tgrun::job::sql as host;

pub use host::{ExecResult, RowSet, Value};

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Uint(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<serde_json::Value> for Value {
    /// A JSON column value.
    fn from(v: serde_json::Value) -> Self {
        Value::Json(v.to_string())
    }
}
/// A date-time from milliseconds since the Unix epoch (UTC), e.g. `ctx.start_time_ms`.
pub fn datetime_ms(ms: i64) -> Value {
    Value::Datetime(ms)
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Runs a statement that returns rows; `?` placeholders take `params` in order.
pub fn query(statement: &str, params: &[Value]) -> Result<RowSet> {
    lift(host::query(statement, params))
}

/// Runs a statement that returns no rows; answers the rows affected and the last insert id.
pub fn execute(statement: &str, params: &[Value]) -> Result<ExecResult> {
    lift(host::execute(statement, params))
}

/// A transaction on one connection; dropped without [`Transaction::commit`], it rolls back.
pub struct Transaction(host::Transaction);

/// Starts a transaction.
pub fn begin() -> Result<Transaction> {
    lift(host::begin()).map(Transaction)
}

impl Transaction {
    /// As [`query`], inside the transaction.
    pub fn query(&self, statement: &str, params: &[Value]) -> Result<RowSet> {
        lift(self.0.query(statement, params))
    }

    /// As [`execute`], inside the transaction.
    pub fn execute(&self, statement: &str, params: &[Value]) -> Result<ExecResult> {
        lift(self.0.execute(statement, params))
    }

    /// Makes the transaction's changes permanent.
    pub fn commit(self) -> Result<()> {
        lift(host::Transaction::commit(self.0))
    }

    /// Undoes the transaction's changes.
    pub fn rollback(self) -> Result<()> {
        lift(host::Transaction::rollback(self.0))
    }
}

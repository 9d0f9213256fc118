//! The SQL client (tglib's `MySQLClient`): MySQL/MariaDB when `config.json` has `mysql`,
//! else an embedded SQLite file, so a service needs no database server to start.
//!
//! [`SqlApi`] is what the host functions use; [`pool::SqlPool`] implements it for both
//! databases through [`backend::Backend`]; [`connect`] opens the jobs' pool and the
//! runner's own (the history's), never the same.

pub mod backend;
mod connect;
mod lease;
pub mod pool;
pub mod session;
mod sqlite_guard;

use async_trait::async_trait;

pub use connect::{
    HistoryDb, MysqlSettings, history_db, sqlite, sqlite_for_runner, start, start_history,
};

use super::error::ClientError;
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};

/// Caps per call and per run: a query matching millions of rows must not exhaust the
/// runner's memory, nor one run hold the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Rows one query may return.
    pub max_rows: usize,
    /// Bytes of values one query may return (text and blobs by length, others 8 bytes).
    pub max_bytes: usize,
    /// Transactions one run may have open at once (each holds a pooled connection).
    pub max_transactions_per_run: usize,
    /// MySQL/MariaDB: seconds after which the server itself ends a job's statement, a
    /// backstop for when the runner cannot (0: none). Default 3600.
    pub max_statement_s: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_bytes: 64 << 20,
            max_transactions_per_run: 1,
            max_statement_s: 3600,
        }
    }
}

#[async_trait]
pub trait SqlApi: Send + Sync {
    async fn query(&self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError>;
    async fn execute(&self, statement: &str, params: &[Value]) -> Result<ExecResult, ClientError>;
    async fn begin(&self) -> Result<Box<dyn SqlTx>, ClientError>;
    /// `SELECT 1` answers (tglib's health check).
    async fn healthy(&self) -> bool;
    /// What the pool connects to, for messages.
    fn describe(&self) -> String;
    /// The limits it applies.
    fn caps(&self) -> Caps {
        Caps::default()
    }
}

/// An open transaction. Dropped without `commit`, it rolls back.
#[async_trait]
pub trait SqlTx: Send {
    async fn query(&mut self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError>;
    async fn execute(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<ExecResult, ClientError>;
    async fn commit(self: Box<Self>) -> Result<(), ClientError>;
    async fn rollback(self: Box<Self>) -> Result<(), ClientError>;
}

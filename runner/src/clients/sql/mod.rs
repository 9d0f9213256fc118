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
mod reset;
pub mod session;
mod sqlite_guard;
mod transaction;

use async_trait::async_trait;

pub use connect::{history_apart, sqlite, sqlite_for_runner, start, start_history};

use super::error::ClientError;
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};
pub use crate::config::sql::{Caps, HistoryDb, MysqlSettings, history_db};

#[async_trait]
pub trait SqlApi: Send + Sync {
    async fn query(&self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError>;
    async fn execute(&self, statement: &str, params: &[Value]) -> Result<ExecResult, ClientError>;
    async fn begin(&self) -> Result<Box<dyn SqlTx>, ClientError>;
    /// `SELECT 1` answers (tglib's health check).
    async fn healthy(&self) -> bool;
    /// What the pool connects to, for messages.
    fn describe(&self) -> String;
    /// The SQL dialect its statements are written in: `mysql` (MySQL, MariaDB) or
    /// `sqlite`, so a job can compile statements for it (SQLAlchemy does).
    fn dialect(&self) -> &'static str;
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

//! The SQL client (tglib's `MySQLClient`): MySQL/MariaDB when `config.json` has `mysql`,
//! else an embedded SQLite file, so a service needs no database server to start.
//!
//! [`SqlApi`] is what the host functions use; [`pool::SqlPool`] implements it for both
//! databases through [`backend::Backend`].

pub mod backend;
pub mod pool;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value as Json;

use super::error::ClientError;
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};

/// Caps per call: a query matching millions of rows must not exhaust the runner's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Rows one query may return.
    pub max_rows: usize,
    /// Bytes of values one query may return (text and blobs by length, others 8 bytes).
    pub max_bytes: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_bytes: 64 << 20,
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

/// `config.json` → `mysql`, as tglib. Credentials come from the environment (`DB_USER`,
/// `DB_PASSWORD`, `DB_NAME`) as tglib; `user`, `password` and `database` here are used when
/// the variable is unset.
#[derive(Debug, Deserialize)]
struct MysqlSettings {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
}

/// Connects the configured database: MySQL when `mysql` is set, else SQLite at
/// `sqlite_path`. Fails (naming the address) if it cannot connect.
pub async fn start(
    config: &serde_json::Map<String, Json>,
    sqlite_path: &Path,
    caps: Caps,
) -> Result<Arc<dyn SqlApi>> {
    match config.get("mysql") {
        Some(v) if !v.is_null() => {
            let s: MysqlSettings = serde_json::from_value(v.clone())
                .context("config.json: 'mysql' needs {\"host\": string, \"port\": number}")?;
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let user = env("DB_USER").or(s.user).unwrap_or_else(|| "root".into());
            let password = env("DB_PASSWORD").or(s.password).unwrap_or_default();
            let database = env("DB_NAME").or(s.database);
            let mut opts = sqlx::mysql::MySqlConnectOptions::new()
                .host(&s.host)
                .port(s.port)
                .username(&user);
            // An empty password must be sent as none at all, or the server refuses it.
            if !password.is_empty() {
                opts = opts.password(&password);
            }
            if let Some(db) = &database {
                opts = opts.database(db);
            }
            let what = format!(
                "mysql at {}:{} (user {user}, database {})",
                s.host,
                s.port,
                database.as_deref().unwrap_or("none: set DB_NAME")
            );
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot connect to {what}"))?;
            Ok(Arc::new(pool::SqlPool::new(pool, what, caps)))
        }
        _ => sqlite(sqlite_path, caps).await,
    }
}

/// The embedded default: a SQLite file, created if missing.
pub async fn sqlite(path: &Path, caps: Caps) -> Result<Arc<dyn SqlApi>> {
    let what = format!("sqlite file {}", path.display());
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .with_context(|| format!("cannot open {what}"))?;
    Ok(Arc::new(pool::SqlPool::new(pool, what, caps)))
}

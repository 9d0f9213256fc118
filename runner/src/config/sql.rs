//! The SQL settings of `config.json`: the jobs' database (`mysql`, as tglib), where the
//! run history goes (`runner.history`), and the caps on what a job's SQL may take.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value as Json;

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
    /// The embedded SQLite: bytes its file may grow to (SQLite's `max_page_count`); a
    /// write past it fails `database or disk is full`, and the disk the history, the
    /// configuration and the code cache share stays free. Default 1 GiB.
    pub max_db_bytes: u64,
    /// The embedded SQLite: seconds a job's transaction may stay open (it may hold the
    /// one writer lock every other job's writes wait for); past it, it is rolled back.
    /// 0: unbounded. Default 10.
    pub max_write_transaction_s: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            max_bytes: 64 << 20,
            max_transactions_per_run: 1,
            max_statement_s: 3600,
            max_db_bytes: 1 << 30,
            max_write_transaction_s: 10,
        }
    }
}

/// `config.json` → `mysql`, as tglib, or `runner.history`. Credentials come from the
/// environment (`DB_USER`, `DB_PASSWORD`, `DB_NAME` as tglib; `TGRUN_HISTORY_DB_*` for the
/// history); `user`, `password` and `database` here are used when the variable is unset.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSettings {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
}

/// Shows every setting but the password, so no `{:?}` of a configuration can log it.
impl std::fmt::Debug for MysqlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .finish()
    }
}

/// Where the runner keeps its own records (the run history): never on the jobs' pool.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryDb {
    /// A SQLite file of its own (the default when `mysql` is not configured).
    Sqlite(std::path::PathBuf),
    /// MySQL/MariaDB: `runner.history` over the jobs' `mysql` host and port; its user and
    /// database must not be the jobs' (checked at start, with the environment's).
    Mysql(Json),
}

/// Which database the history goes to: `runner.history` (MySQL, its own user and
/// database), else the SQLite file `sqlite_path`, also when the jobs' data is on `mysql`:
/// a job's statements never reach the history with the jobs' credentials.
pub fn history_db(history: Option<&Json>, sqlite_path: &Path) -> HistoryDb {
    match history {
        Some(h) => HistoryDb::Mysql(h.clone()),
        None => HistoryDb::Sqlite(sqlite_path.to_owned()),
    }
}

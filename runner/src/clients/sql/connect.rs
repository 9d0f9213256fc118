//! Opening the databases: the jobs' pool (MySQL/MariaDB from `mysql`, else the embedded
//! SQLite file, hardened), and the runner's own pool for its history, never the same.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value as Json;

use super::{Caps, SqlApi, pool, reset, sqlite_guard};
use crate::config::sql::{HistoryDb, MysqlSettings};

/// `s` with credentials from the environment where set: `DB_USER`, `DB_PASSWORD`,
/// `DB_NAME` (tglib's), or with `prefix` `TGRUN_HISTORY_`, `TGRUN_HISTORY_DB_USER` ...
fn from_env(s: &MysqlSettings, prefix: &str) -> MysqlSettings {
    let env = |k: &str| {
        std::env::var(format!("{prefix}{k}"))
            .ok()
            .filter(|v| !v.is_empty())
    };
    MysqlSettings {
        user: env("DB_USER").or(s.user.clone()),
        password: env("DB_PASSWORD").or(s.password.clone()),
        database: env("DB_NAME").or(s.database.clone()),
        ..s.clone()
    }
}

/// The connect options of `s` and a description of them.
fn mysql_options(s: &MysqlSettings) -> Result<(sqlx::mysql::MySqlConnectOptions, String)> {
    let (Some(host), Some(port)) = (&s.host, s.port) else {
        anyhow::bail!("needs {{\"host\": string, \"port\": number}}");
    };
    let user = s.user.as_deref().unwrap_or("root");
    let mut opts = sqlx::mysql::MySqlConnectOptions::new()
        .host(host)
        .port(port)
        .username(user);
    // An empty password must be sent as none at all, or the server refuses it.
    if let Some(p) = s.password.as_deref().filter(|p| !p.is_empty()) {
        opts = opts.password(p);
    }
    if let Some(db) = &s.database {
        opts = opts.database(db);
    }
    let what = format!(
        "mysql at {host}:{port} (user {user}, database {})",
        s.database.as_deref().unwrap_or("none: set DB_NAME")
    );
    Ok((opts, what))
}

fn mysql_settings(v: &Json, what: &str) -> Result<MysqlSettings> {
    serde_json::from_value(v.clone()).with_context(|| {
        format!("config.json: '{what}' needs {{\"host\": string, \"port\": number}} and may have user, password, database")
    })
}

/// The jobs' `mysql` settings, when configured.
fn jobs_mysql(config: &serde_json::Map<String, Json>) -> Result<Option<MysqlSettings>> {
    match config.get("mysql") {
        Some(v) if !v.is_null() => mysql_settings(v, "mysql").map(Some),
        _ => Ok(None),
    }
}

/// Connects the jobs' database: MySQL when `mysql` is set, else SQLite at `sqlite_path`.
/// Fails (naming the address) if it cannot connect.
pub async fn start(
    config: &serde_json::Map<String, Json>,
    sqlite_path: &Path,
    caps: Caps,
) -> Result<Arc<dyn SqlApi>> {
    let Some(s) = jobs_mysql(config)? else {
        return sqlite(sqlite_path, caps).await;
    };
    let (opts, what) = mysql_options(&from_env(&s, "")).context("config.json: 'mysql'")?;
    // A statement kept prepared is a small one (`pool::MAX_CACHED_STATEMENT_BYTES`), at
    // most `pool::STATEMENT_CACHE` a connection: a cache of 100 of any size kept 12
    // distinct 16 MiB statements of one run resident in both the runner and the server.
    let opts = opts.statement_cache_capacity(pool::STATEMENT_CACHE);
    let limit = caps.max_statement_s;
    let sessions = Arc::new(reset::Sessions::default());
    let opened = sessions.clone();
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let sessions = opened.clone();
            Box::pin(async move {
                statement_backstop(conn, limit).await;
                sessions.opened(conn).await;
                Ok(())
            })
        })
        // Off the run's path: what a job's statements left on the session that their text
        // did not show is taken back, or the connection closes (see `reset`).
        .after_release(move |conn, _| {
            let sessions = sessions.clone();
            Box::pin(async move { Ok(sessions.released(conn).await) })
        })
        .connect_with(opts.clone())
        .await
        .with_context(|| format!("cannot connect to {what}"))?;
    // The runner's own connection, same user: it stops a statement whose run ended.
    let killer = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_lazy_with(opts);
    Ok(Arc::new(
        pool::SqlPool::new(pool, what, caps).with_killer(killer),
    ))
}

/// The server's own limit on a statement's time, a backstop for a runner that cannot stop
/// it (MariaDB's `max_statement_time` in seconds; MySQL's `max_execution_time` in ms, for
/// SELECTs). Unknown to the server, it is skipped.
async fn statement_backstop(conn: &mut sqlx::MySqlConnection, seconds: u64) {
    use sqlx::Executor;
    if seconds == 0 {
        return;
    }
    let mariadb = format!("SET SESSION max_statement_time = {seconds}");
    if conn.execute(mariadb.as_str()).await.is_err() {
        let mysql = format!("SET SESSION max_execution_time = {}", seconds * 1000);
        let _ = conn.execute(mysql.as_str()).await;
    }
}

/// The jobs' embedded default: a SQLite file, created if missing, whose connections cannot
/// reach other files (`ATTACH`, `VACUUM INTO`, extensions) nor keep per-connection state.
pub async fn sqlite(path: &Path, caps: Caps) -> Result<Arc<dyn SqlApi>> {
    let pool = sqlite_pool(path, 4, Some(caps)).await?;
    let what = format!("sqlite file {}", path.display());
    Ok(Arc::new(pool::SqlPool::new(pool, what, caps)))
}

/// A pool on a SQLite file: the jobs' (with their caps, hardened), or the runner's own.
async fn sqlite_pool(
    path: &Path,
    connections: u32,
    jobs: Option<Caps>,
) -> Result<sqlx::Pool<sqlx::Sqlite>> {
    let for_jobs = jobs.is_some();
    let mut opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        // A jobs' writer waits out the longest transaction another job may hold.
        .busy_timeout(std::time::Duration::from_secs(
            jobs.map_or(5, |c| c.max_write_transaction_s.clamp(4, 60) + 1),
        ));
    if for_jobs {
        // As for MySQL: only small statements are kept prepared, a bounded number.
        opts = opts.statement_cache_capacity(pool::STATEMENT_CACHE);
    } else {
        // The history commits a batch as often as runs end (hundreds a second): waiting
        // for the disk at each was a quarter of a busy cluster replica's CPU. In WAL mode
        // the file stays whole either way; a power loss may take the last batches with it.
        opts = opts.synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    }
    let mut pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(connections);
    if let Some(caps) = jobs {
        let limits = sqlite_guard::Limits::of(caps);
        pool = pool
            .after_connect(move |conn, _| Box::pin(sqlite_guard::harden(conn, limits)))
            // A connection a job's raw BEGIN left in a transaction closes instead of going
            // back (checked as it returns, off the run's path).
            .after_release(|conn, _| {
                Box::pin(async move { Ok(sqlite_guard::in_autocommit(conn).await) })
            });
    }
    pool.connect_with(opts)
        .await
        .with_context(|| format!("cannot open sqlite file {}", path.display()))
}

/// Refuses a history on MySQL/MariaDB that the jobs' credentials could reach: the same
/// server with the jobs' user (who may write it) or the jobs' database (where the jobs'
/// user may have every right). A job could otherwise `UPDATE`, `DELETE` or `DROP` the
/// record of every run.
pub fn history_apart(config: &serde_json::Map<String, Json>, db: &HistoryDb) -> Result<()> {
    let (HistoryDb::Mysql(own), Some(jobs)) = (db, jobs_mysql(config)?) else {
        return Ok(());
    };
    let jobs = from_env(&jobs, "");
    let own = resolve_history(
        &from_env(&mysql_settings(own, "runner.history")?, "TGRUN_HISTORY_"),
        &jobs,
    );
    let server = |s: &MysqlSettings| (s.host.clone(), s.port);
    if server(&own) != server(&jobs) {
        return Ok(());
    }
    let user = |s: &MysqlSettings| s.user.clone().unwrap_or_else(|| "root".into());
    if user(&own) == user(&jobs) {
        anyhow::bail!(
            "config.json: 'runner.history' would reach the run history with the jobs' own MySQL user {:?}: \
             give the history a user of its own ('runner.history.user' and '.password', or \
             TGRUN_HISTORY_DB_USER and TGRUN_HISTORY_DB_PASSWORD), or leave 'runner.history' \
             out to keep it in the runner's own SQLite file",
            user(&own)
        );
    }
    if own.database == jobs.database {
        anyhow::bail!(
            "config.json: 'runner.history' would keep the run history in the jobs' database {:?}: \
             give it a database of its own ('runner.history.database' or TGRUN_HISTORY_DB_NAME)",
            own.database.as_deref().unwrap_or("(none)")
        );
    }
    Ok(())
}

/// The history's settings, each missing one from the jobs' (host, port; credentials only
/// where the history names no user).
fn resolve_history(own: &MysqlSettings, jobs: &MysqlSettings) -> MysqlSettings {
    let (user, password) = match &own.user {
        Some(u) => (Some(u.clone()), own.password.clone()),
        None => (jobs.user.clone(), jobs.password.clone()),
    };
    MysqlSettings {
        host: own.host.clone().or(jobs.host.clone()),
        port: own.port.or(jobs.port),
        user,
        password,
        database: own.database.clone().or(jobs.database.clone()),
    }
}

/// Connects the history's own pool (two connections, no job ever uses them).
pub async fn start_history(
    config: &serde_json::Map<String, Json>,
    db: &HistoryDb,
) -> Result<Arc<dyn SqlApi>> {
    match db {
        HistoryDb::Sqlite(path) => sqlite_for_runner(path).await,
        HistoryDb::Mysql(own) => {
            let own = from_env(&mysql_settings(own, "runner.history")?, "TGRUN_HISTORY_");
            let jobs = jobs_mysql(config)?
                .map(|j| from_env(&j, ""))
                .unwrap_or_default();
            let settings = resolve_history(&own, &jobs);
            let (opts, what) = mysql_options(&settings).context("config.json: 'runner.history'")?;
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot connect to {what} for the run history"))?;
            Ok(Arc::new(
                pool::SqlPool::new(pool, what, Caps::default()).unguarded(),
            ))
        }
    }
}

/// A SQLite file for the runner's own records: no authorizer, no statement guards (no job
/// reaches it). Public for `make bench`, which measures the guards against it.
pub async fn sqlite_for_runner(path: &Path) -> Result<Arc<dyn SqlApi>> {
    let pool = sqlite_pool(path, 2, None).await?;
    let what = format!("sqlite file {}", path.display());
    Ok(Arc::new(
        pool::SqlPool::new(pool, what, Caps::default()).unguarded(),
    ))
}

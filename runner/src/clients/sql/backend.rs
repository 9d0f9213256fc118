//! What differs between MySQL and SQLite: how a WIT value is bound and how a column is
//! read back into one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::query::Query;
use sqlx::{Column, Database, MySql, Pool, Row, Sqlite, TypeInfo, ValueRef};

use super::session::{Stop, mysql_leaves_state, mysql_refused};
use crate::bindings::tgrun::job::sql::Value;
use crate::clients::ClientError;

pub trait Backend: Database + sqlx::database::HasStatementCache {
    /// The dialect's name, as [`super::SqlApi::dialect`] answers it.
    const DIALECT: &'static str;
    /// Binds `v` borrowed: a statement's text and bytes are not copied on the way to the
    /// driver.
    fn bind<'q>(
        q: Query<'q, Self, <Self as Database>::Arguments<'q>>,
        v: &'q Value,
    ) -> Result<Query<'q, Self, <Self as Database>::Arguments<'q>>, ClientError>;

    fn decode(row: &Self::Row, i: usize) -> Result<Value, ClientError>;

    /// The id of the last row inserted, from an execute's result.
    fn last_insert_id(r: &Self::QueryResult) -> Option<u64>;

    /// Rows an execute changed (sqlx has it per database, not on a trait).
    fn rows_affected(r: &Self::QueryResult) -> u64;

    /// Whether a query left at a cap still has rows coming on its connection (a server's
    /// stream), so that the connection must close; SQLite's statement is reset when its
    /// reader goes, and its connection may be lent again.
    const UNREAD_ROWS_STAY: bool;

    /// Makes the statement about to run on `conn` stoppable from outside (the run's end).
    fn stoppable<'c>(
        conn: &'c mut Self::Connection,
        killer: Option<&'c Pool<MySql>>,
    ) -> BoxFuture<'c, Result<Stop, sqlx::Error>>;

    /// After a statement outside a transaction: whether it left state on the connection
    /// (a transaction it opened, a variable, a lock), so that the connection must close.
    fn left_state<'c>(conn: &'c mut Self::Connection, statement: &'c str) -> BoxFuture<'c, bool>;

    /// The same for a statement inside a transaction the pool opened, from its text alone.
    fn leaves_state(statement: &str) -> bool;

    /// Why a job's statement is refused before it is sent, if it is: it would act beyond
    /// the job's own session and data. (SQLite's authorizer refuses such statements as
    /// they are prepared: see `sqlite_guard`.)
    fn refused(_statement: &str) -> Option<String> {
        None
    }
}

fn to_naive(ms: i64) -> Result<NaiveDateTime, ClientError> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.naive_utc())
        .ok_or_else(|| ClientError::InvalidArgument(format!("datetime {ms} ms is out of range")))
}

fn from_naive(d: NaiveDateTime) -> Value {
    Value::Datetime(d.and_utc().timestamp_millis())
}

fn bad_column<R: Row>(row: &R, i: usize, e: sqlx::Error) -> ClientError {
    let col = row
        .columns()
        .get(i)
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    ClientError::Upstream(format!("reading column '{col}': {e}"))
}

impl Backend for MySql {
    const DIALECT: &'static str = "mysql";
    const UNREAD_ROWS_STAY: bool = true;
    fn bind<'q>(
        q: Query<'q, Self, <Self as Database>::Arguments<'q>>,
        v: &'q Value,
    ) -> Result<Query<'q, Self, <Self as Database>::Arguments<'q>>, ClientError> {
        Ok(match v {
            Value::Null => q.bind(None::<i64>),
            Value::Int(i) => q.bind(*i),
            Value::Uint(u) => q.bind(*u),
            Value::Float(f) => q.bind(*f),
            Value::Text(s) => q.bind(s.as_str()),
            Value::Bytes(b) => q.bind(b.as_slice()),
            Value::Datetime(ms) => q.bind(to_naive(*ms)?),
            Value::Json(j) => q.bind(j.as_str()),
        })
    }

    fn decode(row: &Self::Row, i: usize) -> Result<Value, ClientError> {
        let raw = row.try_get_raw(i).map_err(|e| bad_column(row, i, e))?;
        if raw.is_null() {
            return Ok(Value::Null);
        }
        let ty = raw.type_info().name().to_owned();
        let get_err = |e| bad_column(row, i, e);
        Ok(match ty.as_str() {
            "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
                Value::Int(row.try_get::<i64, _>(i).map_err(get_err)?)
            }
            t if t.ends_with(" UNSIGNED") => {
                Value::Uint(row.try_get::<u64, _>(i).map_err(get_err)?)
            }
            "FLOAT" => Value::Float(f64::from(row.try_get::<f32, _>(i).map_err(get_err)?)),
            "DOUBLE" => Value::Float(row.try_get::<f64, _>(i).map_err(get_err)?),
            "DATETIME" | "TIMESTAMP" => {
                from_naive(row.try_get::<NaiveDateTime, _>(i).map_err(get_err)?)
            }
            // The server's own text, as aiomysql hands it to tglib (MySQL's key order, its
            // spacing), and never parsed here: a large document costs one copy.
            "JSON" => Value::Json(row.try_get_unchecked::<String, _>(i).map_err(get_err)?),
            "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BIT"
            | "GEOMETRY" => Value::Bytes(row.try_get::<Vec<u8>, _>(i).map_err(get_err)?),
            // Exact, as the server wrote it (`SUM()` answers DECIMAL). sqlx's String refuses
            // the type, but the server sends DECIMAL as text in both protocols.
            "DECIMAL" => Value::Text(row.try_get_unchecked::<String, _>(i).map_err(get_err)?),
            // Text, DATE, TIME, ENUM, SET: as text, exactly as the server wrote it.
            _ => match row.try_get::<String, _>(i) {
                Ok(s) => Value::Text(s),
                Err(_) => Value::Bytes(row.try_get::<Vec<u8>, _>(i).map_err(get_err)?),
            },
        })
    }

    fn last_insert_id(r: &Self::QueryResult) -> Option<u64> {
        Some(r.last_insert_id()).filter(|id| *id != 0)
    }

    fn rows_affected(r: &Self::QueryResult) -> u64 {
        r.rows_affected()
    }

    fn stoppable<'c>(
        conn: &'c mut Self::Connection,
        killer: Option<&'c Pool<MySql>>,
    ) -> BoxFuture<'c, Result<Stop, sqlx::Error>> {
        Box::pin(async move {
            let Some(killer) = killer else {
                return Ok(Stop::None);
            };
            let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                .fetch_one(&mut *conn)
                .await?;
            Ok(Stop::Kill {
                id,
                killer: killer.clone(),
            })
        })
    }

    fn left_state<'c>(_: &'c mut Self::Connection, statement: &'c str) -> BoxFuture<'c, bool> {
        Box::pin(async move { mysql_leaves_state(statement) })
    }

    fn leaves_state(statement: &str) -> bool {
        mysql_leaves_state(statement)
    }

    fn refused(statement: &str) -> Option<String> {
        mysql_refused(statement)
    }
}

/// VM instructions between two looks at a SQLite statement's stop flag.
const SQLITE_PROGRESS_OPS: i32 = 1000;

impl Backend for Sqlite {
    const DIALECT: &'static str = "sqlite";
    const UNREAD_ROWS_STAY: bool = false;
    fn bind<'q>(
        q: Query<'q, Self, <Self as Database>::Arguments<'q>>,
        v: &'q Value,
    ) -> Result<Query<'q, Self, <Self as Database>::Arguments<'q>>, ClientError> {
        Ok(match v {
            Value::Null => q.bind(None::<i64>),
            Value::Int(i) => q.bind(*i),
            Value::Uint(u) => q.bind(i64::try_from(*u).map_err(|_| {
                ClientError::InvalidArgument(format!("{u} does not fit SQLite's 64-bit integers"))
            })?),
            Value::Float(f) => q.bind(*f),
            Value::Text(s) => q.bind(s.as_str()),
            Value::Bytes(b) => q.bind(b.as_slice()),
            Value::Datetime(ms) => q.bind(to_naive(*ms)?),
            Value::Json(j) => q.bind(j.as_str()),
        })
    }

    fn decode(row: &Self::Row, i: usize) -> Result<Value, ClientError> {
        let raw = row.try_get_raw(i).map_err(|e| bad_column(row, i, e))?;
        if raw.is_null() {
            return Ok(Value::Null);
        }
        // The declared type where there is one (DATETIME, JSON), else the storage class.
        let declared = row.columns()[i].type_info().name().to_owned();
        let stored = raw.type_info().name().to_owned();
        let get_err = |e| bad_column(row, i, e);
        Ok(match (declared.as_str(), stored.as_str()) {
            ("DATETIME" | "TIMESTAMP", "TEXT" | "INTEGER" | "REAL") => {
                match row.try_get::<NaiveDateTime, _>(i) {
                    Ok(d) => from_naive(d),
                    Err(_) => Value::Text(row.try_get::<String, _>(i).map_err(get_err)?),
                }
            }
            (_, "INTEGER" | "BOOLEAN") => Value::Int(row.try_get::<i64, _>(i).map_err(get_err)?),
            (_, "REAL" | "NUMERIC") => Value::Float(row.try_get::<f64, _>(i).map_err(get_err)?),
            (_, "BLOB") => Value::Bytes(row.try_get::<Vec<u8>, _>(i).map_err(get_err)?),
            _ => Value::Text(row.try_get::<String, _>(i).map_err(get_err)?),
        })
    }

    fn last_insert_id(r: &Self::QueryResult) -> Option<u64> {
        u64::try_from(r.last_insert_rowid())
            .ok()
            .filter(|id| *id != 0)
    }

    fn rows_affected(r: &Self::QueryResult) -> u64 {
        r.rows_affected()
    }

    fn stoppable<'c>(
        conn: &'c mut Self::Connection,
        _: Option<&'c Pool<MySql>>,
    ) -> BoxFuture<'c, Result<Stop, sqlx::Error>> {
        Box::pin(async move {
            let flag = Arc::new(AtomicBool::new(false));
            let seen = flag.clone();
            conn.lock_handle()
                .await?
                .set_progress_handler(SQLITE_PROGRESS_OPS, move || !seen.load(Ordering::Relaxed));
            Ok(Stop::Flag(flag))
        })
    }

    fn left_state<'c>(_: &'c mut Self::Connection, _: &'c str) -> BoxFuture<'c, bool> {
        // An open transaction is checked as the connection returns to the pool (the jobs'
        // pool's `after_release`, off the run's path); the authorizer refuses what else
        // could stay (temporary objects, PRAGMAs).
        Box::pin(async { false })
    }

    fn leaves_state(_: &str) -> bool {
        false
    }
}

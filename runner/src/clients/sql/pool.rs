//! [`SqlPool`]: a sqlx pool of either database, with the per-call caps.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::query::Query;
use sqlx::{Column, Database, Executor, IntoArguments, Pool, Row, Transaction};

use super::backend::Backend;
use super::{Caps, SqlApi, SqlTx};
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};
use crate::clients::ClientError;

pub struct SqlPool<DB: Database> {
    pool: Pool<DB>,
    what: String,
    caps: Caps,
}

impl<DB: Database> SqlPool<DB> {
    pub fn new(pool: Pool<DB>, what: String, caps: Caps) -> Self {
        Self { pool, what, caps }
    }
}

/// A database error reaches the job as a value carrying the database's own message.
fn db_error(e: sqlx::Error) -> ClientError {
    match e {
        sqlx::Error::Database(d) => ClientError::Upstream(format!("database: {}", d.message())),
        other => ClientError::Upstream(format!("database: {other}")),
    }
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::Text(s) | Value::Json(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 8,
    }
}

/// The statement with every parameter bound, in order.
fn prepare<'q, DB: Backend>(
    statement: &'q str,
    params: &[Value],
) -> Result<Query<'q, DB, <DB as Database>::Arguments<'q>>, ClientError> {
    params
        .iter()
        .try_fold(sqlx::query::<DB>(statement), |q, p| DB::bind(q, p))
}

async fn query_on<'e, DB, E>(
    exec: E,
    statement: &'e str,
    params: &[Value],
    caps: Caps,
) -> Result<RowSet, ClientError>
where
    DB: Backend,
    E: Executor<'e, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
{
    let mut stream = prepare::<DB>(statement, params)?.fetch(exec);
    let mut set = RowSet {
        columns: Vec::new(),
        rows: Vec::new(),
    };
    let mut bytes = 0usize;
    while let Some(row) = stream.try_next().await.map_err(db_error)? {
        if set.rows.is_empty() {
            set.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
        }
        if set.rows.len() == caps.max_rows {
            return Err(ClientError::LimitExceeded(format!(
                "the query returns more than {} rows; add a LIMIT or narrow it",
                caps.max_rows
            )));
        }
        let values = (0..row.len())
            .map(|i| DB::decode(&row, i))
            .collect::<Result<Vec<_>, _>>()?;
        bytes += values.iter().map(value_size).sum::<usize>();
        if bytes > caps.max_bytes {
            return Err(ClientError::LimitExceeded(format!(
                "the query returns more than {} bytes",
                caps.max_bytes
            )));
        }
        set.rows.push(values);
    }
    Ok(set)
}

async fn execute_on<'e, DB, E>(
    exec: E,
    statement: &'e str,
    params: &[Value],
) -> Result<ExecResult, ClientError>
where
    DB: Backend,
    E: Executor<'e, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
{
    let r = prepare::<DB>(statement, params)?
        .execute(exec)
        .await
        .map_err(db_error)?;
    Ok(ExecResult {
        rows_affected: DB::rows_affected(&r),
        last_insert_id: DB::last_insert_id(&r),
    })
}

#[async_trait]
impl<DB> SqlApi for SqlPool<DB>
where
    DB: Backend,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
{
    async fn query(&self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError> {
        query_on(&self.pool, statement, params, self.caps).await
    }

    async fn execute(&self, statement: &str, params: &[Value]) -> Result<ExecResult, ClientError> {
        execute_on(&self.pool, statement, params).await
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>, ClientError> {
        let tx = self.pool.begin().await.map_err(db_error)?;
        Ok(Box::new(Tx {
            tx,
            caps: self.caps,
        }))
    }

    async fn healthy(&self) -> bool {
        sqlx::query::<DB>("SELECT 1")
            .execute(&self.pool)
            .await
            .is_ok()
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

struct Tx<DB: Database> {
    tx: Transaction<'static, DB>,
    caps: Caps,
}

#[async_trait]
impl<DB> SqlTx for Tx<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
{
    async fn query(&mut self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError> {
        query_on(&mut *self.tx, statement, params, self.caps).await
    }

    async fn execute(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<ExecResult, ClientError> {
        execute_on(&mut *self.tx, statement, params).await
    }

    async fn commit(self: Box<Self>) -> Result<(), ClientError> {
        self.tx.commit().await.map_err(db_error)
    }

    async fn rollback(self: Box<Self>) -> Result<(), ClientError> {
        self.tx.rollback().await.map_err(db_error)
    }
}

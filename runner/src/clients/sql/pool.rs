//! [`SqlPool`]: a sqlx pool of either database, with the per-call caps, lending each call
//! or transaction a [`Lease`] (stopped with its run, back to the pool only clean).

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::query::Query;
use sqlx::{Column, Database, Executor, IntoArguments, MySql, Pool, Row};

use super::backend::Backend;
use super::lease::Lease;
use super::transaction::Tx;
use super::{Caps, SqlApi, SqlTx};
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};
use crate::clients::ClientError;

pub struct SqlPool<DB: Database> {
    pool: Pool<DB>,
    what: String,
    caps: Caps,
    /// MySQL: the runner's own connection that stops a job's statement (`KILL QUERY`).
    killer: Option<Pool<MySql>>,
    /// Whether statements are stopped with their run and connections checked clean after
    /// them: for the jobs' pool; the runner's own statements (history) need neither.
    guarded: bool,
}

impl<DB: Database> SqlPool<DB> {
    pub fn new(pool: Pool<DB>, what: String, caps: Caps) -> Self {
        Self {
            pool,
            what,
            caps,
            killer: None,
            guarded: true,
        }
    }

    /// A pool for the runner's own statements: neither stopped nor checked.
    pub fn unguarded(self) -> Self {
        Self {
            guarded: false,
            ..self
        }
    }

    /// Statements stopped from `killer` when their run ends first (MySQL).
    pub fn with_killer(self, killer: Pool<MySql>) -> Self {
        Self {
            killer: Some(killer),
            ..self
        }
    }
}

/// A database error reaches the job as a value carrying the database's own message.
pub(super) fn db_error(e: sqlx::Error) -> ClientError {
    match e {
        sqlx::Error::Database(d) => ClientError::Upstream(format!("database: {}", d.message())),
        other => ClientError::Upstream(format!("database: {other}")),
    }
}

/// What a value costs the host: its bytes, and at least what holding one cell costs, so a
/// million empty strings count as what they take.
pub fn value_size(v: &Value) -> usize {
    CELL_BYTES
        + match v {
            Value::Text(s) | Value::Json(s) => s.len(),
            Value::Bytes(b) => b.len(),
            _ => 0,
        }
}

/// What one cell of a result costs beside its bytes.
const CELL_BYTES: usize = std::mem::size_of::<Value>();

/// Bytes of a statement a connection may keep prepared for its next use: a job's usual
/// statements are kept (a round trip saved on every later call), a large one is closed
/// after its call, so the connections' caches hold at most their capacity times this.
pub const MAX_CACHED_STATEMENT_BYTES: usize = 4 << 10;
/// Statements each of the jobs' connections keeps prepared.
pub const STATEMENT_CACHE: usize = 64;

/// The statement with every parameter bound, in order.
fn prepare<'q, DB: Backend>(
    statement: &'q str,
    params: &'q [Value],
) -> Result<Query<'q, DB, <DB as Database>::Arguments<'q>>, ClientError> {
    let query =
        sqlx::query::<DB>(statement).persistent(statement.len() <= MAX_CACHED_STATEMENT_BYTES);
    params.iter().try_fold(query, |q, p| DB::bind(q, p))
}

pub(super) async fn query_on<'e, DB, E>(
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
        let cost = values.iter().map(value_size).sum::<usize>();
        bytes += cost;
        if bytes > caps.max_bytes {
            return Err(ClientError::LimitExceeded(format!(
                "the query returns more than {} bytes",
                caps.max_bytes
            )));
        }
        crate::run::budget::charge(cost, "the query's rows")?;
        set.rows.push(values);
    }
    Ok(set)
}

pub(super) async fn execute_on<'e, DB, E>(
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
        let mut lease = Lease::acquire(&self.pool, self.guarded).await?;
        let r = lease
            .query(self.killer.as_ref(), statement, params, self.caps)
            .await;
        lease.settle(statement).await;
        r
    }

    async fn execute(&self, statement: &str, params: &[Value]) -> Result<ExecResult, ClientError> {
        let mut lease = Lease::acquire(&self.pool, self.guarded).await?;
        let r = lease.execute(self.killer.as_ref(), statement, params).await;
        lease.settle(statement).await;
        r
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>, ClientError> {
        let mut lease = Lease::acquire(&self.pool, self.guarded).await?;
        lease.control("BEGIN").await?;
        // On SQLite a transaction may hold the one writer lock: bounded in time, so one job
        // cannot make every other job's writes wait out their busy timeout for its run.
        let bound = (self.guarded && DB::DIALECT == "sqlite")
            .then_some(self.caps.max_write_transaction_s)
            .filter(|s| *s > 0)
            .map(std::time::Duration::from_secs);
        Ok(Box::new(Tx::new(
            lease,
            self.caps,
            self.killer.clone(),
            bound,
        )))
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

    fn dialect(&self) -> &'static str {
        DB::DIALECT
    }

    fn caps(&self) -> Caps {
        self.caps
    }
}

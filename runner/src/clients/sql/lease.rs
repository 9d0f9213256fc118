//! [`Lease`]: a pooled connection lent to one call or one transaction of a run, which
//! stops its statement when the run ends first and goes back to the pool only clean.

use sqlx::pool::PoolConnection;
use sqlx::{Database, Executor, IntoArguments, MySql, Pool};

use super::Caps;
use super::backend::Backend;
use super::pool::{db_error, execute_on, query_on};
use super::session::Stop;
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};
use crate::clients::ClientError;

/// A pooled connection lent to one call or one transaction. Dropped while a statement runs
/// (the run's deadline or cancellation drops the call), the statement is stopped and the
/// connection closed; dropped with state left on it, it closes; else it goes back.
pub struct Lease<DB: Database> {
    pub conn: PoolConnection<DB>,
    pub running: Option<Stop>,
    pub dirty: bool,
    /// The pool's `guarded`.
    guarded: bool,
}

impl<DB: Database> Drop for Lease<DB> {
    fn drop(&mut self) {
        if let Some(stop) = self.running.take() {
            stop.fire();
            self.dirty = true;
        }
        if self.dirty {
            // Closing rolls back whatever the connection still has open.
            self.conn.close_on_drop();
        }
    }
}

impl<DB> Lease<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
{
    pub async fn acquire(pool: &Pool<DB>, guarded: bool) -> Result<Self, ClientError> {
        Ok(Self {
            conn: pool.acquire().await.map_err(db_error)?,
            running: None,
            dirty: false,
            guarded,
        })
    }

    /// Refuses a job's statement that acts beyond its session (a guarded pool's), then
    /// makes it stoppable.
    pub async fn arm(
        &mut self,
        killer: Option<&Pool<MySql>>,
        statement: &str,
    ) -> Result<(), ClientError> {
        if self.guarded
            && let Some(why) = DB::refused(statement)
        {
            return Err(ClientError::NotPermitted(why));
        }
        self.running = Some(if self.guarded {
            DB::stoppable(&mut *self.conn, killer)
                .await
                .map_err(db_error)?
        } else {
            Stop::None
        });
        Ok(())
    }

    pub async fn query(
        &mut self,
        killer: Option<&Pool<MySql>>,
        statement: &str,
        params: &[Value],
        caps: Caps,
    ) -> Result<RowSet, ClientError> {
        self.arm(killer, statement).await?;
        let r = query_on(&mut *self.conn, statement, params, caps).await;
        self.running = None;
        // A query abandoned at a cap still has rows coming: the connection closes rather
        // than make the next run read them.
        self.dirty |= matches!(r, Err(ClientError::LimitExceeded(_)));
        r
    }

    pub async fn execute(
        &mut self,
        killer: Option<&Pool<MySql>>,
        statement: &str,
        params: &[Value],
    ) -> Result<ExecResult, ClientError> {
        self.arm(killer, statement).await?;
        let r = execute_on(&mut *self.conn, statement, params).await;
        self.running = None;
        r
    }

    /// A statement of the pool's own (`BEGIN`, `COMMIT`, `ROLLBACK`), as plain text outside
    /// the statement cache as sqlx's own transactions send it; dropped before it answers,
    /// the connection closes.
    pub async fn control(&mut self, statement: &str) -> Result<(), ClientError> {
        self.running = Some(Stop::None);
        let r = (&mut *self.conn).execute(statement).await.map_err(db_error);
        self.running = None;
        r.map(|_| ())
    }

    /// After a call outside a transaction: closes the connection if it kept any state.
    pub async fn settle(mut self, statement: &str) {
        if self.guarded {
            // Dropped during the check (the run ended), the connection is not trusted.
            self.running = Some(Stop::None);
            let left = DB::left_state(&mut *self.conn, statement).await;
            self.running = None;
            self.dirty |= left;
        }
    }
}

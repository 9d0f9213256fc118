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
    /// Always there until the lease is dropped.
    conn: Option<PoolConnection<DB>>,
    pub running: Option<Stop>,
    pub dirty: bool,
    /// The pool's `guarded`.
    guarded: bool,
}

impl<DB: Database> Drop for Lease<DB> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if let Some(stop) = self.running.take() {
            let in_process = matches!(stop, Stop::Flag(_));
            stop.fire();
            // Closing rolls back whatever the connection still has open.
            conn.close_on_drop();
            if in_process {
                // SQLite's statement runs on the connection's own thread, and one long
                // operation never looks at the stop flag: the connection stays out of the
                // pool until it stops, so stuck statements hold at most the pool's threads.
                super::session::abandon(conn);
            }
            return;
        }
        if self.dirty {
            conn.close_on_drop();
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
            conn: Some(pool.acquire().await.map_err(db_error)?),
            running: None,
            dirty: false,
            guarded,
        })
    }

    fn conn(&mut self) -> &mut DB::Connection {
        self.conn
            .as_deref_mut()
            .expect("a lease holds its connection until it is dropped")
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
            DB::stoppable(self.conn(), killer).await.map_err(db_error)?
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
        let r = query_on(self.conn(), statement, params, caps).await;
        self.running = None;
        // A query abandoned at a cap may still have rows coming: the connection closes
        // rather than make the next run read them (a server's; SQLite resets it).
        self.dirty |= DB::UNREAD_ROWS_STAY && matches!(r, Err(ClientError::LimitExceeded(_)));
        r
    }

    pub async fn execute(
        &mut self,
        killer: Option<&Pool<MySql>>,
        statement: &str,
        params: &[Value],
    ) -> Result<ExecResult, ClientError> {
        self.arm(killer, statement).await?;
        let r = execute_on(self.conn(), statement, params).await;
        self.running = None;
        r
    }

    /// A statement of the pool's own (`BEGIN`, `COMMIT`, `ROLLBACK`), as plain text outside
    /// the statement cache as sqlx's own transactions send it; dropped before it answers,
    /// the connection closes.
    pub async fn control(&mut self, statement: &str) -> Result<(), ClientError> {
        self.running = Some(Stop::None);
        let r = self.conn().execute(statement).await.map_err(db_error);
        self.running = None;
        r.map(|_| ())
    }

    /// After a call outside a transaction: closes the connection if it kept any state.
    pub async fn settle(mut self, statement: &str) {
        if self.guarded {
            // Dropped during the check (the run ended), the connection is not trusted.
            self.running = Some(Stop::None);
            let left = DB::left_state(self.conn(), statement).await;
            self.running = None;
            self.dirty |= left;
        }
    }
}

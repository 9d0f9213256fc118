//! [`Tx`]: a job's transaction on a lease of its own: `BEGIN` at the start, `COMMIT` or
//! `ROLLBACK` at the end; dropped unfinished, its connection closes, which rolls it back.
//! Where it may hold the database's one writer (the embedded SQLite), it is bounded in
//! time: past `sql_max_write_transaction_s` a watchdog rolls it back (closes its
//! connection) and its later calls say why.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Database, Executor, IntoArguments, MySql, Pool};
use tokio::sync::Mutex;

use super::backend::Backend;
use super::lease::Lease;
use super::{Caps, SqlTx};
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};
use crate::clients::ClientError;

/// The lease, until the transaction ends or its time is up (then `None`).
type Slot<DB> = Arc<Mutex<Option<Lease<DB>>>>;

pub struct Tx<DB: Database> {
    slot: Slot<DB>,
    caps: Caps,
    killer: Option<Pool<MySql>>,
    /// How long it may stay open, where bounded.
    bound: Option<Duration>,
    watchdog: Option<tokio::task::JoinHandle<()>>,
    /// Until `COMMIT` or `ROLLBACK` answered.
    open: bool,
}

impl<DB: Backend> Tx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
{
    pub fn new(
        lease: Lease<DB>,
        caps: Caps,
        killer: Option<Pool<MySql>>,
        bound: Option<Duration>,
    ) -> Self {
        let slot: Slot<DB> = Arc::new(Mutex::new(Some(lease)));
        // The watchdog holds the slot weakly: a transaction ended (or dropped) before its
        // time leaves it nothing to do.
        let watchdog = bound.map(|after| {
            let weak: Weak<Mutex<Option<Lease<DB>>>> = Arc::downgrade(&slot);
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                if let Some(slot) = weak.upgrade()
                    && let Some(mut lease) = slot.lock().await.take()
                {
                    lease.dirty = true;
                    tracing::warn!(
                        "a job's SQLite transaction was rolled back after {after:?} (runner.sql_max_write_transaction_s)"
                    );
                }
            })
        });
        Self {
            slot,
            caps,
            killer,
            bound,
            watchdog,
            open: true,
        }
    }

    fn expired(&self) -> ClientError {
        ClientError::LimitExceeded(format!(
            "the transaction was rolled back after {} s: the embedded SQLite has one writer, and a transaction may hold it at most that long (runner.sql_max_write_transaction_s)",
            self.bound.map_or(0, |b| b.as_secs())
        ))
    }

    async fn end(mut self: Box<Self>, how: &str) -> Result<(), ClientError> {
        let slot = self.slot.clone();
        let mut guard = slot.lock().await;
        self.open = false;
        let Some(lease) = guard.as_mut() else {
            return Err(self.expired());
        };
        let r = lease.control(how).await;
        // A failed end leaves the transaction's state unknown: the connection closes.
        lease.dirty |= r.is_err();
        r
    }
}

#[async_trait]
impl<DB: Backend> SqlTx for Tx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
{
    async fn query(&mut self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError> {
        let mut guard = self.slot.lock().await;
        let Some(lease) = guard.as_mut() else {
            return Err(self.expired());
        };
        lease.dirty |= DB::leaves_state(statement);
        lease
            .query(self.killer.as_ref(), statement, params, self.caps)
            .await
    }

    async fn execute(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<ExecResult, ClientError> {
        let mut guard = self.slot.lock().await;
        let Some(lease) = guard.as_mut() else {
            return Err(self.expired());
        };
        lease.dirty |= DB::leaves_state(statement);
        lease.execute(self.killer.as_ref(), statement, params).await
    }

    async fn commit(self: Box<Self>) -> Result<(), ClientError> {
        self.end("COMMIT").await
    }

    async fn rollback(self: Box<Self>) -> Result<(), ClientError> {
        self.end("ROLLBACK").await
    }
}

impl<DB: Database> Drop for Tx<DB> {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        // Dropped before `end`: the open transaction must not reach another run. (The
        // slot is busy only while the watchdog takes the lease, which closes it anyway.)
        if let Ok(mut guard) = self.slot.try_lock()
            && let Some(lease) = guard.as_mut()
        {
            lease.dirty |= self.open;
        }
    }
}

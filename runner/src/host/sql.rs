//! `tgrun:job/sql`: statements through the configured pool (MySQL, or the embedded SQLite).
//! A transaction is a resource in the run's table: dropped or left open when the run ends,
//! it rolls back. A run has at most `sql_max_transactions_per_run` open at once, so that
//! no job can hold the pool's connections.

use wasmtime::component::Resource;

use crate::bindings::GuestError;
use crate::bindings::tgrun::job::sql::{ExecResult, Host, HostTransaction, RowSet, Value};
use crate::clients::{SqlApi, SqlTx};
use crate::host::{not_configured, not_permitted};
use crate::sandbox::state::RunState;

/// A transaction held for a guest, on one pooled connection.
pub struct Transaction {
    inner: Box<dyn SqlTx>,
}

fn no_sql() -> GuestError {
    not_configured(
        "sql",
        "set \"mysql\": {\"host\", \"port\"} in config.json and DB_NAME, DB_USER, DB_PASSWORD",
    )
}

impl RunState {
    fn sql(&self) -> Result<std::sync::Arc<dyn SqlApi>, GuestError> {
        if !self.grants.sql {
            return Err(not_permitted("sql"));
        }
        self.services.clients.sql.clone().ok_or_else(no_sql)
    }
}

impl Host for RunState {
    async fn query(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, GuestError>> {
        let sql = match self.sql() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(sql.query(&statement, &params).await.map_err(Into::into))
    }

    async fn execute(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<ExecResult, GuestError>> {
        let sql = match self.sql() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(sql.execute(&statement, &params).await.map_err(Into::into))
    }

    async fn begin(&mut self) -> wasmtime::Result<Result<Resource<Transaction>, GuestError>> {
        let sql = match self.sql() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let most = sql.caps().max_transactions_per_run;
        if self.open_transactions >= most {
            return Ok(Err(GuestError::LimitExceeded(format!(
                "a run may have at most {most} open transaction(s) at once (runner.sql_max_transactions_per_run); commit or roll back one first"
            ))));
        }
        match sql.begin().await {
            // A full resource table is a limit of the runner: a trap, not the guest's error.
            Ok(inner) => {
                let tx = self.table.push(Transaction { inner })?;
                self.open_transactions += 1;
                Ok(Ok(tx))
            }
            Err(e) => Ok(Err(e.into())),
        }
    }
}

impl HostTransaction for RunState {
    async fn query(
        &mut self,
        tx: Resource<Transaction>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, GuestError>> {
        let tx = self.table.get_mut(&tx)?;
        Ok(tx
            .inner
            .query(&statement, &params)
            .await
            .map_err(Into::into))
    }

    async fn execute(
        &mut self,
        tx: Resource<Transaction>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<ExecResult, GuestError>> {
        let tx = self.table.get_mut(&tx)?;
        Ok(tx
            .inner
            .execute(&statement, &params)
            .await
            .map_err(Into::into))
    }

    async fn commit(
        &mut self,
        tx: Resource<Transaction>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        let tx = self.table.delete(tx)?;
        self.open_transactions -= 1;
        Ok(tx.inner.commit().await.map_err(Into::into))
    }

    async fn rollback(
        &mut self,
        tx: Resource<Transaction>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        let tx = self.table.delete(tx)?;
        self.open_transactions -= 1;
        Ok(tx.inner.rollback().await.map_err(Into::into))
    }

    async fn drop(&mut self, tx: Resource<Transaction>) -> wasmtime::Result<()> {
        // Dropping an open transaction closes its connection, which rolls it back.
        self.table.delete(tx)?;
        self.open_transactions -= 1;
        Ok(())
    }
}

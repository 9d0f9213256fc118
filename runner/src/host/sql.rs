//! `tgrun:job/sql`: statements through the configured pool (MySQL, or the embedded SQLite).
//! A transaction is a resource in the run's table: dropped or left open when the run ends,
//! it rolls back. A run has at most `sql_max_transactions_per_run` open at once, so that
//! no job can hold the pool's connections.

use wasmtime::component::Resource;

use crate::bindings::GuestError;
use crate::bindings::tgrun::job::sql::{
    ExecResult, Host, HostTransaction, RowSet, Transaction as Handle, Value,
};
use crate::clients::sql::pool::value_size;
use crate::clients::{SqlApi, SqlTx};
use crate::host::state::RunState;
use crate::host::types::HostError;
use crate::host::{not_configured, not_permitted};

/// A transaction held for a guest, on one pooled connection, in the run's resource table.
pub struct Transaction {
    inner: Box<dyn SqlTx>,
}

/// The table's key for the guest's handle (the WIT resource is a marker type; the table
/// checks that the entry at its index is a [`Transaction`]).
fn key(handle: &Resource<Handle>) -> Resource<Transaction> {
    if handle.owned() {
        Resource::new_own(handle.rep())
    } else {
        Resource::new_borrow(handle.rep())
    }
}

fn no_sql() -> GuestError {
    not_configured(
        "sql",
        "set \"mysql\": {\"host\", \"port\"} in config.json and DB_NAME, DB_USER, DB_PASSWORD",
    )
}

/// What a statement and its parameters cost the host while the call holds them.
fn statement_bytes(statement: &str, params: &[Value]) -> usize {
    statement.len() + params.iter().map(value_size).sum::<usize>()
}

/// Runs a statement's call on the run's budget: the statement and its parameters are
/// charged first, then whatever the client holds for it (its rows).
async fn charged<T>(
    budget: &std::sync::Arc<crate::run::budget::Budget>,
    statement: &str,
    params: &[Value],
    call: impl std::future::Future<Output = Result<T, crate::clients::ClientError>>,
) -> Result<T, crate::clients::ClientError> {
    crate::run::budget::within(budget, async {
        crate::run::budget::charge(
            statement_bytes(statement, params),
            "the statement and its parameters",
        )?;
        call.await
    })
    .await
}

impl RunState {
    fn sql(&mut self) -> Result<std::sync::Arc<dyn SqlApi>, GuestError> {
        if !self.may(self.grants.sql) {
            return Err(not_permitted("sql"));
        }
        self.services.clients.sql.clone().ok_or_else(no_sql)
    }
}

impl Host for RunState {
    async fn query(&mut self, statement: String, params: Vec<Value>) -> Result<RowSet, HostError> {
        let sql = self.sql()?;
        let budget = self.limiter.budget.clone();
        Ok(charged(&budget, &statement, &params, sql.query(&statement, &params)).await?)
    }

    async fn execute(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> Result<ExecResult, HostError> {
        let sql = self.sql()?;
        let budget = self.limiter.budget.clone();
        Ok(charged(
            &budget,
            &statement,
            &params,
            sql.execute(&statement, &params),
        )
        .await?)
    }

    async fn dialect(&mut self) -> Result<String, HostError> {
        Ok(self.sql()?.dialect().to_owned())
    }

    async fn begin(&mut self) -> Result<Resource<Handle>, HostError> {
        let sql = self.sql()?;
        let most = sql.caps().max_transactions_per_run;
        if self.open_transactions >= most {
            return Err(GuestError::LimitExceeded(format!(
                "a run may have at most {most} open transaction(s) at once (runner.sql_max_transactions_per_run); commit or roll back one first"
            ))
            .into());
        }
        let inner = sql.begin().await?;
        // A full resource table is a limit of the runner: a trap, not the guest's error.
        let tx = self.table.push(Transaction { inner })?;
        self.open_transactions += 1;
        Ok(Resource::new_own(tx.rep()))
    }
}

impl HostTransaction for RunState {
    async fn query(
        &mut self,
        tx: Resource<Handle>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<RowSet, HostError> {
        let budget = self.limiter.budget.clone();
        let tx = self.table.get_mut(&key(&tx))?;
        Ok(charged(
            &budget,
            &statement,
            &params,
            tx.inner.query(&statement, &params),
        )
        .await?)
    }

    async fn execute(
        &mut self,
        tx: Resource<Handle>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<ExecResult, HostError> {
        let budget = self.limiter.budget.clone();
        let tx = self.table.get_mut(&key(&tx))?;
        Ok(charged(
            &budget,
            &statement,
            &params,
            tx.inner.execute(&statement, &params),
        )
        .await?)
    }

    async fn commit(&mut self, tx: Resource<Handle>) -> Result<(), HostError> {
        let tx = self.table.delete(key(&tx))?;
        self.open_transactions -= 1;
        Ok(tx.inner.commit().await?)
    }

    async fn rollback(&mut self, tx: Resource<Handle>) -> Result<(), HostError> {
        let tx = self.table.delete(key(&tx))?;
        self.open_transactions -= 1;
        Ok(tx.inner.rollback().await?)
    }

    async fn drop(&mut self, tx: Resource<Handle>) -> wasmtime::Result<()> {
        // Dropping an open transaction closes its connection, which rolls it back.
        self.table.delete(key(&tx))?;
        self.open_transactions -= 1;
        Ok(())
    }
}

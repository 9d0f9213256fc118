//! `tgrun:job/sql`: needs a database pool, which this runner does not have yet; every call
//! answers `not-configured`, so no transaction can be opened.

use wasmtime::component::Resource;

use crate::bindings::GuestError;
use crate::bindings::tgrun::job::sql::{ExecResult, Host, HostTransaction, RowSet, Value};
use crate::host::not_configured;
use crate::sandbox::state::RunState;

/// A transaction held for a guest. None can be opened until the SQL client lands.
#[derive(Debug)]
pub struct Transaction {
    _private: (),
}

fn no_sql() -> GuestError {
    not_configured(
        "sql",
        "set \"mysql\": {\"host\", \"port\"} in config.json and DB_NAME, DB_USER, DB_PASSWORD",
    )
}

impl Host for RunState {
    async fn query(
        &mut self,
        _statement: String,
        _params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, GuestError>> {
        Ok(Err(no_sql()))
    }

    async fn execute(
        &mut self,
        _statement: String,
        _params: Vec<Value>,
    ) -> wasmtime::Result<Result<ExecResult, GuestError>> {
        Ok(Err(no_sql()))
    }

    async fn begin(&mut self) -> wasmtime::Result<Result<Resource<Transaction>, GuestError>> {
        Ok(Err(no_sql()))
    }
}

impl HostTransaction for RunState {
    async fn query(
        &mut self,
        _tx: Resource<Transaction>,
        _statement: String,
        _params: Vec<Value>,
    ) -> wasmtime::Result<Result<RowSet, GuestError>> {
        Ok(Err(no_sql()))
    }

    async fn execute(
        &mut self,
        _tx: Resource<Transaction>,
        _statement: String,
        _params: Vec<Value>,
    ) -> wasmtime::Result<Result<ExecResult, GuestError>> {
        Ok(Err(no_sql()))
    }

    async fn commit(
        &mut self,
        tx: Resource<Transaction>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        self.table.delete(tx)?;
        Ok(Err(no_sql()))
    }

    async fn rollback(
        &mut self,
        tx: Resource<Transaction>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        self.table.delete(tx)?;
        Ok(Err(no_sql()))
    }

    async fn drop(&mut self, tx: Resource<Transaction>) -> wasmtime::Result<()> {
        self.table.delete(tx)?;
        Ok(())
    }
}

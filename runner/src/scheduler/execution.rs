//! What runs a run ([`Execution`]): the sandbox, the modules it loads jobs from, and the
//! runtime the clients live on. Built once; every run goes through it.

use std::sync::Arc;

use crate::modules::ModuleRegistry;
use crate::run::{Invocation, RunReport};
use crate::sandbox::Sandbox;

pub struct Execution {
    pub sandbox: Arc<Sandbox>,
    pub modules: Arc<ModuleRegistry>,
    /// The runtime the clients (and their connections) live on.
    pub home: Option<tokio::runtime::Handle>,
}

impl Execution {
    /// On the current runtime, if there is one.
    pub fn new(sandbox: Arc<Sandbox>, modules: Arc<ModuleRegistry>) -> Self {
        Self {
            sandbox,
            modules,
            home: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Runs one invocation in a fresh instance of its job's module, or reports why the
    /// module cannot run.
    pub async fn run(&self, inv: &Invocation) -> RunReport {
        match self.modules.get(&inv.module).await {
            Ok(component) => self.sandbox.run(&component, inv, true).await,
            Err(outcome) => inv.not_run(outcome),
        }
    }
}

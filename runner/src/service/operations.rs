//! What an operator does to a running service, whoever asks (the HTTP routes, the
//! dashboard through them): run a job now, upload a module, roll one back. Each answers a
//! typed error that says whose mistake it was, so the routes can answer the right status.

use std::sync::Arc;

use super::Service;
use crate::modules::ModuleError;
use crate::run::{Invocation, JobId, RunReport};
use crate::scheduler::unix_ms;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No such job, route or module in the configuration.
    #[error("{0}")]
    NotFound(String),
    /// What was sent cannot be taken (a name that is not a name, a module that does not
    /// fit).
    #[error("{0}")]
    Refused(String),
    /// The service's state does not allow it (nothing to roll back to).
    #[error("{0}")]
    Conflict(String),
    /// Done on this replica, but the cluster could not be told.
    #[error("{0}")]
    ThisReplicaOnly(String),
    /// The runner's own failure (a file it cannot write).
    #[error("{0}")]
    Internal(String),
}

impl From<ModuleError> for OpError {
    fn from(e: ModuleError) -> Self {
        match e {
            ModuleError::BadName(m) | ModuleError::Invalid(m) => Self::Refused(m),
            ModuleError::NoPrevious(m) => Self::Conflict(m),
            e @ ModuleError::Write { .. } => Self::Internal(e.to_string()),
        }
    }
}

impl Service {
    /// Runs the configured job `name` now, outside its schedule (pipeline `manual`), with
    /// `params` (a JSON object's text) or its configured ones; answers its report once
    /// recorded. Only a configured job runs: its grants and limits are the configuration's,
    /// and a name is never a path to some other file.
    pub async fn run_now(
        &self,
        name: &str,
        params: Option<String>,
    ) -> Result<Arc<RunReport>, OpError> {
        let spec = self
            .config()
            .service
            .jobs()
            .find(|(_, j)| *j.name == *name)
            .map(|(_, j)| j.clone())
            .ok_or_else(|| OpError::NotFound(format!("no job {name:?} in the configuration")))?;
        let shared = &self.shared;
        let inv = Invocation::new(
            JobId::manual(&spec.name),
            shared.run_ids.next(),
            unix_ms(),
            params.map_or_else(|| spec.params.clone(), Into::into),
            spec.limits,
            spec.grants,
        )
        .of_module(&spec.module)
        .with_env(&spec.env)
        .with_outbound(&spec.outbound);
        let report = shared.execution.run(&inv).await;
        Ok(shared.reports.finish(report))
    }

    /// Installs `bytes` as module `name` (a route handler's or a job's), compiled and
    /// checked first, and shares it with the cluster; answers its version.
    pub async fn upload_module(&self, name: &str, bytes: Vec<u8>) -> Result<String, OpError> {
        let shared_bytes = self.cluster.is_some().then(|| bytes.clone());
        let version = self.install_module(name, bytes).await?;
        // In a cluster, every replica follows the object store and installs it too.
        if let (Some(cluster), Some(bytes)) = (&self.cluster, shared_bytes)
            && let Err(e) = cluster.modules.put(name, &bytes).await
        {
            return Err(OpError::ThisReplicaOnly(format!(
                "'{name}' runs version {version} on this replica only: {e:#}; upload it again"
            )));
        }
        Ok(version)
    }

    /// Returns module `name` (a configured job's or route's) to its previous version, on
    /// every replica; answers `(from, to)` versions.
    pub async fn roll_back(&self, name: &str) -> Result<(String, String), OpError> {
        let is_job = self
            .config()
            .service
            .jobs()
            .any(|(_, j)| *j.module == *name);
        let (from, to) = if self.is_route_module(name) {
            self.handlers.rollback(name)?
        } else if is_job {
            self.shared.execution.modules.rollback(name)?
        } else {
            return Err(OpError::NotFound(format!(
                "no job or route module {name:?} in the configuration"
            )));
        };
        // In a cluster, the version rolled back to is the cluster's from now.
        if let Some(cluster) = &self.cluster
            && let Some(bytes) = self.module_bytes(name)
            && let Err(e) = cluster.modules.put(name, &bytes).await
        {
            return Err(OpError::ThisReplicaOnly(format!(
                "'{name}' rolled back to {to} on this replica only (the others keep their version): {e:#}"
            )));
        }
        Ok((from, to))
    }
}

//! What the cluster asks of the replica it runs in: the narrow view its followers (of the
//! module store and of the configuration) need, so that `cluster/` does not reach into the
//! whole service.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::Value;

use crate::modules::ModuleError;

#[async_trait]
pub trait Replica: Send + Sync {
    /// The version (content hash) of module `name` this replica runs, if any.
    fn module_version(&self, name: &str) -> Option<String>;
    /// Installs `bytes` as module `name`: compiled and checked first; the version, or why
    /// it was refused.
    async fn install_module(&self, name: &str, bytes: Vec<u8>) -> Result<String, ModuleError>;
    /// `service_config.json` as in force here.
    fn config_in_force(&self) -> Value;
    /// Where this replica's `service_config.json` is.
    fn config_file(&self) -> PathBuf;
    /// Validates and applies `config` as if it had been sent to this replica; what changed,
    /// for the log, or why not.
    async fn apply_config(&self, config: Value) -> anyhow::Result<String>;
}

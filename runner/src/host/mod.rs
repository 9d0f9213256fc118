//! The capabilities lent to jobs: one file per WIT interface of the `tgrun:job` world.
//!
//! [`Services`] is built once per runner and shared by every run (the service settings
//! now; the Prometheus, API service and SQL clients when they are configured). What a run
//! accumulates (its log lines and the metrics it wrote) lives in the per-run
//! [`crate::sandbox::state::RunState`], on which the WIT traits are implemented.

pub mod api_service;
pub mod context;
pub mod logging;
pub mod prometheus;
pub mod sql;
pub mod types;

use crate::bindings::GuestError;

/// State built once and lent to every run.
#[derive(Debug, Default)]
pub struct Services {
    /// The service's own settings (top-level keys of `service_config.json` the runner does
    /// not use), serialised once as a JSON object.
    pub settings_json: String,
}

impl Services {
    pub fn new(settings: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self {
            settings_json: serde_json::Value::Object(settings.clone()).to_string(),
        }
    }
}

/// The error a guest sees when it calls a client the runner was not configured with.
pub(crate) fn not_configured(capability: &str, how: &str) -> GuestError {
    GuestError::NotConfigured(format!(
        "the {capability} capability is not configured in this runner ({how})"
    ))
}

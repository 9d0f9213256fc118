//! The run context a job receives, and the service settings it can read.

use serde::de::DeserializeOwned;

use crate::{Error, Result, wit};

/// Facts about the current run.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The job's name in the configuration.
    pub job: String,
    /// Unique per run; also in the runner's logs.
    pub run_id: String,
    /// The pipeline that enqueued the run (`manual` for a run started by hand).
    pub pipeline: String,
    /// When the producer scheduled the run, in ms since the Unix epoch (tglib's
    /// `start_time_ms`).
    pub start_time_ms: i64,
}

impl Ctx {
    pub(crate) fn from_wit(c: wit::RunContext) -> Self {
        Self {
            job: c.job,
            run_id: c.run_id,
            pipeline: c.pipeline,
            start_time_ms: c.start_time_ms,
        }
    }

    /// The service's own settings: the top-level keys of `service_config.json` that the
    /// runner does not use itself.
    pub fn settings(&self) -> serde_json::Value {
        let raw = wit::tgrun::job::context::service_settings();
        serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null)
    }

    /// One service setting, parsed as `T`; `None` if the key is absent.
    pub fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.settings().get(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| Error::msg(format!("service setting '{key}': {e}"))),
        }
    }
}

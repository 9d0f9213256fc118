//! The run context a job receives, and the service settings it can read.
//!
//! ```no_run
//! use tgrun_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Params {}
//!
//! fn report(ctx: &Ctx, _: Params) -> Result<()> {
//!     // Who and when: the due time is the same for every job of one tick.
//!     info!("{} in {} due at {}", ctx.job, ctx.pipeline, ctx.start_time_ms);
//!     // The same for every attempt of this due run: key effects that must happen once.
//!     let key = ctx.run_key();
//!     // The service's own settings (top-level keys of service_config.json).
//!     let site: Option<String> = ctx.setting("site_name")?;
//!     let all = ctx.settings();
//!     info!("{key}: site {site:?}, {} settings", all.as_object().map_or(0, |o| o.len()));
//!     Ok(())
//! }
//!
//! export_job!(report);
//! ```

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

    /// A key for this scheduled run, `pipeline/job/start_time_ms`: the same for every
    /// attempt of one due run (a retry, or a delivery again after its runner died, on any
    /// replica of a cluster), unlike `run_id`. A job whose effects must happen once keys
    /// them on it (a row's primary key, a request's idempotency key). One module listed
    /// twice in a pipeline gets one key for both places: tell them apart by their params.
    pub fn run_key(&self) -> String {
        run_key(&self.pipeline, &self.job, self.start_time_ms)
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

fn run_key(pipeline: &str, job: &str, start_time_ms: i64) -> String {
    format!("{pipeline}/{job}/{start_time_ms}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_key_names_the_due_run_not_the_attempt() {
        assert_eq!(
            super::run_key("p", "add_x", 1_700_000_000_500),
            "p/add_x/1700000000500"
        );
    }
}

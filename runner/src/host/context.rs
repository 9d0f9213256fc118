//! `tgrun:job/context`: the service's own settings, and the configuration of the pipeline
//! that enqueued the run.

use crate::bindings::tgrun::job::context::Host;
use crate::host::state::RunState;

impl Host for RunState {
    fn service_settings(&mut self) -> wasmtime::Result<String> {
        Ok(self.services.settings_json().to_string())
    }

    fn pipeline_config(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self
            .services
            .pipeline_json(&self.pipeline)
            .map(|p| p.to_string()))
    }
}

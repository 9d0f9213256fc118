//! `tgrun:job/context`: the service's own settings.

use crate::bindings::tgrun::job::context::Host;
use crate::host::state::RunState;

impl Host for RunState {
    fn service_settings(&mut self) -> wasmtime::Result<String> {
        Ok(self.services.settings_json().to_string())
    }
}

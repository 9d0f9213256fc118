//! `tgrun:job/api-service`: needs the Terragraph API service client, which this runner
//! does not have yet; every call answers `not-configured`.

use crate::bindings::GuestError;
use crate::bindings::tgrun::job::api_service::{Host, NetworkResult};
use crate::host::not_configured;
use crate::sandbox::state::RunState;

fn no_api_service() -> GuestError {
    not_configured(
        "api-service",
        "set \"apiservice\": {\"nms\": {\"host\", \"port\"}} in config.json",
    )
}

impl Host for RunState {
    async fn network_names(&mut self) -> wasmtime::Result<Result<Vec<String>, GuestError>> {
        Ok(Err(no_api_service()))
    }

    async fn request(
        &mut self,
        _network: String,
        _endpoint: String,
        _params: String,
        _timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        Ok(Err(no_api_service()))
    }

    async fn request_all(
        &mut self,
        _endpoint: String,
        _params: Vec<(String, String)>,
        _timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Result<Vec<NetworkResult>, GuestError>> {
        Ok(Err(no_api_service()))
    }

    async fn request_many(
        &mut self,
        _endpoint: String,
        _params: Vec<(String, String)>,
        _timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Result<Vec<NetworkResult>, GuestError>> {
        Ok(Err(no_api_service()))
    }
}

//! `tgrun:job/api-service`: requests to the Terragraph controllers through the configured
//! API service client.

use std::time::Duration;

use crate::bindings::GuestError;
use crate::bindings::tgrun::job::api_service::{Host, NetworkResult};
use crate::clients::ApiServiceApi;
use crate::host::state::RunState;
use crate::host::types::HostError;
use crate::host::{not_configured, not_permitted};
use crate::run::budget::within;

fn no_api_service() -> GuestError {
    not_configured(
        "api-service",
        "set \"apiservice\": {\"nms\": {\"host\", \"port\"}} in config.json",
    )
}

fn timeout(ms: Option<u32>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::from(ms)))
}

impl RunState {
    fn api_service(&mut self) -> Result<std::sync::Arc<dyn ApiServiceApi>, GuestError> {
        if !self.may(self.grants.api_service) {
            return Err(not_permitted("api-service"));
        }
        self.services
            .clients
            .api_service
            .clone()
            .ok_or_else(no_api_service)
    }

    async fn many(
        &mut self,
        endpoint: String,
        params: Vec<(String, String)>,
        timeout_ms: Option<u32>,
        all: bool,
    ) -> Result<Vec<NetworkResult>, GuestError> {
        let api = self.api_service()?;
        // Every network's answer is charged as it arrives and held to the call's end.
        let answers = within(
            &self.limiter.budget,
            api.request_many(&endpoint, &params, timeout(timeout_ms), all),
        )
        .await?;
        Ok(answers
            .into_iter()
            .map(|(network, r)| NetworkResult {
                network,
                response: r.map_err(Into::into),
            })
            .collect())
    }
}

impl Host for RunState {
    async fn network_names(&mut self) -> Result<Vec<String>, HostError> {
        let api = self.api_service()?;
        Ok(api.network_names().await?)
    }

    async fn request(
        &mut self,
        network: String,
        endpoint: String,
        params: String,
        timeout_ms: Option<u32>,
    ) -> Result<String, HostError> {
        let api = self.api_service()?;
        Ok(within(
            &self.limiter.budget,
            api.request(&network, &endpoint, &params, timeout(timeout_ms)),
        )
        .await?)
    }

    async fn request_all(
        &mut self,
        endpoint: String,
        params: Vec<(String, String)>,
        timeout_ms: Option<u32>,
    ) -> Result<Vec<NetworkResult>, HostError> {
        Ok(self.many(endpoint, params, timeout_ms, true).await?)
    }

    async fn request_many(
        &mut self,
        endpoint: String,
        params: Vec<(String, String)>,
        timeout_ms: Option<u32>,
    ) -> Result<Vec<NetworkResult>, HostError> {
        Ok(self.many(endpoint, params, timeout_ms, false).await?)
    }
}

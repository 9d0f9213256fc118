//! `tgrun:job/http`: a run's requests to the origins its job allows, each within the run's
//! budget (its body and answer charged), its time, and its count.

use std::time::Duration;

use crate::bindings::tgrun::job::http::{Host, OutboundRequest, OutboundResponse};
use crate::clients::ClientError;
use crate::clients::http::{DEFAULT_TIMEOUT, Outgoing};
use crate::host::state::RunState;
use crate::host::types::HostError;
use crate::run::budget::{charge, within};

/// Requests one run may send.
pub const MAX_REQUESTS_PER_RUN: usize = 256;
/// Bytes of one answer's body, whatever the budget.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

impl Host for RunState {
    async fn send(&mut self, req: OutboundRequest) -> Result<OutboundResponse, HostError> {
        let refused = if self.outbound.is_empty() {
            self.refused = true;
            Some(ClientError::NotPermitted(format!(
                "{} may send no HTTP request: list the origins it may reach in its \"allowed_outbound_hosts\" in service_config.json",
                self.job
            )))
        } else if self.http_requests >= MAX_REQUESTS_PER_RUN {
            Some(ClientError::LimitExceeded(format!(
                "a run may send at most {MAX_REQUESTS_PER_RUN} HTTP requests"
            )))
        } else {
            None
        };
        if let Some(e) = refused {
            self.services.http.count(&req.url, &Err(e.clone()));
            return Err(e.into());
        }
        self.http_requests += 1;
        let timeout = req
            .timeout_ms
            .map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(u64::from(ms)));
        let (policy, services) = (self.outbound.clone(), self.services.clone());
        let answer = within(&self.limiter.budget, async move {
            // The request's body and headers are the host's copy while it is sent.
            charge(
                req.body.len()
                    + req
                        .headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>(),
                "the request's body",
            )?;
            let out = Outgoing {
                method: req.method,
                url: req.url,
                headers: req.headers,
                body: req.body,
                timeout,
            };
            services.http.send(&policy, out, MAX_ANSWER_BYTES).await
        })
        .await?;
        Ok(OutboundResponse {
            status: answer.status,
            reason: answer.reason,
            headers: answer.headers,
            body: answer.body,
            url: answer.url,
        })
    }
}

//! `tgrun:job/types`: the `error` every client function may answer, and how a host
//! function's failure becomes either that value or a trap.

use crate::bindings::GuestError;
pub use crate::bindings::HostError;
use crate::bindings::tgrun::job::types::Host;
use crate::clients::ClientError;
use crate::host::state::RunState;

impl From<ClientError> for HostError {
    fn from(e: ClientError) -> Self {
        Self::Guest(e.into())
    }
}

impl From<ClientError> for GuestError {
    // All of these are values for the guest: the remote side's failure is not the runner's.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::InvalidArgument(m) => GuestError::InvalidArgument(m),
            ClientError::Upstream(m) => GuestError::Upstream(m),
            ClientError::LimitExceeded(m) => GuestError::LimitExceeded(m),
            ClientError::NotPermitted(m) => GuestError::NotPermitted(m),
        }
    }
}

impl Host for RunState {
    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<GuestError> {
        match err {
            HostError::Guest(e) => Ok(e),
            HostError::Trap(e) => Err(e),
        }
    }
}

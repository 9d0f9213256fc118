//! Errors of the clients, as the guest sees them.

use crate::bindings::GuestError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The job asked for something invalid (a bad step, start after end).
    #[error("{0}")]
    InvalidArgument(String),
    /// The remote service failed, timed out or answered an error.
    #[error("{0}")]
    Upstream(String),
    /// An answer was larger than the runner accepts.
    #[error("{0}")]
    LimitExceeded(String),
}

impl From<ClientError> for GuestError {
    // All of these are values for the guest: the remote side's failure is not the runner's.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::InvalidArgument(m) => GuestError::InvalidArgument(m),
            ClientError::Upstream(m) => GuestError::Upstream(m),
            ClientError::LimitExceeded(m) => GuestError::LimitExceeded(m),
        }
    }
}

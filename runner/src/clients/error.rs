//! Errors of the clients: each is the guest's to handle (`crate::host::types` makes it
//! the WIT `error` a job sees).

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
    /// The job asked for something no job may do (a statement acting on other sessions).
    #[error("{0}")]
    NotPermitted(String),
}

/// A call past its run's memory budget: the guest's `limit-exceeded`.
impl From<crate::run::budget::Exceeded> for ClientError {
    fn from(e: crate::run::budget::Exceeded) -> Self {
        ClientError::LimitExceeded(e.to_string())
    }
}

//! The error type of jobs and of every SDK call.
//!
//! A job's `Err` ends its run as `error` with the message; an SDK call's error says whose
//! fault it was ([`ErrorKind`]), so a job can treat a missing client apart from a failing one.
//!
//! ```no_run
//! use tgrun_sdk::prelude::*;
//!
//! fn careful(_: &Ctx, params: serde_json::Value) -> Result<()> {
//!     // Any std error converts with `?` (here serde_json's).
//!     let limit: u32 = serde_json::from_value(params["limit"].clone())?;
//!     match prometheus::query_latest("up") {
//!         Ok(_) => {}
//!         // No Prometheus configured for this runner: nothing to do, not a failure.
//!         Err(e) if e.kind() == ErrorKind::NotConfigured => return Ok(()),
//!         Err(e) => return Err(e),
//!     }
//!     if limit == 0 {
//!         bail!("limit must be positive, got {limit}");
//!     }
//!     Err(Error::new(ErrorKind::Upstream, "the controller said no"))
//! }
//!
//! export_job!(careful);
//! ```

use std::fmt;

use crate::wit;

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whose fault an error is, as the runner reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The runner has no such client configured.
    NotConfigured,
    /// The job passed something invalid to a call (or its params did not parse).
    InvalidArgument,
    /// A remote service (Prometheus, a controller, the database) failed or timed out.
    Upstream,
    /// A per-run cap of the runner was hit.
    LimitExceeded,
    /// The job's `capabilities` do not include this client.
    NotPermitted,
    /// The job's own failure.
    Failed,
}

/// An error from a job or an SDK call. Any `std::error::Error` converts into it with `?`.
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// The job's own failure with a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }

    pub(crate) fn invalid_argument(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn from_wit(e: wit::Error) -> Self {
        use wit::Error as W;
        match e {
            W::NotConfigured(m) => Self::new(ErrorKind::NotConfigured, m),
            W::InvalidArgument(m) => Self::new(ErrorKind::InvalidArgument, m),
            W::Upstream(m) => Self::new(ErrorKind::Upstream, m),
            W::LimitExceeded(m) => Self::new(ErrorKind::LimitExceeded, m),
            W::NotPermitted(m) => Self::new(ErrorKind::NotPermitted, m),
            W::Failed(m) => Self::new(ErrorKind::Failed, m),
        }
    }

    pub(crate) fn into_wit(self) -> wit::Error {
        use wit::Error as W;
        match self.kind {
            ErrorKind::NotConfigured => W::NotConfigured(self.message),
            ErrorKind::InvalidArgument => W::InvalidArgument(self.message),
            ErrorKind::Upstream => W::Upstream(self.message),
            ErrorKind::LimitExceeded => W::LimitExceeded(self.message),
            ErrorKind::NotPermitted => W::NotPermitted(self.message),
            ErrorKind::Failed => W::Failed(self.message),
        }
    }
}

/// Like anyhow: `Error` does not implement `std::error::Error` itself, so that every
/// error that does can become one with `?`, keeping its chain of causes in the message.
impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::msg(message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// Returns early from a job with a formatted [`Error`].
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)*)))
    };
}

/// Turns a WIT result into an SDK result.
pub(crate) fn lift<T>(r: std::result::Result<T, wit::Error>) -> Result<T> {
    r.map_err(Error::from_wit)
}

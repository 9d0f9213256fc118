//! Cancelling a run from outside (overlap `replace`, shutdown), with the reason kept for
//! its outcome.

use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// Cancels one run, and says why.
#[derive(Debug, Default)]
pub struct RunCancel {
    token: CancellationToken,
    reason: OnceLock<String>,
}

impl RunCancel {
    /// Cancels the run; the first reason given is the one kept.
    pub fn cancel(&self, reason: impl Into<String>) {
        let _ = self.reason.set(reason.into());
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits for the cancellation; answers its reason.
    pub async fn cancelled(&self) -> String {
        self.token.cancelled().await;
        self.reason()
    }

    pub fn reason(&self) -> String {
        self.reason
            .get()
            .cloned()
            .unwrap_or_else(|| "cancelled".into())
    }
}

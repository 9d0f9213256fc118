//! tglib's error answers: `{"status": "error", "message": ...}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// An unexpected failure: logged in full, answered with a fixed message so nothing of
    /// the runner's internals leaks to the client.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("unexpected error answering a request: {e}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl ApiError {
    /// A 500 whose message is meant for the client (a route handler's own error).
    pub fn internal_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// An operation's error as the status it is.
impl From<crate::service::operations::OpError> for ApiError {
    fn from(e: crate::service::operations::OpError) -> Self {
        use crate::service::operations::OpError;
        match e {
            OpError::NotFound(m) => Self::not_found(m),
            OpError::Refused(m) => Self::bad_request(m),
            OpError::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            OpError::ThisReplicaOnly(m) => Self::new(StatusCode::BAD_GATEWAY, m),
            OpError::Internal(m) => Self::internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": "error", "message": self.message})),
        )
            .into_response()
    }
}

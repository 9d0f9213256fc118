//! Configuration errors: each names the file and the place in it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: invalid JSON at line {line}, column {column}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {location}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        location: String,
        message: String,
    },
}

impl ConfigError {
    pub fn invalid(path: &Path, location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            location: location.into(),
            message: message.into(),
        }
    }
}

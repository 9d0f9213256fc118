//! What a run may spend and do: its time and memory, and which clients it may call.

use std::time::Duration;

/// Limits of one run, from the job's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock time the run may take, instantiation included (when it is made in the
    /// run, not ahead of it: see `sandbox::warm`).
    pub timeout: Duration,
    /// Linear memory the run may use, in bytes.
    pub memory_bytes: u64,
}

/// The clients a job may call: its `capabilities` in `service_config.json`, or all of them
/// when it lists none (as tglib, where every job could use every client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub prometheus: bool,
    pub api_service: bool,
    pub sql: bool,
}

impl Capabilities {
    pub const ALL: Self = Self {
        prometheus: true,
        api_service: true,
        sql: true,
    };
    /// No client at all.
    pub const NONE: Self = Self {
        prometheus: false,
        api_service: false,
        sql: false,
    };
    /// The names a job may list.
    pub const NAMES: &[&str] = &["prometheus", "api-service", "sql"];

    /// From a job's list; an unknown name is an error naming it.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut c = Self::NONE;
        for name in names {
            match name {
                "prometheus" => c.prometheus = true,
                "api-service" | "apiservice" => c.api_service = true,
                "sql" | "mysql" => c.sql = true,
                other => {
                    return Err(format!(
                        "unknown capability '{other}' (known: {})",
                        Self::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(c)
    }
}

//! The configuration directory, read as tglib reads it and resolved once into [`Config`].
//!
//! - `service_config.json` (required): `num_consumers`, `pipelines` and the service's own
//!   settings; see [`service`].
//! - `config.json` (optional; embedded defaults otherwise): client settings shared by every
//!   service, with `service_config.json`'s `overrides` deep-merged in ([`merge`]); the
//!   runner's own settings live under its `runner` key ([`runner`]).
//! - `modules/`: one `<job>.wasm` per job, unless `runner.modules_dir` says otherwise.

pub mod atomic;
pub mod bounds;
pub mod cluster;
pub mod env;
pub mod error;
pub mod merge;
pub mod policies;
pub mod runner;
pub mod secrets;
pub mod service;
pub mod sql;
pub mod values;
pub mod version;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use error::ConfigError;
pub use runner::RunnerSettings;
pub use service::{JobSpec, Pipeline, ServiceConfig};

pub const SERVICE_FILE: &str = "service_config.json";
pub const CLIENT_FILE: &str = "config.json";

/// The whole validated configuration of one runner.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub service: ServiceConfig,
    /// `config.json` with the overrides merged in: the clients' settings.
    pub clients: Map<String, Value>,
    pub runner: RunnerSettings,
}

impl Config {
    /// Reads and validates the configuration directory.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let service_path = dir.join(SERVICE_FILE);
        Self::with_service(dir, read_json(&service_path)?)
    }

    /// Validates `service` as the content of `DIR/service_config.json` (with the
    /// directory's `config.json`), without reading or writing that file.
    pub fn with_service(dir: &Path, service: Value) -> Result<Self, ConfigError> {
        let service_path = dir.join(SERVICE_FILE);
        let raw = service::RawService::split(&service_path, service)?;

        let client_path = dir.join(CLIENT_FILE);
        let mut clients = if client_path.exists() {
            match read_json(&client_path)? {
                Value::Object(m) => m,
                other => {
                    return Err(ConfigError::invalid(
                        &client_path,
                        "top level",
                        format!("must be a JSON object, found {}", values::kind(&other)),
                    ));
                }
            }
        } else {
            Map::new()
        };
        if let Some(overrides) = &raw.overrides {
            merge::deep_merge(&mut clients, overrides);
        }
        bounds::check_clients(&clients)
            .map_err(|(at, msg)| ConfigError::invalid(&client_path, at, msg))?;
        let runner = RunnerSettings::from_clients(&client_path, dir, &clients)?;
        let service = ServiceConfig::resolve(&service_path, raw, &runner)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            service,
            clients,
            runner,
        })
    }
}

impl Config {
    /// As [`Config::with_service`], for a configuration applied to a running service whose
    /// settings in force are `in_force`'s: client and runner settings (`overrides`) take
    /// effect at the next start only, so until then the jobs are resolved against the runner
    /// settings in force (a new `default_timeout_s` is not half-applied to them) and the
    /// clients and runner settings stay those in force. Validated as the next start will
    /// read it too. Answers whether a restart is needed for all of it to apply.
    pub fn applied_to(
        dir: &Path,
        service: Value,
        in_force: &Config,
    ) -> Result<(Self, bool), ConfigError> {
        let next_start = Self::with_service(dir, service.clone())?;
        if next_start.runner == in_force.runner && next_start.clients == in_force.clients {
            return Ok((next_start, false));
        }
        let service_path = dir.join(SERVICE_FILE);
        let raw = service::RawService::split(&service_path, service)?;
        let service = ServiceConfig::resolve(&service_path, raw, &in_force.runner)?;
        let now = Self {
            dir: dir.to_path_buf(),
            service,
            clients: in_force.clients.clone(),
            runner: in_force.runner.clone(),
        };
        Ok((now, true))
    }
}

/// Reads a JSON file; a syntax error names the file, line and column.
pub fn read_json(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(path, &text)
}

pub fn parse_json(path: &Path, text: &str) -> Result<Value, ConfigError> {
    values::parse_strict(text).map_err(|e| ConfigError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

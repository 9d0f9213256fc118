//! The clients the runner owns and lends to jobs: tglib's `PrometheusClient`,
//! `APIServiceClient` and `MySQLClient`. Each sits behind a small trait so the host
//! functions can be tested with a fake, and is started once from `config.json`.

pub mod api_service;
pub mod error;
pub mod http;
pub mod keycloak;
pub mod prometheus;
pub mod range;
pub mod recording;
pub mod sql;
pub mod standin;

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde_json::{Map, Value};

pub use api_service::{ApiServiceApi, HttpApiService};
pub use error::ClientError;
pub use prometheus::{HttpPrometheus, PrometheusApi};
pub use sql::{Caps, SqlApi, SqlTx};

/// The clients configured in `config.json`; a client that is not configured is `None`,
/// and a job calling it gets a `not-configured` error.
#[derive(Clone, Default)]
pub struct Clients {
    pub prometheus: Option<Arc<dyn PrometheusApi>>,
    pub api_service: Option<Arc<dyn ApiServiceApi>>,
    pub sql: Option<Arc<dyn SqlApi>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("prometheus", &self.prometheus.as_ref().map(|p| p.address()))
            .field(
                "api_service",
                &self.api_service.as_ref().map(|a| a.address()),
            )
            .field("sql", &self.sql.as_ref().map(|s| s.describe()))
            .finish()
    }
}

impl Clients {
    /// Builds every client `config.json` names; SQL is always there (MySQL when configured,
    /// else the SQLite file `sqlite_path`). An error names the client and the address tried;
    /// no half-started set is returned (what was started is dropped, closing it).
    pub async fn start(
        config: &Map<String, Value>,
        sqlite_path: &Path,
        caps: Caps,
    ) -> Result<Self> {
        let prometheus = match config.get("prometheus") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Arc::new(HttpPrometheus::from_config(v)?) as Arc<dyn PrometheusApi>),
        };
        let api_service = match config.get("apiservice") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Arc::new(HttpApiService::start(v).await?) as Arc<dyn ApiServiceApi>),
        };
        let sql = Some(sql::start(config, sqlite_path, caps).await?);
        Ok(Self {
            prometheus,
            api_service,
            sql,
        })
    }

    /// Each configured client's name and whether it answers (tglib's `/health`).
    pub async fn health(&self) -> Vec<(&'static str, bool)> {
        let mut out = Vec::new();
        if let Some(p) = &self.prometheus {
            out.push(("prometheus", p.healthy().await));
        }
        if let Some(a) = &self.api_service {
            out.push(("api-service", a.healthy().await));
        }
        if let Some(s) = &self.sql {
            out.push(("sql", s.healthy().await));
        }
        out
    }
}

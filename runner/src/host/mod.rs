//! What a run's instance sees of the runner: the capabilities lent to jobs, one file per
//! WIT interface of the `tgrun:job` world, implemented on the run's own state.
//!
//! [`HostClients`] is built once per runner and shared by every run (the service settings;
//! the Prometheus, API service and SQL clients when they are configured). What a run owns
//! (its [`journal`] of log lines and metrics, its memory [`limits`], its resources) lives
//! in its [`state::RunState`], the data of its `Store`, made fresh for every run.

pub mod api_service;
pub mod context;
pub mod http;
pub mod journal;
pub mod limits;
pub mod logging;
pub mod prometheus;
pub mod sql;
pub mod state;
pub mod types;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::bindings::GuestError;
use crate::clients::Clients;
use crate::config::secrets::Mask;
use crate::metrics::MetricsCache;

/// State built once and lent to every run.
pub struct HostClients {
    /// The service's own settings (top-level keys of `service_config.json` the runner does
    /// not use), serialised as a JSON object; replaced when the configuration changes.
    pub settings: RwLock<Arc<str>>,
    pub clients: Clients,
    /// Where `write-metrics` puts series, served at `/metrics`.
    pub metrics: Arc<MetricsCache>,
    /// The configuration's secret values, masked out of what jobs write.
    pub secrets: RwLock<Arc<Mask>>,
    /// Each pipeline of `service_config.json` as written, serialised as a JSON object, by
    /// name; replaced when the configuration changes.
    pub pipelines: RwLock<Arc<Pipelines>>,
    /// Outbound HTTP, one client per allow-list.
    pub http: crate::clients::http::HttpClients,
}

/// The pipelines as written, and which one configures each job (a run started by hand is
/// shown its job's pipeline).
#[derive(Default)]
pub struct Pipelines {
    by_name: HashMap<String, Arc<str>>,
    of_job: HashMap<String, String>,
}

use crate::config::runner::{DEFAULT_METRICS_TTL, DEFAULT_SERIES_PER_JOB};

impl Default for HostClients {
    fn default() -> Self {
        Self {
            settings: RwLock::new("{}".into()),
            clients: Clients::default(),
            metrics: Arc::new(MetricsCache::new(
                DEFAULT_METRICS_TTL,
                DEFAULT_SERIES_PER_JOB,
            )),
            secrets: Default::default(),
            pipelines: Default::default(),
            http: Default::default(),
        }
    }
}

impl HostClients {
    /// HostClients with the service settings and no clients.
    pub fn new(settings: &serde_json::Map<String, serde_json::Value>) -> Self {
        let s = Self::default();
        s.set_settings(settings);
        s
    }

    /// HostClients with these settings, clients and metrics cache.
    pub fn with(
        settings: &serde_json::Map<String, serde_json::Value>,
        clients: Clients,
        metrics: Arc<MetricsCache>,
    ) -> Self {
        let s = Self {
            clients,
            metrics,
            ..Self::default()
        };
        s.set_settings(settings);
        s
    }

    /// The service settings as a JSON object.
    pub fn settings_json(&self) -> Arc<str> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What runs see of `raw`, the whole `service_config.json` as written (a configuration
    /// was applied): its secret values are masked out of what every later run writes, and
    /// its pipelines are what `pipeline-config` answers.
    pub fn set_service_file(&self, raw: &serde_json::Value) {
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Mask::of(raw));
        let mut pipelines = Pipelines::default();
        for (name, p) in raw
            .get("pipelines")
            .and_then(|p| p.as_object())
            .into_iter()
            .flatten()
        {
            pipelines
                .by_name
                .insert(name.clone(), Arc::from(p.to_string()));
            let jobs = p.get("jobs").and_then(|j| j.as_array());
            for job in jobs.into_iter().flatten() {
                if let Some(job) = job.get("name").and_then(|n| n.as_str()) {
                    pipelines
                        .of_job
                        .entry(job.to_owned())
                        .or_insert_with(|| name.clone());
                }
            }
        }
        *self.pipelines.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pipelines);
    }

    /// The pipeline `name` as written, as a JSON object; for a run started by hand
    /// ([`crate::run::MANUAL`]), the pipeline that configures `job`. None if there is none.
    pub fn pipeline_json(&self, name: &str, job: &str) -> Option<Arc<str>> {
        let pipelines = self.pipelines.read().unwrap_or_else(|e| e.into_inner());
        let name = match name {
            crate::run::MANUAL => pipelines.of_job.get(job)?.as_str(),
            _ => name,
        };
        pipelines.by_name.get(name).cloned()
    }

    pub fn mask(&self) -> Arc<Mask> {
        self.secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_settings(&self, settings: &serde_json::Map<String, serde_json::Value>) {
        let json: Arc<str> = serde_json::Value::Object(settings.clone())
            .to_string()
            .into();
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = json;
    }
}

/// The error a guest sees when it calls a client its `capabilities` do not list.
pub(crate) fn not_permitted(capability: &str) -> GuestError {
    GuestError::NotPermitted(format!(
        "this job may not use {capability}: add \"{capability}\" to its \"capabilities\" in service_config.json"
    ))
}

/// The error a guest sees when it calls a client the runner was not configured with.
pub(crate) fn not_configured(capability: &str, how: &str) -> GuestError {
    GuestError::NotConfigured(format!(
        "the {capability} capability is not configured in this runner ({how})"
    ))
}

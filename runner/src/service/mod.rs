//! The running service: configuration, clients, sandbox, scheduler, built once by
//! [`Service::start`] and shared by the HTTP routes. Configuration changes go through
//! [`Service::apply`]: validated first, written atomically, applied live.

pub mod operations;
pub mod route_slots;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};

use anyhow::Result;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::bindings::handler::HandlerPre;
use crate::clients::Clients;
use crate::cluster::replica::Replica;
use crate::cluster::{Cluster, JetStreamQueue};
use crate::config::version::Expected;
use crate::config::{Config, ConfigError, SERVICE_FILE};
use crate::host::HostClients;
use crate::host::state::RunState;
use crate::metrics::MetricsCache;
use crate::modules::ModuleRegistry;
use crate::sandbox::{Sandbox, SandboxSettings};
use crate::schedule::Clock;
use crate::scheduler::history::Recorder;
use crate::scheduler::queue::{LocalQueue, RunQueue};
use crate::scheduler::{Changes, Scheduler, Shared, Stopped};

/// Sets the log level at run time (`PUT /log/{LEVEL}`).
pub trait LogControl: Send + Sync {
    /// Sets the filter (e.g. `info`); answers the previous one.
    fn set(&self, filter: &str) -> Result<String, String>;
    fn current(&self) -> String;
}

/// A log control that only remembers the level (a library user with its own logging).
#[derive(Debug)]
pub struct FixedLog(pub StdMutex<String>);

impl LogControl for FixedLog {
    fn set(&self, filter: &str) -> Result<String, String> {
        let mut cur = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(std::mem::replace(&mut *cur, filter.to_owned()))
    }
    fn current(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What applying a new configuration did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    #[serde(flatten)]
    pub changes: Changes,
    /// Client settings (`overrides`) or runner settings changed: those apply at the next
    /// start; everything else applied now.
    pub restart_required: bool,
    /// The version of the configuration now in force (its `ETag`).
    pub version: String,
}

pub struct Service {
    dir: PathBuf,
    config: StdMutex<Config>,
    /// `service_config.json` as last loaded or written (what `GET /config` answers).
    raw: StdMutex<Value>,
    /// Held while a configuration change is applied, so two never interleave.
    scheduler: Mutex<Option<Scheduler>>,
    pub shared: Arc<Shared>,
    pub services: Arc<HostClients>,
    /// Route handler components, from the same modules directory.
    pub handlers: Arc<ModuleRegistry<HandlerPre<RunState>>>,
    pub log: Arc<dyn LogControl>,
    /// Stops the module watchers.
    watching: tokio_util::sync::CancellationToken,
    /// Bearer token for mutating routes (`TGRUN_ADMIN_TOKEN`); none: loopback clients only.
    pub admin_token: Option<String>,
    /// The cluster this replica is part of, if any.
    pub cluster: Option<Arc<Cluster>>,
    /// Route requests in flight, bounded per route and in all.
    pub route_slots: Arc<route_slots::RouteSlots>,
}

impl Service {
    /// Starts clients, sandbox and scheduler for `config`. A client that cannot start is an
    /// error naming it; nothing is left running.
    pub async fn start(
        config: Config,
        log: Arc<dyn LogControl>,
        admin_token: Option<String>,
    ) -> Result<Arc<Self>> {
        let runner = &config.runner;
        let clients = Clients::start(&config.clients, &runner.sqlite_path, runner.sql_caps).await?;
        let services = Arc::new(HostClients {
            http: crate::clients::http::HttpClients::trusting(runner.outbound_ca_file.as_deref())?,
            ..HostClients::with(
                &config.service.settings,
                clients,
                Arc::new(MetricsCache::new(
                    runner.metrics_ttl,
                    runner.metrics_series_per_job,
                )),
            )
        });
        // Secrets masked from the first run on.
        let raw = crate::config::read_json(&config.dir.join(SERVICE_FILE))
            .unwrap_or_else(|_| Value::Object(Default::default()));
        services.set_service_file(&raw);
        let sandbox = Arc::new(Sandbox::new(
            SandboxSettings {
                max_output_bytes: runner.max_output_bytes,
                max_log_bytes: runner.max_log_bytes,
                // Room for every consumer of a larger configuration applied later, and for
                // manual runs and route handlers beside them.
                max_instances: crate::config::service::MAX_CONSUMERS as u32 + 64,
                max_memory_bytes: runner.max_memory_mb << 20,
                large_instances: runner.max_large_instances,
                large_memory_kept_bytes: runner.large_memory_kept_mb << 20,
                cache_dir: runner.cache_dir.clone(),
                ..SandboxSettings::default()
            },
            services.clone(),
        )?);
        let modules = Arc::new(ModuleRegistry::new(
            runner.modules_dir.clone(),
            sandbox.clone(),
        ));
        let handlers = Arc::new(ModuleRegistry::new(
            runner.modules_dir.clone(),
            sandbox.clone(),
        ));
        preload(&modules, &handlers, &config).await;
        // The history on a pool of its own: no job's SQL can reach it or starve it.
        crate::clients::sql::history_apart(&config.clients, &runner.history_db)?;
        // Replicas keep one history: each on a file of its own would split it silently.
        if runner.cluster.is_some()
            && matches!(runner.history_db, crate::clients::sql::HistoryDb::Sqlite(_))
        {
            anyhow::bail!(
                "config.json: 'runner.cluster' needs one history for all replicas: set \
                 'runner.history' to a MySQL/MariaDB database and user of its own (not the jobs')"
            );
        }
        let history_db =
            crate::clients::sql::start_history(&config.clients, &runner.history_db).await?;
        let history = Some(
            Recorder::start(history_db.clone(), runner.history)
                .await
                .map_err(|e| anyhow::anyhow!("run history in {}: {e}", history_db.describe()))?,
        );
        let cluster = match &runner.cluster {
            Some(c) => Some(Arc::new(
                crate::cluster::Cluster::connect(c).await.map_err(|e| {
                    anyhow::anyhow!(
                        "cluster '{}' (runner.cluster in config.json): {e:#}",
                        c.name
                    )
                })?,
            )),
            None => None,
        };
        let shared = Shared::with_history(sandbox, modules, history);
        // The queue between producers and consumers: the cluster's stream, or in-process.
        let queue: Arc<dyn RunQueue> = match &cluster {
            Some(c) => Arc::new(JetStreamQueue::new(c.clone(), shared.clone())),
            None => Arc::new(LocalQueue::new(runner.queue_capacity, shared.clone())),
        };
        let scheduler =
            Scheduler::start_with_queue(&config.service, queue, shared.clone(), Clock::System);
        let watching = tokio_util::sync::CancellationToken::new();
        tokio::spawn(crate::run::trim::trimmer(watching.clone()));
        // In a cluster, a module file changed in this replica's folder goes to all.
        let share = cluster
            .as_ref()
            .map(|c| crate::cluster::modules::sharer(c.modules.clone()));
        tokio::spawn(crate::modules::watch::watch(
            shared.execution.modules.clone(),
            watching.clone(),
            share.clone(),
        ));
        tokio::spawn(crate::modules::watch::watch(
            handlers.clone(),
            watching.clone(),
            share,
        ));
        let service = Arc::new(Self {
            route_slots: Default::default(),
            dir: config.dir.clone(),
            config: StdMutex::new(config),
            raw: StdMutex::new(raw),
            scheduler: Mutex::new(Some(scheduler)),
            shared,
            services,
            handlers,
            watching,
            log,
            admin_token,
            cluster,
        });
        if let Some(cluster) = &service.cluster {
            let replica: Arc<dyn Replica> = service.clone();
            tokio::spawn(crate::cluster::modules::follow(
                cluster.modules.clone(),
                Arc::downgrade(&replica),
            ));
            tokio::spawn(crate::cluster::config::follow(
                cluster.config.clone(),
                Arc::downgrade(&replica),
            ));
        }
        Ok(service)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `name` is the module of a configured route (a handler, not a job).
    pub fn is_route_module(&self, name: &str) -> bool {
        self.config()
            .service
            .routes
            .iter()
            .any(|r| *r.module == *name)
    }

    /// The version of module `name` this replica runs (a route handler's or a job's).
    pub fn module_version(&self, name: &str) -> Option<String> {
        let info = if self.is_route_module(name) {
            self.handlers.info(name)
        } else {
            self.shared.execution.modules.info(name)
        };
        info.and_then(|i| i.version)
    }

    /// The bytes of the version of module `name` this replica runs.
    pub fn module_bytes(&self, name: &str) -> Option<std::sync::Arc<[u8]>> {
        if self.is_route_module(name) {
            self.handlers.current_bytes(name)
        } else {
            self.shared.execution.modules.current_bytes(name)
        }
    }

    /// Installs `bytes` as module `name`, in the handlers' registry for a route's module and
    /// the jobs' otherwise: compiled and checked first. Answers the version, or why not.
    pub async fn install_module(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<String, crate::modules::ModuleError> {
        if self.is_route_module(name) {
            self.handlers.install(name, bytes).await
        } else {
            self.shared.execution.modules.install(name, bytes).await
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `service_config.json` as in force.
    pub fn raw_config(&self) -> Value {
        self.raw.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Validates `new` as the whole `service_config.json`, writes it atomically and applies
    /// it live. A configuration that does not validate changes nothing.
    pub async fn apply(&self, new: Value) -> Result<Applied, ApplyError> {
        self.apply_with(None, |_| new).await
    }

    /// [`Service::apply`] of `make(the configuration in force)`, read under the same lock
    /// as the write: two concurrent PATCHes both land, neither undoes the other.
    /// With `expected`, the configuration in force must be at one of its versions
    /// (checked under the lock), or nothing changes and the answer is
    /// [`ApplyError::Stale`].
    pub async fn apply_with(
        &self,
        expected: Option<&Expected>,
        make: impl FnOnce(&Value) -> Value,
    ) -> Result<Applied, ApplyError> {
        let mut scheduler = self.scheduler.lock().await;
        let Some(running) = scheduler.as_mut() else {
            return Err(ApplyError::Stopped);
        };
        let stored = self.raw_config();
        if let Some(expected) = expected {
            let current = crate::config::version::of(&stored);
            if !expected.matches(&current) {
                return Err(ApplyError::Stale { current });
            }
        }
        let new = make(&stored);
        let old = self.config();
        // Checked as the next start will read it; applied now as far as it applies live.
        let (validated, restart_required) =
            Config::applied_to(&self.dir, new.clone(), &old).map_err(ApplyError::Invalid)?;
        write_atomically(&self.dir.join(SERVICE_FILE), &new).map_err(ApplyError::Write)?;
        if restart_required {
            tracing::warn!("client or runner settings changed: they apply at the next start");
        }
        // New secrets are masked before any run of the new configuration starts.
        self.services.set_service_file(&new);
        let changes = running.reconfigure(&validated.service);
        self.services.set_settings(&validated.service.settings);
        tracing::info!(?changes, "configuration applied");
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = validated;
        let version = crate::config::version::of(&new);
        *self.raw.lock().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(Applied {
            changes,
            restart_required,
            version,
        })
    }

    /// Runs waiting in the queue.
    pub async fn queue_depth(&self) -> usize {
        self.scheduler
            .lock()
            .await
            .as_ref()
            .map_or(0, |s| s.queue_depth())
    }

    /// Stops the scheduler: producers stop, runs in flight get `runner.shutdown_grace_s`
    /// to finish and are then cancelled; every outcome is recorded and the history flushed.
    pub async fn stop(&self) -> Stopped {
        self.watching.cancel();
        let grace = self.config().runner.shutdown_grace;
        let Some(s) = self.scheduler.lock().await.take() else {
            return Stopped::default();
        };
        tracing::info!(
            grace_s = grace.as_secs_f64(),
            "stopping: no new runs; runs in flight may finish"
        );
        let stopped = s.stop(grace).await;
        tracing::info!(
            cancelled_running = stopped.cancelled_running,
            cancelled_waiting = stopped.cancelled_waiting,
            history_flushed = stopped.history_flushed,
            "scheduler stopped"
        );
        stopped
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Invalid(ConfigError),
    #[error("cannot write the configuration: {0}")]
    Write(std::io::Error),
    #[error("the service is stopping")]
    Stopped,
    #[error(
        "the configuration changed since the version you read (it is now \"{current}\"): \
         GET /config again and apply your change to what it answers"
    )]
    Stale { current: String },
}

/// The service as the cluster's followers see it.
#[async_trait::async_trait]
impl Replica for Service {
    fn module_version(&self, name: &str) -> Option<String> {
        Service::module_version(self, name)
    }

    async fn install_module(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<String, crate::modules::ModuleError> {
        Service::install_module(self, name, bytes).await
    }

    fn config_in_force(&self) -> Value {
        self.raw_config()
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join(SERVICE_FILE)
    }

    async fn apply_config(&self, config: Value) -> anyhow::Result<String> {
        let applied = self.apply(config).await?;
        Ok(format!("{:?}", applied.changes))
    }
}

/// Loads every enabled job's module now, so a missing or broken one is reported at start
/// (each run of it will say so again), without stopping the others.
async fn preload(
    modules: &ModuleRegistry,
    handlers: &ModuleRegistry<HandlerPre<RunState>>,
    config: &Config,
) {
    for route in &config.service.routes {
        if let Err(outcome) = handlers.get(&route.module).await {
            tracing::error!(route = %format!("{} {}", route.method, route.path),
                outcome = outcome.name(), "{}", outcome.detail());
        }
    }
    let names = config.service.enabled_modules();
    for name in &names {
        if let Err(outcome) = modules.get(name).await {
            tracing::error!(module = %name, outcome = outcome.name(), "{}", outcome.detail());
        }
    }
    tracing::info!(
        pipelines = config.service.pipelines.len(),
        jobs = names.len(),
        consumers = config.service.num_consumers,
        modules_dir = %config.runner.modules_dir.display(),
        "starting"
    );
}

/// Writes `value` as pretty JSON to `path`, whole or not at all.
pub fn write_atomically(path: &Path, value: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    crate::config::atomic::write(path, text.as_bytes())
}

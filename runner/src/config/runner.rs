//! The runner's own settings: the `runner` object of `config.json` (or of
//! `service_config.json`'s `overrides`), plus tglib's `listen_on_ipv6`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::bounds;
use super::error::ConfigError;

/// How long a written series is served without being written again.
pub const DEFAULT_METRICS_TTL: Duration = Duration::from_secs(300);
/// Series one job may hold in the metrics cache.
pub const DEFAULT_SERIES_PER_JOB: usize = 10_000;

/// How long history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rows of scheduled and manual runs kept at most (the oldest go first).
    pub max_rows: u64,
    /// Rows of route requests kept at most, apart: a flood of requests never evicts the
    /// jobs' history.
    pub route_max_rows: u64,
    /// Rows older than this go.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_rows: 100_000,
            route_max_rows: 10_000,
            max_age: Duration::from_secs(7 * 86_400),
        }
    }
}

/// `config.json` → `runner`. Every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunner {
    /// Where `<job>.wasm` files are; relative paths are inside the configuration
    /// directory. Default `modules`.
    modules_dir: Option<PathBuf>,
    /// Address the HTTP server binds. Default `0.0.0.0`, or `::` with `listen_on_ipv6`.
    http_host: Option<IpAddr>,
    /// Port of the HTTP server. Default 8080 (tglib's).
    http_port: Option<u16>,
    /// Names (or `name:port`) besides loopback's a tokenless admin request's `Host` may
    /// carry (a name of this machine an operator uses). Default none.
    http_allowed_hosts: Option<Vec<String>>,
    /// Time limit of a job without `timeout_s`, in seconds. Default 60.
    default_timeout_s: Option<f64>,
    /// Memory limit of a job without `memory_mb`, in MiB. Default 128.
    default_memory_mb: Option<u64>,
    /// Largest `memory_mb` a job may ask for, in MiB. Default 4096.
    max_memory_mb: Option<u64>,
    /// Runs that may wait in the queue; past it, a tick's runs are dropped and logged.
    /// Default 10000.
    queue_capacity: Option<usize>,
    /// Bytes of stdout and of stderr kept per run, in KiB. Default 64.
    max_output_kb: Option<usize>,
    /// Bytes of log messages kept per run, in KiB. Default 256.
    max_log_kb: Option<usize>,
    /// Seconds a written series stays on `/metrics` without being written again. Default 300.
    metrics_ttl_s: Option<f64>,
    /// Series one job may hold on `/metrics`; past it a write is refused. Default 10000.
    metrics_series_per_job: Option<usize>,
    /// The embedded SQLite database used when `mysql` is not configured (relative to the
    /// configuration directory). Default `tgrun.sqlite3`.
    sqlite_path: Option<PathBuf>,
    /// Rows one SQL query may return. Default 100000.
    sql_max_rows: Option<usize>,
    /// Bytes one SQL query may return, in MiB. Default 64.
    sql_max_mb: Option<usize>,
    /// Transactions one run may have open at once. Default 1.
    sql_max_transactions_per_run: Option<usize>,
    /// MySQL/MariaDB: seconds after which the server ends a job's statement itself (a
    /// backstop; the runner stops it at the run's end). 0: none. Default 3600.
    sql_max_statement_s: Option<u64>,
    /// The embedded SQLite: the most its file may hold, in MiB. Default 1024.
    sql_max_db_mb: Option<usize>,
    /// The embedded SQLite: seconds a job's transaction may stay open. 0: unbounded.
    /// Default 10.
    sql_max_write_transaction_s: Option<u64>,
    /// The run history's own SQLite file when `mysql` is not configured (relative to the
    /// configuration directory). Default `tgrun-history.sqlite3`.
    history_sqlite_path: Option<PathBuf>,
    /// The run history on MySQL/MariaDB with its own credentials or database:
    /// `{"host", "port", "user", "password", "database"}`, each defaulting to `mysql`'s.
    history: Option<Value>,
    /// Runs kept in the history table `tgrun_runs`. Default 100000.
    history_max_rows: Option<u64>,
    /// Route requests kept in the history, apart from runs. Default 10000.
    history_route_max_rows: Option<u64>,
    /// Seconds runs are kept in the history. Default 604800 (7 days).
    history_max_age_s: Option<f64>,
    /// Where compiled code is cached (relative to the configuration directory); `""`
    /// turns the cache off. Default `.tgrun-cache`.
    cache_dir: Option<PathBuf>,
    /// Instances of components of 1 MiB or more (Python jobs) at once, running or made
    /// ahead. Default: one per core, at least 2.
    max_large_instances: Option<u32>,
    /// MiB of each large instance slot's memory kept resident between runs. Default 32.
    large_memory_kept_mb: Option<u64>,
    /// Seconds runs in flight get to finish at SIGTERM/SIGINT before they are cancelled.
    /// Default 25 (inside Kubernetes' default 30 s termination grace period).
    shutdown_grace_s: Option<f64>,
    /// A PEM file of certificates jobs' HTTPS requests trust besides the system's roots
    /// (a deployment's own CA; relative to the configuration directory). Default none.
    outbound_ca_file: Option<PathBuf>,
    /// Several runners as one service on NATS JetStream. Default: none (one process, an
    /// in-memory queue). Read on its own, so that its errors name `runner.cluster`.
    cluster: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunnerSettings {
    pub modules_dir: PathBuf,
    pub listen: SocketAddr,
    /// `Host` names besides loopback's that tokenless admin requests may carry.
    pub http_allowed_hosts: Vec<String>,
    pub default_timeout: Duration,
    pub default_memory_mb: u64,
    pub max_memory_mb: u64,
    pub queue_capacity: usize,
    pub max_output_bytes: usize,
    pub max_log_bytes: usize,
    pub metrics_ttl: Duration,
    pub metrics_series_per_job: usize,
    pub sqlite_path: PathBuf,
    pub sql_caps: super::sql::Caps,
    pub history: Retention,
    /// Where the history is kept: never on the jobs' pool.
    pub history_db: super::sql::HistoryDb,
    pub cache_dir: Option<PathBuf>,
    /// Large components' (Python's) instances at once, and what each slot keeps resident.
    pub max_large_instances: u32,
    pub large_memory_kept_mb: u64,
    pub shutdown_grace: Duration,
    /// Certificates jobs' HTTPS requests trust besides the system's roots.
    pub outbound_ca_file: Option<PathBuf>,
    pub cluster: Option<super::cluster::ClusterSettings>,
}

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MEMORY_MB: u64 = 128;
pub const MAX_MEMORY_MB: u64 = 4096;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

impl RunnerSettings {
    /// Settings for a directory with no `config.json`.
    pub fn defaults(dir: &Path) -> Self {
        Self::from_clients(Path::new("config.json"), dir, &Map::new()).expect("defaults are valid")
    }

    pub(crate) fn from_clients(
        path: &Path,
        dir: &Path,
        clients: &Map<String, Value>,
    ) -> Result<Self, ConfigError> {
        let raw: RawRunner = match clients.get("runner") {
            None => serde_json::from_value(Value::Object(Map::new())),
            Some(v) => serde_json::from_value(v.clone()),
        }
        .map_err(|e| ConfigError::invalid(path, "'runner'", e.to_string()))?;
        let ipv6 = match clients.get("listen_on_ipv6") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ConfigError::invalid(
                    path,
                    "'listen_on_ipv6'",
                    "must be true or false",
                ));
            }
        };
        let bad =
            |what: &str, msg: &str| ConfigError::invalid(path, format!("'runner.{what}'"), msg);
        let secs = |key: &str, v: Option<f64>, default: Duration, max: Duration, zero_ok| {
            bounds::seconds(v, default, max, zero_ok).map_err(|m| bad(key, &m))
        };
        let count = |key: &str, v: Option<u64>, default: u64, lo: u64, hi: u64| {
            bounds::count(v, default, lo, hi).map_err(|m| bad(key, &m))
        };
        let size = |key: &str, v: Option<usize>, default: usize, hi: usize| {
            bounds::count(v, default, 1, hi).map_err(|m| bad(key, &m))
        };
        let default_timeout = secs(
            "default_timeout_s",
            raw.default_timeout_s,
            DEFAULT_TIMEOUT,
            bounds::DAY,
            false,
        )?;
        let max_memory_mb = raw.max_memory_mb.unwrap_or(MAX_MEMORY_MB);
        if !(1..=MAX_MEMORY_MB).contains(&max_memory_mb) {
            return Err(bad("max_memory_mb", "must be from 1 to 4096"));
        }
        let default_memory_mb = raw
            .default_memory_mb
            .unwrap_or(DEFAULT_MEMORY_MB.min(max_memory_mb));
        if !(1..=max_memory_mb).contains(&default_memory_mb) {
            return Err(bad("default_memory_mb", "must be from 1 to max_memory_mb"));
        }
        // The queue's slots are allocated at start (a few hundred bytes each): 10⁶ is a few
        // hundred MiB at most.
        let queue_capacity = size("queue_capacity", raw.queue_capacity, 10_000, 1_000_000)?;
        let modules_dir = raw.modules_dir.unwrap_or_else(|| "modules".into());
        let host = raw.http_host.unwrap_or(if ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        });
        Ok(Self {
            modules_dir: dir.join(modules_dir),
            listen: SocketAddr::new(host, raw.http_port.unwrap_or(DEFAULT_PORT)),
            http_allowed_hosts: raw.http_allowed_hosts.unwrap_or_default(),
            default_timeout,
            default_memory_mb,
            max_memory_mb,
            queue_capacity,
            max_output_bytes: size("max_output_kb", raw.max_output_kb, 64, bounds::MAX_KB)? * 1024,
            max_log_bytes: size("max_log_kb", raw.max_log_kb, 256, bounds::MAX_KB)? * 1024,
            metrics_ttl: secs(
                "metrics_ttl_s",
                raw.metrics_ttl_s,
                DEFAULT_METRICS_TTL,
                bounds::MAX_KEEP,
                false,
            )?,
            metrics_series_per_job: size(
                "metrics_series_per_job",
                raw.metrics_series_per_job,
                DEFAULT_SERIES_PER_JOB,
                bounds::MAX_COUNT as usize,
            )?,
            sqlite_path: dir.join(raw.sqlite_path.unwrap_or_else(|| "tgrun.sqlite3".into())),
            sql_caps: super::sql::Caps {
                max_rows: size(
                    "sql_max_rows",
                    raw.sql_max_rows,
                    100_000,
                    bounds::MAX_COUNT as usize,
                )?,
                max_bytes: size("sql_max_mb", raw.sql_max_mb, 64, bounds::MAX_MB)? << 20,
                max_transactions_per_run: size(
                    "sql_max_transactions_per_run",
                    raw.sql_max_transactions_per_run,
                    1,
                    16,
                )?,
                max_statement_s: count(
                    "sql_max_statement_s",
                    raw.sql_max_statement_s,
                    3600,
                    0,
                    bounds::DAY.as_secs(),
                )?,
                max_db_bytes: (size("sql_max_db_mb", raw.sql_max_db_mb, 1024, 1 << 20)? as u64)
                    << 20,
                max_write_transaction_s: count(
                    "sql_max_write_transaction_s",
                    raw.sql_max_write_transaction_s,
                    10,
                    0,
                    bounds::DAY.as_secs(),
                )?,
            },
            history_db: {
                if let Some(h) = &raw.history {
                    serde_json::from_value::<super::sql::MysqlSettings>(h.clone())
                        .map_err(|e| {
                            bad(
                                "history",
                                &format!("{e}: expected {{\"host\", \"port\", \"user\", \"password\", \"database\"}}, each optional"),
                            )
                        })?;
                }
                super::sql::history_db(
                    raw.history.as_ref(),
                    &dir.join(
                        raw.history_sqlite_path
                            .unwrap_or_else(|| "tgrun-history.sqlite3".into()),
                    ),
                )
            },
            cache_dir: match raw.cache_dir {
                Some(d) if d.as_os_str().is_empty() => None,
                Some(d) => Some(dir.join(d)),
                None => Some(dir.join(".tgrun-cache")),
            },
            max_large_instances: u32::try_from(count(
                "max_large_instances",
                raw.max_large_instances.map(u64::from),
                u64::from(crate::sandbox::default_large_instances()),
                1,
                super::service::MAX_CONSUMERS,
            )?)
            .unwrap_or(u32::MAX),
            large_memory_kept_mb: {
                let kept = raw
                    .large_memory_kept_mb
                    .unwrap_or(crate::sandbox::DEFAULT_LARGE_MEMORY_KEPT_MB);
                if kept > max_memory_mb {
                    return Err(bad(
                        "large_memory_kept_mb",
                        "must be from 0 to max_memory_mb",
                    ));
                }
                kept
            },
            shutdown_grace: secs(
                "shutdown_grace_s",
                raw.shutdown_grace_s,
                DEFAULT_SHUTDOWN_GRACE,
                Duration::from_secs(3_600),
                true,
            )?,
            outbound_ca_file: match raw.outbound_ca_file {
                None => None,
                Some(f) if dir.join(&f).is_file() => Some(dir.join(f)),
                Some(f) => {
                    return Err(bad(
                        "outbound_ca_file",
                        &format!("{} is not a file", dir.join(f).display()),
                    ));
                }
            },
            cluster: match raw.cluster {
                None => None,
                Some(c) => Some(
                    serde_json::from_value(c)
                        .map_err(|e| e.to_string())
                        .and_then(|c| super::cluster::settings(c, dir))
                        .map_err(|m| bad("cluster", &m))?,
                ),
            },
            history: Retention {
                max_rows: count(
                    "history_max_rows",
                    raw.history_max_rows,
                    100_000,
                    1,
                    bounds::MAX_COUNT,
                )?,
                route_max_rows: count(
                    "history_route_max_rows",
                    raw.history_route_max_rows,
                    10_000,
                    1,
                    bounds::MAX_COUNT,
                )?,
                max_age: secs(
                    "history_max_age_s",
                    raw.history_max_age_s,
                    Duration::from_secs(7 * 86_400),
                    bounds::MAX_KEEP,
                    false,
                )?,
            },
        })
    }
}

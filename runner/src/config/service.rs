//! `service_config.json`: tglib's pipelines, resolved into validated [`Pipeline`]s.
//!
//! ```json
//! {"num_consumers": 5,
//!  "pipelines": {"test_pipeline": {"period": 300, "jobs": [
//!      {"name": "add_x", "enabled": true, "params": {"metric_name": "foo", "x": 5}}]}}}
//! ```
//!
//! As tglib: `period` or `period_s` in seconds; a job without `enabled` is disabled; a job
//! without `params` gets `{}`. Beyond tglib, per job: `timeout_s` and `memory_mb`.
//! Top-level keys the runner does not know are the service's own settings. Inside
//! pipelines and jobs an unknown key is an error, so a typo never silently disables a job.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::env;
use super::error::ConfigError;
use super::policies::{self, Timing, seconds};
use super::runner::RunnerSettings;
use super::values::{flag, kind, unknown_keys};
use crate::run::outbound::Outbound;
use crate::run::{Capabilities, Env, Invocation, JobId, Overlap, Retry, RunLimits};

/// Most consumers a runner may have: each may hold a sandbox instance at once.
pub const MAX_CONSUMERS: u64 = 1024;
/// Consumers when `num_consumers` is absent.
pub const DEFAULT_CONSUMERS: usize = 4;
/// Longest timeout a job may ask for: one day.
pub const MAX_TIMEOUT_S: f64 = 86_400.0;

const TOP_KEYS: &[&str] = &["num_consumers", "pipelines", "overrides", "routes"];
const ROUTE_KEYS: &[&str] = &[
    "module",
    "timeout_s",
    "memory_mb",
    "capabilities",
    "forward_credentials",
    "max_concurrent",
    "env",
    "allowed_outbound_hosts",
    "allowed_outbound_networks",
];
/// Instances all routes may hold at once: the sandbox keeps 64 beside the consumers' for
/// routes and manual runs, and routes take at most this many of them.
pub const ROUTE_INSTANCES: usize = 48;
/// The start of the pipeline name a route's requests are recorded under.
pub const ROUTE_PIPELINE: &str = "route ";
/// Requests a route answers at once when its `max_concurrent` is absent.
pub const DEFAULT_ROUTE_CONCURRENCY: usize = 8;
/// Methods a configured route may answer.
pub const ROUTE_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
/// The runner's own routes: a configured route may not repeat one (tglib's
/// `DuplicateRouteError`).
pub const BUILTIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/status"),
    ("GET", "/health"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/config"),
    ("PUT", "/config"),
    ("PATCH", "/config"),
    ("PUT", "/log/{level}"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{name}"),
    ("POST", "/jobs/{name}/run"),
    ("PUT", "/jobs/{name}/module"),
    ("POST", "/jobs/{name}/rollback"),
    ("GET", "/runs"),
    ("GET", "/docs"),
    ("GET", "/docs.yml"),
    ("GET", "/"),
    ("GET", "/dashboard/state"),
];
const PIPELINE_KEYS: &[&str] = &[
    "period", "period_s", "cron", "timezone", "jitter_s", "missed", "jobs", "env",
];
const JOB_KEYS: &[&str] = &[
    "name",
    "module",
    "enabled",
    "params",
    "timeout_s",
    "memory_mb",
    "capabilities",
    "overlap",
    "retries",
    "retry_backoff_s",
    "env",
    "allowed_outbound_hosts",
    "allowed_outbound_networks",
];

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub num_consumers: usize,
    pub pipelines: Vec<Pipeline>,
    /// The service's own settings: every top-level key the runner does not use.
    pub settings: Map<String, Value>,
    /// `overrides`, deep-merged into `config.json` (tglib).
    pub overrides: Option<Map<String, Value>>,
    /// Routes of the HTTP server answered by components.
    pub routes: Vec<Arc<RouteSpec>>,
}

/// `"GET /topology": {"module": "topology", ...}`: a route answered by a component.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    /// The handler's module: `<modules dir>/<module>.wasm`, of the `handler` world.
    pub module: Arc<str>,
    pub limits: RunLimits,
    pub grants: Capabilities,
    /// Whether the handler is given the request's `authorization` and `cookie` headers.
    /// Default false: a handler does not see the operator's credentials.
    pub forward_credentials: bool,
    /// Requests answered at once; past it, 503 (default 8).
    pub max_concurrent: usize,
    /// The environment its requests' runs see (`env`).
    pub env: Env,
    /// Where its requests' runs may send HTTP requests.
    pub outbound: Arc<Outbound>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: Arc<str>,
    /// When it is due, jitter, and what it does about missed due times.
    pub timing: Timing,
    pub jobs: Vec<Arc<JobSpec>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: Arc<str>,
    /// The component that runs it, `<modules dir>/<module>.wasm` (`module`; default: the
    /// job's name). Several jobs may share one: a tglib service's `jobs.py` is one
    /// component, and a run calls the function its job's name names.
    pub module: Arc<str>,
    pub enabled: bool,
    /// The job's params, serialised once as a JSON object.
    pub params: Arc<str>,
    pub limits: RunLimits,
    /// The clients the job may call (`capabilities`; all when absent).
    pub grants: Capabilities,
    /// What a due run does while the previous one is live (`overlap`; `skip`).
    pub overlap: Overlap,
    /// Retries of a failed run (`retries`, `retry_backoff_s`; none).
    pub retry: Retry,
    /// The environment its runs see: its pipeline's `env` and its own (`env`; none).
    pub env: Env,
    /// Where its runs may send HTTP requests (`allowed_outbound_hosts`,
    /// `allowed_outbound_networks`; nowhere).
    pub outbound: Arc<Outbound>,
}

impl JobSpec {
    /// The first attempt of the run due at `scheduled_ms` of this job, at `index` of
    /// `pipeline`.
    pub fn invocation(
        &self,
        (pipeline, index): (&Arc<str>, usize),
        run_id: String,
        scheduled_ms: i64,
    ) -> Invocation {
        Invocation::new(
            JobId::new(pipeline, index, &self.name),
            run_id,
            scheduled_ms,
            self.params.clone(),
            self.limits,
            self.grants,
        )
        .of_module(&self.module)
        .with_env(&self.env)
        .with_outbound(&self.outbound)
    }
}

/// The raw file split into what the runner uses; defaults for job limits come later,
/// from `config.json`, which the `overrides` here may change.
pub(crate) struct RawService {
    pub top: Map<String, Value>,
    pub overrides: Option<Map<String, Value>>,
}

impl RawService {
    pub fn split(path: &Path, raw: Value) -> Result<Self, ConfigError> {
        let Value::Object(top) = raw else {
            return Err(ConfigError::invalid(
                path,
                "top level",
                format!("must be a JSON object, found {}", kind(&raw)),
            ));
        };
        let overrides = match top.get("overrides") {
            None => None,
            Some(Value::Object(o)) => Some(o.clone()),
            Some(other) => {
                return Err(ConfigError::invalid(
                    path,
                    "'overrides'",
                    format!("must be an object, found {}", kind(other)),
                ));
            }
        };
        Ok(Self { top, overrides })
    }
}

impl ServiceConfig {
    pub(crate) fn resolve(
        path: &Path,
        raw: RawService,
        runner: &RunnerSettings,
    ) -> Result<Self, ConfigError> {
        let top = raw.top;
        let num_consumers = match top.get("num_consumers") {
            None => DEFAULT_CONSUMERS,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_CONSUMERS).contains(&n) => n as usize,
                _ => {
                    return Err(ConfigError::invalid(
                        path,
                        "'num_consumers'",
                        format!(
                            "must be a whole number from 1 to {MAX_CONSUMERS}, found {}",
                            kind(v)
                        ),
                    ));
                }
            },
        };
        let pipelines = match top.get("pipelines") {
            None => Vec::new(),
            Some(Value::Object(p)) => p
                .iter()
                .map(|(name, v)| pipeline(path, name, v, runner))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(ConfigError::invalid(
                    path,
                    "'pipelines'",
                    format!(
                        "must be an object of pipeline name -> {{\"period\", \"jobs\"}}, found {}",
                        kind(other)
                    ),
                ));
            }
        };
        let routes = match top.get("routes") {
            None => Vec::new(),
            Some(Value::Object(r)) => r
                .iter()
                .map(|(key, v)| route(path, key, v, runner).map(Arc::new))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(ConfigError::invalid(
                    path,
                    "'routes'",
                    format!(
                        "must be an object of \"METHOD /path\" -> {{\"module\": ...}}, found {}",
                        kind(other)
                    ),
                ));
            }
        };
        let settings = top
            .into_iter()
            .filter(|(k, _)| !TOP_KEYS.contains(&k.as_str()))
            .collect();
        Ok(Self {
            num_consumers,
            pipelines,
            settings,
            overrides: raw.overrides,
            routes,
        })
    }

    /// Every job spec, with its pipeline's name.
    pub fn jobs(&self) -> impl Iterator<Item = (&Pipeline, &Arc<JobSpec>)> {
        self.pipelines
            .iter()
            .flat_map(|p| p.jobs.iter().map(move |j| (p, j)))
    }

    /// The modules enabled jobs run, each once, in order.
    pub fn enabled_modules(&self) -> std::collections::BTreeSet<Arc<str>> {
        self.jobs()
            .filter(|(_, j)| j.enabled)
            .map(|(_, j)| j.module.clone())
            .collect()
    }
}

fn pipeline(
    path: &Path,
    name: &str,
    v: &Value,
    runner: &RunnerSettings,
) -> Result<Pipeline, ConfigError> {
    let here = format!("pipeline '{name}'");
    let bad = |msg: String| ConfigError::invalid(path, &here, msg);
    let Value::Object(obj) = v else {
        return Err(bad(format!("must be an object, found {}", kind(v))));
    };
    // Route requests are recorded under the pipeline "route METHOD /path".
    if name.starts_with(ROUTE_PIPELINE) {
        return Err(bad(format!(
            "a pipeline name may not start with '{ROUTE_PIPELINE}' (route requests are recorded under it)"
        )));
    }
    if let Some(msg) = unknown_keys(obj, PIPELINE_KEYS) {
        return Err(bad(msg));
    }
    let timing = policies::timing(obj).map_err(bad)?;
    let env = env::env(obj, &Env::default()).map_err(bad)?;
    let jobs = match obj.get("jobs") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, j)| job(path, (name, &env), i, j, runner).map(Arc::new))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(bad(format!(
                "'jobs' must be an array, found {}",
                kind(other)
            )));
        }
    };
    Ok(Pipeline {
        name: name.into(),
        timing,
        jobs,
    })
}

fn job(
    path: &Path,
    (pipeline, inherited): (&str, &Env),
    index: usize,
    v: &Value,
    runner: &RunnerSettings,
) -> Result<JobSpec, ConfigError> {
    let name = v.get("name").and_then(Value::as_str);
    let here = match name {
        Some(n) => format!("pipeline '{pipeline}', job '{n}' (jobs[{index}])"),
        None => format!("pipeline '{pipeline}', jobs[{index}]"),
    };
    let bad = |msg: String| ConfigError::invalid(path, &here, msg);
    let Value::Object(obj) = v else {
        return Err(bad(format!("must be an object, found {}", kind(v))));
    };
    if let Some(msg) = unknown_keys(obj, JOB_KEYS) {
        return Err(bad(msg));
    }
    let name = match obj.get("name") {
        Some(Value::String(n)) if valid_job_name(n) => n.clone(),
        Some(Value::String(n)) => {
            return Err(bad(format!(
                "'name' {n:?} cannot name a module file: use letters, digits, '_', '-' and '.', not starting with '.'"
            )));
        }
        Some(other) => {
            return Err(bad(format!(
                "'name' must be a string, found {}",
                kind(other)
            )));
        }
        None => return Err(bad("needs a 'name'".into())),
    };
    let module = match obj.get("module") {
        None => name.clone(),
        Some(Value::String(m)) if valid_job_name(m) => m.clone(),
        Some(other) => {
            return Err(bad(format!(
                "'module' must name a module file (letters, digits, '_', '-' and '.', not starting with '.'), found {other}"
            )));
        }
    };
    let enabled = flag(obj, "enabled").map_err(bad)?;
    let params = match obj.get("params") {
        None => "{}".to_owned(),
        Some(p @ Value::Object(_)) => p.to_string(),
        Some(other) => {
            return Err(bad(format!(
                "'params' must be an object, found {}",
                kind(other)
            )));
        }
    };
    let timeout = match obj.get("timeout_s") {
        None => runner.default_timeout,
        Some(t) => seconds(t)
            .filter(|d| !d.is_zero() && d.as_secs_f64() <= MAX_TIMEOUT_S)
            .ok_or_else(|| {
                bad(format!(
                    "'timeout_s' must be a positive number of seconds up to {MAX_TIMEOUT_S}, found {}",
                    kind(t)
                ))
            })?,
    };
    let memory_bytes = match obj.get("memory_mb") {
        None => runner.default_memory_mb << 20,
        Some(m) => match m.as_u64() {
            Some(mb) if mb >= 1 && mb <= runner.max_memory_mb => mb << 20,
            _ => {
                return Err(bad(format!(
                    "'memory_mb' must be a whole number of MiB from 1 to {}, found {}",
                    runner.max_memory_mb,
                    kind(m)
                )));
            }
        },
    };
    let grants = match obj.get("capabilities") {
        None => Capabilities::ALL,
        Some(Value::Array(items)) => {
            let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let names =
                names.ok_or_else(|| bad("'capabilities' must be an array of strings".into()))?;
            Capabilities::from_names(names).map_err(|e| bad(format!("'capabilities': {e}")))?
        }
        Some(other) => {
            return Err(bad(format!(
                "'capabilities' must be an array such as [\"prometheus\", \"sql\"], found {}",
                kind(other)
            )));
        }
    };
    let (overlap, retry) = policies::job_policies(obj).map_err(bad)?;
    let env = env::env(obj, inherited).map_err(bad)?;
    let outbound = outbound(obj).map_err(bad)?;
    Ok(JobSpec {
        env,
        outbound,
        name: name.into(),
        module: module.into(),
        grants,
        overlap,
        retry,
        enabled,
        params: params.into(),
        limits: RunLimits {
            timeout,
            memory_bytes,
        },
    })
}

fn route(
    path: &Path,
    key: &str,
    v: &Value,
    runner: &RunnerSettings,
) -> Result<RouteSpec, ConfigError> {
    let here = format!("route '{key}'");
    let bad = |msg: String| ConfigError::invalid(path, &here, msg);
    let (method, route_path) = key
        .split_once(' ')
        .ok_or_else(|| bad("must be written \"METHOD /path\", such as \"GET /topology\"".into()))?;
    if !ROUTE_METHODS.contains(&method) {
        return Err(bad(format!(
            "method '{method}' is not one of {}",
            ROUTE_METHODS.join(", ")
        )));
    }
    if !route_path.starts_with('/') || route_path.contains(['?', '#', ' ']) {
        return Err(bad(format!(
            "path '{route_path}' must start with '/' and have no query"
        )));
    }
    if let Some((m, p)) = BUILTIN_ROUTES
        .iter()
        .find(|(m, p)| *m == method && same_route(p, route_path))
    {
        return Err(bad(format!(
            "repeats the runner's built-in route {m} {p} (DuplicateRouteError)"
        )));
    }
    let Value::Object(obj) = v else {
        return Err(bad(format!("must be an object, found {}", kind(v))));
    };
    if let Some(msg) = unknown_keys(obj, ROUTE_KEYS) {
        return Err(bad(msg));
    }
    let module = match obj.get("module") {
        Some(Value::String(m)) if valid_job_name(m) => m.clone(),
        Some(other) => {
            return Err(bad(format!(
                "'module' must name a module file, found {}",
                kind(other)
            )));
        }
        None => {
            return Err(bad(
                "needs a 'module' (its <modules dir>/<module>.wasm)".into()
            ));
        }
    };
    let forward_credentials = flag(obj, "forward_credentials").map_err(bad)?;
    let most = ROUTE_INSTANCES;
    let max_concurrent = match obj.get("max_concurrent") {
        None => DEFAULT_ROUTE_CONCURRENCY,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=most as u64).contains(&n) => n as usize,
            _ => {
                return Err(bad(format!(
                    "'max_concurrent' must be a whole number from 1 to {most}, found {v}"
                )));
            }
        },
    };
    // The same per-run keys as a job, read the same way.
    let as_job = serde_json::json!({
        "name": module,
        "timeout_s": obj.get("timeout_s"),
        "memory_mb": obj.get("memory_mb"),
        "capabilities": obj.get("capabilities"),
        "env": obj.get("env"),
        "allowed_outbound_hosts": obj.get("allowed_outbound_hosts"),
        "allowed_outbound_networks": obj.get("allowed_outbound_networks"),
    });
    let mut as_job = as_job.as_object().cloned().unwrap_or_default();
    as_job.retain(|_, v| !v.is_null());
    let spec = job(
        path,
        (&format!("route {key}"), &Env::default()),
        0,
        &Value::Object(as_job),
        runner,
    )?;
    Ok(RouteSpec {
        method: method.to_owned(),
        path: route_path.to_owned(),
        module: module.into(),
        limits: spec.limits,
        grants: spec.grants,
        forward_credentials,
        max_concurrent,
        env: spec.env,
        outbound: spec.outbound,
    })
}

/// Whether a configured path would be answered by a built-in pattern (`{x}` matches one
/// segment).
pub(crate) fn same_route(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}') && !b.is_empty()))
}

/// A job's (or route's) `allowed_outbound_hosts` and `allowed_outbound_networks`.
fn outbound(obj: &Map<String, Value>) -> Result<Arc<Outbound>, String> {
    let list = |key: &str| -> Result<Vec<String>, String> {
        match obj.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("'{key}' must be an array of strings")),
            Some(other) => Err(format!(
                "'{key}' must be an array of strings, found {}",
                kind(other)
            )),
        }
    };
    Outbound::parse(
        &list("allowed_outbound_hosts")?,
        &list("allowed_outbound_networks")?,
    )
    .map(Arc::new)
}

/// A job name is also a file name: `<modules dir>/<name>.wasm`.
pub fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

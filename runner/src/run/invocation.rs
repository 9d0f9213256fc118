//! One run to do: which job, for which due time, with what params, limits and grants.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cancel::RunCancel;
use super::limits::{Capabilities, RunLimits};
use super::outbound::Outbound;
use super::outcome::{Outcome, RunReport};

/// Which job a run is of: its pipeline, its place in the pipeline's list, its name (by
/// default also its module's). By place, because a pipeline may list one job twice (with
/// other params): two jobs, each with its own runs and records. A run started by hand is of
/// pipeline [`MANUAL`], place 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId {
    pub pipeline: Arc<str>,
    pub index: usize,
    pub name: Arc<str>,
}

/// The pipeline of runs started by hand (an operator's, a `tgrun run`'s).
pub const MANUAL: &str = "manual";

impl JobId {
    pub fn new(pipeline: &Arc<str>, index: usize, name: &Arc<str>) -> Self {
        Self {
            pipeline: pipeline.clone(),
            index,
            name: name.clone(),
        }
    }

    /// Module `name` run by hand.
    pub fn manual(name: &Arc<str>) -> Self {
        Self::new(&Arc::from(MANUAL), 0, name)
    }
}

/// One run to do.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub job: Arc<str>,
    pub pipeline: Arc<str>,
    /// The job's place in its pipeline's list (see [`JobId`]).
    pub index: usize,
    /// The component that runs it (the job's `module`; by default its name).
    pub module: Arc<str>,
    pub run_id: String,
    pub scheduled_ms: i64,
    /// The job's params as a JSON object.
    pub params: Arc<str>,
    pub limits: RunLimits,
    /// The clients the job may call.
    pub grants: Capabilities,
    /// Ends the run early from outside (overlap `replace`, shutdown).
    pub cancel: Arc<RunCancel>,
    /// 1 for the first run of a due time, 2 for its first retry, ...
    pub attempt: u32,
    /// The environment the run sees (its job's `env`), and nothing of the runner's.
    pub env: Env,
    /// Where it may send HTTP requests (its job's `allowed_outbound_hosts`; nowhere).
    pub outbound: Arc<Outbound>,
}

/// Environment variables, in name order.
pub type Env = Arc<[(String, String)]>;

impl Invocation {
    /// The first attempt of `job`'s run in `pipeline` due at `scheduled_ms` (ms since the
    /// Unix epoch): the one way an invocation is made.
    pub fn new(
        id: JobId,
        run_id: String,
        scheduled_ms: i64,
        params: Arc<str>,
        limits: RunLimits,
        grants: Capabilities,
    ) -> Self {
        Self {
            module: id.name.clone(),
            job: id.name,
            pipeline: id.pipeline,
            index: id.index,
            run_id,
            scheduled_ms,
            params,
            limits,
            grants,
            cancel: Default::default(),
            attempt: 1,
            env: Env::default(),
            outbound: Arc::default(),
        }
    }

    /// The same run, allowed to send HTTP requests as `outbound` says.
    pub fn with_outbound(self, outbound: &Arc<Outbound>) -> Self {
        Self {
            outbound: outbound.clone(),
            ..self
        }
    }

    /// The same run, seeing `env` (its job's).
    pub fn with_env(self, env: &Env) -> Self {
        Self {
            env: env.clone(),
            ..self
        }
    }

    /// The same run, by the component `module` (a job's own when several jobs share one).
    pub fn of_module(self, module: &Arc<str>) -> Self {
        Self {
            module: module.clone(),
            ..self
        }
    }

    /// A run's report when it never started, for `outcome`.
    pub fn not_run(&self, outcome: Outcome) -> RunReport {
        RunReport {
            job: self.job.to_string(),
            run_id: self.run_id.clone(),
            pipeline: self.pipeline.to_string(),
            index: self.index,
            scheduled_ms: self.scheduled_ms,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            outcome,
            logs: Vec::new(),
            logs_dropped: 0,
            output_dropped: 0,
            metrics: Vec::new(),
            module_version: None,
            attempt: self.attempt,
        }
    }
}

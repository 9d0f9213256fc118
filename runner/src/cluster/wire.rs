//! A due run as it travels through the cluster's stream: everything a consumer on any
//! replica needs to run it, and the id that makes replicas' copies one message.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::run::Capabilities;
use crate::run::Overlap;
use crate::run::retry::Retry;
use crate::run::{Invocation, JobId, RunLimits};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireRun {
    pub pipeline: String,
    /// The job's place in its pipeline: a pipeline may list one module twice.
    pub index: usize,
    pub job: String,
    /// The job's component, when it is not named as the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The due time, on the grid every replica shares (ms since the Unix epoch).
    pub scheduled_ms: i64,
    pub params: String,
    pub timeout_ms: u64,
    pub memory_bytes: u64,
    pub grants: Grants,
    /// Retries after a failed attempt, and the wait before the first (then doubling).
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub retry_backoff_ms: u64,
    /// The job's overlap policy, applied across replicas by the consumer that takes it.
    #[serde(default)]
    pub overlap: Overlap,
    /// The job's `env` (as its params, from the consumer's own configuration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// Where it may send HTTP requests: never from the wire, only from the consumer's own
    /// configuration (`resolved`).
    #[serde(skip)]
    pub outbound: Arc<crate::run::outbound::Outbound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Grants {
    pub prometheus: bool,
    pub api_service: bool,
    pub sql: bool,
}

impl WireRun {
    pub fn new(inv: &Invocation, retry: Retry, overlap: Overlap) -> Self {
        let g = inv.grants;
        Self {
            pipeline: inv.pipeline.to_string(),
            index: inv.index,
            job: inv.job.to_string(),
            module: (inv.module != inv.job).then(|| inv.module.to_string()),
            scheduled_ms: inv.scheduled_ms,
            params: inv.params.to_string(),
            timeout_ms: inv.limits.timeout.as_millis() as u64,
            memory_bytes: inv.limits.memory_bytes,
            grants: Grants {
                prometheus: g.prometheus,
                api_service: g.api_service,
                sql: g.sql,
            },
            retries: retry.max,
            retry_backoff_ms: retry.backoff.as_millis() as u64,
            overlap,
            env: inv.env.to_vec(),
            outbound: Default::default(),
        }
    }

    pub fn retry(&self) -> Retry {
        Retry {
            max: self.retries,
            backoff: Duration::from_millis(self.retry_backoff_ms),
        }
    }

    /// The run as this replica's configuration has it: job, params, limits, grants, retries
    /// and overlap come from the local job at the same place, never from the message, so a
    /// message cannot give a job more than its configuration does. `None`: no such job here.
    pub fn resolved(&self, known: &crate::scheduler::KnownJobs) -> Option<Self> {
        let spec = known.get(&self.pipeline, self.index, &self.job)?;
        let g = spec.grants;
        Some(Self {
            module: (spec.module != spec.name).then(|| spec.module.to_string()),
            params: spec.params.to_string(),
            timeout_ms: spec.limits.timeout.as_millis() as u64,
            memory_bytes: spec.limits.memory_bytes,
            env: spec.env.to_vec(),
            outbound: spec.outbound.clone(),
            grants: Grants {
                prometheus: g.prometheus,
                api_service: g.api_service,
                sql: g.sql,
            },
            retries: spec.retry.max,
            retry_backoff_ms: spec.retry.backoff.as_millis() as u64,
            overlap: spec.overlap,
            ..self.clone()
        })
    }

    /// Which job it is a run of.
    pub fn job_id(&self) -> JobId {
        JobId {
            pipeline: Arc::from(self.pipeline.as_str()),
            index: self.index,
            name: Arc::from(self.job.as_str()),
        }
    }

    /// JetStream's de-duplication key (`Nats-Msg-Id`): the same scheduled run published by
    /// every replica is one message.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.pipeline, self.index, self.job, self.scheduled_ms
        )
    }

    /// The run, with a run id of this replica's.
    pub fn invocation(&self, run_id: String, attempt: u32) -> Invocation {
        let inv = Invocation::new(
            self.job_id(),
            run_id,
            self.scheduled_ms,
            Arc::from(self.params.as_str()),
            RunLimits {
                timeout: Duration::from_millis(self.timeout_ms),
                memory_bytes: self.memory_bytes,
            },
            Capabilities {
                prometheus: self.grants.prometheus,
                api_service: self.grants.api_service,
                sql: self.grants.sql,
            },
        );
        let inv = match &self.module {
            Some(m) => inv.of_module(&Arc::from(m.as_str())),
            None => inv,
        };
        Invocation {
            attempt,
            env: self.env.iter().cloned().collect(),
            outbound: self.outbound.clone(),
            ..inv
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_survives_the_wire_and_its_id_names_the_slot() {
        let run = WireRun {
            pipeline: "p".into(),
            index: 2,
            job: "add_x".into(),
            module: Some("bumpers".into()),
            scheduled_ms: 1_700_000_000_000,
            params: r#"{"x":5}"#.into(),
            timeout_ms: 1500,
            memory_bytes: 64 << 20,
            grants: Grants {
                prometheus: true,
                api_service: false,
                sql: true,
            },
            retries: 2,
            retry_backoff_ms: 500,
            overlap: Overlap::Queue,
            env: vec![("QUERY_SERVICE_URL".into(), "http://query:8086".into())],
            outbound: Default::default(),
        };
        let back: WireRun = serde_json::from_slice(&serde_json::to_vec(&run).unwrap()).unwrap();
        assert_eq!(back, run);
        assert_eq!(run.id(), "p/2/add_x/1700000000000");
        let inv = run.invocation("r-1".into(), 1);
        assert_eq!(WireRun::new(&inv, run.retry(), Overlap::Queue), run);
        assert_eq!(run.retry().delay_before(3), Some(Duration::from_secs(1)));
        assert_eq!(inv.limits.timeout, Duration::from_millis(1500));
        assert_eq!((&*inv.job, &*inv.module), ("add_x", "bumpers"));
    }
}

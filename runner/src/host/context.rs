//! `tgrun:job/context`: the service's own settings, the run's environment, and the
//! configuration of the pipeline that enqueued the run.

use crate::bindings::tgrun::job::context::Host;
use crate::host::state::RunState;

impl Host for RunState {
    fn service_settings(&mut self) -> wasmtime::Result<String> {
        Ok(self.services.settings_json().to_string())
    }

    fn environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.wasi.env().to_vec())
    }

    fn pipeline_config(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self
            .services
            .pipeline_json(&self.pipeline, &self.job)
            .map(|p| of_module(&p, &self.module)))
    }
}

/// The pipeline `raw` with only the jobs that run `module`: a run sees its own component's
/// jobs (their params are what its `produce` hands them), never another component's,
/// whose params may hold that component's secrets.
fn of_module(raw: &str, module: &str) -> String {
    let Ok(mut pipeline) = serde_json::from_str::<serde_json::Value>(raw) else {
        return raw.to_owned();
    };
    if let Some(jobs) = pipeline.get_mut("jobs").and_then(|j| j.as_array_mut()) {
        jobs.retain(|job| {
            let runs = job.get("module").or_else(|| job.get("name"));
            runs.and_then(|m| m.as_str()) == Some(module)
        });
    }
    pipeline.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_sees_its_own_components_jobs_of_its_pipeline_only() {
        let raw = r#"{"period": 60, "jobs": [
            {"name": "a", "module": "svc", "params": {"x": 1}},
            {"name": "svc"},
            {"name": "other", "params": {"token": "s3cret"}},
            {"name": "b", "module": "elsewhere"}]}"#;
        let seen: serde_json::Value = serde_json::from_str(&of_module(raw, "svc")).unwrap();
        assert_eq!(
            seen,
            serde_json::json!({"period": 60, "jobs": [
                {"name": "a", "module": "svc", "params": {"x": 1}}, {"name": "svc"}]})
        );
        assert!(!of_module(raw, "svc").contains("s3cret"));
    }

    #[test]
    fn a_run_by_hand_sees_its_jobs_pipeline_and_a_route_none() {
        let host = crate::host::HostClients::default();
        host.set_service_file(&serde_json::json!({"pipelines": {
            "p": {"period": 60, "jobs": [{"name": "a"}]},
            "q": {"period": 900, "jobs": [{"name": "b"}, {"name": "c"}]}}}));
        let period = |p: Option<std::sync::Arc<str>>| {
            p.map(|p| serde_json::from_str::<serde_json::Value>(&p).unwrap()["period"].clone())
        };
        assert_eq!(period(host.pipeline_json("q", "b")), Some(900.into()));
        assert_eq!(
            period(host.pipeline_json(crate::run::MANUAL, "c")),
            Some(900.into())
        );
        assert_eq!(
            period(host.pipeline_json(crate::run::MANUAL, "a")),
            Some(60.into())
        );
        assert_eq!(host.pipeline_json(crate::run::MANUAL, "nowhere"), None);
        assert_eq!(host.pipeline_json("route GET /x", "a"), None);
    }
}

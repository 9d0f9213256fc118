//! `tgrun check FILE.wasm` and `tgrun check --config-dir DIR`: whether a component fits
//! its world, and whether a configuration directory would start (both files valid, every
//! module they name present and fitting the world it serves). Every problem is said, not
//! only the first. Exit codes as `promtool check`'s: 0 good, 1 problems found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use serde_json::json;

use super::Output;
use crate::config::Config;
use crate::host::HostClients;
use crate::sandbox::check::CheckReport;
use crate::sandbox::{Sandbox, SandboxSettings};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A component to check. Without it, the configuration directory is checked.
    file: Option<PathBuf>,
    /// A configuration directory to check: `service_config.json`, `config.json` and every
    /// module they name (default `config`, when no FILE is given).
    #[arg(long, env = "TGRUN_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// `text`, or `json` (one object, for scripts and CI).
    #[arg(long, env = "TGRUN_OUTPUT", value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let dir = match (&args.file, args.config_dir) {
        (_, Some(dir)) => Some(dir),
        (None, None) => Some(super::default_config_dir()),
        (Some(_), None) => None,
    };
    // The configuration, read once: checked, and where its compiled code is cached.
    let loaded = dir.as_deref().map(|d| match d.is_dir() {
        true => Config::load(d).map_err(|e| e.to_string()),
        false => Err(format!("{}: not a directory", d.display())),
    });
    // Compiled code comes from the cache `serve` uses (a Python component takes seconds to
    // compile): the configuration's, or for a file alone, tgrun's cache folder.
    let cache_dir = loaded
        .as_ref()
        .and_then(|c| c.as_ref().ok()?.runner.cache_dir.clone())
        .unwrap_or_else(|| crate::build::default_cache_dir().join("compiled"));
    let sandbox = Sandbox::new(
        SandboxSettings {
            max_instances: 1,
            make_ahead: false,
            cache_dir: Some(cache_dir),
            ..SandboxSettings::default()
        },
        Arc::new(HostClients::default()),
    )?;
    let mut good = true;
    let mut answers = Vec::new();
    if let Some(file) = &args.file {
        let report = sandbox.check(file);
        good &= report.fits();
        answers.push(match args.output {
            Output::Text => file_text(file, &report),
            Output::Json => file_json(file, &report),
        });
    }
    if let (Some(dir), Some(loaded)) = (dir, loaded) {
        let verdict = check_dir(&sandbox, loaded);
        good &= verdict.problems.is_empty();
        answers.push(match args.output {
            Output::Text => verdict.text(&dir),
            Output::Json => verdict.json(&dir),
        });
    }
    // As JSON, one object a line for each thing checked.
    print!("{}", answers.concat());
    Ok(if good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn file_text(file: &Path, report: &CheckReport) -> String {
    let name = file.display();
    let mut out = if report.fits() {
        format!(
            "{name}: fits the tgrun:job@0.1.0 world ({})\n",
            report.world
        )
    } else {
        let mut out = format!(
            "{name}: does not fit the tgrun:job@0.1.0 world ({})\n",
            report.world
        );
        for p in &report.problems {
            out.push_str(&format!("  - {p}\n"));
        }
        out
    };
    if !report.imports.is_empty() {
        out.push_str(&format!("imports: {}\n", report.imports.join(", ")));
    }
    if !report.exports.is_empty() {
        out.push_str(&format!("exports: {}\n", report.exports.join(", ")));
    }
    out
}

fn file_json(file: &Path, report: &CheckReport) -> String {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    v["file"] = json!(file.display().to_string());
    v["fits"] = json!(report.fits());
    format!("{v}\n")
}

/// What `check --config-dir` found.
struct DirVerdict {
    /// Problems that would stop the service starting, or a job or route running.
    problems: Vec<String>,
    /// Problems of what is configured but disabled.
    warnings: Vec<String>,
    /// Each module named: its file, the worlds it must fit, who uses it, its problems.
    modules: Vec<serde_json::Value>,
}

/// What a configuration asks of one module.
struct Use {
    worlds: Vec<&'static str>,
    users: Vec<String>,
    enabled: bool,
    /// The jobs run by it: (name, who, enabled).
    jobs: Vec<(Arc<str>, String, bool)>,
}

impl Use {
    /// Notes that `user` (enabled or not) uses `module` as a component of `world`.
    fn note<'a>(
        uses: &'a mut BTreeMap<Arc<str>, Use>,
        module: &Arc<str>,
        world: &'static str,
        user: String,
        enabled: bool,
    ) -> &'a mut Use {
        let u = uses.entry(module.clone()).or_insert(Use {
            worlds: vec![],
            users: vec![],
            enabled: false,
            jobs: vec![],
        });
        if !u.worlds.contains(&world) {
            u.worlds.push(world);
        }
        u.users.push(user);
        u.enabled |= enabled;
        u
    }
}

/// The verdict on a configuration directory, loaded (or why it could not be).
fn check_dir(sandbox: &Sandbox, loaded: Result<Config, String>) -> DirVerdict {
    let mut verdict = DirVerdict {
        problems: vec![],
        warnings: vec![],
        modules: vec![],
    };
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            verdict.problems.push(e);
            return verdict;
        }
    };
    // What `serve` reads at start besides the two files.
    if let Err(e) =
        crate::clients::http::HttpClients::trusting(config.runner.outbound_ca_file.as_deref())
    {
        verdict.problems.push(format!("config.json: {e}"));
    }
    // Each module once, with every world it serves and whether anything enabled uses it.
    let mut uses: BTreeMap<Arc<str>, Use> = BTreeMap::new();
    for (pipeline, job) in config.service.jobs() {
        let user = format!("job '{}' of pipeline '{}'", job.name, pipeline.name);
        Use::note(&mut uses, &job.module, "job", user.clone(), job.enabled)
            .jobs
            .push((job.name.clone(), user, job.enabled));
    }
    for route in &config.service.routes {
        let user = format!("route '{} {}'", route.method, route.path);
        Use::note(&mut uses, &route.module, "handler", user, true);
    }
    for (module, u) in uses {
        let file = config.runner.modules_dir.join(format!("{module}.wasm"));
        let (mut problems, mut missing_jobs) = (Vec::new(), Vec::new());
        if file.exists() {
            for report in sandbox.check_as(&file, &u.worlds) {
                let world = report.world;
                problems.extend(
                    report
                        .problems
                        .iter()
                        .map(|p| format!("as a {world} component: {p}")),
                );
            }
            // A configured job the component has no function for (its build lists its
            // jobs: a tglib service's jobs.py).
            let listed = std::fs::read(&file)
                .ok()
                .and_then(|b| crate::sandbox::jobs_section::job_names(&b))
                .unwrap_or_default();
            let lacks =
                |name: &Arc<str>| !listed.is_empty() && !listed.iter().any(|j| **j == **name);
            for (name, user, enabled) in u.jobs.iter().filter(|(name, ..)| lacks(name)) {
                let said = format!(
                    "module {} ({user}): the component has no job '{name}' (its jobs: {})",
                    file.display(),
                    listed.join(", ")
                );
                match enabled {
                    true => verdict.problems.push(said),
                    false => verdict.warnings.push(format!("{said} (disabled)")),
                }
                missing_jobs.push(name.to_string());
            }
        } else {
            problems.push("no such file".to_owned());
        }
        let said = problems
            .iter()
            .map(|p| format!("module {} ({}): {p}", file.display(), u.users.join(", ")));
        if u.enabled {
            verdict.problems.extend(said);
        } else {
            verdict
                .warnings
                .extend(said.map(|p| format!("{p} (disabled)")));
        }
        verdict.modules.push(json!({
            "module": &*module,
            "file": file.display().to_string(),
            "worlds": u.worlds,
            "used_by": u.users,
            "enabled": u.enabled,
            "problems": problems,
            "missing_jobs": missing_jobs,
        }));
    }
    verdict
}

impl DirVerdict {
    fn text(&self, dir: &Path) -> String {
        let mut out = String::new();
        for p in &self.problems {
            out.push_str(&format!("problem: {p}\n"));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        let name = dir.display();
        let count = self.modules.len();
        out.push_str(&match self.problems.len() {
            0 => format!("{name}: the configuration is valid and its {count} modules fit\n"),
            n => format!("{name}: {n} problems\n"),
        });
        out
    }

    fn json(&self, dir: &Path) -> String {
        let v = json!({
            "config_dir": dir.display().to_string(),
            "ok": self.problems.is_empty(),
            "problems": self.problems,
            "warnings": self.warnings,
            "modules": self.modules,
        });
        format!("{v}\n")
    }
}

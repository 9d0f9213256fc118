//! A Python folder into a component: componentize-py and what tglib's environment gives
//! ([`super::toolchain`]), the guest SDK this binary carries and the service's own
//! dependencies ([`super::deps`]).
//!
//! The folder is copied (what a build takes of it: no caches or hidden files) into a
//! staging folder of its own as a package named after it, so its relative imports work and
//! nothing else beside it is bundled. A tglib service gets an app module that imports
//! `tgrun` first (its compatibility layer must come before any `import ssl`), then exports
//! its `jobs.py`'s functions, its `main.py`, its `routes.py`'s routes; its jobs are written
//! into the component (`tgrun:jobs`, for `tgrun check`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::deps::Declared;
use super::process::run;
use super::toolchain::Toolchain;
use super::{Built, Cache, Inputs, Kind, Options, files};

/// The app module componentize-py builds a tglib service `name` from.
fn service_app(name: &str, kind: Kind) -> String {
    let Kind::PythonService { jobs, routes, main } = kind else {
        unreachable!("a service's app module");
    };
    let mut app = String::from("import tgrun\n");
    if jobs {
        app += &format!(
            "import {name}.jobs\nfrom tgrun._export import export_jobs\nexport_jobs({name}.jobs, __name__)\n"
        );
        if main {
            app += &format!(
                "import {name}.main\nfrom tgrun._service import export_main\nexport_main({name}.main)\n"
            );
        }
    }
    if routes {
        app += &format!(
            "import {name}.routes\nfrom tgrun._handler import export_routes\nexport_routes({name}.routes, __name__)\n"
        );
    }
    app
}

/// A Python identifier, as a package name must be.
fn identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A service's own unit tests, built with it into a test component (`tgrun test`).
#[derive(Debug, Clone)]
pub struct Tests {
    /// Its `tests` folder: beside the package (tgnms' layout, `setup.py` beside both) or
    /// inside it (imported as `<package>.tests`).
    pub dir: PathBuf,
    pub inside: bool,
    /// The module to load the suite from (`--suite`); else the one the service declares
    /// (`setup.py`'s `test_suite`); else the tests package's `test*.py`/`*_tests.py`.
    pub suite: Option<String>,
}

/// The app module of a service's test component: its tests, loaded at build time, as the
/// component's one job (see the SDK's `tgrun._tests`).
fn tests_app(name: &str, tests: &Tests, suite: Option<&str>) -> String {
    let package = if tests.inside {
        format!("{name}.tests")
    } else {
        "tests".to_owned()
    };
    let suite = suite.map_or_else(|| "None".to_owned(), |s| format!("{s:?}"));
    format!(
        "import tgrun\nfrom tgrun._tests import export_tests\nexport_tests(__name__, {package:?}, {suite})\n"
    )
}

pub fn build(dir: &Path, kind: Kind, opts: &Options) -> Result<Built> {
    build_with(dir, kind, opts, None)
}

/// Builds the test component of the service in `dir`.
pub fn build_tests(dir: &Path, kind: Kind, opts: &Options, tests: &Tests) -> Result<Built> {
    if !matches!(kind, Kind::PythonService { .. }) {
        bail!(
            "{}: tgrun test runs a tglib service's own tests (a folder with jobs.py or \
             routes.py, its tests in tests/ inside or beside it)",
            dir.display()
        );
    }
    build_with(dir, kind, opts, Some(tests))
}

fn build_with(dir: &Path, kind: Kind, opts: &Options, tests: Option<&Tests>) -> Result<Built> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !identifier(&name) {
        bail!(
            "{}: a Python job's folder is imported as a package named after it, so its name \
             must be a Python identifier (letters, digits, _), not '{name}'",
            dir.display()
        );
    }
    for p in &opts.paths {
        if !p.is_dir() {
            bail!("--path {}: not a folder", p.display());
        }
    }
    let cache = &opts.cache;
    let tools = Toolchain::ready(cache)?;
    let world = if tests.is_some() { "job" } else { kind.world() };
    let out = super::output_path(opts, &name);

    let declared = Declared::of(&tools.python, &tools.guest.join("tools"), dir)?;
    let fetch = declared.to_fetch(tests.is_some());
    let suite = tests.and_then(|t| t.suite.clone().or_else(|| declared.tests.suite.clone()));

    // Everything the component is made of, hashed: the same again is the cached build.
    let mut inputs = Inputs::new("python");
    inputs.add("world", world.as_bytes());
    inputs.add("guest", tools.guest.to_string_lossy().as_bytes());
    inputs.add_tree(&name, dir)?;
    for r in &fetch {
        inputs.add("requirement", r.as_bytes());
    }
    for a in &opts.allow_native {
        inputs.add("allow-native", a.as_bytes());
    }
    for (i, p) in opts.paths.iter().enumerate() {
        inputs.add_tree(&format!("path{i}"), p)?;
    }
    if let Some(t) = tests {
        inputs.add("tests", if t.inside { b"inside" } else { b"beside" });
        inputs.add("suite", suite.as_deref().unwrap_or_default().as_bytes());
        if !t.inside {
            inputs.add_tree("tests", &t.dir)?;
        }
    }
    let key = inputs.key();
    let builds = Cache::new(cache);
    let jobs = match kind {
        Kind::PythonService { jobs: true, .. } if tests.is_none() => {
            job_names(&tools, &dir.join("jobs.py"))?
        }
        _ => vec![],
    };
    if builds.take(&key, &out) {
        return Ok(Built {
            file: out,
            world,
            jobs,
            from_cache: true,
        });
    }

    let deps = match (&declared.source, fetch.is_empty()) {
        (Some(source), false) => Some(super::deps::fetch(
            &tools.python,
            &fetch,
            source,
            &opts.allow_native,
            cache,
        )?),
        _ => None,
    };

    let stage = tempfile::Builder::new()
        .prefix("tgrun-build-")
        .tempdir()
        .context("making a staging folder")?;
    let packages = stage.path().join("packages");
    files::copy_tree(dir, &packages.join(&name))?;
    if let Some(t) = tests.filter(|t| !t.inside) {
        files::copy_tree(&t.dir, &packages.join("tests"))?;
    }
    let mut command = Command::new(&tools.componentize);
    // A build that fails on the service's Python says its traceback, not componentize-py's
    // own Rust backtrace (the last lines of what it printed are the error).
    command
        .env("RUST_BACKTRACE", "0")
        .arg("-d")
        .arg(tools.guest.join("wit"))
        .args(["-w", world, "componentize"])
        .arg("-p")
        .arg(tools.guest.join("python"))
        .arg("-p")
        .arg(tools.guest.join("shims"));
    let app_module = match kind {
        Kind::PythonJob => {
            command.arg("-p").arg(packages.join(&name));
            "app"
        }
        _ => {
            let app_dir = stage.path().join("app");
            std::fs::create_dir_all(&app_dir)?;
            let app = match tests {
                Some(t) => tests_app(&name, t, suite.as_deref()),
                None => service_app(&name, kind),
            };
            std::fs::write(app_dir.join("tgrun_app.py"), app)?;
            command.arg("-p").arg(&packages).arg("-p").arg(&app_dir);
            "tgrun_app"
        }
    };
    // The service's own dependencies and folders before what tglib's environment gives,
    // so a `thrift` it pins itself is the one it gets.
    if let Some(deps) = &deps {
        command.arg("-p").arg(deps);
    }
    for p in &opts.paths {
        command.arg("-p").arg(p);
    }
    if kind != Kind::PythonJob {
        command.arg("-p").arg(&tools.guest_deps);
    }
    let built = stage.path().join("component.wasm");
    command.arg(app_module).arg("-o").arg(&built);
    run(
        &mut command,
        &format!("componentize-py, building {}", dir.display()),
    )?;
    if !jobs.is_empty() {
        let section = crate::sandbox::jobs_section::section(&jobs);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&built)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &section))
            .context("writing the service's jobs into its component")?;
    }
    super::place(&built, &out)?;
    builds.keep(&key, &out);
    Ok(Built {
        file: out,
        world,
        jobs,
        from_cache: false,
    })
}

/// The jobs of a service's `jobs.py`, as its component's export takes them.
fn job_names(tools: &Toolchain, jobs_py: &Path) -> Result<Vec<String>> {
    let out = run(
        Command::new(&tools.python)
            .arg(tools.guest.join("tools/job_names.py"))
            .arg(jobs_py),
        &format!("reading the jobs of {}", jobs_py.display()),
    )?;
    serde_json::from_slice(&out.stdout).context("reading the jobs' list")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_app_module_imports_tgrun_first_and_exports_what_it_has() {
        let app = service_app(
            "drs",
            Kind::PythonService {
                jobs: true,
                routes: true,
                main: true,
            },
        );
        let lines: Vec<&str> = app.lines().collect();
        assert_eq!(lines[0], "import tgrun");
        assert!(app.contains("export_jobs(drs.jobs, __name__)"));
        assert!(app.contains("export_main(drs.main)"));
        assert!(app.contains("export_routes(drs.routes, __name__)"));
        let routes_only = service_app(
            "r",
            Kind::PythonService {
                jobs: false,
                routes: true,
                main: true,
            },
        );
        assert!(!routes_only.contains("export_jobs") && !routes_only.contains("export_main"));
    }

    #[test]
    fn a_folder_name_must_be_a_package_name() {
        assert!(identifier("default_routes_service"));
        assert!(!identifier("default-routes-service"));
        assert!(!identifier("1st"));
        assert!(!identifier(""));
    }
}

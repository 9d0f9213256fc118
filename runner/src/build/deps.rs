//! A tglib service's own dependencies (its `requirements.txt`, `setup.py`'s
//! `install_requires` or `pyproject.toml`'s), resolved from PyPI by pip into a folder of the
//! cache, once per set of requirements, and bundled into its component. A package with
//! compiled extensions cannot load in the sandbox's CPython (WASI): it is an error naming
//! it, unless it is known to run without them (its extensions are then left out).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::process::{pip, run};

/// The component's CPython (componentize-py 0.25.1's), which dependencies are resolved for.
pub const COMPONENT_PYTHON: &str = "3.14";

/// Requirements the sandbox meets itself, or that a run never imports: not fetched.
const PROVIDED: &[(&str, &str)] = &[
    ("tglib", "the guest's tglib"),
    ("aiohttp", "the guest's aiohttp"),
    (
        "aiomysql",
        "the guest's aiomysql names over MySQLClient().lease()",
    ),
    ("sqlalchemy", "tglib's SQLAlchemy 1.3.24, bundled"),
    ("alembic", "migrations run before the runner, not in a run"),
    ("uvloop", "the runner's event loop"),
    ("aiohttp-swagger", "the runner's /docs"),
    ("asynctest", "the guest's asynctest, over unittest"),
    ("ptr", "tgrun test runs the tests"),
];

/// Packages (by import name) that run without their compiled speed-ups.
const PURE_FALLBACK: &[&str] = &[
    "thrift",
    "sqlalchemy",
    "markupsafe",
    "yaml",
    "simplejson",
    "msgpack",
    "wrapt",
];

/// What a service declares, as the SDK's `tools/requirements.py` reads it.
#[derive(Debug, serde::Deserialize)]
pub struct Declared {
    pub source: Option<PathBuf>,
    pub requirements: Vec<String>,
    /// What its tests need more, and the suite it names (for `tgrun test`).
    #[serde(default)]
    pub tests: DeclaredTests,
}

/// A service's test dependencies and declared test suite (`setup.py`'s `test_suite`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct DeclaredTests {
    pub requirements: Vec<String>,
    pub suite: Option<String>,
}

impl Declared {
    /// Reads what `dir` (or its parent) declares, with the build's Python.
    pub fn of(python: &Path, tools: &Path, dir: &Path) -> Result<Self> {
        let out = run(
            Command::new(python)
                .arg(tools.join("requirements.py"))
                .arg(dir),
            &format!("reading {}'s dependencies", dir.display()),
        )?;
        serde_json::from_slice(&out.stdout).context("reading the dependencies' list")
    }

    /// The requirements to fetch: the declared ones (and the tests' with `tests`) but
    /// those the sandbox meets.
    pub fn to_fetch(&self, tests: bool) -> Vec<String> {
        let extra = if tests {
            &self.tests.requirements[..]
        } else {
            &[]
        };
        let mut fetch: Vec<String> = Vec::new();
        for r in self.requirements.iter().chain(extra) {
            if !PROVIDED.iter().any(|(name, _)| *name == project_name(r)) && !fetch.contains(r) {
                fetch.push(r.clone());
            }
        }
        fetch
    }
}

/// A requirement's project name, normalized as PyPI does (`Foo_Bar` is `foo-bar`).
fn project_name(requirement: &str) -> String {
    requirement
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect::<String>()
        .to_ascii_lowercase()
        .replace(['_', '.'], "-")
}

/// The folder holding `requirements` installed (pure Python only), made once per set of
/// requirements under `<cache>/deps/`.
pub fn fetch(
    pip_python: &Path,
    requirements: &[String],
    source: &Path,
    allow_native: &[String],
    cache: &Path,
) -> Result<PathBuf> {
    let mut inputs = super::Inputs::new("deps");
    inputs.add("for python", COMPONENT_PYTHON.as_bytes());
    for r in requirements {
        inputs.add("requirement", r.as_bytes());
    }
    for a in allow_native {
        inputs.add("allow-native", a.as_bytes());
    }
    let root = cache.join("deps");
    let dir = root.join(inputs.key());
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = root.join(format!(".installing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}", tmp.display()))?;
    let list = tmp.join("requirements.txt");
    std::fs::write(&list, requirements.join("\n") + "\n")?;
    let target = tmp.join("site");
    let install = |for_component: bool| {
        let mut cmd = pip(pip_python, "install");
        cmd.args(["--no-compile", "--no-warn-script-location", "--target"])
            .arg(&target)
            .arg("-r")
            .arg(&list);
        if for_component {
            // Markers (`python_version`) and `requires-python` read as the component's
            // CPython, not the build machine's; pip does that for wheels only.
            cmd.args([
                "--python-version",
                COMPONENT_PYTHON,
                "--only-binary",
                ":all:",
            ]);
        }
        run(
            &mut cmd,
            &format!(
                "installing from PyPI the dependencies {} declares ({})",
                source.display(),
                requirements.join(", ")
            ),
        )
    };
    if let Err(e) = install(true) {
        let why = e.to_string();
        eprintln!(
            "tgrun build: resolving {}'s dependencies for Python {COMPONENT_PYTHON} takes \
             wheels only, and pip could not ({}): resolving them with the build machine's \
             Python instead",
            source.display(),
            why.lines().last().unwrap_or_default().trim()
        );
        let _ = std::fs::remove_dir_all(&target);
        install(false).inspect_err(|_| drop(std::fs::remove_dir_all(&tmp)))?;
    }
    leave_out_native(&target, allow_native, source)
        .inspect_err(|_| drop(std::fs::remove_dir_all(&tmp)))?;
    super::files::settle(&target, &dir)?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(dir)
}

/// Removes the compiled extensions of packages that run without them; any other package
/// that carries some is an error naming it and what to do.
fn leave_out_native(site: &Path, allow_native: &[String], source: &Path) -> Result<()> {
    let native: Vec<(PathBuf, PathBuf)> = super::files::tree(site)?
        .into_iter()
        .filter(|(rel, _)| {
            let name = rel.to_string_lossy();
            name.ends_with(".so") || name.ends_with(".pyd") || name.ends_with(".dylib")
        })
        .collect();
    let mut refused: Vec<String> = Vec::new();
    for (rel, path) in &native {
        let package = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        // A module at the top (`ujson.cpython-311-x86_64-linux-gnu.so`) is its own package;
        // `<package>.libs` holds a package's bundled libraries.
        let package = package.split('.').next().unwrap_or_default().to_owned();
        let fallback = PURE_FALLBACK.contains(&package.as_str()) || allow_native.contains(&package);
        if fallback {
            std::fs::remove_file(path).with_context(|| format!("{}", path.display()))?;
        } else if !refused.contains(&package) {
            refused.push(package);
        }
    }
    if !refused.is_empty() {
        bail!(
            "{} requires {} with compiled extensions, which cannot load in the sandbox's \
             CPython (WebAssembly): use a pure-Python package instead, or, if it runs without \
             them, build with --allow-native {} (its extensions are left out)",
            source.display(),
            refused.join(", "),
            refused.join(" --allow-native ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_sandbox_meets_is_not_fetched() {
        let d = Declared {
            source: None,
            requirements: vec![
                "aiohttp".into(),
                "aiomysql".into(),
                "alembic>=1.3.3,<2.0".into(),
                "SQLAlchemy==1.3.24".into(),
                "geopy==2.4.1".into(),
                "tglib @ file:///tglib".into(),
                "Aiohttp_Swagger>=1.0.9".into(),
                "requests[socks]; python_version>'3'".into(),
            ],
            tests: DeclaredTests {
                requirements: vec![
                    "asynctest>=0.13.0,<1.0".into(),
                    "ptr".into(),
                    "geopy==2.4.1".into(),
                    "freezegun".into(),
                ],
                suite: Some("tests.base".into()),
            },
        };
        let mut wanted = vec![
            "geopy==2.4.1".to_string(),
            "requests[socks]; python_version>'3'".to_string(),
        ];
        assert_eq!(d.to_fetch(false), wanted);
        // The tests' more (asynctest and ptr met by the sandbox; geopy once).
        wanted.push("freezegun".into());
        assert_eq!(d.to_fetch(true), wanted);
    }

    #[test]
    fn a_package_with_compiled_extensions_is_named_unless_it_runs_without_them() {
        let site = tempfile::tempdir().unwrap();
        for f in [
            "thrift/protocol/fastbinary.cpython-311-x86_64-linux-gnu.so",
            "thrift/__init__.py",
            "numpy/core/_multiarray.cpython-311-x86_64-linux-gnu.so",
            "pure/__init__.py",
            "ujson.cpython-311-x86_64-linux-gnu.so",
        ] {
            let p = site.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let e = leave_out_native(site.path(), &[], Path::new("setup.py")).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("requires numpy, ujson with compiled extensions"),
            "{e}"
        );
        assert!(e.contains("--allow-native numpy"), "{e}");
        assert!(!e.contains("thrift"), "{e}");
        // thrift's extension went, its Python stayed.
        assert!(
            !site
                .path()
                .join("thrift/protocol")
                .read_dir()
                .unwrap()
                .any(|_| true)
        );
        assert!(site.path().join("thrift/__init__.py").is_file());
        leave_out_native(
            site.path(),
            &["numpy".into(), "ujson".into()],
            Path::new("setup.py"),
        )
        .unwrap();
        assert!(
            !site
                .path()
                .join("numpy/core")
                .read_dir()
                .unwrap()
                .any(|_| true)
        );
    }
}

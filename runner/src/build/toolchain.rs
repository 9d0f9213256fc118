//! What every Python build uses, made once in the build cache: componentize-py (pinned,
//! hash-checked, in a virtual environment) and what tglib's own environment gives a service
//! beside tglib (SQLAlchemy, Apache Thrift, six: pinned, hash-checked, their pure-Python
//! packages).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::process::{pip, run};
use super::{Inputs, files};

/// What every Python build uses, made once in the cache.
pub struct Toolchain {
    /// The virtual environment's Python (componentize-py's and pip's).
    pub python: PathBuf,
    pub componentize: PathBuf,
    /// The carried files: `python/`, `shims/`, `tools/`, `wit/`.
    pub guest: PathBuf,
    /// tglib's SQLAlchemy, Apache Thrift and six: the folder holding their pure-Python
    /// packages.
    pub guest_deps: PathBuf,
}

impl Toolchain {
    pub fn ready(cache: &Path) -> Result<Self> {
        let guest = files::guest_tree(cache)?;
        let venv = cache.join("python/venv");
        // One build at a time makes the environment (builds run in parallel under make).
        std::fs::create_dir_all(cache.join("python"))?;
        let lock = std::fs::File::create(cache.join("python/.lock"))?;
        lock.lock()
            .context("locking the build cache's Python environment")?;
        let bin = if cfg!(windows) { "Scripts" } else { "bin" };
        let python = venv.join(bin).join("python");
        let componentize = venv.join(bin).join("componentize-py");
        let pins = std::fs::read(guest.join("python/requirements-build.txt"))?;
        let mut stamp = Inputs::new("venv");
        stamp.add("requirements-build.txt", &pins);
        let stamp = stamp.key();
        let installed = venv.join(".tgrun-installed");
        if std::fs::read_to_string(&installed).ok().as_deref() != Some(stamp.as_str()) {
            let host = std::env::var_os("TGRUN_PYTHON").unwrap_or_else(|| "python3".into());
            eprintln!(
                "tgrun build: installing componentize-py into {}",
                venv.display()
            );
            run(
                Command::new(&host)
                    .args(["-m", "venv", "--clear"])
                    .arg(&venv),
                "making a Python virtual environment (tgrun build needs Python 3.10 or later \
                 with venv: set TGRUN_PYTHON to choose one)",
            )?;
            run(
                pip(&python, "install")
                    .args(["--require-hashes", "-r"])
                    .arg(guest.join("python/requirements-build.txt")),
                "installing componentize-py from PyPI",
            )?;
            std::fs::write(&installed, &stamp)?;
        }
        let guest_deps = guest_deps(&python, &guest, cache)?;
        Ok(Self {
            python,
            componentize,
            guest,
            guest_deps,
        })
    }
}

/// What tglib's own environment gives a service beside tglib (its Docker image): each
/// source archive's name start, where its pure-Python package is inside it, and the name it
/// is importable as. The pins and hashes are `requirements-guest.txt`'s.
const GUEST_PACKAGES: &[(&str, &str, &str)] = &[
    ("SQLAlchemy-", "lib/sqlalchemy", "sqlalchemy"),
    // Generated Thrift types (`terragraph_thrift`) and `tglib.utils.thrift` import it.
    ("thrift-", "src", "thrift"),
    ("six-", "six.py", "six.py"),
];

/// tglib's SQLAlchemy, Apache Thrift and six (the pinned, hash-checked source
/// distributions' pure-Python packages; their C speed-ups cannot load in the sandbox and
/// both run without them), under `<cache>/python/guest-deps/<pins' hash>/`.
fn guest_deps(python: &Path, guest: &Path, cache: &Path) -> Result<PathBuf> {
    let pins_file = guest.join("python/requirements-guest.txt");
    let mut key = Inputs::new("guest deps");
    key.add("pins", &std::fs::read(&pins_file)?);
    let dir = cache.join("python/guest-deps").join(key.key());
    if GUEST_PACKAGES
        .iter()
        .all(|(_, _, name)| dir.join(name).exists())
    {
        return Ok(dir);
    }
    let work = cache.join(format!("python/.guest-deps-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    run(
        pip(python, "download")
            .args([
                "--no-deps",
                "--no-binary",
                ":all:",
                "--require-hashes",
                "-r",
            ])
            .arg(&pins_file)
            .arg("-d")
            .arg(&work),
        "downloading tglib's SQLAlchemy, Apache Thrift and six from PyPI",
    )?;
    let staged = work.join("staged");
    std::fs::create_dir_all(&staged)?;
    for (archive_start, inside, name) in GUEST_PACKAGES {
        let archive = std::fs::read_dir(&work)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(archive_start))
                    && p.to_string_lossy().ends_with(".tar.gz")
            })
            .with_context(|| format!("no {archive_start}*.tar.gz was downloaded"))?;
        let unpacked = work.join(name).with_extension("unpacked");
        run(
            Command::new(python)
                .args(["-m", "tarfile", "-e"])
                .arg(&archive)
                .arg(&unpacked),
            &format!("unpacking {}", archive.display()),
        )?;
        let package = std::fs::read_dir(&unpacked)?
            .flatten()
            .map(|e| e.path().join(inside))
            .find(|p| p.exists())
            .with_context(|| format!("{} has no {inside}", archive.display()))?;
        if package.is_dir() {
            files::copy_tree(&package, &staged.join(name))?;
        } else {
            std::fs::copy(&package, staged.join(name))?;
        }
    }
    files::settle(&staged, &dir)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(dir)
}

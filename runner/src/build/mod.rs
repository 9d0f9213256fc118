//! `tgrun build PATH`: a job's folder, anywhere on disk, into a component, with nothing of
//! this repository present. A Rust crate (a `Cargo.toml`) builds with cargo for
//! `wasm32-wasip2`; a Python folder (a one-job `app.py`, or a tglib service: `jobs.py`,
//! `routes.py`, `main.py` and its subpackages) with componentize-py and what this binary
//! carries: the guest SDK, its tools and pins, the WIT ([`files`]). What a Python build
//! fetches (componentize-py, SQLAlchemy, Thrift, the service's own dependencies) is pinned
//! or resolved once into a cache ([`toolchain`], [`deps`]; [`python`] builds), and a
//! build whose inputs are all unchanged is taken from the cache ([`Cache`]).

pub mod deps;
pub mod files;
mod process;
pub mod python;
pub mod rust;
mod toolchain;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// What a folder holds, by the files that say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A crate: `Cargo.toml`.
    Rust,
    /// A one-job Python folder: `app.py` with a `@job`.
    PythonJob,
    /// A tglib service's package: `jobs.py` and/or `routes.py`, maybe `main.py`.
    PythonService {
        jobs: bool,
        routes: bool,
        main: bool,
    },
}

impl Kind {
    pub fn of(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{}: not a folder", dir.display());
        }
        let has = |f: &str| dir.join(f).is_file();
        if has("Cargo.toml") {
            return Ok(Self::Rust);
        }
        let (jobs, routes, main) = (has("jobs.py"), has("routes.py"), has("main.py"));
        if jobs || routes {
            return Ok(Self::PythonService { jobs, routes, main });
        }
        if has("app.py") {
            return Ok(Self::PythonJob);
        }
        bail!(
            "{}: no Cargo.toml (a Rust job), app.py (a Python job) or jobs.py/routes.py \
             (a tglib service) in it",
            dir.display()
        )
    }

    /// The world its component serves.
    pub fn world(self) -> &'static str {
        match self {
            Self::PythonService { routes: true, .. } => "service",
            _ => "job",
        }
    }
}

/// How to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the component goes (default: `<name>.wasm` in the working directory).
    pub out: Option<PathBuf>,
    /// More folders on the Python path (generated Thrift types, vendored packages).
    pub paths: Vec<PathBuf>,
    /// Packages whose compiled extensions may be left out, as they run without them.
    pub allow_native: Vec<String>,
    /// What builds fetch and make, kept between builds.
    pub cache: PathBuf,
}

/// A component built.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub file: PathBuf,
    pub world: &'static str,
    /// For a tglib service with a `jobs.py`: its jobs (written into the component).
    pub jobs: Vec<String>,
    /// Taken from the cache: nothing it was built from changed.
    pub from_cache: bool,
}

/// Builds the folder `dir` into a component.
pub fn build(dir: &Path, opts: &Options) -> Result<Built> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot be read", dir.display()))?;
    let kind = Kind::of(&dir)?;
    match kind {
        Kind::Rust => rust::build(&dir, opts),
        _ => python::build(&dir, kind, opts),
    }
}

/// Builds the test component of the tglib service in `dir`: its own unit tests, in
/// `dir/tests` or beside it (`dir/../tests`, tgnms' layout), with the service (see the
/// SDK's `tgrun._tests`).
pub fn build_tests(dir: &Path, opts: &Options, suite: Option<String>) -> Result<Built> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot be read", dir.display()))?;
    let kind = Kind::of(&dir)?;
    let inside = dir.join("tests");
    let beside = dir.parent().map(|p| p.join("tests"));
    let tests = if inside.is_dir() {
        python::Tests {
            dir: inside,
            inside: true,
            suite,
        }
    } else if let Some(beside) = beside.filter(|b| b.is_dir()) {
        python::Tests {
            dir: beside,
            inside: false,
            suite,
        }
    } else {
        bail!(
            "{}: no tests folder: looked for {} and {}",
            dir.display(),
            inside.display(),
            dir.parent().unwrap_or(&dir).join("tests").display()
        );
    };
    python::build_tests(&dir, kind, opts, &tests)
}

/// The cache's folder when none is given: `$TGRUN_CACHE_DIR`, else `$XDG_CACHE_HOME/tgrun`,
/// else `~/.cache/tgrun`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("tgrun");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache/tgrun"),
        None => std::env::temp_dir().join("tgrun-cache"),
    }
}

/// Where a component goes: `opts.out`, or `<name>.wasm` here.
fn output_path(opts: &Options, name: &str) -> PathBuf {
    opts.out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.wasm")))
}

/// Builds already made, by the hash of all they were made from.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(cache: &Path) -> Self {
        Self {
            dir: cache.join("builds"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.wasm"))
    }

    /// The component built from inputs hashing to `key`, copied to `out`, if there is one.
    pub fn take(&self, key: &str, out: &Path) -> bool {
        let cached = self.path(key);
        cached.is_file() && place(&cached, out).is_ok()
    }

    /// Keeps `built` (already at its place) as the build of `key`.
    pub fn keep(&self, key: &str, built: &Path) {
        let cached = self.path(key);
        // A build kept or not: the component is made either way.
        let _ = place(built, &cached);
    }
}

/// Copies `from` to `to` through a file beside it, renamed into place, so a reader (the
/// runner watching its modules folder) never sees half a component.
fn place(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    }
    // Its own name, so builds at once (make's in parallel) never share one.
    let tmp = to.with_extension(format!("{}.part", std::process::id()));
    std::fs::copy(from, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}

/// A hash of what a build is made from, fed in order.
pub struct Inputs(Sha256);

impl Inputs {
    pub fn new(what: &str) -> Self {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION"));
        h.update([0]);
        h.update(what);
        Self(h)
    }

    pub fn add(&mut self, label: &str, bytes: &[u8]) {
        self.0.update((label.len() as u64).to_le_bytes());
        self.0.update(label);
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Every file under `dir` (but caches and hidden ones), by its path under it.
    pub fn add_tree(&mut self, label: &str, dir: &Path) -> Result<()> {
        for (rel, path) in files::tree(dir)? {
            let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
            self.add(&format!("{label}/{}", rel.display()), &bytes);
        }
        Ok(())
    }

    pub fn key(self) -> String {
        self.0
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

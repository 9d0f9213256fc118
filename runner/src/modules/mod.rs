//! Job name → compiled component, loaded from `<modules dir>/<name>.wasm`, and swapped
//! while the service runs.
//!
//! A missing or invalid module never stops other jobs: each run of it ends as
//! `module_missing` or `module_invalid`, naming the file. A new version (a changed file seen
//! by [`watch`], or one uploaded with [`ModuleRegistry::install`]) is compiled off the hot
//! path and swapped in between runs: runs in flight keep the version they started with,
//! every run after uses the new one. A version that does not compile or does not fit its
//! world is refused with the reason, and the old version keeps running. The previous
//! version is kept for [`ModuleRegistry::rollback`].

mod source;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::bindings::JobPre;

/// Largest module installed: an upload's limit, and an object read from a cluster's store.
pub const MAX_MODULE_BYTES: usize = 64 << 20;
use crate::host::state::RunState;
use crate::run::outcome::Outcome;
use crate::sandbox::Sandbox;
use crate::sandbox::component::{Compiled, InvalidModule, World, content_hash};
use source::Source;

/// Identifies one version of a file cheaply (without reading it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// One loaded version: the compiled component and the bytes it came from (on disk).
struct Version<W: World> {
    compiled: Arc<Compiled<W>>,
    source: Arc<Source>,
}

impl<W: World> Clone for Version<W> {
    fn clone(&self) -> Self {
        Self {
            compiled: self.compiled.clone(),
            source: self.source.clone(),
        }
    }
}

struct Versions<W: World> {
    current: Option<Version<W>>,
    previous: Option<Version<W>>,
    /// The file as last taken into account (loaded, refused, or written by the runner).
    seen: Option<FileStamp>,
    /// Why the last new version was refused; the current one, if any, kept running.
    error: Option<String>,
    /// When the current version was swapped in (ms since the Unix epoch).
    loaded_ms: Option<i64>,
}

impl<W: World> Default for Versions<W> {
    fn default() -> Self {
        Self {
            current: None,
            previous: None,
            seen: None,
            error: None,
            loaded_ms: None,
        }
    }
}

/// What `GET /jobs` shows of a module.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ModuleInfo {
    pub version: Option<String>,
    pub previous_version: Option<String>,
    /// Why the last new version was refused.
    pub error: Option<String>,
    /// When the running version was loaded, swapped in or rolled back to (ms since the
    /// Unix epoch).
    pub loaded_ms: Option<i64>,
}

/// The modules of one world (jobs by default; route handlers with `HandlerPre`).
pub struct ModuleRegistry<W: World = JobPre<RunState>> {
    dir: PathBuf,
    sandbox: Arc<Sandbox>,
    slots: Mutex<HashMap<String, Versions<W>>>,
    /// Loads on demand, one at a time: many requests for a module not loaded yet (a
    /// `/readyz` flood, a burst of runs) compile it once, not once each.
    loading: tokio::sync::Mutex<()>,
}

impl<W: World> ModuleRegistry<W> {
    pub fn new(dir: PathBuf, sandbox: Arc<Sandbox>) -> Self {
        Self {
            dir,
            sandbox,
            slots: Mutex::default(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// `<dir>/<job>.wasm`, for a name that is a module name (`config::service::
    /// valid_job_name`): no separator, no leading dot, no NUL, so never a path elsewhere.
    pub fn path_of(&self, job: &str) -> Option<PathBuf> {
        crate::config::service::valid_job_name(job).then(|| self.dir.join(format!("{job}.wasm")))
    }

    /// The component to run for `job`, loading it if needed; or the outcome a run of it
    /// ends with when there is none.
    pub async fn get(&self, job: &str) -> Result<Arc<Compiled<W>>, Outcome> {
        if let Some(loaded) = self.loaded(job) {
            return Ok(loaded);
        }
        // Whoever waited here while another load ran finds its result below.
        let _one_load = self.loading.lock().await;
        self.get_or_load(job).await
    }

    /// The version in force, if one is loaded.
    fn loaded(&self, job: &str) -> Option<Arc<Compiled<W>>> {
        self.lock()
            .get(job)
            .and_then(|s| s.current.as_ref())
            .map(|v| v.compiled.clone())
    }

    async fn get_or_load(&self, job: &str) -> Result<Arc<Compiled<W>>, Outcome> {
        let Some(path) = self.path_of(job) else {
            return Err(Outcome::ModuleInvalid {
                message: bad_name(job).to_string(),
            });
        };
        let seen = {
            let slots = self.lock();
            match slots.get(job) {
                Some(Versions {
                    current: Some(v), ..
                }) => return Ok(v.compiled.clone()),
                Some(slot) => slot.seen.clone().zip(slot.error.clone()),
                None => None,
            }
        };
        let Some(stamp) = FileStamp::of(&path) else {
            // Watched from now on: the file may appear.
            self.track(job);
            return Err(Outcome::ModuleMissing { path });
        };
        // A refused file is not compiled again until it changes.
        if let Some((seen, error)) = seen
            && seen == stamp
        {
            return Err(Outcome::ModuleInvalid { message: error });
        }
        match self.load_file(job, &path, stamp).await {
            Ok(c) => Ok(c),
            Err(message) => Err(Outcome::ModuleInvalid { message }),
        }
    }

    /// Reads, compiles and swaps in the file at `path` (whose stamp is `stamp`).
    async fn load_file(
        &self,
        job: &str,
        path: &Path,
        stamp: FileStamp,
    ) -> Result<Arc<Compiled<W>>, String> {
        let bytes: Arc<[u8]> = match std::fs::read(path) {
            Ok(b) => b.into(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let hash = content_hash(&bytes);
        let unchanged = self
            .lock()
            .get(job)
            .and_then(|s| s.current.as_ref())
            .filter(|v| v.source.hash == hash)
            .map(|v| v.compiled.clone());
        if let Some(c) = unchanged {
            // The same bytes again (an editor's second write): nothing to swap.
            self.lock().entry(job.to_owned()).or_default().seen = Some(stamp);
            return Ok(c);
        }
        let compiled = self.compile(path, bytes, hash).await;
        let mut slots = self.lock();
        let slot = slots.entry(job.to_owned()).or_default();
        slot.seen = Some(stamp);
        match compiled {
            Ok(version) => {
                let c = version.compiled.clone();
                swap_in(job, slot, version);
                Ok(c)
            }
            Err(e) => Err(refuse(job, slot, e)),
        }
    }

    /// Compiles `bytes` (whose [`content_hash`] is `hash`) and keeps them on disk beside
    /// the compiled code (in memory without a cache), off the async workers: compiling
    /// takes milliseconds to seconds, keeping writes and syncs the file.
    async fn compile(
        &self,
        path: &Path,
        bytes: Arc<[u8]>,
        hash: String,
    ) -> Result<Version<W>, InvalidModule> {
        let sandbox = self.sandbox.clone();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let compiled = sandbox.compile_hashed::<W>(&path, &bytes, &hash)?;
            let cache = sandbox.settings().cache_dir.as_deref();
            Ok(Version {
                compiled,
                source: Arc::new(Source::keep(bytes, hash, cache)),
            })
        })
        .await
        .unwrap_or_else(|e| Err(InvalidModule(format!("compiling panicked: {e}"))))
    }

    /// Takes a changed file into account (called by the watcher): a new version is swapped
    /// in, a bad one refused with the old one kept. Answers a new version's bytes.
    pub async fn refresh(&self, job: &str) -> Option<Arc<[u8]>> {
        let path = self.path_of(job)?;
        let stamp = FileStamp::of(&path)?;
        if self.lock().get(job).and_then(|s| s.seen.as_ref()) == Some(&stamp) {
            return None;
        }
        let before = self.info(job).and_then(|i| i.version);
        let loaded = self.load_file(job, &path, stamp).await.ok()?;
        (before.as_deref() != Some(loaded.version.as_str()))
            .then(|| self.current_bytes(job))
            .flatten()
    }

    /// The bytes of the version of `job` that runs now.
    pub fn current_bytes(&self, job: &str) -> Option<Arc<[u8]>> {
        let source = self
            .lock()
            .get(job)
            .and_then(|s| s.current.as_ref())
            .map(|v| v.source.clone())?;
        source
            .bytes()
            .inspect_err(|e| tracing::error!(job, "the running version's bytes: {e}"))
            .ok()
    }

    /// Installs `bytes` as the new version of `job` (an upload): compiled and checked
    /// first; if good, written to the modules directory (so a restart keeps it) and
    /// swapped in. Answers the new version, or why it was refused.
    pub async fn install(&self, job: &str, bytes: Vec<u8>) -> Result<String, ModuleError> {
        let path = self.path_of(job).ok_or_else(|| bad_name(job))?;
        let bytes: Arc<[u8]> = bytes.into();
        let hash = content_hash(&bytes);
        let compiled = self.compile(&path, bytes.clone(), hash).await;
        let version = match compiled {
            Ok(v) => v,
            Err(e) => {
                let mut slots = self.lock();
                return Err(ModuleError::Invalid(refuse(
                    job,
                    slots.entry(job.to_owned()).or_default(),
                    e,
                )));
            }
        };
        write_file(&path, &bytes)?;
        let mut slots = self.lock();
        let slot = slots.entry(job.to_owned()).or_default();
        slot.seen = FileStamp::of(&path);
        let name = version.compiled.version.clone();
        swap_in(job, slot, version);
        Ok(name)
    }

    /// Returns to the previous version (and writes it back to the file). Answers
    /// `(from, to)` versions.
    pub fn rollback(&self, job: &str) -> Result<(String, String), ModuleError> {
        let path = self.path_of(job).ok_or_else(|| bad_name(job))?;
        let mut slots = self.lock();
        let slot = slots
            .get_mut(job)
            .ok_or_else(|| ModuleError::NoPrevious(format!("no module of '{job}' is loaded")))?;
        let Some(previous) = slot.previous.clone() else {
            return Err(ModuleError::NoPrevious(format!(
                "'{job}' has no previous version to return to"
            )));
        };
        // Written first: a file that cannot be written leaves both versions as they were.
        let bytes = previous.source.bytes().map_err(|e| {
            ModuleError::NoPrevious(format!(
                "'{job}''s previous version {} cannot be read back: {e}",
                previous.compiled.version
            ))
        })?;
        write_file(&path, &bytes)?;
        slot.previous = None;
        slot.seen = FileStamp::of(&path);
        let from = slot.current.replace(previous.clone());
        slot.previous = from.clone();
        slot.error = None;
        slot.loaded_ms = Some(chrono::Utc::now().timestamp_millis());
        let from = from.map(|v| v.compiled.version.clone()).unwrap_or_default();
        let to = previous.compiled.version.clone();
        tracing::warn!(job, from = %from, to = %to, "module rolled back");
        Ok((from, to))
    }

    /// The version of every loaded module, by job name.
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.lock()
            .iter()
            .filter_map(|(name, slot)| {
                Some((
                    name.clone(),
                    slot.current.as_ref()?.compiled.version.clone(),
                ))
            })
            .collect()
    }

    /// What is known of a job's module, or `None` when it was never looked for.
    pub fn info(&self, job: &str) -> Option<ModuleInfo> {
        self.lock().get(job).map(|slot| ModuleInfo {
            version: slot.current.as_ref().map(|v| v.compiled.version.clone()),
            previous_version: slot.previous.as_ref().map(|v| v.compiled.version.clone()),
            error: slot.error.clone(),
            loaded_ms: slot.loaded_ms,
        })
    }

    /// The names looked for so far (what the watcher watches).
    pub(crate) fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub(crate) fn seen(&self, job: &str) -> Option<FileStamp> {
        self.lock().get(job).and_then(|s| s.seen.clone())
    }

    /// Marks a name as looked for (a missing module is watched for too).
    pub(crate) fn track(&self, job: &str) {
        self.lock().entry(job.to_owned()).or_default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Versions<W>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn swap_in<W: World>(job: &str, slot: &mut Versions<W>, new: Version<W>) {
    let to = new.compiled.version.clone();
    // Seconds for a large module compiled anew, milliseconds from the compiled-code cache.
    let load_ms = new.compiled.load_time.as_millis() as u64;
    let old = slot.current.replace(new);
    match &old {
        Some(v) => {
            tracing::info!(job, from = %v.compiled.version, to = %to, load_ms, "module swapped")
        }
        None => tracing::info!(job, version = %to, load_ms, "module loaded"),
    }
    if old.is_some() {
        slot.previous = old;
    }
    slot.error = None;
    slot.loaded_ms = Some(chrono::Utc::now().timestamp_millis());
}

fn refuse<W: World>(job: &str, slot: &mut Versions<W>, e: InvalidModule) -> String {
    match &slot.current {
        Some(v) => {
            tracing::error!(job, keeping = %v.compiled.version, "new module refused: {}", e.0)
        }
        None => tracing::error!(job, "module refused: {}", e.0),
    }
    slot.error = Some(e.0.clone());
    e.0
}

/// Writes a module file so that it is never seen half-written.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ModuleError> {
    crate::config::atomic::write(path, bytes).map_err(|source| ModuleError::Write {
        path: path.to_owned(),
        source,
    })
}

fn bad_name(job: &str) -> ModuleError {
    ModuleError::BadName(format!("{job:?} cannot name a module file"))
}

/// Why an install or a rollback did not happen: the operator's mistake (a name, a module
/// that does not fit, nothing to roll back to) or the runner's (a file it cannot write).
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{0}")]
    BadName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NoPrevious(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

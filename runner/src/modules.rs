//! Job name → compiled component, loaded from `<modules dir>/<name>.wasm`.
//!
//! A missing or invalid module never stops other jobs: each run of it ends as
//! `module_missing` or `module_invalid`, naming the file. A file that appears later (or is
//! fixed) is picked up by the next run; an invalid file is not recompiled until it changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::bindings::JobPre;
use crate::sandbox::Sandbox;
use crate::sandbox::component::{Compiled, World};
use crate::sandbox::outcome::Outcome;
use crate::sandbox::state::RunState;

/// Identifies one version of a file cheaply (without reading it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

enum Slot<W> {
    Loaded(Arc<Compiled<W>>),
    Invalid { message: String, stamp: FileStamp },
}

/// The modules of one world (jobs by default; route handlers with `HandlerPre`).
pub struct ModuleRegistry<W = JobPre<RunState>> {
    dir: PathBuf,
    sandbox: Arc<Sandbox>,
    slots: Mutex<HashMap<String, Slot<W>>>,
}

impl<W: World> ModuleRegistry<W> {
    pub fn new(dir: PathBuf, sandbox: Arc<Sandbox>) -> Self {
        Self {
            dir,
            sandbox,
            slots: Mutex::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.wasm"))
    }

    /// The component to run for `job`, loading it if needed; or the outcome a run of it
    /// ends with when there is none.
    pub async fn get(&self, job: &str) -> Result<Arc<Compiled<W>>, Outcome> {
        if let Some(Slot::Loaded(c)) = self.lock().get(job) {
            return Ok(c.clone());
        }
        let path = self.path_of(job);
        let Some(stamp) = FileStamp::of(&path) else {
            return Err(Outcome::ModuleMissing { path });
        };
        if let Some(Slot::Invalid { message, stamp: s }) = self.lock().get(job)
            && *s == stamp
        {
            return Err(Outcome::ModuleInvalid {
                message: message.clone(),
            });
        }
        // Compiling takes milliseconds to seconds: keep it off the async workers.
        let sandbox = self.sandbox.clone();
        let compile_path = path.clone();
        let compiled =
            tokio::task::spawn_blocking(move || sandbox.compile_file_for::<W>(&compile_path))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::sandbox::component::InvalidModule(format!(
                        "compiling {} panicked: {e}",
                        path.display()
                    )))
                });
        let mut slots = self.lock();
        match compiled {
            Ok(c) => {
                tracing::info!(job, path = %path.display(), bytes = c.size, version = %c.version, "module loaded");
                slots.insert(job.to_owned(), Slot::Loaded(c.clone()));
                Ok(c)
            }
            Err(e) => {
                slots.insert(
                    job.to_owned(),
                    Slot::Invalid {
                        message: e.0.clone(),
                        stamp,
                    },
                );
                Err(Outcome::ModuleInvalid { message: e.0 })
            }
        }
    }

    /// The version of every loaded module, by job name.
    pub fn versions(&self) -> std::collections::BTreeMap<String, String> {
        self.lock()
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Loaded(c) => Some((name.clone(), c.version.clone())),
                Slot::Invalid { .. } => None,
            })
            .collect()
    }

    /// What is known of a job's module: `loaded <version>`, `invalid: <why>`, or `None`
    /// when it was never looked for.
    pub fn state(&self, job: &str) -> Option<Result<String, String>> {
        self.lock().get(job).map(|slot| match slot {
            Slot::Loaded(c) => Ok(c.version.clone()),
            Slot::Invalid { message, .. } => Err(message.clone()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot<W>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

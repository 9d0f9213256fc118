//! Compiling a `.wasm` into a component ready to instantiate, checked once, off the hot
//! path, against its world: `job` for jobs, `handler` for route handlers.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Component, InstancePre};

use super::Sandbox;
use crate::bindings::JobPre;
use crate::bindings::handler::HandlerPre;
use crate::host::state::RunState;

/// A world a component can be compiled for.
pub trait World: Send + Sync + Sized + 'static {
    /// The name of the world, and of its export, for messages.
    const NAME: &'static str;
    const EXPORT: &'static str;
    fn from_instance_pre(pre: InstancePre<RunState>) -> wasmtime::Result<Self>;
}

impl World for JobPre<RunState> {
    const NAME: &'static str = "job";
    const EXPORT: &'static str = "run";
    fn from_instance_pre(pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        JobPre::new(pre)
    }
}

impl World for HandlerPre<RunState> {
    const NAME: &'static str = "handler";
    const EXPORT: &'static str = "handle";
    fn from_instance_pre(pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        HandlerPre::new(pre)
    }
}

/// A compiled job component.
pub type JobComponent = Compiled<JobPre<RunState>>;
/// A compiled route handler component.
pub type HandlerComponent = Compiled<HandlerPre<RunState>>;

/// A compiled component: instantiating it needs no more linking or type checks.
pub struct Compiled<W> {
    pub(crate) pre: W,
    /// Size of the `.wasm` in bytes.
    pub size: usize,
    /// The version of the code: the first 16 hex digits of the SHA-256 of the `.wasm`.
    pub version: String,
    /// How long compiling and linking took: seconds for a large component compiled anew,
    /// milliseconds when its code came from the compiled-code cache.
    pub load_time: std::time::Duration,
}

/// A component's version: its content hash, so the same bytes are the same version
/// wherever and whenever they are loaded.
pub fn content_version(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a file cannot be a job. The message names the file and the problem.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InvalidModule(pub String);

/// What kind of WebAssembly binary `bytes` is, from its header.
pub(crate) fn binary_kind(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err("is not a WebAssembly file (it does not start with \\0asm)".into());
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Err(
            "is a core WebAssembly module, not a component: build the job \
             for the wasm32-wasip2 target (wasm32-wasip1 and wasm32-unknown-unknown give \
             core modules)"
                .into(),
        ),
        [_, _, 1, 0] => Ok(()),
        _ => Err("has an unknown WebAssembly binary version".into()),
    }
}

impl Sandbox {
    /// Compiles and links a job component. Blocking (compiling takes milliseconds to
    /// seconds): call it from a blocking thread when on the async runtime.
    pub fn compile(&self, path: &Path, bytes: &[u8]) -> Result<Arc<JobComponent>, InvalidModule> {
        self.compile_for(path, bytes)
    }

    /// Compiles and links a component of world `W`.
    pub fn compile_for<W: World>(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<Compiled<W>>, InvalidModule> {
        let name = path.display();
        let started = std::time::Instant::now();
        binary_kind(bytes).map_err(|e| InvalidModule(format!("{name} {e}")))?;
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| InvalidModule(format!("{name} does not compile: {e:#}")))?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            InvalidModule(format!(
                "{name} does not fit the tgrun:job/{} world (see `tgrun check {name}`): {e:#}",
                W::NAME
            ))
        })?;
        let pre = W::from_instance_pre(pre).map_err(|e| {
            InvalidModule(format!(
                "{name} does not export the {} world's `{}` (see `tgrun check {name}`): {e:#}",
                W::NAME,
                W::EXPORT
            ))
        })?;
        Ok(Arc::new(Compiled {
            pre,
            size: bytes.len(),
            version: content_version(bytes),
            load_time: started.elapsed(),
        }))
    }

    /// Reads and compiles a job file.
    pub fn compile_file(&self, path: &Path) -> Result<Arc<JobComponent>, InvalidModule> {
        self.compile_file_for(path)
    }

    /// Reads and compiles a file of world `W`.
    pub fn compile_file_for<W: World>(
        &self,
        path: &Path,
    ) -> Result<Arc<Compiled<W>>, InvalidModule> {
        let bytes = std::fs::read(path)
            .map_err(|e| InvalidModule(format!("cannot read {}: {e}", path.display())))?;
        self.compile_for(path, &bytes)
    }
}

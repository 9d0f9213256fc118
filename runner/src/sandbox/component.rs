//! Compiling a `.wasm` into a component ready to instantiate, checked once, off the hot
//! path, against its world: `job` for jobs, `handler` for route handlers.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::Sandbox;
use super::large::{Binding, Bound, SMALLEST_LARGE};
use super::warm::WarmSlot;
use crate::bindings::handler::tgrun::job::http_types::{Request, Response};
use crate::bindings::handler::{Handler, HandlerPre};
use crate::bindings::{GuestError, Job, JobPre, RunContext};
use crate::host::state::RunState;

/// What a call into a component comes to: the export's answer (a handler's response with
/// it), or a trap.
pub type Called = wasmtime::Result<Result<Option<Response>, GuestError>>;

/// A world a component can be compiled for.
pub trait World: Clone + Send + Sync + Sized + 'static {
    /// The name of the world, and of its export, for messages.
    const NAME: &'static str;
    const EXPORT: &'static str;
    /// An instance of a component of this world.
    type Instance: Send + Sync + 'static;
    /// What its export takes beside the run's context: nothing for a job, the request
    /// for a handler.
    type Input: Send;
    fn from_instance_pre(pre: InstancePre<RunState>) -> wasmtime::Result<Self>;
    fn instantiate(
        &self,
        store: &mut Store<RunState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Instance>> + Send;
    /// Calls the export.
    fn call(
        instance: &Self::Instance,
        store: &mut Store<RunState>,
        ctx: &RunContext,
        params: &str,
        input: Self::Input,
    ) -> impl Future<Output = Called> + Send;
}

impl World for JobPre<RunState> {
    const NAME: &'static str = "job";
    const EXPORT: &'static str = "run";
    type Instance = Job;
    type Input = ();
    fn from_instance_pre(pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        JobPre::new(pre)
    }
    fn instantiate(
        &self,
        store: &mut Store<RunState>,
    ) -> impl Future<Output = wasmtime::Result<Job>> + Send {
        self.instantiate_async(store)
    }
    async fn call(
        job: &Job,
        store: &mut Store<RunState>,
        ctx: &RunContext,
        params: &str,
        (): (),
    ) -> Called {
        Ok(job.call_run(store, ctx, params).await?.map(|()| None))
    }
}

impl World for HandlerPre<RunState> {
    const NAME: &'static str = "handler";
    const EXPORT: &'static str = "handle";
    type Instance = Handler;
    type Input = Request;
    fn from_instance_pre(pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        HandlerPre::new(pre)
    }
    fn instantiate(
        &self,
        store: &mut Store<RunState>,
    ) -> impl Future<Output = wasmtime::Result<Handler>> + Send {
        self.instantiate_async(store)
    }
    async fn call(
        handler: &Handler,
        store: &mut Store<RunState>,
        _: &RunContext,
        _: &str,
        request: Request,
    ) -> Called {
        Ok(handler.call_handle(store, &request).await?.map(Some))
    }
}

/// A compiled job component.
pub type JobComponent = Compiled<JobPre<RunState>>;
/// A compiled route handler component.
pub type HandlerComponent = Compiled<HandlerPre<RunState>>;

/// A compiled component: instantiating it needs no more linking or type checks.
pub struct Compiled<W: World> {
    pub(crate) code: Code<W>,
    /// The next run's instance, when made ahead (see [`super::warm`]).
    pub(crate) warm: Arc<WarmSlot<W::Instance>>,
    /// Size of the `.wasm` in bytes.
    pub size: usize,
    /// The version of the code: the first 16 hex digits of the SHA-256 of the `.wasm`.
    pub version: String,
    /// How long compiling and linking took: seconds for a large component compiled anew,
    /// milliseconds when its code came from the compiled-code cache.
    pub load_time: std::time::Duration,
}

/// Where a component's code is bound.
pub(crate) enum Code<W> {
    /// To the sandbox's engine, for good.
    Small(W),
    /// To the large pool's engine of the moment ([`super::large`]).
    Large(Arc<Binding<W>>),
}

impl<W: World> Compiled<W> {
    /// Whether the next run's instance has been made ahead and waits for it.
    pub fn made_ahead(&self) -> bool {
        self.warm.is_parked()
    }

    /// Whether it runs in the large pool (a Python component does).
    pub fn is_large(&self) -> bool {
        matches!(self.code, Code::Large(_))
    }
}

/// A component's version: its content hash, so the same bytes are the same version
/// wherever and whenever they are loaded.
pub fn content_version(bytes: &[u8]) -> String {
    content_hash(bytes)[..16].to_owned()
}

/// The SHA-256 of `bytes`, hex: the compiled-code cache's key (whole, as it names native
/// code), and the version's first 16 digits.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Linear memories one component may hold: a job's memory limit then bounds what it
/// can make the host reserve (40 memories each under the limit are not one run's share of
/// the pool).
pub const MAX_MEMORIES: u32 = 1;
/// Tables one component may hold (a Python component from componentize-py has a few, a
/// Rust one one or two).
pub const MAX_TABLES: u32 = 8;
/// Core instances one component may make (a Python component makes 14).
pub const MAX_CORE_INSTANCES: u32 = 16;

/// Whether a component fits in one run's share of the instance pool: one memory, a few
/// tables, nothing it cannot say ahead (a core module it imports).
fn within_a_run(component: &Component) -> Result<(), String> {
    let Some(needs) = component.resources_required() else {
        return Err("instantiates a core module it imports; a job may not".into());
    };
    if needs.num_memories > MAX_MEMORIES {
        return Err(format!(
            "has {} linear memories; a job or handler may have {MAX_MEMORIES} (its `memory_mb` bounds it)",
            needs.num_memories
        ));
    }
    if needs.num_tables > MAX_TABLES {
        return Err(format!(
            "has {} tables; a job or handler may have {MAX_TABLES}",
            needs.num_tables
        ));
    }
    Ok(())
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
    /// `bytes` compiled (their SHA-256 `hash`), from the compiled-code cache when there is
    /// one. Blocking.
    pub(crate) fn component_of(&self, bytes: &[u8], hash: &str) -> anyhow::Result<Component> {
        match &self.cache {
            Some(cache) => cache.load(&self.engine, bytes, hash),
            None => Component::new(&self.engine, bytes).map_err(anyhow::Error::from),
        }
    }

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
        self.compile_hashed(path, bytes, &content_hash(bytes))
    }

    /// [`Sandbox::compile_for`] of bytes whose [`content_hash`] the caller has already
    /// (a module registry compares it before compiling: 30 MB are not hashed twice).
    pub(crate) fn compile_hashed<W: World>(
        &self,
        path: &Path,
        bytes: &[u8],
        hash: &str,
    ) -> Result<Arc<Compiled<W>>, InvalidModule> {
        let name = path.display();
        let started = std::time::Instant::now();
        binary_kind(bytes).map_err(|e| InvalidModule(format!("{name} {e}")))?;
        let compiled = if bytes.len() >= SMALLEST_LARGE {
            self.large
                .component_of(bytes, hash)
                .map(|(c, file, large)| (c, Some((file, large))))
        } else {
            self.component_of(bytes, hash).map(|c| (c, None))
        };
        let (component, large) =
            compiled.map_err(|e| InvalidModule(format!("{name} does not compile: {e:#}")))?;
        within_a_run(&component).map_err(|e| InvalidModule(format!("{name} {e}")))?;
        let linker = large.as_ref().map_or(&self.linker, |(_, l)| &l.linker);
        let pre = linker.instantiate_pre(&component).map_err(|e| {
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
        let code = match large {
            Some((file, engine)) => Code::Large(self.large.bind(pre, file, &engine)),
            None => Code::Small(pre),
        };
        Ok(Arc::new(Compiled {
            code,
            warm: Arc::default(),
            size: bytes.len(),
            version: hash[..16].to_owned(),
            load_time: started.elapsed(),
        }))
    }

    /// `component`'s code and the engine its stores are made on: the sandbox's, or the
    /// large pool's of the moment (bound again after the pool gave its memory back).
    pub(crate) async fn code<W: World>(&self, component: &Compiled<W>) -> anyhow::Result<Bound<W>> {
        match &component.code {
            Code::Small(pre) => Ok(Bound::new(self.engine.clone(), pre.clone())),
            Code::Large(binding) => self.large.bound(binding).await,
        }
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

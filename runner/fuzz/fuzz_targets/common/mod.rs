//! What a fuzz target does with a configuration it got accepted: builds the scheduler the
//! service builds (its shared state, a sandbox, a module registry where every job's module
//! is the `noop` fixture, so each run goes the whole way: limits, deadline, instance,
//! report; `make jobs` builds it, and without it every run ends `module_missing`), lets a
//! virtual clock
//! run through it (a tick, a suspended machine's jump of a year, more ticks), optionally
//! applies a second configuration as `PUT`/`PATCH /config` do, and stops it. Any panic on
//! the way is the finding.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tgrun::config::Config;
use tgrun::host::HostClients;
use tgrun::modules::ModuleRegistry;
use tgrun::sandbox::{Sandbox, SandboxSettings};
use tgrun::schedule::Clock;
use tgrun::scheduler::{Scheduler, Shared};

pub const DIR: &str = "/nonexistent-tgrun-fuzz";

/// One sandbox (its engine) and one module registry for every input: building them and
/// compiling a module are the slow parts.
struct Runtime {
    sandbox: Arc<Sandbox>,
    modules: Arc<ModuleRegistry>,
    dir: tempfile::TempDir,
    noop: Option<PathBuf>,
}

fn shared() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sandbox = Arc::new(
            Sandbox::new(
                SandboxSettings {
                    cache_dir: Some(dir.path().join("cache")),
                    ..SandboxSettings::default()
                },
                Arc::new(HostClients::default()),
            )
            .expect("a sandbox"),
        );
        let modules = Arc::new(ModuleRegistry::new(dir.path().join("modules"), sandbox.clone()));
        std::fs::create_dir_all(dir.path().join("modules")).expect("the modules folder");
        let noop = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/wasm32-wasip2/guest/noop.wasm");
        let noop = noop.exists().then_some(noop);
        if noop.is_none() {
            eprintln!("no noop.wasm (run `make jobs`): every run will be module_missing");
        }
        Runtime {
            sandbox,
            modules,
            dir,
            noop,
        }
    })
}

/// Every job of `config` gets the `noop` module (a link to it, made once per name).
fn provide_modules(runtime: &Runtime, config: &Config) {
    let Some(noop) = &runtime.noop else {
        return;
    };
    for (_, job) in config.service.jobs() {
        let path = runtime.dir.path().join("modules").join(format!("{}.wasm", job.name));
        if !path.exists() {
            let _ = std::os::unix::fs::symlink(noop, &path);
        }
    }
}

/// Runs `config`'s scheduler from `start_ms` (Unix ms, clamped to 1970-2200) on a virtual
/// clock; then, if given, `then` is applied to it as a live change and run too.
pub fn tick(config: &Config, then: Option<&Config>, start_ms: i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let start = chrono::DateTime::from_timestamp_millis(start_ms.rem_euclid(7_258_118_400_000))
        .unwrap_or_default();
    let shared = shared();
    provide_modules(shared, config);
    if let Some(then) = then {
        provide_modules(shared, then);
    }
    runtime.block_on(async {
        // The queue's slots are allocated up front: a small queue keeps each input cheap.
        let capacity = config.runner.queue_capacity.min(1024);
        let mut scheduler = Scheduler::start_with_clock(
            &config.service,
            capacity,
            Shared::new(shared.sandbox.clone(), shared.modules.clone()),
            Clock::virtual_from(start),
        );
        let steps = || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            // A machine suspended for a year: every producer sees its due times long past.
            tokio::time::advance(Duration::from_secs(366 * 86_400)).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let mut reports = scheduler.subscribe();
        steps().await;
        if let Some(then) = then {
            let _ = scheduler.reconfigure(&then.service);
            steps().await;
        }
        scheduler.stop(Duration::ZERO).await;
        // `TGRUN_FUZZ_VERBOSE=1`: what each input made the scheduler do (is it ticking?).
        if std::env::var_os("TGRUN_FUZZ_VERBOSE").is_some() {
            let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
            while let Ok(r) = reports.try_recv() {
                *outcomes.entry(r.outcome.name()).or_default() += 1;
            }
            eprintln!("runs reported: {outcomes:?}");
        }
    });
}

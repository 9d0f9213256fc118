//! A guest's sequence of host calls, from the fuzzer's bytes: the `fuzz_calls` component
//! (jobs-wasm/, built by `make jobs`) reads them as a program calling every WIT function
//! with arguments at and past the runner's bounds, in the real sandbox against real SQLite
//! and recorded Prometheus and API-service answers. After each input: the run ended as one
//! outcome of a guest (ok, or a limit), no instance is left in the pool, no SQL statement
//! of it still runs, and the process's memory stays under 2 GiB.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tgrun::Outcome;
use tgrun::clients::{Caps, sql};
use tgrun::host::HostClients;
use tgrun::sandbox::component::JobComponent;
use tgrun::sandbox::{Sandbox, SandboxSettings};

struct Harness {
    rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
    component: Arc<JobComponent>,
    /// Two of the guest's URLs allowed (nothing listens there), so that its requests reach
    /// the HTTP client and not only the host's refusal.
    outbound: Arc<tgrun::run::outbound::Outbound>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let recorded = dir.path().join("standin.json");
        std::fs::write(
            &recorded,
            r#"{"prometheus": [
                {"endpoint": "query", "response": {"status": "success", "data": {"resultType": "vector", "result": []}}},
                {"endpoint": "query_range", "response": {"status": "success", "data": {"resultType": "matrix", "result": []}}}],
               "api_service": [
                {"network": "net_0", "endpoint": "getTopology", "response": {"name": "net_0"}},
                {"network": "net_1", "endpoint": "getTopology", "error": "controller down"}]}"#,
        )
        .unwrap();
        let mut clients = tgrun::clients::standin::load(&recorded).unwrap();
        clients.sql = Some(
            rt.block_on(sql::sqlite(&dir.path().join("jobs.sqlite3"), Caps::default()))
                .unwrap(),
        );
        let services = HostClients {
            clients,
            ..HostClients::default()
        };
        let sandbox = Sandbox::new(SandboxSettings::default(), Arc::new(services)).unwrap();
        let guest = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/wasm32-wasip2/guest/fuzz_calls.wasm");
        let component = sandbox
            .compile_file(&guest)
            .unwrap_or_else(|e| panic!("{} (run `make jobs`): {e}", guest.display()));
        Harness {
            rt,
            sandbox,
            component,
            outbound: Arc::new(
                tgrun::run::outbound::Outbound::parse(
                    &["http://127.0.0.1:1".into(), "http://[::1]:9".into()],
                    &[],
                )
                .expect("a valid allow-list"),
            ),
            _dir: dir,
        }
    })
}

fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        << 10
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let ops: String = data.iter().take(256).map(|b| format!("{b:02x}")).collect();
    let inv = tgrun::run::Invocation::new(
        tgrun::run::JobId::new(&"fuzz".into(), 0, &"fuzz_calls".into()),
        "fuzz-run".into(),
        1_700_000_000_000,
        serde_json::json!({ "ops": ops }).to_string().into(),
        tgrun::run::RunLimits {
            timeout: Duration::from_secs(2),
            memory_bytes: 64 << 20,
        },
        tgrun::run::Capabilities::ALL,
    )
    .with_outbound(&h.outbound);
    let report = h.rt.block_on(h.sandbox.run(&h.component, &inv, false));
    assert!(
        matches!(
            report.outcome,
            Outcome::Ok | Outcome::MemoryLimit { .. } | Outcome::Timeout { .. }
        ),
        "{:?}",
        report.outcome
    );
    let pool = h.sandbox.engine().pooling_allocator_metrics().unwrap();
    assert_eq!(pool.component_instances(), 0, "an instance left in the pool");
    // A statement of the run that timed out is given a moment to end.
    h.rt.block_on(async {
        for _ in 0..100 {
            if tgrun::clients::sql::session::abandoned_statements() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(resident() < 2 << 30, "resident {} MiB", resident() >> 20);
});

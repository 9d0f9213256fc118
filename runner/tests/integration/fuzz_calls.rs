//! The host-call fuzzer's guest (`jobs-wasm/fuzz_calls`) over programs that call every WIT
//! function with arguments at and past each of the runner's bounds, against real clients
//! (the embedded SQLite, the API service client on the stand-in controllers, recorded
//! Prometheus answers). `make fuzz` runs the same guest on libFuzzer's inputs
//! (`runner/fuzz/fuzz_targets/host_calls.rs`).

use std::sync::Arc;
use std::time::Duration;

use tgrun::Outcome;
use tgrun::clients::{Caps, Clients, HttpApiService, sql};
use tgrun::host::HostClients;
use tgrun::sandbox::Sandbox;

use crate::fixtures::{compile, invocation, resident, settings};
use crate::standin::{Kind, StandIn};

/// A program calling function `op` with every argument of size class `size` and kind
/// `kind` (the guest reads a missing byte as 0).
fn program(op: u8, size: u8, kind: u8) -> String {
    let mut bytes = vec![op];
    bytes.extend([size, kind].repeat(12));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_function_at_and_past_its_bounds_leaves_the_runner_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let recorded = dir.path().join("standin.json");
    std::fs::write(
        &recorded,
        r#"{"prometheus": [
            {"endpoint": "query", "response": {"status": "success", "data": {"resultType": "vector", "result": []}}},
            {"endpoint": "query_range", "response": {"status": "success", "data": {"resultType": "matrix", "result": []}}}]}"#,
    )
    .unwrap();
    let controllers = StandIn::start(&[("net_0", Kind::Good), ("net_1", Kind::Huge)], false).await;
    let services = HostClients {
        clients: Clients {
            prometheus: tgrun::clients::standin::load(&recorded).unwrap().prometheus,
            api_service: Some(Arc::new(
                HttpApiService::start(&controllers.config(false))
                    .await
                    .unwrap(),
            )),
            sql: Some(
                sql::sqlite(&dir.path().join("jobs.sqlite3"), Caps::default())
                    .await
                    .unwrap(),
            ),
        },
        ..HostClients::default()
    };
    let sb = Sandbox::new(settings(), Arc::new(services)).unwrap();
    let c = compile(&sb, "fuzz_calls");
    let run = |ops: String| {
        let mut inv = invocation("fuzz_calls", &serde_json::json!({ "ops": ops }).to_string());
        inv.limits.memory_bytes = 64 << 20;
        inv.limits.timeout = Duration::from_secs(5);
        // Two of the guest's URLs allowed (nothing listens there): its requests reach the
        // client, not only the host's refusal.
        let outbound = tgrun::run::outbound::Outbound::parse(
            &["http://127.0.0.1:1".into(), "http://[::1]:9".into()],
            &[],
        )
        .unwrap();
        inv.with_outbound(&Arc::new(outbound))
    };
    let pool = sb.engine().pooling_allocator_metrics().unwrap();
    let first = sb.run(&c, &run(program(19, 0, 0)), false).await;
    assert_eq!(first.outcome, Outcome::Ok, "{:?}", first.logs);
    let idle = resident();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for op in 0..22u8 {
        for size in 0..8u8 {
            let kind = op.wrapping_mul(7).wrapping_add(size);
            let report = sb.run(&c, &run(program(op, size, kind)), false).await;
            // Each run ends as one outcome, the host's refusals as the guest's values (the
            // guest drops them), a limit as the run's end; never the runner's failure.
            assert!(
                matches!(
                    report.outcome,
                    Outcome::Ok | Outcome::MemoryLimit { .. } | Outcome::Timeout { .. }
                ),
                "op {op} size {size}: {:?}",
                report.outcome
            );
            *outcomes
                .entry(report.outcome.name().to_owned())
                .or_default() += 1;
            assert_eq!(
                pool.component_instances(),
                0,
                "op {op} size {size}: an instance left"
            );
        }
    }
    eprintln!("outcomes of 176 programs: {outcomes:?}");
    assert_eq!(tgrun::clients::sql::session::abandoned_statements(), 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = resident();
    assert!(
        after < idle + (128 << 20),
        "resident {} MiB after 176 programs, {} MiB idle ({outcomes:?})",
        after >> 20,
        idle >> 20
    );
    assert!(
        outcomes.get("ok").copied().unwrap_or(0) > 100,
        "{outcomes:?}"
    );
}

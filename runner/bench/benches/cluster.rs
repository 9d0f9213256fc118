//! Figure 8: the cluster, on the machine's NATS (127.0.0.1:4222). What the overlap
//! policy's record of a run costs in JetStream round trips (admit and release, as a
//! replica's consumer does them), and runs per second of 1, 2 and 3 `tgrun serve`
//! replicas sharing one stream.
//!
//! The replicas share this machine's two cores with each other and with NATS, so their
//! job waits rather than spins: `sleeper` waiting 1 ms in a host call, which holds a
//! consumer but no core. What scales is then the cluster's own path (pull, policy,
//! report, acknowledgement), not the guest's arithmetic.

use std::time::{Duration, Instant};

use tgrun::cluster::live::Decision;
use tgrun::cluster::wire::Grants;
use tgrun::cluster::{Cluster, ClusterSettings, WireRun};
use tgrun::run::Overlap;

use crate::fleet::Served;
use crate::{percentile, table, wasm};

const NATS: &str = "nats://127.0.0.1:4222";
/// Runs measured by the round-trip figure (after as many again to warm up).
const PAIRS: usize = 2_000;
/// Jobs (places in one pipeline) the scaling bench spreads its runs over: a job's runs
/// come back only every `JOBS` runs, long after its previous run ended, so `skip`
/// skips none however the replicas share them.
const JOBS: usize = 100;
/// Consumers of each replica.
const CONSUMERS: usize = 2;
/// Runs per replica in the scaling bench (about 5 s of work each).
const RUNS_PER_REPLICA: usize = 3_000;
/// How often the bench asks the replicas how many runs ended: each asking renders every
/// replica's `/metrics`, CPU taken from the replicas it measures.
const POLL: Duration = Duration::from_millis(50);

/// A cluster of the bench's own, deleted again at the end.
fn settings(tag: &str) -> ClusterSettings {
    ClusterSettings {
        name: format!("bench_{tag}_{}", std::process::id()),
        servers: vec![NATS.into()],
        ack_wait: Duration::from_secs(30),
        auth: Default::default(),
        tls: None,
    }
}

fn run(pipeline: &str, index: usize, job: &str, scheduled_ms: i64) -> WireRun {
    WireRun {
        pipeline: pipeline.into(),
        index,
        job: job.into(),
        module: None,
        scheduled_ms,
        params: "{}".into(),
        timeout_ms: 60_000,
        memory_bytes: 128 << 20,
        grants: Grants {
            prometheus: false,
            api_service: false,
            sql: false,
        },
        retries: 0,
        retry_backoff_ms: 0,
        overlap: Overlap::Skip,
        env: Vec::new(),
        outbound: Default::default(),
    }
}

/// Admit and release of one job's successive runs, taken by `replicas` in turn: p50 and
/// p99 of the pair, and the round trips a pair took on average.
async fn admit_release(replicas: &[&Cluster], job: &str) -> (Duration, Duration, f64) {
    let mut took = Vec::with_capacity(PAIRS);
    let trips = || replicas.iter().map(|r| r.live.round_trips()).sum::<u64>();
    let mut trips0 = 0;
    for i in 0..2 * PAIRS {
        if i == PAIRS {
            trips0 = trips();
        }
        let replica = replicas[i % replicas.len()];
        let run = run("p", 0, job, i as i64);
        let start = Instant::now();
        let decision = replica
            .live
            .admit(Overlap::Skip, &run, "bench")
            .await
            .unwrap();
        assert!(matches!(decision, Decision::Run { .. }), "{decision:?}");
        replica.live.release(&run).await.unwrap();
        if i >= PAIRS {
            took.push(start.elapsed());
        }
    }
    took.sort();
    let per_pair = (trips() - trips0) as f64 / PAIRS as f64;
    (percentile(&took, 0.5), percentile(&took, 0.99), per_pair)
}

pub fn round_trips(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let s = settings("live");
        let a = Cluster::connect(&s)
            .await
            .expect("the machine's NATS with JetStream at 127.0.0.1:4222");
        let (alone50, alone99, alone_trips) = admit_release(&[&a], "alone").await;
        // Connected only now: one replica alone has no other following its writes.
        let b = Cluster::connect(&s).await.unwrap();
        let (turns50, turns99, turns_trips) = admit_release(&[&a, &b], "turns").await;
        Cluster::delete(&s).await.unwrap();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "a policed cluster run's record (admit + release, {PAIRS} runs of one job): \
             one replica p50 {:.3} ms, p99 {:.3} ms, {alone_trips:.2} round trips; two replicas \
             taking the runs in turn p50 {:.3} ms, p99 {:.3} ms, {turns_trips:.2} round trips",
            ms(alone50),
            ms(alone99),
            ms(turns50),
            ms(turns99)
        );
        table::target(
            "8. a policed cluster run's JetStream round trips (admit + release), p50",
            format!(
                "{:.3} ms (p99 {:.3}; two replicas in turn {:.3})",
                ms(alone50),
                ms(alone99),
                ms(turns50)
            ),
            "≤ 0.3 ms",
            alone50 <= Duration::from_micros(300),
        );
    });
}

/// A configuration directory for one replica: `JOBS` sleepers of 1 ms under `overlap:
/// skip` in a pipeline due once a year (the bench publishes the runs itself, so that every
/// replica count is offered the same backlog at once). Each replica has a directory of its
/// own, as on a machine of its own: its own SQLite history, which replicas sharing one
/// directory would contend for.
fn replica_dir(cluster: &ClusterSettings) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    std::fs::copy(wasm("sleeper"), modules.join("sleeper.wasm")).unwrap();
    let jobs: Vec<&str> = (0..JOBS)
        .map(|_| r#"{"name": "sleeper", "enabled": true, "params": {"ms": 1}, "overlap": "skip"}"#)
        .collect();
    std::fs::write(
        dir.path().join("service_config.json"),
        format!(
            r#"{{"num_consumers": {CONSUMERS}, "pipelines": {{"p": {{"cron": "@yearly", "missed": "skip", "jobs": [{}]}}}}}}"#,
            jobs.join(",")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"runner": {{"cluster": {{"name": "{}", "nats": ["{NATS}"], "ack_wait_s": 30}}}}}}"#,
            cluster.name
        ),
    )
    .unwrap();
    dir
}

/// Runs per second of `n` replicas draining a backlog of `RUNS_PER_REPLICA * n` runs
/// published at once; `first` numbers the due times apart from other rounds.
fn drain(rt: &tokio::runtime::Runtime, cluster: &Cluster, n: usize, first: i64) -> f64 {
    let dirs: Vec<_> = (0..n).map(|_| replica_dir(&cluster.settings)).collect();
    let replicas: Vec<Served> = dirs.iter().map(|d| Served::serve(d.path())).collect();
    let total = RUNS_PER_REPLICA * n;
    let runs: Vec<WireRun> = (0..total)
        .map(|k| run("p", k % JOBS, "sleeper", first + (k / JOBS) as i64))
        .collect();
    let finished = || -> u64 { replicas.iter().map(|r| r.runs(|_| true)).sum() };
    let before = finished();
    let start = Instant::now();
    for outcome in rt.block_on(cluster.publish(&runs)) {
        outcome.expect("publishing the backlog");
    }
    let published = start.elapsed();
    let finished_then = finished() - before;
    let deadline = start + Duration::from_secs(120);
    while finished() - before < total as u64 {
        assert!(
            Instant::now() < deadline,
            "{n} replicas finished {} of {total} runs in 120 s",
            finished() - before
        );
        std::thread::sleep(POLL);
    }
    let took = start.elapsed();
    println!(
        "{n} replicas: the backlog published in {:.0} ms ({finished_then} runs ended by then), \
         all {total} ended in {:.0} ms",
        published.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3
    );
    let ok: u64 = replicas.iter().map(|r| r.runs(|o| o == "ok")).sum();
    assert_eq!(
        ok as usize, total,
        "{n} replicas: runs not ok (a skip means two replicas ran one job at once)"
    );
    total as f64 / took.as_secs_f64()
}

pub fn replicas_scale(rt: &tokio::runtime::Runtime) {
    let s = settings("scale");
    let cluster = rt
        .block_on(Cluster::connect(&s))
        .expect("the machine's NATS with JetStream at 127.0.0.1:4222");
    let rates: Vec<f64> = (1..=3)
        .map(|n| drain(rt, &cluster, n, n as i64 * 1_000_000))
        .collect();
    rt.block_on(Cluster::delete(&s)).unwrap();
    let curve: Vec<String> = rates
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{} {r:.0} runs/s ({:.2}x)", i + 1, r / rates[0]))
        .collect();
    println!(
        "replicas of tgrun serve, {CONSUMERS} consumers each, a 1 ms waiting job under \
         overlap skip, {RUNS_PER_REPLICA} runs a replica published at once: {}",
        curve.join(", ")
    );
    table::target(
        "8. 3 replicas against 1 (1 ms waiting job, runs/s)",
        format!("{:.2}x ({})", rates[2] / rates[0], curve.join(", ")),
        "≥ 2.5x",
        rates[2] >= 2.5 * rates[0],
    );
}

//! Run history: a row for every outcome, `GET /runs` and its filters, retention, and the
//! same table in the real MariaDB.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use serde_json::Value;
use tgrun::clients::{Caps, sql};
use tgrun::config::Config;
use tgrun::scheduler::history::{Recorder, Retention};
use tgrun::service::{FixedLog, Service};
use tgrun::{Outcome, RunReport};

use crate::fixtures::{config_dir, get_from};

async fn get(service: &Arc<Service>, path: &str) -> (StatusCode, Value) {
    let (status, body, _) = get_from(service, path).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_gets_a_history_row_and_runs_reads_them() {
    let dir = config_dir(
        r#"{"num_consumers": 4, "pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true},
            {"name": "fails", "enabled": true},
            {"name": "panics", "enabled": true},
            {"name": "spin", "enabled": true, "timeout_s": 0.2},
            {"name": "memory_hog", "enabled": true, "memory_mb": 16},
            {"name": "not_there", "enabled": true}]}}}"#,
        &["echo", "fails", "panics", "spin", "memory_hog"],
    );
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("info".into()))), None)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let (code, v) = get(&service, "/runs").await;
        assert_eq!(code, StatusCode::OK, "{v}");
        let rows = v["runs"].as_array().unwrap().clone();
        if rows.len() == 6 {
            break rows;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_job = |job: &str| rows.iter().find(|r| r["job"] == job).unwrap().clone();
    assert_eq!(by_job("echo")["outcome"], "ok");
    assert_eq!(by_job("echo")["error"], Value::Null);
    assert_eq!(by_job("echo")["module_version"].as_str().unwrap().len(), 16);
    assert_eq!(by_job("fails")["outcome"], "error");
    assert!(
        by_job("fails")["error"]
            .as_str()
            .unwrap()
            .contains("the job said no")
    );
    assert_eq!(by_job("panics")["outcome"], "trap");
    assert!(
        by_job("panics")["error"]
            .as_str()
            .unwrap()
            .contains("fixture panic")
    );
    assert_eq!(by_job("spin")["outcome"], "timeout");
    assert!(by_job("spin")["duration_ms"].as_f64().unwrap() >= 200.0);
    assert_eq!(by_job("memory_hog")["outcome"], "memory_limit");
    assert_eq!(by_job("not_there")["outcome"], "module_missing");
    assert!(
        by_job("not_there")["error"]
            .as_str()
            .unwrap()
            .contains("not_there.wasm")
    );
    for r in &rows {
        assert_eq!(r["pipeline"], "p");
        assert!(r["scheduled_ms"].as_i64().unwrap() <= r["started_ms"].as_i64().unwrap());
    }

    let (_, v) = get(&service, "/runs?job=fails").await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    let (_, v) = get(&service, "/runs?outcome=timeout").await;
    assert_eq!(v["runs"][0]["job"], "spin");
    let (_, v) = get(&service, "/runs?limit=2").await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    let (code, v) = get(&service, "/runs?limit=0").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    // The most rows an answer holds is answered; past it, a clear 400, never a 500.
    let (code, v) = get(&service, "/runs?limit=1000").await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(v["runs"].as_array().unwrap().len() >= 3, "{v}");
    for past in ["1001", "10000", "7500"] {
        let (code, v) = get(&service, &format!("/runs?limit={past}")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{past}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains("from 1 to 1000"),
            "{v}"
        );
    }
    let (code, v) = get(&service, "/runs?jobb=x").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["status"], "error");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_answers_with_the_run_that_ended_just_before() {
    let dir = config_dir(
        r#"{"num_consumers": 1, "pipelines": {"p": {"period": 60, "jobs": [
            {"name": "echo", "enabled": true}]}}}"#,
        &["echo"],
    );
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("info".into()))), None)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while service.shared.reports.stats.runs.load(Ordering::Relaxed) == 0 {
        assert!(std::time::Instant::now() < deadline, "the run never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Its report goes to the history right after it is counted; the writer then gathers
    // rows for up to 100 ms before writing them, unless asked (as `/runs` asks).
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (code, v) = get(&service, "/runs").await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1), "{v}");
    service.stop().await;
}

fn report(job: &str, n: usize) -> RunReport {
    RunReport {
        job: job.into(),
        run_id: format!("{job}-{n:03}"),
        pipeline: "p".into(),
        index: 0,
        scheduled_ms: 1_000 + n as i64,
        started_at: SystemTime::now() - Duration::from_secs(100) + Duration::from_millis(n as u64),
        duration: Duration::from_millis(3),
        outcome: Outcome::Ok,
        logs: vec![],
        logs_dropped: 0,
        output_dropped: 0,
        metrics: vec![],
        module_version: None,
        attempt: 1,
    }
}

async fn wait_written(r: &Recorder, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while r.written.load(Ordering::Relaxed) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "history rows never written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records `runs` (job `batch`, by number) in one batch into `db`'s history, which refuses
/// the third; answers the run ids written, newest first.
async fn one_refused(db: Arc<dyn sql::SqlApi>, runs: [usize; 4]) -> Vec<String> {
    let rec = Recorder::start(db, Retention::default()).await.unwrap();
    for n in runs {
        rec.record(&report("batch", n));
    }
    assert!(rec.flush(Duration::from_secs(10)).await);
    assert_eq!(rec.written.load(Ordering::Relaxed), 3);
    assert_eq!(rec.lost.load(Ordering::Relaxed), 1);
    rec.query(Some("batch"), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect()
}

#[tokio::test]
async fn a_refused_row_does_not_take_its_batch_with_it() {
    let dir = tempfile::tempdir().unwrap();
    // The table as the runner makes it, with a trigger refusing one run id.
    let db = sql::sqlite_for_runner(&dir.path().join("h.sqlite3"))
        .await
        .unwrap();
    Recorder::start(db.clone(), Retention::default())
        .await
        .unwrap();
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON tgrun_runs WHEN NEW.run_id = 'batch-007' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        &[],
    )
    .await
    .unwrap();
    let ids = one_refused(db, [0, 1, 7, 2]).await;
    assert_eq!(ids, ["batch-002", "batch-001", "batch-000"]);

    // A table an earlier runner made, with run ids unique: a repeated one is refused alone.
    let db = sql::sqlite_for_runner(&dir.path().join("old.sqlite3"))
        .await
        .unwrap();
    db.execute(
        "CREATE TABLE tgrun_runs (run_id VARCHAR(64) NOT NULL PRIMARY KEY, \
         job VARCHAR(255) NOT NULL, pipeline VARCHAR(255) NOT NULL, scheduled_ms BIGINT NOT NULL, \
         started_ms BIGINT NOT NULL, duration_ms DOUBLE NOT NULL, outcome VARCHAR(32) NOT NULL, \
         error TEXT, module_version VARCHAR(32), attempt INT NOT NULL DEFAULT 1)",
        &[],
    )
    .await
    .unwrap();
    let ids = one_refused(db, [0, 1, 0, 2]).await;
    assert_eq!(ids, ["batch-002", "batch-001", "batch-000"]);
}

#[tokio::test]
async fn route_requests_have_their_own_retention() {
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(&dir.path().join("h.sqlite3"), Caps::default())
        .await
        .unwrap();
    let retention = Retention {
        max_rows: 3,
        route_max_rows: 5,
        ..Retention::default()
    };
    let rec = Recorder::start(db, retention).await.unwrap();
    for n in 0..4 {
        rec.record(&report("job", n));
    }
    // A flood of route requests, all newer than the job's runs.
    for n in 10..30 {
        let mut r = report("handler", n);
        r.pipeline = "route GET /x".into();
        rec.record(&r);
    }
    wait_written(&rec, 24).await;
    rec.prune_now().await.unwrap();
    let ids = |job: &'static str| {
        let rec = &rec;
        async move {
            rec.query(Some(job), None, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.run_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("job").await, ["job-003", "job-002", "job-001"]);
    assert_eq!(ids("handler").await.len(), 5);
    assert_eq!(ids("handler").await[0], "handler-029");
}

#[tokio::test]
async fn retention_keeps_the_newest_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = sql::sqlite(&dir.path().join("h.sqlite3"), Caps::default())
        .await
        .unwrap();
    let retention = Retention {
        max_rows: 3,
        max_age: Duration::from_secs(3600),
        ..Retention::default()
    };
    let rec = Recorder::start(db, retention).await.unwrap();
    for n in 0..10 {
        rec.record(&report("job", n));
    }
    wait_written(&rec, 10).await;
    rec.prune_now().await.unwrap();
    let ids: Vec<String> = rec
        .query(None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ids, vec!["job-009", "job-008", "job-007"]);

    let old = Retention {
        max_rows: 100,
        max_age: Duration::from_secs(10),
        ..Retention::default()
    };
    let dir2 = tempfile::tempdir().unwrap();
    let db = sql::sqlite(&dir2.path().join("h.sqlite3"), Caps::default())
        .await
        .unwrap();
    let rec = Recorder::start(db, old).await.unwrap();
    rec.record(&report("old", 1));
    wait_written(&rec, 1).await;
    rec.prune_now().await.unwrap();
    assert!(
        rec.query(None, None, 10).await.unwrap().is_empty(),
        "older than max_age"
    );
}

/// The writer keeps the cap by itself while runs keep coming (at most once a second,
/// after a batch): it counts a table it finds once, past the cap already here, and then
/// follows its own inserts and deletes rather than sorting the table every second.
#[tokio::test]
async fn the_writer_keeps_the_cap_while_runs_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite3");
    let open = |max_rows| {
        let path = path.clone();
        async move {
            let db = sql::sqlite(&path, Caps::default()).await.unwrap();
            let retention = Retention {
                max_rows,
                ..Retention::default()
            };
            Recorder::start(db, retention).await.unwrap()
        }
    };
    let before = open(1_000).await;
    for n in 0..8 {
        // Well before the new ones: `report` stamps its start from the clock, and on a fast
        // machine the new runs' first milliseconds overlapped the old ones'.
        let mut old = report("old", n);
        old.started_at -= Duration::from_secs(60);
        before.record(&old);
    }
    assert!(before.flush(Duration::from_secs(10)).await);
    drop(before);

    let rec = open(3).await;
    let ids = || async {
        let rows = rec.query(None, None, 100).await.unwrap();
        rows.into_iter().map(|r| r.run_id).collect::<Vec<_>>()
    };
    let mut written = 0;
    for round in 0..3 {
        let newest: Vec<String> = (0..4)
            .map(|n| format!("new-{:03}", round * 10 + n))
            .collect();
        for n in 0..4 {
            rec.record(&report("new", round * 10 + n));
        }
        written += 4;
        wait_written(&rec, written).await;
        // The writer prunes after a batch, a second after its last prune.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        rec.record(&report("new", round * 10 + 4));
        written += 1;
        wait_written(&rec, written).await;
        let want = vec![
            format!("new-{:03}", round * 10 + 4),
            newest[3].clone(),
            newest[2].clone(),
        ];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let got = ids().await;
            if got == want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn history_lives_in_mariadb_when_mysql_is_configured() {
    let db = crate::fixtures::mariadb().await;
    let rec = Recorder::start(db.clone(), Retention::default())
        .await
        .unwrap();
    use std::hash::{BuildHasher, RandomState};
    let job = format!("hist_{:x}", RandomState::new().hash_one(2u8) as u32);
    for n in 0..3 {
        rec.record(&report(&job, n));
    }
    wait_written(&rec, 3).await;
    let rows = rec.query(Some(&job), Some("ok"), 10).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].run_id, format!("{job}-002"));
    assert_eq!(rows[0].duration_ms, 3.0);
    db.execute(
        "DELETE FROM tgrun_runs WHERE job = ?",
        &[tgrun::sql_value::Value::Text(job)],
    )
    .await
    .unwrap();
}

/// Issue 39, hole 16: clients that ask `/runs` for its largest answer and never read it.
/// Its bytes are charged while unread, and a client that leaves them unread past the send
/// timeout is dropped, its answer given back (before: held for as long as the client
/// kept the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_its_answer_given_back() {
    use std::io::Write;
    let dir = config_dir(r#"{"pipelines": {}}"#, &[]);
    let config = Config::load(dir.path()).unwrap();
    let service = Service::start(config, Arc::new(FixedLog(Mutex::new("info".into()))), None)
        .await
        .unwrap();
    let history = service.shared.reports.history.as_ref().unwrap();
    for n in 0..1000 {
        let mut r = report("unread", n);
        r.outcome = Outcome::Error {
            kind: "failed".into(),
            message: "x".repeat(8000),
        };
        history.record(&r);
    }
    wait_written(history, 1000).await;
    let state = tgrun::server::AppState::new(service.clone());
    let answers = state.answers.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(tgrun::server::serve(
        listener,
        tgrun::server::router(state),
        stop.clone(),
        Duration::from_secs(2),
    ));
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET /runs?limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    let waited = std::time::Instant::now();
    while answers.in_flight() == 0 {
        assert!(waited.elapsed() < Duration::from_secs(10), "never charged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // About 8 MB: more than the connection's buffers take, so it stays in flight.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(answers.in_flight() > 4 << 20, "{}", answers.in_flight());
    while answers.in_flight() > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "an unread answer still holds {} bytes",
            answers.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(conn);
    stop.cancel();
    service.stop().await;
}

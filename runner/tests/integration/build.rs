//! `tgrun build` as a user runs it, on folders copied outside the repository: a tglib
//! service with third-party dependencies and generated types, and the mistakes it names.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tgrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tgrun"))
}

/// The cache `make jobs` fills (componentize-py, SQLAlchemy, the SDK): the tests' builds
/// share it rather than fetch it again.
fn cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tgrun-cache")
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (path, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            copy(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// A fixture of `jobs-wasm/python-outside/`, copied into a new folder outside the repository.
fn outside(fixtures: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs-wasm/python-outside");
    for f in fixtures {
        copy(&root.join(f), &dir.path().join(f));
    }
    dir
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("running tgrun");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A service that needs geopy (its `setup.py`'s `install_requires`, beside its package as
/// in tgnms: fetched from PyPI, aiohttp and alembic skipped) and generated Thrift types
/// (Apache Thrift not declared, as tgnms' services do not: tgrun bundles it)
/// from another folder (`--path`), built from outside the repository; then run by
/// `tgrun run FILE --job NAME`: the geodesic distance, the Thrift round trip through
/// `tglib.utils.thrift`, tglib's label normalizing. Built again unchanged, it comes from
/// the cache.
#[test]
fn a_service_with_dependencies_and_generated_types_builds_anywhere_and_runs() {
    let dir = outside(&["site_distances_service", "gen-py"]);
    let out = dir.path().join("sd.wasm");
    let build = || {
        let mut cmd = tgrun();
        cmd.arg("build")
            .arg(dir.path().join("site_distances_service/site_distances"))
            .arg("--path")
            .arg(dir.path().join("gen-py"))
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(cache())
            .args(["--output", "json"]);
        run(&mut cmd)
    };
    let (code, stdout, stderr) = build();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let built: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        built["jobs"],
        serde_json::json!(["measure_sites"]),
        "{built}"
    );
    assert_eq!(built["world"], "job");
    assert!(out.is_file());

    let params = r#"{"sites": [{"name": "berlin.1", "lat": 52.52, "lon": 13.405, "pop": true},
                               {"name": "paris", "lat": 48.8566, "lon": 2.3522}]}"#;
    let (code, stdout, stderr) = run(tgrun()
        .arg("run")
        .arg(&out)
        .args(["--job", "measure_sites", "--params", params])
        .current_dir(dir.path()));
    assert_eq!(code, 0, "{stdout}{stderr}");
    // geopy 2.4.1's geodesic (Karney's, WGS-84), as it computes on the machine's Python.
    assert!(
        stdout.contains(r#"site_distance_km{a="berlin_1",b="paris",pop="true"} 879.699"#),
        "{stdout}"
    );
    assert!(stdout.contains(r#"{"1":{"str":"berlin.1"}"#), "{stdout}");

    // A job the component does not have is named with those it has.
    let (code, _, stderr) = run(tgrun().arg("run").arg(&out).args(["--job", "nope"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("has no job 'nope'; its jobs: measure_sites"),
        "{stderr}"
    );

    // Unchanged: from the build cache; one file changed anywhere in it: built again.
    let (code, stdout, _) = build();
    assert_eq!(code, 0);
    assert!(stdout.contains(r#""from_cache":true"#), "{stdout}");
    // (Content never built before: the cache is keyed by content, across test runs too.)
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(
        dir.path().join("gen-py/sites_thrift/extra.py"),
        format!("ANSWER = {now}\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = build();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""from_cache":false"#), "{stdout}");
}

/// What a build cannot do is said, naming what and where: a dependency with compiled
/// extensions (and the flag that leaves them out), a folder that is no package name, a
/// folder that is no job.
#[test]
fn a_build_names_what_it_cannot_do() {
    let dir = outside(&["site_distances_service"]);
    let service = dir.path().join("site_distances_service/site_distances");
    std::fs::write(service.join("requirements.txt"), "ujson==5.10.0\n").unwrap();
    let (code, _, stderr) = run(tgrun()
        .arg("build")
        .arg(&service)
        .arg("-o")
        .arg(dir.path().join("x.wasm"))
        .arg("--cache-dir")
        .arg(cache()));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("requires ujson with compiled extensions")
            && stderr.contains("requirements.txt")
            && stderr.contains("--allow-native ujson"),
        "{stderr}"
    );

    let dashed = dir.path().join("site_distances_service/site-distances");
    std::fs::rename(&service, &dashed).unwrap();
    let (code, _, stderr) = run(tgrun().arg("build").arg(&dashed));
    assert_eq!(code, 2);
    assert!(stderr.contains("must be a Python identifier"), "{stderr}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, stderr) = run(tgrun().arg("build").arg(&empty));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no Cargo.toml (a Rust job), app.py (a Python job) or jobs.py/routes.py"),
        "{stderr}"
    );
}

/// `tgrun test`: a service's own unit tests inside the sandbox, in tgnms' layout (`tests/`
/// beside the package, `setup.py` naming `tests.base` and asynctest in its `ci` extra): an
/// `asynctest.TestCase` with a coroutine `setUp`, `asynctest.patch` of tglib's client, a
/// fixture file opened by a path relative to the service's folder, the generated types
/// through `--path`. `-k` picks tests; a test that fails is named and the exit is 1. (A
/// test module that does not import fails the build: the SDK's `test_unittests.py`.)
#[test]
fn a_services_own_unit_tests_pass_inside_the_sandbox_and_a_failure_is_named() {
    let dir = outside(&["site_distances_service", "gen-py"]);
    let test = |extra: &[&str]| {
        let mut cmd = tgrun();
        cmd.arg("test")
            .arg(dir.path().join("site_distances_service/site_distances"))
            .arg("--path")
            .arg(dir.path().join("gen-py"))
            .arg("--cache-dir")
            .arg(cache())
            .args(extra);
        run(&mut cmd)
    };
    let (code, stdout, stderr) = test(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for name in [
        "test_one_series_per_pair (tests.distances_tests.DistancesTests.test_one_series_per_pair) ... ok",
        "test_the_loop_is_the_tests_own (tests.distances_tests.DistancesTests.test_the_loop_is_the_tests_own) ... ok",
        "test_round_trips (tests.thrift_tests.ThriftTests.test_round_trips) ... ok",
        "Ran 3 tests",
        "tgrun test: ok in the sandbox",
    ] {
        assert!(stdout.contains(name), "{name} in:\n{stdout}");
    }

    let (code, stdout, _) = test(&["-k", "round_trips"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("Ran 1 test in "), "{stdout}");

    // The fixture file changed: the build is made again, and the test that reads it fails.
    let sites = dir.path().join("site_distances_service/tests/sites.json");
    let text = std::fs::read_to_string(&sites).unwrap();
    std::fs::write(&sites, text.replace("52.52", "52.0")).unwrap();
    let (code, stdout, stderr) = test(&[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("AssertionError: ") && stdout.contains("!= 879.699"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tgrun test: error in the sandbox")
            && stdout.contains(
                "1 of 3 tests failed: tests.distances_tests.DistancesTests.test_one_series_per_pair"
            ),
        "{stdout}"
    );

    // No tests folder: said where it looked.
    std::fs::remove_dir_all(dir.path().join("site_distances_service/tests")).unwrap();
    let (code, _, stderr) = test(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no tests folder: looked for"), "{stderr}");
}

/// `tgrun test` with the tests inside the package and no suite declared: every
/// `test*.py`/`*_tests.py` module found; `unittest.IsolatedAsyncioTestCase` and
/// `asyncio.run` on the sandbox's loop; a fixture file opened beside a test's `__file__`.
#[test]
fn a_services_tests_inside_its_package_are_found_and_run() {
    let service = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs-wasm/python/health_labels");
    let (code, stdout, stderr) = run(tgrun()
        .arg("test")
        .arg(&service)
        .arg("--cache-dir")
        .arg(cache()));
    assert_eq!(code, 0, "{stdout}{stderr}");
    for name in [
        "(health_labels.tests.jobs_tests.GenerateTests.test_one_series_per_level) ... ok",
        "(health_labels.tests.jobs_tests.WithoutMainTests.test_no_thresholds_is_an_error) ... ok",
        "(health_labels.tests.test_health.HealthTests.test_health_of) ... ok",
        "(health_labels.tests.test_health.HealthTests.test_settings_are_a_copy) ... ok",
        "(health_labels.tests.jobs_tests.LinkHealthTests.test_each_links_health_and_a_failed_query_writes_nothing) ... ok",
        "Ran 5 tests",
    ] {
        assert!(stdout.contains(name), "{name} in:\n{stdout}");
    }
    // asyncio's debug records of each test's loop are not the report.
    assert!(!stdout.contains("SandboxLoop"), "{stdout}");
}

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

/// A service that needs geopy and Apache Thrift (its `requirements.txt`: fetched from PyPI,
/// Thrift's C speed-up left out, tglib's own and aiohttp skipped) and generated Thrift types
/// from another folder (`--path`), built from outside the repository; then run by
/// `tgrun run FILE --job NAME`: the geodesic distance, the Thrift round trip through
/// `tglib.utils.thrift`, tglib's label normalizing. Built again unchanged, it comes from
/// the cache.
#[test]
fn a_service_with_dependencies_and_generated_types_builds_anywhere_and_runs() {
    let dir = outside(&["site_distances", "gen-py"]);
    let out = dir.path().join("sd.wasm");
    let build = || {
        let mut cmd = tgrun();
        cmd.arg("build")
            .arg(dir.path().join("site_distances"))
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
    let dir = outside(&["site_distances"]);
    let service = dir.path().join("site_distances");
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

    let dashed = dir.path().join("site-distances");
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

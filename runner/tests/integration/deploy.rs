//! `deploy/`: the systemd unit passes `systemd-analyze verify` and its settings start a
//! runner that becomes ready; the Containerfile keeps its promises (Debian, a non-root
//! user, the configuration directory a volume, the health check on `/readyz`, settings the
//! binary knows). No container engine runs here to build the image itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fixtures::config_dir;

fn deploy(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `TGRUN_*` variables a file sets (outside its comments), with their values.
fn tgrun_vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == '\\'))
        .map(|w| w.strip_prefix("Environment=").unwrap_or(w))
        .filter(|w| w.starts_with("TGRUN_"))
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Every variable is one `tgrun serve` reads (clap lists them in its help).
fn known_to_the_binary(vars: &[(String, String)]) {
    let help = Command::new(env!("CARGO_BIN_EXE_tgrun"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (name, _) in vars {
        assert!(
            help.contains(&format!("[env: {name}=")),
            "{name} is not a variable of `tgrun serve`:\n{help}"
        );
    }
}

#[tokio::test]
async fn the_systemd_unit_verifies_and_its_settings_start_a_ready_runner() {
    let unit = deploy("tgrun.service");
    let bin = env!("CARGO_BIN_EXE_tgrun");
    assert!(
        unit.contains("\nExecStart=/usr/local/bin/tgrun serve\n"),
        "{unit}"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tgrun.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/tgrun", bin)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.contains("tgrun.service"),
        "systemd-analyze verify: {said}"
    );

    // The unit's environment, with a configuration directory and a port of the test's.
    let vars = tgrun_vars(&unit);
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        names.contains(&"TGRUN_CONFIG_DIR") && names.contains(&"TGRUN_LISTEN"),
        "{vars:?}"
    );
    known_to_the_binary(&vars);
    let config = config_dir(
        r#"{"pipelines": {"p": {"period": 60, "jobs": [{"name": "echo", "enabled": true}]}}}"#,
        &["echo"],
    );
    let port = crate::prometheus::free_port();
    let mut child = Command::new(bin)
        .arg("serve")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TGRUN_CONFIG_DIR", config.path())
        .env("TGRUN_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && r.status() == 200
        {
            break r.text().await.unwrap();
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the runner with the unit's settings never became ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready.contains(r#""ready":true"#), "{ready}");
}

#[test]
fn the_containerfile_runs_as_a_user_with_its_config_as_a_volume_and_checks_readyz() {
    let file = deploy("Containerfile");
    let lines: Vec<&str> = file
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    // What follows `keyword` on each instruction line that starts with it.
    let after = |keyword: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(keyword).map(str::trim))
            .collect()
    };
    assert!(
        after("ARG BASE=")
            .iter()
            .any(|b| b.starts_with("docker.io/library/debian:")),
        "{file}"
    );
    let users = after("USER ");
    assert_eq!(users.len(), 1, "{file}");
    assert!(!["root", "0"].contains(&users[0]), "{file}");
    assert!(file.contains("useradd --system"), "{file}");

    let vars = tgrun_vars(&file);
    known_to_the_binary(&vars);
    let value = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name}: {vars:?}"))
    };
    let config = value("TGRUN_CONFIG_DIR");
    assert_eq!(after("VOLUME "), [config.as_str()], "{file}");
    let port = value("TGRUN_LISTEN").rsplit(':').next().unwrap().to_owned();
    assert_eq!(after("EXPOSE "), [port.as_str()], "{file}");
    assert!(
        file.contains(&format!("http://127.0.0.1:{port}/readyz")) && file.contains("HEALTHCHECK"),
        "{file}"
    );
    assert_eq!(
        after("ENTRYPOINT "),
        [r#"["/usr/local/bin/tgrun"]"#],
        "{file}"
    );
    // What it copies is what `make image-context` stages.
    let makefile =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Makefile"))
            .unwrap();
    assert!(
        makefile.contains("image-context:"),
        "no image-context target"
    );
    for copied in after("COPY ") {
        let source = copied.split_whitespace().rev().nth(1).unwrap();
        assert!(
            makefile.contains(&format!("target/image/{}", source.trim_end_matches('/'))),
            "the Makefile does not stage {source}"
        );
    }
}

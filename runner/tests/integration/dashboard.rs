//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver by
//! Debian's chromedriver, against a `tgrun serve` process. The screenshot lands in
//! `target/dashboard.png`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::Served;
use crate::fixtures::config_dir;

/// WebDriver's name for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium behind a chromedriver of its own.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    async fn start() -> Self {
        let port = crate::real_prometheus::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver, installed by `make test-deps`)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-dev-shm-usage",
                         "--window-size=1280,1000",
                         // A name that resolves to loopback, as a DNS-rebound one does.
                         "--host-resolver-rules=MAP rebind.test 127.0.0.1"]
            }
        }}});
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            http,
        };
        let answer = browser.call("POST", "/session", caps).await;
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = req.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// Runs `script` in the page; it ends by calling its last argument with the answer.
    async fn run_async(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/async",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn open(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }))
            .await;
    }

    /// The element `css` selects, once there is one (the page renders after its first poll).
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .session_call(
                    "POST",
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css:?} on the page");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of `css`'s element (found anew each time: the page re-renders).
    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let t = self
            .session_call("GET", &format!("/element/{id}/text"), Value::Null)
            .await;
        t.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `css`'s text satisfies `ok`; answers it.
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{css:?} never showed {what}; it shows {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `css`'s element. The page re-renders on every poll, so an element found may
    /// be gone by the click ("stale element reference"): then it is found anew.
    async fn click(&self, css: &str) {
        for _ in 0..50 {
            let id = self.find(css).await;
            let answer = self
                .session_call("POST", &format!("/element/{id}/click"), json!({}))
                .await;
            if answer.is_null() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("could not click {css:?}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let png = self.session_call("GET", "/screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a screenshot"))
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit its Chromium; killing chromedriver
        // alone leaves Chromium running, orphaned. Drop cannot await: plain HTTP/1.1.
        if !self.session.is_empty() {
            let addr = self.base.trim_start_matches("http://");
            if let Ok(mut conn) = std::net::TcpStream::connect(addr) {
                use std::io::{Read, Write};
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let request = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                    self.session
                );
                // chromedriver answers once Chromium has quit, and may keep the connection
                // open: the answer's first bytes are the end of the wait.
                if conn.write_all(request.as_bytes()).is_ok() {
                    let _ = conn.read(&mut [0; 1024]);
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_runs_and_an_operator_runs_disables_and_rolls_back() {
    // Hourly pipelines: each runs once at start, so any later run is the operator's.
    let dir = config_dir(
        r#"{"num_consumers": 2, "pipelines": {
            "hourly": {"period": 3600, "jobs": [{"name": "noop", "enabled": true}]},
            "broken": {"period": 3600, "jobs": [{"name": "fails", "enabled": true},
                                                {"name": "noop", "enabled": true}]}}}"#,
        &["noop", "fails"],
    );
    let token = "s3cret-operator-token";
    let served = Served::start_with_env(dir.path(), "127.0.0.1:0", &[("TGRUN_ADMIN_TOKEN", token)]);
    let addr = served.addr();
    let browser = Browser::start().await;
    browser.open(&format!("http://{addr}/")).await;

    let noop = "tr[data-pipeline='hourly'][data-job='noop']";
    // The run at start appears, with its outcome; the failing job's error and log lines
    // are in the failures.
    browser
        .wait_text(&format!("{noop} .run-count"), "one run", |t| t == "1")
        .await;
    let last = browser.text(&format!("{noop} .last-run")).await;
    assert!(last.contains("ok") && last.contains("hourly"), "{last:?}");
    // The same module in the other pipeline is a row of its own, with its own runs.
    let other = "tr[data-pipeline='broken'][data-job='noop']";
    browser
        .wait_text(&format!("{other} .last-run"), "its own run", |t| {
            t.contains("broken")
        })
        .await;
    assert_eq!(browser.text(&format!("{other} .run-count")).await, "1");
    // Log lines of failures are for operators: not shown before the token is given.
    browser
        .wait_text("#failures", "the failing job", |t| {
            t.contains("fails") && t.contains("type the admin token")
        })
        .await;
    let header = browser.text("header").await;
    assert!(header.contains("admin token"), "{header:?}");

    // Without the token, "run now" is refused and says why; nothing runs.
    browser.click(&format!("{noop} .run-now")).await;
    browser
        .wait_text("#status", "the refusal", |t| {
            t.contains("TGRUN_ADMIN_TOKEN")
        })
        .await;
    assert_eq!(browser.text(&format!("{noop} .run-count")).await, "1");

    // With it, the new run appears without reloading the page.
    browser.type_into("#token", token).await;
    browser.click(&format!("{noop} .run-now")).await;
    browser
        .wait_text("#status", "the run's end", |t| t.contains("ended ok"))
        .await;
    browser
        .wait_text(&format!("{noop} .run-count"), "two runs", |t| t == "2")
        .await;
    browser
        .wait_text("#failures", "the failures as an operator sees them", |t| {
            t.contains("fails") && !t.contains("type the admin token")
        })
        .await;
    let last = browser.text(&format!("{noop} .last-run")).await;
    assert!(
        last.contains("manual"),
        "the manual run is the last: {last:?}"
    );

    // Disabling the failing job goes through the configuration.
    let broken = "tr[data-job='fails']";
    browser.click(&format!("{broken} .toggle")).await;
    browser
        .wait_text(broken, "disabled", |t| t.contains("disabled"))
        .await;
    let config = config_in_force(&addr).await;
    assert_eq!(
        config["pipelines"]["broken"]["jobs"][0]["enabled"], false,
        "{config}"
    );

    // Another operator changes the configuration between the page's read and its write:
    // the page's PATCH carries the version it read, so it is refused and undoes nothing.
    let race = r#"const done = arguments[arguments.length - 1];
        const real = window.fetch;
        window.fetch = async (path, init) => {
          const resp = await real(path, init);
          if (path === "/config" && !(init && init.method) && !window.raced) {
            window.raced = true;
            await real("/config", { method: "PATCH",
              headers: { "content-type": "application/json", "authorization": "Bearer TOKEN" },
              body: JSON.stringify({ config: { other_operator: 1 } }) });
          }
          return resp;
        };
        done(true);"#;
    let raced = browser.run_async(&race.replace("TOKEN", token)).await;
    assert_eq!(raced, json!(true));
    browser.click(&format!("{broken} .toggle")).await;
    browser
        .wait_text("#status", "the refused write", |t| {
            t.contains("changed since")
        })
        .await;
    let config = config_in_force(&addr).await;
    assert_eq!(config["other_operator"], 1, "{config}");
    assert_eq!(
        config["pipelines"]["broken"]["jobs"][0]["enabled"], false,
        "{config}"
    );
    // Tried again on what is now in force, it lands, and keeps the other change.
    browser.click(&format!("{broken} .toggle")).await;
    browser
        .wait_text(broken, "enabled again", |t| !t.contains("disabled"))
        .await;
    let config = config_in_force(&addr).await;
    assert_eq!(config["other_operator"], 1, "{config}");
    assert_eq!(
        config["pipelines"]["broken"]["jobs"][0]["enabled"], true,
        "{config}"
    );

    // A new version uploaded, then rolled back from the page: the first version runs again.
    let first = tgrun::sandbox::component::content_version(
        &std::fs::read(crate::fixtures::wasm("noop")).unwrap(),
    );
    let uploaded = reqwest::Client::new()
        .put(format!("http://{addr}/jobs/noop/module"))
        .header("content-type", "application/wasm")
        .bearer_auth(token)
        .body(std::fs::read(crate::fixtures::wasm("echo")).unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        uploaded.status().is_success(),
        "{:?}",
        uploaded.text().await
    );
    browser
        .wait_text(noop, "the new version", |t| !t.contains(&first[..12]))
        .await;
    browser.click(&format!("{noop} .rollback")).await;
    browser
        .wait_text("#status", "the rollback", |t| t.contains("rolled back"))
        .await;
    browser
        .wait_text(noop, "the first version again", |t| {
            t.contains(&first[..12])
        })
        .await;

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("dashboard.png"), &png).unwrap();
    drop(browser);
    served.terminate();
}

/// `GET /config`.
async fn config_in_force(addr: &str) -> Value {
    reqwest::get(format!("http://{addr}/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The runs of `echo` outside its schedule (pipeline `manual`), from `/runs`.
async fn manual_runs(addr: &str) -> usize {
    let runs: Value = reqwest::get(format!("http://{addr}/runs?job=echo"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    runs["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("{runs}"))
        .iter()
        .filter(|r| r["pipeline"] == "manual")
        .count()
}

/// What a web page the operator visits can do to a runner on loopback with no token
/// (issue 19): a form POST and `fetch`es from another origin, and the same requests from a
/// page whose name was rebound to 127.0.0.1. Nothing runs; the runner's own page can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_on_another_origin_or_a_rebound_name_cannot_act() {
    let dir = config_dir(
        r#"{"pipelines": {"hourly": {"period": 3600, "jobs": [
            {"name": "echo", "enabled": false, "params": {"value": 1}}]}}}"#,
        &["echo"],
    );
    let served = Served::start_on(dir.path(), "127.0.0.1:0");
    let addr = served.addr();
    let port = addr.rsplit(':').next().unwrap().to_owned();

    // The attacker's page, on another port: a text/plain form whose body is valid JSON, and
    // fetches a page may send without a preflight, then one that needs it.
    let page = format!(
        r#"<!doctype html><body>
<form id="f" method="POST" action="http://{addr}/jobs/echo/run" enctype="text/plain">
<input name='{{"params": {{"value": 7}}, "x": "' value='"}}'></form>
<script>
const sent = [];
const go = (what, p) => p.then(r => sent.push(what + " " + r.status), () => sent.push(what + " blocked"));
go("plain", fetch("http://{addr}/jobs/echo/run", {{method: "POST", mode: "no-cors", body: "{{}}"}}));
go("form-type", fetch("http://{addr}/jobs/echo/run", {{method: "POST", mode: "no-cors",
   headers: {{"content-type": "application/x-www-form-urlencoded"}}, body: "a=1"}}));
go("json", fetch("http://{addr}/jobs/echo/run", {{method: "POST",
   headers: {{"content-type": "application/json"}}, body: "{{}}"}}));
setTimeout(() => {{ document.title = sent.join(","); document.getElementById("f").submit(); }}, 1000);
</script></body>"#
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let attacker = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let browser = Browser::start().await;
    browser.open(&format!("http://{attacker}/")).await;
    // The form has been submitted (the browser left the page) or refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        manual_runs(&addr).await,
        0,
        "a page on another origin ran the job"
    );

    // DNS rebinding: the runner's own page, under a name that resolves to 127.0.0.1, so
    // the browser takes the runner for the page's own origin.
    let act = r#"const done = arguments[arguments.length - 1];
        fetch("/jobs/echo/run", {method: "POST", headers: {"content-type": "application/json"},
               body: "{}"}).then(r => done(r.status), e => done("blocked " + e));"#;
    browser.open(&format!("http://rebind.test:{port}/")).await;
    let status = browser.run_async(act).await;
    assert_eq!(status, json!(403), "a rebound name");
    assert_eq!(manual_runs(&addr).await, 0, "a rebound name ran the job");

    // The runner's own page, on its own name, can (so the refusals above are not a broken
    // route).
    browser.open(&format!("http://{addr}/")).await;
    let status = browser.run_async(act).await;
    assert_eq!(status, json!(200), "the runner's own page");
    // The history is written in batches: its row comes within moments of the answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while manual_runs(&addr).await < 1 {
        assert!(
            Instant::now() < deadline,
            "the page's run never reached the history"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(manual_runs(&addr).await, 1);
}

/// Issue 39: pages that borrow the runner's origin. A route handler's page is served from
/// the runner's address, and its script would act as the operator's own page does; a page
/// of another site framing the dashboard would have the operator click "Run now" in the
/// frame. Neither runs the job: the handler's answer is sandboxed (no script runs, its
/// origin is opaque) and no runner page may be framed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_handlers_page_or_a_framing_page_cannot_act() {
    let dir = config_dir(
        r#"{"pipelines": {"hourly": {"period": 3600, "jobs": [
            {"name": "echo", "enabled": false, "params": {"value": 1}}]}},
            "routes": {"GET /page": {"module": "hostile_route"}}}"#,
        &["echo", "hostile_route"],
    );
    let served = Served::start_on(dir.path(), "127.0.0.1:0");
    let addr = served.addr();

    // Every answer says so, the handler's too, whatever headers the handler chose.
    let page = reqwest::get(format!("http://{addr}/page?mode=page&job=echo"))
        .await
        .unwrap();
    let policies: Vec<&str> = page
        .headers()
        .get_all("content-security-policy")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(policies.contains(&"sandbox"), "{policies:?}");
    assert!(policies.contains(&"frame-ancestors 'none'"), "{policies:?}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let own = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(own.headers()["x-frame-options"], "DENY");

    let browser = Browser::start().await;
    browser
        .open(&format!("http://{addr}/page?mode=page&job=echo"))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let title = browser.session_call("GET", "/title", Value::Null).await;
    assert_eq!(title, json!("page"), "the handler's script ran");
    assert_eq!(manual_runs(&addr).await, 0, "a handler's page ran the job");

    // Another site frames the dashboard; the operator clicks "Run now" in the frame, if
    // there is one to click.
    let framing = format!(
        r#"<!doctype html><body><iframe id="f" src="http://{addr}/" width="1200" height="900"></iframe></body>"#
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = framing.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let attacker = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    browser.open(&format!("http://{attacker}/")).await;
    let frame = browser.find("#f").await;
    browser
        .session_call("POST", "/frame", json!({"id": {ELEMENT: frame}}))
        .await;
    let run_now = "tr[data-job='echo'] .run-now";
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut clicked = false;
    while Instant::now() < deadline && !clicked {
        let found = browser
            .session_call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": run_now}),
            )
            .await;
        if let Some(id) = found[ELEMENT].as_str() {
            let answer = browser
                .session_call("POST", &format!("/element/{id}/click"), json!({}))
                .await;
            clicked = answer.is_null();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !clicked,
        "the dashboard rendered inside another site's frame"
    );
    assert_eq!(
        manual_runs(&addr).await,
        0,
        "a click in a frame ran the job"
    );
}

//! Fixture: a route handler that tries to break the HTTP exchange it answers, one way per
//! `?mode=`. The runner must keep framing its own answers and keep the operator's
//! credentials from handlers that did not ask for them.

use tgrun_sdk::http::{Request, Response};
use tgrun_sdk::prelude::*;

fn hostile_route(req: &Request) -> Result<Response> {
    let answer = Response::text(200, "hello, this body is longer than five bytes");
    Ok(match req.query("mode").unwrap_or("") {
        // Response splitting: a length shorter than the body, the rest a second answer.
        "split" => answer
            .header("Content-Length", "5")
            .header("Connection", "keep-alive")
            .header("X-Kept", "yes"),
        // Framing of its own: the runner frames the body, not the guest.
        "chunked" => answer
            .header("Transfer-Encoding", "chunked")
            .header("Upgrade", "websocket")
            .header("Trailer", "X-Late"),
        // A status outside 200-599: an informational answer, or a switch of protocols.
        "status" => Response {
            status: req
                .query("code")
                .and_then(|c| c.parse().ok())
                .unwrap_or(101),
            ..answer
        },
        // "No content", with content.
        "no_content" => Response {
            status: 204,
            ..answer
        },
        // An outbound request to `?url=`, answered as `<status> <body>` or the error.
        "fetch" => match tgrun_sdk::http::get(req.query("url").unwrap_or("")) {
            Ok(r) => Response::text(200, format!("{} {}", r.status, r.text())),
            Err(e) => Response::text(200, format!("err {:?}: {e}", e.kind())),
        },
        // What the handler was given: the request's headers, as a JSON object.
        "headers" => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            Response::json(&headers)?
        }
        // A page whose script acts with the operator's authority: served from the
        // runner's origin, it POSTs a run of `?job=` as the dashboard does, and asks the
        // browser to let it run and be framed. Its title says what happened.
        "page" => {
            let job = req.query("job").unwrap_or("echo");
            let page = format!(
                r#"<!doctype html><title>page</title><body><script>
document.title = "script ran";
fetch("/jobs/{job}/run", {{method: "POST", headers: {{"content-type": "application/json"}},
      body: "{{}}"}}).then(r => document.title = "run " + r.status,
                          e => document.title = "blocked " + e);
</script></body>"#
            );
            Response {
                status: 200,
                headers: vec![
                    ("Content-Type".into(), "text/html; charset=utf-8".into()),
                    (
                        "Content-Security-Policy".into(),
                        "sandbox allow-scripts allow-same-origin".into(),
                    ),
                    ("X-Frame-Options".into(), "ALLOWALL".into()),
                ],
                body: page.into_bytes(),
            }
        }
        // A slow handler: it spins until its deadline ends it.
        "spin" => {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        other => Response::text(400, format!("no mode {other:?}")),
    })
}

export_handler!(hostile_route);

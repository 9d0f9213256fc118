//! `GET /docs` and `GET /docs.yml`: an OpenAPI 3 description of every route, built from the
//! table below (which a test holds equal to the router's built-in routes) and from the
//! configured component routes.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::{Map, Value, json};

use crate::server::AppState;

/// One documented route.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Needs the admin token (or a loopback client).
    pub mutating: bool,
    /// (name, where: `path` or `query`, description)
    pub params: &'static [(&'static str, &'static str, &'static str)],
    /// What a JSON body carries, if the route takes one.
    pub body: Option<&'static str>,
    pub responses: &'static [(u16, &'static str)],
}

const JSON_ERROR: &str = "JSON error: {\"status\": \"error\", \"message\": ...}";

/// Every built-in route of the runner.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "GET",
        path: "/status",
        summary: "Liveness: answers Alive",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "Alive")],
    },
    RouteDoc {
        method: "GET",
        path: "/health",
        summary: "Each configured client's health, as tglib",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(
            200,
            "{\"success\": bool, \"healthy\": [...], \"unhealthy\": [...]}",
        )],
    },
    RouteDoc {
        method: "GET",
        path: "/livez",
        summary: "Liveness probe: 200 while the runner answers HTTP",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "{\"live\": true}")],
    },
    RouteDoc {
        method: "GET",
        path: "/readyz",
        summary: "Readiness probe: 200 when every enabled job's and route's module loads and every configured client answers; 503 with the reasons otherwise",
        mutating: false,
        params: &[],
        body: None,
        responses: &[
            (200, "{\"ready\": true, \"not_ready\": []}"),
            (
                503,
                "{\"ready\": false, \"not_ready\": [\"client prometheus: does not answer\", ...]}",
            ),
        ],
    },
    RouteDoc {
        method: "GET",
        path: "/metrics",
        summary: "Series written by jobs, then the runner's own metrics (text exposition format)",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "Prometheus text format")],
    },
    RouteDoc {
        method: "GET",
        path: "/config",
        summary: "service_config.json as in force, secrets as \"***\"",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "the configuration; its version in the ETag header")],
    },
    RouteDoc {
        method: "PUT",
        path: "/config",
        summary: "Replace the configuration: validated, written atomically, applied live; with If-Match, only on that version",
        mutating: true,
        params: &[],
        body: Some("{\"config\": {...}}"),
        responses: &[
            (
                200,
                "applied, with what changed and the new version (also as ETag)",
            ),
            (400, JSON_ERROR),
            (401, JSON_ERROR),
            (403, JSON_ERROR),
            (
                409,
                "the configuration is no longer at the If-Match version; nothing changed",
            ),
        ],
    },
    RouteDoc {
        method: "PATCH",
        path: "/config",
        summary: "Deep-merge into the configuration: validated, written atomically, applied live; with If-Match, only on that version",
        mutating: true,
        params: &[],
        body: Some("{\"config\": {...}}"),
        responses: &[
            (
                200,
                "applied, with what changed and the new version (also as ETag)",
            ),
            (400, JSON_ERROR),
            (401, JSON_ERROR),
            (403, JSON_ERROR),
            (
                409,
                "the configuration is no longer at the If-Match version; nothing changed",
            ),
        ],
    },
    RouteDoc {
        method: "PUT",
        path: "/log/{level}",
        summary: "Set the log level",
        mutating: true,
        params: &[("level", "path", "DEBUG, INFO, WARNING, ERROR or FATAL")],
        body: None,
        responses: &[
            (200, "Log level set to X from Y"),
            (400, JSON_ERROR),
            (401, JSON_ERROR),
            (403, JSON_ERROR),
        ],
    },
    RouteDoc {
        method: "GET",
        path: "/jobs",
        summary: "Every job: pipeline, period, enabled, module version, last run",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "{\"jobs\": [...]}")],
    },
    RouteDoc {
        method: "GET",
        path: "/jobs/{name}",
        summary: "One job",
        mutating: false,
        params: &[("name", "path", "the job's name")],
        body: None,
        responses: &[(200, "{\"name\", \"entries\": [...]}"), (404, JSON_ERROR)],
    },
    RouteDoc {
        method: "POST",
        path: "/jobs/{name}/run",
        summary: "Run a job now (pipeline manual); answers its report when it ends",
        mutating: true,
        params: &[("name", "path", "the job's name")],
        body: Some("optional {\"params\": {...}}"),
        responses: &[
            (200, "the run's outcome, logs and metrics"),
            (400, JSON_ERROR),
            (404, JSON_ERROR),
        ],
    },
    RouteDoc {
        method: "PUT",
        path: "/jobs/{name}/module",
        summary: "Upload a new version of a job's component: checked, written to the modules directory, swapped in between runs",
        mutating: true,
        params: &[("name", "path", "the job's name")],
        body: Some("the .wasm bytes (application/wasm), at most 64 MiB"),
        responses: &[
            (200, "the new version"),
            (400, JSON_ERROR),
            (413, "too large"),
        ],
    },
    RouteDoc {
        method: "POST",
        path: "/jobs/{name}/rollback",
        summary: "Return a job to its previous version",
        mutating: true,
        params: &[("name", "path", "the job's name")],
        body: None,
        responses: &[(200, "the version now running"), (409, JSON_ERROR)],
    },
    RouteDoc {
        method: "GET",
        path: "/runs",
        summary: "Run history, newest first",
        mutating: false,
        params: &[
            ("job", "query", "only this job"),
            ("outcome", "query", "only this outcome"),
            (
                "limit",
                "query",
                "rows, 1 to 1000 (default 100); 503 while answers not yet read hold their bound",
            ),
        ],
        body: None,
        responses: &[(200, "{\"runs\": [...]}"), (400, JSON_ERROR)],
    },
    RouteDoc {
        method: "GET",
        path: "/",
        summary: "The dashboard: pipelines, jobs, recent runs and failures, client health; run, enable, disable and roll back",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "HTML")],
    },
    RouteDoc {
        method: "GET",
        path: "/dashboard/state",
        summary: "What the dashboard shows, in one answer (polled by the page)",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(
            200,
            "{\"pipelines\": [...], \"failures\": [...], \"clients\": [...], ...}",
        )],
    },
    RouteDoc {
        method: "GET",
        path: "/docs",
        summary: "This description, as a page",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "HTML")],
    },
    RouteDoc {
        method: "GET",
        path: "/docs.yml",
        summary: "This description, as OpenAPI 3 YAML",
        mutating: false,
        params: &[],
        body: None,
        responses: &[(200, "OpenAPI YAML")],
    },
];

/// The OpenAPI document: the built-in routes and the configured component routes.
pub fn openapi(state: &AppState) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for r in ROUTES {
        let mut op = json!({
            "summary": r.summary,
            "responses": r.responses.iter().map(|(code, what)| (code.to_string(), json!({"description": what}))).collect::<Map<_, _>>(),
        });
        if !r.params.is_empty() {
            op["parameters"] = r
                .params
                .iter()
                .map(|(name, place, what)| {
                    json!({"name": name, "in": place, "required": *place == "path",
                           "description": what, "schema": {"type": "string"}})
                })
                .collect();
        }
        if let Some(body) = r.body {
            op["requestBody"] = json!({"description": body,
                "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        if r.mutating {
            op["security"] = json!([{"bearer": []}]);
        }
        add(&mut paths, r.path, r.method, op);
    }
    for route in &state.service.config().service.routes {
        let op = json!({
            "summary": format!("Answered by the component {} (a fresh instance per request)", route.module),
            "responses": {"default": {"description": "the component's answer"},
                          "500": {"description": JSON_ERROR}},
        });
        add(&mut paths, &route.path, &route.method, op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "tgrun runner", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Mutating routes need Authorization: Bearer <TGRUN_ADMIN_TOKEN>, or a loopback client when no token is set."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}

fn add(paths: &mut Map<String, Value>, path: &str, method: &str, op: Value) {
    let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
    entry[method.to_ascii_lowercase()] = op;
}

pub async fn docs_yml(State(state): State<AppState>) -> impl IntoResponse {
    let yaml = serde_yaml::to_string(&openapi(&state)).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/yaml")], yaml)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained page (no scripts from elsewhere: the runner may have no internet).
pub async fn docs(State(state): State<AppState>) -> Html<String> {
    let spec = openapi(&state);
    let mut rows = String::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, ops) in paths {
            for (method, op) in ops.as_object().into_iter().flatten() {
                let auth = if op.get("security").is_some() {
                    "token or loopback"
                } else {
                    "open"
                };
                rows.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{auth}</td></tr>\n",
                    escape(&method.to_ascii_uppercase()),
                    escape(path),
                    escape(op["summary"].as_str().unwrap_or("")),
                ));
            }
        }
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>tgrun runner API</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.3em 1em;border-bottom:1px solid #ddd}}</style>\
         </head><body><h1>tgrun runner API</h1><p>OpenAPI 3: <a href=\"/docs.yml\">/docs.yml</a></p>\
         <table><tr><th>method</th><th>path</th><th>what</th><th>who</th></tr>\n{rows}</table></body></html>"
    ))
}

#[cfg(test)]
mod tests {
    use super::ROUTES;
    use crate::config::service::BUILTIN_ROUTES;

    #[test]
    fn the_docs_cover_exactly_the_built_in_routes() {
        let mut documented: Vec<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
        let mut built_in = BUILTIN_ROUTES.to_vec();
        documented.sort();
        built_in.sort();
        assert_eq!(documented, built_in);
    }
}

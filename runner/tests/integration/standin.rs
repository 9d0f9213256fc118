//! A stand-in for the Terragraph API service (no real controller can run here), speaking
//! the same endpoints: the NMS's `GET /api/v1/networks`, each controller's
//! `POST /api/{endpoint}`, and Keycloak's client-credentials token endpoint.
//!
//! Networks can be `Good` (answers `getTopology` with its own topology), `Slow` (answers
//! after 5 s) or `Failing` (answers 500).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Good,
    Slow,
    Failing,
    /// Answers 3 MiB of JSON.
    Huge,
    /// Streams an answer of 300 MiB, made as it is sent (counted in `Seen::streamed`).
    Enormous,
    /// Answers as `Good`, after 300 ms.
    Delayed,
}

/// What the stand-in saw, for the tests to check.
#[derive(Default)]
pub struct Seen {
    /// (network, endpoint, bearer token or "", body) of every controller request.
    pub requests: Mutex<Vec<(String, String, String, Value)>>,
    pub tokens_issued: AtomicU64,
    /// Bytes of `Enormous` answers handed to the connection so far.
    pub streamed: Arc<AtomicU64>,
    /// Controller requests being answered now, and the most there ever were at once.
    pub in_flight: AtomicU64,
    pub most_in_flight: AtomicU64,
}

pub struct StandIn {
    pub nms_port: u16,
    pub keycloak_url: String,
    pub seen: Arc<Seen>,
}

async fn bind() -> (tokio::net::TcpListener, u16) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[derive(Clone)]
struct Controller {
    network: String,
    kind: Kind,
    seen: Arc<Seen>,
    /// With Keycloak on, the only token accepted is the latest issued.
    require_token: bool,
}

async fn controller(
    State(c): State<Controller>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    c.seen.requests.lock().unwrap().push((
        c.network.clone(),
        endpoint.clone(),
        token.clone(),
        body.clone(),
    ));
    if c.require_token {
        let latest = format!("token-{}", c.seen.tokens_issued.load(Ordering::SeqCst));
        if token != latest {
            return (StatusCode::UNAUTHORIZED, "bad token").into_response();
        }
    }
    if c.kind == Kind::Delayed {
        let now = c.seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    match c.kind {
        Kind::Failing => (StatusCode::INTERNAL_SERVER_ERROR, "controller exploded").into_response(),
        Kind::Huge => axum::Json(json!({"blob": "x".repeat(3 << 20)})).into_response(),
        Kind::Enormous => {
            // `{"blob": "xxx...` and never the end: 300 chunks of 1 MiB, each made only
            // when the connection takes it.
            let streamed = c.seen.streamed.clone();
            let chunks = futures_util::stream::iter(0..300).map(move |i| {
                let chunk = if i == 0 {
                    bytes::Bytes::from_static(b"{\"blob\": \"")
                } else {
                    bytes::Bytes::from(vec![b'x'; 1 << 20])
                };
                streamed.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(chunk)
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from_stream(chunks))
                .unwrap()
        }
        Kind::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(json!({"late": true})).into_response()
        }
        Kind::Good | Kind::Delayed => match endpoint.as_str() {
            "getTopology" => axum::Json(json!({
                "name": c.network,
                "nodes": [{"name": format!("{}-node1", c.network)}],
                "links": []
            }))
            .into_response(),
            _ => axum::Json(json!({"endpoint": endpoint, "params": body})).into_response(),
        },
    }
}

async fn token(State(seen): State<Arc<Seen>>, body: String) -> Response {
    if !body.contains("grant_type=client_credentials") || !body.contains("client_secret=s3cret") {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    let n = seen.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(json!({"access_token": format!("token-{n}"), "expires_in": 1})).into_response()
}

impl StandIn {
    /// Starts the controllers, the NMS listing them, and Keycloak (tokens live 1 s).
    pub async fn start(networks: &[(&str, Kind)], keycloak: bool) -> Self {
        let seen = Arc::new(Seen::default());
        let mut list = Vec::new();
        for (name, kind) in networks {
            let (l, port) = bind().await;
            let app = Router::new()
                .route("/api/{endpoint}", post(controller))
                .with_state(Controller {
                    network: name.to_string(),
                    kind: *kind,
                    seen: seen.clone(),
                    require_token: keycloak,
                });
            tokio::spawn(async move { axum::serve(l, app).await });
            list.push(json!({"name": name, "primary": {"api_ip": "127.0.0.1", "api_port": port}}));
        }
        let (l, nms_port) = bind().await;
        let listing = Value::Array(list);
        let nms = Router::new().route(
            "/api/v1/networks",
            get(move || {
                let listing = listing.clone();
                async move { axum::Json(listing) }
            }),
        );
        tokio::spawn(async move { axum::serve(l, nms).await });

        let (l, kc_port) = bind().await;
        let kc = Router::new()
            .route("/auth/realms/tg/protocol/openid-connect/token", post(token))
            .with_state(seen.clone());
        tokio::spawn(async move { axum::serve(l, kc).await });
        Self {
            nms_port,
            keycloak_url: format!("http://127.0.0.1:{kc_port}"),
            seen,
        }
    }

    /// The `apiservice` section of `config.json` for this stand-in.
    pub fn config(&self, keycloak: bool) -> Value {
        let mut c = json!({"nms": {"host": "127.0.0.1", "port": self.nms_port}});
        if keycloak {
            c["keycloak_enabled"] = json!(true);
            c["keycloak"] = json!({"host": self.keycloak_url, "realm": "tg",
                                   "client_id": "runner", "client_secret": "s3cret"});
        }
        c
    }

    pub fn requests(&self) -> Vec<(String, String, String, Value)> {
        self.seen.requests.lock().unwrap().clone()
    }
}

/// Per-network tallies of a request log.
pub fn by_network(reqs: &[(String, String, String, Value)]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (n, ..) in reqs {
        *m.entry(n.clone()).or_default() += 1;
    }
    m
}

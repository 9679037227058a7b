//! A small DSL: backends that say who they are and echo what they received, and a gateway
//! started on a routes file that a test can rewrite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use kit::config::Sources;
use serde_json::json;
use tokio::sync::oneshot;

#[derive(Clone)]
struct BackendState {
    name: String,
    ready: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

pub struct Backend {
    pub addr: SocketAddr,
    ready: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

async fn readyz(State(s): State<BackendState>) -> StatusCode {
    if s.ready.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

async fn echo(State(s): State<BackendState>, req: Request) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    if req.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let headers: serde_json::Map<String, serde_json::Value> =
        req.headers().iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default()))).collect();
    Json(json!({ "backend": s.name, "path": req.uri().to_string(), "headers": headers }))
}

impl Backend {
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, true).await
    }

    /// A backend whose health check fails until `set_ready(true)`.
    pub async fn start_unready(name: &str) -> Self {
        Self::start_with(name, false).await
    }

    async fn start_with(name: &str, ready: bool) -> Self {
        let state = BackendState {
            name: name.to_string(),
            ready: Arc::new(AtomicBool::new(ready)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new().route("/readyz", get(readyz)).fallback(echo).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { addr, ready: state.ready, hits: state.hits, _stop: stop }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A `[[route]]` block with fast health checks.
pub fn route(name: &str, extra: &str, instances: &[SocketAddr]) -> String {
    let list: Vec<String> = instances.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[[route]]\nname = \"{name}\"\n{extra}\ninstances = [{}]\nhealth = {{ interval = \"100ms\", timeout = \"500ms\" }}\n",
        list.join(", ")
    )
}

pub struct Gateway {
    pub base: String,
    pub admin: String,
    /// The TLS listener, when the test turned TLS on.
    pub tls: Option<SocketAddr>,
    pub routes_file: PathBuf,
    pub client: reqwest::Client,
    _stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_gateway(routes: &str, extra: &[(&str, &str)]) -> Gateway {
    let routes_file = std::env::temp_dir().join(format!("gateway-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&routes_file, routes).expect("routes file");
    let mut vars: Vec<(String, String)> = vec![
        ("SLIPWAY_ENV".into(), "test".into()),
        ("SLIPWAY_GATEWAY_PORT".into(), "0".into()),
        ("SLIPWAY_GATEWAY_ADMIN_PORT".into(), "0".into()),
        ("SLIPWAY_GATEWAY_ROUTES_PATH".into(), routes_file.display().to_string()),
        ("SLIPWAY_GATEWAY_RELOAD_EVERY".into(), "100ms".into()),
        // Taking connections at once: a test asks as soon as the gateway is built.
        ("SLIPWAY_GATEWAY_WARM_UP".into(), "0s".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = gateway::Config::load(&Sources::from_vars(vars)).expect("gateway config");
    let app = gateway::Application::build(config).await.expect("gateway builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let admin = format!("http://127.0.0.1:{}", app.admin_port());
    let tls = app.tls_port().map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Gateway { base, admin, tls, routes_file, client: reqwest::Client::new(), _stop: stop, task }
}

impl Gateway {
    /// Stops the gateway as SIGTERM would, and waits until it has drained and exited.
    pub async fn stop(self) {
        drop(self._stop);
        self.task.await.expect("the gateway task").expect("the gateway stops cleanly");
    }

    /// The address the gateway listens on, for raw connections.
    pub fn addr(&self) -> SocketAddr {
        self.base.trim_start_matches("http://").parse().expect("the gateway's address")
    }

    pub async fn get(&self, host: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("host", host)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// The backend that answered a path, or the status if none did.
    pub async fn who(&self, host: &str, path: &str) -> Result<String, u16> {
        let res = self.get(host, path).await;
        if res.status() != 200 {
            return Err(res.status().as_u16());
        }
        let body: serde_json::Value = res.json().await.expect("json");
        Ok(body["backend"].as_str().expect("backend").to_string())
    }

    /// Sends `head` (a request head without its final blank line; `Connection: close` is
    /// added) and `body` byte for byte, and returns the status and the response body: for
    /// requests a client library would refuse to send or would normalise.
    pub async fn raw(&self, head: &str, body: &[u8]) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr()).await.expect("connect");
        let mut request = format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
        request.extend_from_slice(body);
        // The gateway may answer and close before reading everything (431, 413).
        let _ = stream.write_all(&request).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    pub fn rewrite(&self, routes: &str) {
        let tmp = self.routes_file.with_extension("tmp");
        std::fs::write(&tmp, routes).expect("write");
        std::fs::rename(&tmp, &self.routes_file).expect("replace the routes file atomically");
    }

    /// The admin API's `/routes` document.
    pub async fn admin_routes(&self) -> serde_json::Value {
        let res = self.client.get(format!("{}/routes", self.admin)).send().await.expect("admin");
        res.json().await.expect("json")
    }

    /// How many instances a route has, per the admin API (0 if the route is unknown).
    pub async fn instances(&self, route: &str) -> usize {
        let routes = self.admin_routes().await;
        routes["routes"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == route))
            .and_then(|r| r["instances"].as_array())
            .map_or(0, Vec::len)
    }

    pub async fn healthy(&self, addr: SocketAddr) -> bool {
        let routes = self.admin_routes().await;
        routes["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["instances"].as_array().into_iter().flatten())
            .any(|i| i["addr"] == addr.to_string() && i["healthy"] == true)
    }
}

/// A token issuer for edge-auth tests: signing keys, and a JWKS served on an ephemeral port
/// that a test can change (or make fail) and whose fetches it can count.
pub struct Issuer {
    pub keys: auth::jwt::Keys,
    pub jwks_url: String,
    pub issuer: String,
    /// The JWKS served; `Null` makes the endpoint answer 500.
    pub served: Arc<std::sync::Mutex<serde_json::Value>>,
    pub fetches: Arc<AtomicUsize>,
}

/// Keys signing as auth would with `vars` (e.g. another audience, or a zero TTL).
pub fn signing_keys(vars: &[(&str, &str)]) -> auth::jwt::Keys {
    let mut all = vec![("SLIPWAY_ENV", "test")];
    all.extend_from_slice(vars);
    let config = auth::Config::load(&Sources::from_vars(all)).expect("auth config");
    auth::jwt::Keys::new(&config.jwt, &auth::jwt::generate_pem().expect("pem")).expect("keys")
}

impl Issuer {
    pub async fn start() -> Self {
        let config = auth::Config::load(&Sources::from_vars([("SLIPWAY_ENV", "test")])).expect("auth config");
        let keys = signing_keys(&[]);
        let served = Arc::new(std::sync::Mutex::new(keys.jwks()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (s, f) = (served.clone(), fetches.clone());
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get(move || async move {
                f.fetch_add(1, Ordering::SeqCst);
                let jwks = s.lock().expect("jwks").clone();
                if jwks.is_null() { Err(StatusCode::INTERNAL_SERVER_ERROR) } else { Ok(Json(jwks)) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let jwks_url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { keys, jwks_url, issuer: config.jwt.issuer, served, fetches }
    }

    /// The gateway settings that make it verify this issuer's tokens.
    pub fn vars(&self) -> [(&str, &str); 2] {
        [("SLIPWAY_GATEWAY_JWKS_URL", &self.jwks_url), ("SLIPWAY_GATEWAY_JWT_ISSUER", &self.issuer)]
    }

    /// A valid access token for a new user, and the user's id.
    pub fn token(&self) -> (String, uuid::Uuid) {
        let user = uuid::Uuid::new_v4();
        (self.keys.issue(user, uuid::Uuid::new_v4()).expect("token"), user)
    }

    /// Serves `jwks` from now on (`Null`: fail with 500).
    pub fn serve(&self, jwks: serde_json::Value) {
        *self.served.lock().expect("jwks") = jwks;
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

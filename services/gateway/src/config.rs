//! The gateway's configuration: the shared settings plus `SLIPWAY_GATEWAY_…`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kit::config::{Common, ConfigErrors, Sources};
use kit::service::Service;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// The routes file (TOML), reloaded when it changes; none when set to an empty value.
    pub routes_file: Option<PathBuf>,
    /// How often the routes file is checked for changes.
    pub reload_every: Duration,
    /// The admin listener (routes, instances, metrics): never expose it publicly.
    pub admin_addr: SocketAddr,
    /// The admin API on a Unix socket too, which only this container reaches: the health
    /// check and `gateway routes` ask it, so with a successor sharing the ports each asks its
    /// own process.
    pub admin_socket: Option<PathBuf>,
    /// Bind the listeners so that a successor can bind them too (SO_REUSEPORT).
    pub reuse_port: bool,
    /// How long a starting gateway may wait for Docker's first listing and its instances'
    /// first health verdicts before it takes connections (0: it takes them at once).
    pub warm_up: Duration,
    /// After SIGTERM, how long kept-alive connections may make one more request (answered
    /// with `Connection: close`) before the idle ones are closed.
    pub drain_time: Duration,
    /// Where auth publishes its JWKS, for protected routes.
    pub jwks_url: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// How often the JWKS is fetched again once in use.
    pub jwks_refresh: Duration,
    /// Time allowed to read a request's headers (slowloris).
    pub header_timeout: Duration,
    /// How long a client connection may move no byte either way before it is closed.
    pub idle_timeout: Duration,
    /// How long an upstream may take to answer.
    pub upstream_timeout: Duration,
    /// TLS termination, when `SLIPWAY_GATEWAY_TLS_DIR` names a folder of `<host>.crt`/`.key` pairs.
    pub tls: Option<Tls>,
    /// Docker discovery, when `SLIPWAY_GATEWAY_DOCKER_SOCKET` names the engine's socket.
    pub docker: Option<crate::docker::Settings>,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    /// Plain-HTTP requests are redirected (308) to HTTPS on this public port (443: none
    /// shown); `None` when `SLIPWAY_GATEWAY_HTTPS_REDIRECT=false`.
    pub redirect_port: Option<u16>,
    /// The `Strict-Transport-Security` value on HTTPS answers; `None` when turned off.
    pub hsts: Option<String>,
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        let mut r = sources.reader(crate::NAME);
        let common = Common::read(&mut r, 8080);
        let admin_default: SocketAddr = ([127, 0, 0, 1], 9090).into();
        let public_url: String = r.get("PUBLIC_URL", "http://localhost:8080".to_string());
        let config = Self {
            routes_file: Some(r.get("ROUTES_PATH", "gateway.toml".to_string()))
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from),
            reload_every: r.get("RELOAD_EVERY", Duration::from_secs(1)),
            admin_addr: SocketAddr::new(
                r.get("ADMIN_HOST", admin_default.ip()),
                r.get("ADMIN_PORT", admin_default.port()),
            ),
            admin_socket: r
                .optional::<String>("ADMIN_SOCKET")
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from),
            reuse_port: r.get("REUSE_PORT", true),
            warm_up: r.get("WARM_UP", Duration::from_secs(10)),
            drain_time: r.get("DRAIN_TIME", Duration::from_secs(3)),
            jwks_url: r.get("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json".to_string()),
            jwt_issuer: r.get("JWT_ISSUER", token::default_issuer(&public_url)),
            jwt_audience: r.get("JWT_AUDIENCE", token::DEFAULT_AUDIENCE.to_string()),
            jwks_refresh: r.get("JWKS_REFRESH", Duration::from_secs(300)),
            header_timeout: r.get("HEADER_TIMEOUT", Duration::from_secs(10)),
            upstream_timeout: r.get("UPSTREAM_TIMEOUT", Duration::from_secs(30)),
            idle_timeout: r.get("IDLE_TIMEOUT", Duration::from_secs(60)),
            tls: {
                let dir = r.optional::<String>("TLS_DIR").filter(|d| !d.trim().is_empty());
                let port = r.get("TLS_PORT", 8443u16);
                let redirect = r.get("HTTPS_REDIRECT", true);
                let public_port = r.get("HTTPS_PUBLIC_PORT", if port == 0 { 443 } else { port });
                let hsts: String = r.get("HSTS", "max-age=31536000".to_string());
                let hsts = Some(hsts).filter(|h| !h.trim().is_empty() && h.trim() != "off");
                dir.map(|d| Tls {
                    dir: PathBuf::from(d),
                    addr: SocketAddr::new(common.http.addr.ip(), port),
                    redirect_port: redirect.then_some(public_port),
                    hsts,
                })
            },
            docker: {
                let socket = r.optional::<String>("DOCKER_SOCKET").filter(|s| !s.trim().is_empty());
                let network = r.optional::<String>("DOCKER_NETWORK").filter(|n| !n.trim().is_empty());
                let resync = r.get("DOCKER_RESYNC", Duration::from_secs(30));
                let scope = r.get("DOCKER_PROJECT", crate::docker::Scope::Auto);
                socket.map(|socket| crate::docker::Settings { socket, network, resync, scope })
            },
            common,
        };
        r.finish()?;
        Ok(config)
    }
}

impl Service for Config {
    const NAME: &'static str = crate::NAME;

    fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        Config::load(sources)
    }

    fn common(&self) -> &Common {
        &self.common
    }

    /// The proxy answers for the routes; the gateway's own health is on the admin listener,
    /// its Unix socket when there is one.
    fn probe(&self) -> kit::service::Probe {
        match &self.admin_socket {
            Some(path) => kit::service::Probe::Unix(path.clone()),
            None => kit::service::Probe::Tcp(kit::service::probe_addr(self.admin_addr)),
        }
    }

    type App = crate::Application;

    async fn build(self) -> anyhow::Result<crate::Application> {
        crate::Application::build(self).await
    }
}

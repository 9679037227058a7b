//! The `main` of every service binary: `serve` (the default), `healthcheck`, `check-config`.
//!
//! Exit codes: 0 success; 1 the service failed (the cause is logged); 2 bad command line;
//! 78 the configuration is invalid (every problem is printed).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Common, ConfigErrors, Sources};
use crate::migrate::Migrations;

/// Exit code for an invalid configuration (sysexits' EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// A future that resolves when a service should stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A deployable: its configuration type knows how to load itself and run the service.
pub trait Service: Sized + Send + 'static {
    /// The service's name: its binary, its compose service and its settings' scope.
    const NAME: &'static str;
    /// Reads the configuration, reporting every problem at once.
    fn load(sources: &Sources) -> Result<Self, ConfigErrors>;
    /// The settings every service has.
    fn common(&self) -> &Common;
    /// The schemas the service migrates at start, in order (the bus's before its own).
    fn migrations() -> Vec<Migrations> {
        Vec::new()
    }
    /// Where the `healthcheck` subcommand probes `/readyz`: the HTTP listener by default.
    fn probe(&self) -> Probe {
        Probe::Tcp(probe_addr(self.common().http.addr))
    }
    /// The service built and bound, not yet serving.
    type App: App;
    /// Migrates (when configured to), connects and binds: everything before serving.
    fn build(self) -> impl Future<Output = anyhow::Result<Self::App>> + Send;
    /// Builds and runs the service until `shutdown` resolves, then drains.
    fn run(self, shutdown: Shutdown) -> impl Future<Output = anyhow::Result<()>> + Send {
        async move { self.build().await?.run_until(shutdown).await }
    }
}

/// A service built and bound, not yet serving: what [`Service::build`] returns, so the CLI
/// and tests start any service the same way (`testkit::spawn`).
pub trait App: Send + 'static {
    /// The port its HTTP listener bound (a test binds port 0 and reads it here).
    fn port(&self) -> u16;
    /// Serves until `shutdown` resolves, then drains in-flight work.
    fn run_until(self, shutdown: Shutdown) -> impl Future<Output = anyhow::Result<()>> + Send;
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Probe this service's own /readyz; exit 0 if ready, 1 if not (for Docker HEALTHCHECK).
    Healthcheck,
    /// Load the configuration, print every problem, exit 0 if there are none.
    CheckConfig,
}

/// Parses the command line and runs the chosen command for service `S`; `scopes` are the
/// project's deployables, whose settings `S` sees in its environment and leaves alone.
pub fn main<S: Service>(scopes: &[&str]) -> ExitCode {
    let cli = Cli::parse_from(std::env::args_os());
    let config = match S::load(&Sources::from_process(scopes)) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: {errors}", S::NAME);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // One worker (TOKIO_WORKER_THREADS=1, e.g. a container limited to one CPU) runs the
    // single-threaded scheduler: the same work without the cost of work stealing.
    let single = std::env::var("TOKIO_WORKER_THREADS").is_ok_and(|n| n.trim() == "1");
    let mut builder = if single {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("{}: configuration ok ({})", S::NAME, config.common().environment);
            ExitCode::SUCCESS
        }
        Command::Healthcheck => match runtime.block_on(probe_ready(&config.probe())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{}: not ready: {e}", S::NAME);
                ExitCode::FAILURE
            }
        },
        Command::Serve => {
            if let Err(e) = crate::telemetry::init(config.common(), S::NAME) {
                eprintln!("{}: {e:#}", S::NAME);
                return ExitCode::from(EXIT_CONFIG);
            }
            match runtime.block_on(async { config.run(Box::pin(crate::server::shutdown_signal())).await }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "stopped on error");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The address to probe for a listen address: a wildcard listen is probed on loopback.
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Where a service's own subcommands reach its listener: a TCP address, or a Unix socket
/// (which only that container can reach, even when others share its network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An HTTP listener on this address.
    Tcp(SocketAddr),
    /// An HTTP listener on this Unix socket (the gateway's admin socket).
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Tcp(addr) => write!(f, "{addr}"),
            Probe::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `GET /readyz` over plain HTTP/1.1, so images need no curl.
pub async fn probe_ready(target: &Probe) -> anyhow::Result<()> {
    let (status, _) = get(target, "/readyz").await?;
    anyhow::ensure!(status == 200, "{target}/readyz answered {status}");
    Ok(())
}

/// `GET path` over plain HTTP/1.1 with `Connection: close`, within 3 s: the status and the
/// body (for a service's own subcommands that ask its listeners, so images need no curl).
pub async fn get(target: &Probe, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(
        mut stream: S,
        request: String,
    ) -> std::io::Result<Vec<u8>> {
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok(response)
    }
    let attempt = async {
        match target {
            Probe::Tcp(addr) => {
                let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                exchange(tokio::net::TcpStream::connect(addr).await?, request).await
            }
            Probe::Unix(socket) => {
                let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
                exchange(tokio::net::UnixStream::connect(socket).await?, request).await
            }
        }
    };
    let response = tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .map_err(|_| anyhow::anyhow!("{target} did not answer within 3s"))?
        .map_err(|e| anyhow::anyhow!("{target}: {e}"))?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| anyhow::anyhow!("{target} answered no HTTP status"))?;
    Ok((status, response[split..].to_vec()))
}

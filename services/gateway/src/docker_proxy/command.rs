//! `gateway docker-proxy [healthcheck]`: the proxy as a process. Settings:
//! `SLIPWAY_DOCKER_PROXY_PORT` (2375), `SLIPWAY_DOCKER_PROXY_SOCKET` (/var/run/docker.sock),
//! `SLIPWAY_LOG`, `SLIPWAY_LOG_FORMAT`. Exit codes as every service's: 0, 1, 78 for bad settings.

use std::net::SocketAddr;
use std::process::ExitCode;

use kit::config::LogFormat;

const EXIT_CONFIG: u8 = 78;

struct Settings {
    host: std::net::IpAddr,
    port: u16,
    socket: std::path::PathBuf,
    log: String,
    format: LogFormat,
}

// The docker-proxy is a second, minimal process of the gateway's binary, beside the engine's
// socket: it reads its few settings itself rather than the gateway's whole configuration.
#[allow(clippy::disallowed_methods, reason = "the docker-proxy's own four settings, not a service's")]
fn settings() -> Result<Settings, String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let port = match var("SLIPWAY_DOCKER_PROXY_PORT") {
        Some(p) => {
            p.trim().parse().map_err(|_| format!("SLIPWAY_DOCKER_PROXY_PORT: expected a port, got {p:?}"))?
        }
        None => 2375,
    };
    let format = match var("SLIPWAY_LOG_FORMAT").as_deref() {
        None | Some("json") => LogFormat::Json,
        Some("pretty") => LogFormat::Pretty,
        Some(other) => return Err(format!("SLIPWAY_LOG_FORMAT: expected json or pretty, got {other:?}")),
    };
    Ok(Settings {
        host: var("SLIPWAY_HOST").and_then(|h| h.trim().parse().ok()).unwrap_or([127, 0, 0, 1].into()),
        port,
        socket: var("SLIPWAY_DOCKER_PROXY_SOCKET").unwrap_or_else(|| "/var/run/docker.sock".into()).into(),
        log: var("SLIPWAY_LOG").unwrap_or_else(|| "info".into()),
        format,
    })
}

/// Runs `docker-proxy` with the arguments after it.
pub fn main(args: &[String]) -> ExitCode {
    let settings = match settings() {
        Ok(s) => s,
        Err(problem) => {
            eprintln!("docker-proxy: {problem}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("docker-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.first().map(String::as_str) {
        None | Some("serve") => runtime.block_on(serve(settings)),
        Some("healthcheck") => runtime.block_on(healthcheck(settings.port)),
        Some(other) => {
            eprintln!("docker-proxy: unknown command {other:?}; expected serve or healthcheck");
            ExitCode::from(2)
        }
    }
}

async fn serve(s: Settings) -> ExitCode {
    if let Err(e) = kit::telemetry::init_with_writer(&s.log, s.format, std::io::stderr) {
        eprintln!("docker-proxy: {e:#}");
        return ExitCode::FAILURE;
    }
    let listener = match tokio::net::TcpListener::bind(SocketAddr::new(s.host, s.port)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, port = s.port, "docker proxy cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match super::serve(listener, s.socket, kit::server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "docker proxy failed");
            ExitCode::FAILURE
        }
    }
}

/// Pings the engine through the proxy: healthy when both answer.
async fn healthcheck(port: u16) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"GET /_ping HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), probe).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

//! This machine: what the README's two commands need, found or named with its install command.

use std::path::Path;
use std::time::Duration;

use super::compose::ComposeFile;
use super::report::Report;

/// Docker and compose versions below these are refused; `watch` needs compose 2.22.
const DOCKER_MIN: (u32, u32) = (20, 10);
const COMPOSE_MIN: (u32, u32) = (2, 17);
const COMPOSE_WATCH: (u32, u32) = (2, 22);
const POSTGRES_MIN: u32 = 13;

/// Docker, compose, Postgres, the published ports, the secrets.
pub(super) async fn check(dir: &Path, database_url: Option<&str>, report: &mut Report) {
    docker_and_compose(report).await;
    postgres(database_url, report).await;
    ports(dir, report).await;
    secrets(dir, report);
}

/// Docker, then compose if Docker answers.
pub(super) async fn docker_and_compose(report: &mut Report) {
    if docker(report).await {
        compose(report).await;
    }
}

/// The first line a command printed, or why it did not run (`Err(None)`: not installed).
async fn output(program: &str, args: &[&str], dir: Option<&Path>) -> Result<String, Option<String>> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).kill_on_drop(true);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    match tokio::time::timeout(Duration::from_secs(15), cmd.output()).await {
        Err(_) => Err(Some(format!("`{program} {}` did not answer in 15 s", args.join(" ")))),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(None),
        Ok(Err(e)) => Err(Some(e.to_string())),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(Some(err.lines().find(|l| !l.trim().is_empty()).unwrap_or("failed").trim().to_string()))
        }
    }
}

/// `major.minor` of a version string such as `28.2.2`, `v2.26.1` or `2.26.1-4`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().trim_start_matches('v').split(['.', '-', '+']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

async fn docker(report: &mut Report) -> bool {
    match output("docker", &["version", "--format", "{{.Server.Version}}"], None).await {
        Err(None) => {
            report.problem(
                "Docker is not installed (no `docker` on the PATH)",
                "Debian/Ubuntu: `apt-get install docker.io`, or Docker Engine from docs.docker.com",
            );
            false
        }
        Err(Some(why)) => {
            report.problem(
                format!("the Docker daemon does not answer: {why}"),
                "start it (`systemctl start docker`), or check DOCKER_HOST and that you may use its socket \
                 (`usermod -aG docker $USER`)",
            );
            false
        }
        Ok(version) => match major_minor(&version) {
            Some(v) if v >= DOCKER_MIN => {
                report.ok(format!("Docker Engine {version}"));
                true
            }
            _ => {
                report.problem(
                    format!(
                        "Docker Engine {version} is too old (Slipway needs {}.{} or newer)",
                        DOCKER_MIN.0, DOCKER_MIN.1
                    ),
                    "upgrade Docker Engine",
                );
                false
            }
        },
    }
}

async fn compose(report: &mut Report) {
    match output("docker", &["compose", "version", "--short"], None).await {
        Err(_) => report.problem(
            "Docker Compose v2 is missing (`docker compose` does not run)",
            "Debian/Ubuntu: `apt-get install docker-compose` (v2 in Debian 13 and Ubuntu 24.04), or the \
             docker-compose-plugin package from Docker's repository",
        ),
        Ok(version) => match major_minor(&version) {
            Some(v) if v < COMPOSE_MIN => report.problem(
                format!(
                    "Docker Compose {version} is too old (Slipway needs {}.{} or newer)",
                    COMPOSE_MIN.0, COMPOSE_MIN.1
                ),
                "upgrade the compose plugin",
            ),
            Some(v) if v < COMPOSE_WATCH => {
                report.ok(format!("Docker Compose {version}"));
                report.note("`docker compose watch` needs compose 2.22 or newer; everything else works");
            }
            _ => report.ok(format!("Docker Compose {version}")),
        },
    }
}

/// The server `--database-url`/`DATABASE_URL` names; without one, the binaries `slipway dev`
/// starts a throwaway cluster with (the compose stack brings its own Postgres).
async fn postgres(database_url: Option<&str>, report: &mut Report) {
    let Some(url) = database_url else {
        match devdb::server_binaries() {
            Ok(dir) => report.ok(format!(
                "Postgres server binaries in {} (`slipway dev` and the tests start a throwaway cluster)",
                dir.display()
            )),
            Err(e) => report.note(format!("{e:#} — only `slipway dev` and the tests need them")),
        }
        return;
    };
    let shown = url::Url::parse(url).map_or_else(
        |_| "DATABASE_URL".to_string(),
        |mut u| {
            let _ = u.set_password(None);
            u.to_string()
        },
    );
    let version = async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let num: String = sqlx::query_scalar("SHOW server_version_num").fetch_one(&mut conn).await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(num)
    };
    match tokio::time::timeout(Duration::from_secs(5), version).await {
        Err(_) => report.problem(
            format!("Postgres at {shown} did not answer in 5 s"),
            "start it, or fix DATABASE_URL (--database-url)",
        ),
        Ok(Err(e)) => report.problem(
            format!("cannot reach Postgres at {shown}: {e}"),
            "start it, or fix DATABASE_URL (--database-url)",
        ),
        Ok(Ok(num)) => match num.parse::<u32>().map(|n| n / 10_000) {
            Ok(major) if major >= POSTGRES_MIN => report.ok(format!("Postgres {major} at {shown}")),
            _ => report.problem(
                format!("Postgres at {shown} is version {num}; Slipway needs {POSTGRES_MIN} or newer"),
                "upgrade it, or point DATABASE_URL at a newer server",
            ),
        },
    }
}

/// The loopback ports the dev stack publishes are free, or held by this project's stack.
async fn ports(dir: &Path, report: &mut Report) {
    let dotenv = std::fs::read_to_string(dir.join(".env")).unwrap_or_default();
    let setting = |var: &str| {
        std::env::var(var).ok().or_else(|| {
            dotenv.lines().find_map(|l| l.strip_prefix(var)?.strip_prefix('=').map(|v| v.trim().to_string()))
        })
    };
    let http = setting("SLIPWAY_HTTP_PUBLISH").unwrap_or_else(|| "127.0.0.1:8080".into());
    let pg = setting("SLIPWAY_POSTGRES_PUBLISH").unwrap_or_else(|| "5433".into());
    let wanted = [
        (
            http.rsplit(':').next().unwrap_or("8080").to_string(),
            "the gateway",
            "SLIPWAY_HTTP_PUBLISH=127.0.0.1:8081",
        ),
        ("9090".to_string(), "the gateway's admin page (dev)", ""),
        (pg, "Postgres (dev)", "SLIPWAY_POSTGRES_PUBLISH=5434"),
    ];
    let mut taken = Vec::new();
    for (port, what, setting) in wanted {
        let Ok(number) = port.parse::<u16>() else {
            report.problem(format!("{port:?} is not a port number ({what})"), "fix it in .env");
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", number)).is_err() {
            taken.push((number, what, setting));
        }
    }
    if taken.is_empty() {
        report.ok("the ports the dev stack publishes are free");
        return;
    }
    let running = output("docker", &["compose", "ps", "--status", "running", "-q"], Some(dir)).await;
    if running.is_ok_and(|ids| !ids.is_empty()) {
        let list: Vec<String> = taken.iter().map(|(p, _, _)| p.to_string()).collect();
        report.note(format!("ports {} are in use, by this project's running stack", list.join(", ")));
        return;
    }
    for (port, what, setting) in taken {
        let fix = if setting.is_empty() {
            format!("stop what holds it (`ss -ltnp 'sport = :{port}'` names it)")
        } else {
            format!("stop what holds it (`ss -ltnp 'sport = :{port}'` names it), or set {setting} in .env")
        };
        report.problem(format!("port {port} on 127.0.0.1, for {what}, is taken by another process"), fix);
    }
}

/// The stack's secret files and `slipway dev`'s secrets.env: missing is fine, but say so.
fn secrets(dir: &Path, report: &mut Report) {
    if let Ok(Some(base)) = ComposeFile::read(dir, "docker-compose.yml") {
        let missing: Vec<String> = base
            .secrets()
            .into_iter()
            .filter(|(_, file)| file.as_ref().is_some_and(|f| !dir.join(f).exists()))
            .map(|(name, _)| name)
            .collect();
        if !missing.is_empty() {
            report.note(format!(
                "{} of the stack's secret files are not written yet ({}); `slipway up` writes them",
                missing.len(),
                missing.join(", ")
            ));
        }
    }
    if !dir.join("secrets.env").exists() {
        report.note("no secrets.env: `slipway dev` uses built-in development secrets (`slipway env secrets` writes fresh ones)");
    }
}

#[cfg(test)]
mod tests {
    use super::major_minor;

    #[test]
    fn versions_are_read_as_docker_and_compose_print_them() {
        assert_eq!(major_minor("28.2.2"), Some((28, 2)));
        assert_eq!(major_minor("v2.26.1"), Some((2, 26)));
        assert_eq!(major_minor("2.26.1-4"), Some((2, 26)));
        assert_eq!(major_minor("20.10.24+dfsg1"), Some((20, 10)));
        assert_eq!(major_minor("unknown"), None);
    }
}

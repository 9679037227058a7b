//! `slipway dev`: every service in one process for development, with a throwaway Postgres
//! unless one is given. Ctrl-C drains the services, then stops Postgres.

use anyhow::Context as _;
use kit::config::LogFormat;
use kit::server::Stop;
use kit::service::Shutdown;
use sqlx::Connection;
use tracing::Instrument;

use crate::{Context, Failure, registry};

const DEV_DATABASE: &str = "slipway";

pub async fn run(mut ctx: Context, database_given: bool) -> Result<(), Failure> {
    if !ctx.vars.iter().any(|(k, _)| k == "SLIPWAY_ENV") && ctx.sources().get("SLIPWAY_ENV").is_none() {
        ctx.vars.push(("SLIPWAY_ENV".into(), "dev".into()));
    }
    let environment = ctx.sources().environment();
    if environment.is_production_like() {
        return Err(Failure::Refused(format!(
            "slipway dev runs the development stack, but SLIPWAY_ENV is {environment}; unset it or set it to dev"
        )));
    }

    let mut cluster = None;
    let configured = ctx.sources().get("SLIPWAY_DATABASE_URL").is_some();
    if !database_given && !configured {
        eprintln!("slipway: no DATABASE_URL: starting a throwaway Postgres (deleted on exit)");
        let c = tokio::task::spawn_blocking(devdb::Cluster::start).await.context("devdb")??;
        create_database(&c.url("postgres")).await?;
        ctx.set_database_url(&c.url(DEV_DATABASE));
        eprintln!("slipway: Postgres at {}", c.url(DEV_DATABASE));
        cluster = Some(c);
    }

    front_door(&mut ctx)?;
    let sources = ctx.sources();
    let stop = Stop::on(kit::server::shutdown_signal());
    let shutdown = || -> Shutdown { Box::pin(stop.wait()) };
    let mut started = Vec::new();
    let mut problems = Vec::new();
    for entry in registry::SERVICES {
        match entry.start(&sources, shutdown()) {
            Ok((common, running)) => started.push((entry.name(), common, running)),
            Err(errors) => problems.extend(errors.0),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::Config(kit::config::ConfigErrors(problems)));
    }
    let (log, format) = started
        .first()
        .map(|(_, c, _)| (c.log.clone(), c.log_format))
        .unwrap_or(("info".into(), LogFormat::Pretty));
    kit::telemetry::init_with_writer(&log, format, std::io::stderr)?;

    let mut tasks = tokio::task::JoinSet::new();
    for (name, common, running) in started {
        tracing::info!(service = name, url = %format!("http://{}", common.http.addr), "starting");
        let stop = stop.clone();
        tasks.spawn(
            async move {
                let result = running.await;
                if let Err(error) = &result {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "service stopped on error; stopping the others"
                    );
                    stop.trigger();
                }
                result
            }
            .instrument(tracing::info_span!("service", name)),
        );
    }

    let mut failed = false;
    while let Some(joined) = tasks.join_next().await {
        failed |= !matches!(joined, Ok(Ok(())));
    }
    if let Some(mut c) = cluster.take() {
        tracing::info!("stopping the throwaway Postgres");
        tokio::task::spawn_blocking(move || c.stop()).await.context("devdb")?;
    }
    if failed {
        Err(Failure::Failed(anyhow::anyhow!("a service failed; its error is logged above")))
    } else {
        Ok(())
    }
}

/// The gateway is the front door: unless configured otherwise, it routes `/api/auth` to auth
/// and everything else to web, emailed links point at it, and the services behind it believe
/// the client address it forwards.
fn front_door(ctx: &mut Context) -> Result<(), Failure> {
    let sources = ctx.sources();
    let port = |config: Result<kit::config::Common, kit::config::ConfigErrors>, default: u16| {
        config.map(|c| c.http.addr.port()).unwrap_or(default)
    };
    let web = port(web::Config::load(&sources).map(|c| c.common), 8082);
    let auth = port(auth::Config::load(&sources).map(|c| c.common), 8081);
    let gateway = port(gateway::Config::load(&sources).map(|c| c.common), 8080);
    let mailer = port(mailer::Config::load(&sources).map(|c| c.common), 8083);
    // web calls auth and the mailer where this process runs them, whatever their ports.
    for (key, port) in [("SLIPWAY_WEB_AUTH_URL", auth), ("SLIPWAY_WEB_MAILER_URL", mailer)] {
        if sources.get(key).is_none() {
            ctx.vars.push((key.into(), format!("http://127.0.0.1:{port}")));
        }
    }
    if sources.get("SLIPWAY_GATEWAY_ROUTES_PATH").is_none() {
        let routes = format!(
            "# Written by `slipway dev`.\n\
             [[route]]\nname = \"auth\"\npath = \"/api/auth\"\nstrip_prefix = true\ninstances = [\"127.0.0.1:{auth}\"]\n\
             health = {{ interval = \"1s\" }}\n\n\
             [[route]]\nname = \"web\"\ninstances = [\"127.0.0.1:{web}\"]\nhealth = {{ interval = \"1s\" }}\n"
        );
        let path = std::env::temp_dir().join(format!("slipway-dev-routes-{}.toml", std::process::id()));
        std::fs::write(&path, routes)
            .map_err(|e| Failure::Failed(anyhow::anyhow!("writing {}: {e}", path.display())))?;
        ctx.vars.push(("SLIPWAY_GATEWAY_ROUTES_PATH".into(), path.display().to_string()));
    }
    // Everything runs on 127.0.0.1: web believes the gateway's X-Forwarded-For, and auth
    // believes the gateway's and web's, so each visitor is limited and audited as itself.
    // The gateway believes nobody: it is the edge.
    let shared = sources.get("SLIPWAY_TRUSTED_PROXIES").is_some();
    for service in ["AUTH", "WEB"] {
        let key = format!("SLIPWAY_{service}_TRUSTED_PROXIES");
        if !shared && sources.get(&key).is_none() {
            ctx.vars.push((key, "127.0.0.1".into()));
        }
    }
    if sources.get("SLIPWAY_PUBLIC_URL").is_none() {
        ctx.vars.push(("SLIPWAY_PUBLIC_URL".into(), format!("http://127.0.0.1:{gateway}")));
    }
    Ok(())
}

async fn create_database(server: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(server).await.context("connect to the throwaway Postgres")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DEV_DATABASE}"))).execute(&mut conn).await?;
    Ok(())
}

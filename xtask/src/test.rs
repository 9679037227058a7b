//! `cargo xtask test`: every test, against DATABASE_URL or a throwaway Postgres, and NATS_URL
//! or a throwaway NATS server.

use std::process::ExitCode;

use anyhow::Context;
use tokio::process::Command;

pub async fn test(extra: &[String]) -> anyhow::Result<ExitCode> {
    // Name what is missing before compiling anything, rather than failing halfway. A chosen
    // subset (a filter, a package) may not need all of it, so it runs anyway.
    if crate::setup::report() > 0 {
        if extra.is_empty() {
            eprintln!("xtask: the tests need what is listed above: `cargo xtask setup` installs it");
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("xtask: running the chosen tests anyway; those that need what is missing will fail");
    }
    let mut cluster = None;
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            eprintln!("xtask: testing against DATABASE_URL");
            url
        }
        Err(_) => {
            eprintln!("xtask: DATABASE_URL not set: starting a throwaway Postgres");
            let c = devdb::Cluster::start()?;
            let url = c.url("postgres");
            eprintln!("xtask: throwaway Postgres on port {}", c.port());
            cluster = Some(c);
            url
        }
    };
    let mut nats_server = None;
    let nats_url = match std::env::var("NATS_URL") {
        Ok(url) => url,
        Err(_) => {
            let server = testkit::nats::Server::start().map_err(anyhow::Error::msg)?;
            eprintln!("xtask: NATS_URL not set: a throwaway NATS server at {}", server.url());
            let url = server.url();
            nats_server = Some(server);
            url
        }
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let nextest =
        Command::new("cargo").args(["nextest", "--version"]).output().await.is_ok_and(|o| o.status.success());
    let mut args: Vec<&str> =
        if nextest { vec!["nextest", "run", "--no-fail-fast"] } else { vec!["test", "--no-fail-fast"] };
    if !extra.iter().any(|a| a == "-p" || a.starts_with("--package")) {
        args.push("--workspace");
    }
    args.extend(extra.iter().map(String::as_str));
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new("cargo")
        .args(&args)
        .env("DATABASE_URL", &url)
        .env("NATS_URL", &nats_url)
        .env("SLIPWAY_TEST_RUN", &run_id)
        .status()
        .await
        .context("cannot run cargo")?;
    if cluster.is_none() {
        drop_test_databases(&url, &run_id).await;
    }
    drop(cluster);
    drop(nats_server);
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Removes the databases this run's tests created on a server the caller owns.
async fn drop_test_databases(url: &str, run_id: &str) {
    let Ok(pool) = sqlx::PgPool::connect(url).await else {
        return;
    };
    let pattern = format!("slipway\\_t\\_{run_id}\\_%");
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(&pattern)
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    for name in &names {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await {
            eprintln!("xtask: could not drop test database {name}: {e}");
        }
    }
    eprintln!("xtask: dropped {} test databases", names.len());
}

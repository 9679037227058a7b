//! The `slipway` command: dev stack, migrations, database tasks, configuration checks, and
//! deploys, rollbacks and deploy locks of destinations, for every service in the workspace.

mod backup;
mod bus;
mod db;
mod deploy;
mod dev;
mod doctor;
mod env;
mod failure;
mod init;
mod lock;
mod migrate;
mod new;
mod prompt;
mod registry;
mod stack;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kit::config::Sources;

pub use failure::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   the operation failed (the message says why)
  2   bad command line
  3   refused: not allowed in this environment, or not confirmed
  78  invalid configuration (every problem is listed)";

#[derive(Debug, Parser)]
#[command(name = "slipway", version, about = "Run, migrate and check a Slipway platform", after_help = EXIT_CODES)]
pub struct Cli {
    /// Postgres to use instead of each service's configured SLIPWAY_DATABASE_URL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service natively for development, against DATABASE_URL or a throwaway
    /// Postgres started for the session. Ctrl-C stops everything.
    Dev,
    /// Run the compose stack on the local Docker engine (`docker compose up -d --wait --build`),
    /// making the secret files in ./secrets/ where missing and letting docker-proxy read the
    /// engine's socket.
    Up {
        /// Passed on to `docker compose up` (`--scale auth=3`, …).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        compose_args: Vec<String>,
    },
    /// Deploy the stack on Docker Swarm (docker-compose.yml + docker-compose.prod.yml).
    #[command(subcommand)]
    Stack(stack::Command),
    /// Apply, revert, inspect or create schema migrations.
    #[command(subcommand)]
    Migrate(migrate::Command),
    /// Database tasks.
    #[command(subcommand)]
    Db(db::Command),
    /// Configuration tasks.
    #[command(subcommand)]
    Env(env::Command),
    /// Bus tasks: dead letters.
    #[command(subcommand)]
    Bus(bus::Command),
    /// Ship a release to a destination named in deploy.toml and bring it up, health-gated.
    Deploy(deploy::Args),
    /// Switch a destination back to an earlier release (its images are still there).
    Rollback(deploy::RollbackArgs),
    /// A destination's release history, newest first.
    Releases(deploy::ReleasesArgs),
    /// What runs on a destination: each service's release, healthy instances, rotation.
    Status(deploy::status::Args),
    /// A destination's logs, every instance merged in time order (or one request's lines).
    Logs(deploy::logs::Args),
    /// Backups (docker-compose.backup.yml's pgBackRest): take one now, list them.
    #[command(subcommand)]
    Backup(backup::Command),
    /// Make a new product from this checkout: its own repository, fresh secrets, a first commit.
    Init(init::Args),
    /// Make a new part of the platform (`new service NAME`), wired in everywhere.
    #[command(subcommand)]
    New(new::Command),
    /// Check the project's wiring and this machine, and say exactly what to fix.
    Doctor(doctor::Args),
    /// A destination's deploy lock (destinations are named in deploy.toml).
    #[command(subcommand)]
    Lock(lock::Command),
    /// Prints the group id owning PATH: what a deploy runs in a throwaway container of the
    /// CLI's image to learn the group of the host's Docker socket (the image has no `stat`).
    #[command(hide = true)]
    FileGroup { path: std::path::PathBuf },
}

/// The configuration layers the command sees, with `--database-url` laid over every service.
#[derive(Debug, Clone)]
struct Context {
    vars: Vec<(String, String)>,
}

impl Context {
    fn new(database_url: Option<&str>) -> Self {
        let mut ctx = Self { vars: std::env::vars().collect() };
        if let Some(url) = database_url {
            ctx.set_database_url(url);
        }
        ctx
    }

    /// Points every service at `url`, over anything configured.
    fn set_database_url(&mut self, url: &str) {
        for service in registry::SERVICES.iter().filter(|s| !s.migrations().is_empty()) {
            let var = format!("SLIPWAY_{}_DATABASE_URL", service.name().to_ascii_uppercase());
            self.vars.push((var, url.to_string()));
        }
    }

    fn sources(&self) -> Sources {
        Sources::load(self.vars.clone(), std::path::Path::new(".")).with_scopes(project::SCOPES)
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("slipway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = Context::new(cli.database_url.as_deref());
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev => dev::run(ctx, cli.database_url.is_some()).await,
            Command::Up { compose_args } => up::run(&compose_args).await,
            Command::Stack(cmd) => stack::run(cmd),
            Command::Migrate(cmd) => migrate::run(&ctx, cmd).await,
            Command::Db(cmd) => db::run(&ctx, cmd).await,
            Command::Env(cmd) => env::run(&ctx, cmd),
            Command::Bus(cmd) => bus::run(&ctx, cmd).await,
            Command::Deploy(args) => deploy::run(args).await,
            Command::Rollback(args) => deploy::rollback(args).await,
            Command::Releases(args) => deploy::releases(args).await,
            Command::Status(args) => deploy::status::run(args).await,
            Command::Logs(args) => deploy::logs::run(args).await,
            Command::Lock(cmd) => lock::run(cmd).await,
            Command::Backup(cmd) => backup::run(cmd).await,
            Command::New(cmd) => new::run(cmd),
            Command::Init(args) => init::run(args),
            Command::Doctor(args) => doctor::run(args, cli.database_url.as_deref()).await,
            Command::FileGroup { path } => deploy::print_group(&path),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("slipway: {failure}");
            ExitCode::from(failure.code())
        }
    }
}

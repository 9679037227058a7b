//! `slipway db reset`, `slipway db dump` and `slipway db load`.

use std::path::PathBuf;

use clap::Subcommand;

mod copy;

use crate::{Context, Failure, prompt, registry};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drop a schema (a service's, or `bus`) and everything in it, then migrate it afresh (dev and test only).
    Reset {
        service: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Copy the whole database (every service's schema and the bus) into a file, in
    /// pg_dump's custom format (needs PostgreSQL's client tools).
    Dump {
        /// The file to write (default: slipway-<environment>-<time>.dump here).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Replace the database's Slipway tables with a dump's (`slipway db dump`); then run
    /// `slipway migrate up`.
    Load {
        file: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(ctx: &Context, cmd: Command) -> Result<(), Failure> {
    let (service, yes) = match cmd {
        Command::Reset { service, yes } => (service, yes),
        Command::Dump { output } => return copy::dump(ctx, output).await,
        Command::Load { file, yes } => return copy::load(ctx, &file, yes).await,
    };
    let sources = ctx.sources();
    let environment = sources.environment();
    if environment.is_production_like() {
        return Err(Failure::Refused(format!(
            "db reset deletes data and is for dev and test only; SLIPWAY_ENV is {environment}. \
             To undo a migration in {environment}, use `slipway migrate down --service {service}`"
        )));
    }
    let Some((migrations, db)) = registry::schemas(&sources, Some(&service))?.pop() else {
        return Err(Failure::Failed(anyhow::anyhow!("{service} has no database schema to reset")));
    };
    let question = format!("Drop schema {:?} and all its data ({environment})?", migrations.schema());
    prompt::confirm(&question, yes)?;
    let applied = migrations.reset(&db).await?;
    println!("{service}: schema {} reset, {} migration(s) applied", migrations.schema(), applied.len());
    Ok(())
}

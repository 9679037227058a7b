//! `slipway doctor`: checks a project's wiring and this machine, and says exactly what to fix.
//!
//! The wiring is what `docs/adding-a-service.md` lists: every service the CLI knows has its
//! Dockerfile target, its entries in the base, dev and prod compose files, its gateway labels,
//! its migrations folder and its database role; no two services claim one route; the NATS
//! overlay, where there is one, moves every service on the bus. The machine
//! is what the README's two commands need: Docker and compose at usable versions, Postgres
//! (or its server binaries), free published ports.

pub(crate) mod compose;
mod machine;
mod nats;
mod report;
mod wiring;

use std::path::PathBuf;

use crate::Failure;
use report::Report;

/// `slipway doctor`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project's root (where docker-compose.yml is).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Check the project's files only, not this machine.
    #[arg(long)]
    wiring_only: bool,
}

/// What `slipway up` needs before it starts: Docker and compose at usable versions. Prints
/// each problem with its fix and fails, rather than letting compose fail halfway.
pub async fn check_for_up() -> Result<(), Failure> {
    let mut report = Report::default();
    machine::docker_and_compose(&mut report).await;
    if report.problems() == 0 {
        return Ok(());
    }
    eprint!("{report}");
    Err(Failure::Failed(anyhow::anyhow!(
        "`slipway up` needs what is listed above (`slipway doctor` checks everything)"
    )))
}

/// Runs every check, prints each finding with its fix, fails when one is a problem.
pub async fn run(args: Args, database_url: Option<&str>) -> Result<(), Failure> {
    let mut report = Report::default();
    report.section(format!("the project's wiring ({}):", args.dir.display()));
    wiring::check(&args.dir, &mut report);
    if !args.wiring_only {
        report.section("this machine:");
        machine::check(&args.dir, database_url, &mut report).await;
    }
    print!("{report}");
    match report.problems() {
        0 => Ok(()),
        n => Err(Failure::Failed(anyhow::anyhow!(
            "doctor found {n} problem{} (each is listed above with its fix)",
            if n == 1 { "" } else { "s" }
        ))),
    }
}

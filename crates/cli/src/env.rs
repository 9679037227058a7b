//! `slipway env check`.

use clap::Subcommand;

use crate::{Context, Failure, registry};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load every service's configuration and print every problem.
    Check,
}

pub fn run(ctx: &Context, cmd: Command) -> Result<(), Failure> {
    let Command::Check = cmd;
    let sources = ctx.sources();
    println!("environment: {}", sources.environment());
    let mut problems = Vec::new();
    for entry in registry::SERVICES {
        match entry.check(&sources) {
            Ok(()) => println!("{}: ok", entry.name()),
            Err(errors) => {
                println!("{}: {errors}", entry.name());
                problems.extend(errors.0);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.dedup();
        Err(Failure::Config(kit::config::ConfigErrors(problems)))
    }
}

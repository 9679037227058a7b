//! Project automation, run as `cargo xtask <command>`; `.ci/run` is what CI runs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod images;
mod setup;
mod test;
mod tidy;
mod workflows;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Slipway's project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run every test against DATABASE_URL, or against a throwaway Postgres started for the run.
    Test {
        /// Passed on to the test runner (a filter, `--no-capture`, …).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build every image from the Dockerfile, tagged with the git commit and `latest`.
    Images {
        /// The tag instead of the commit's short hash.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Install every prerequisite of `cargo slipway up` and `cargo xtask test` (Debian, Ubuntu).
    Setup {
        /// Only name what is missing and how to install it.
        #[arg(long)]
        check: bool,
    },
    /// Lint the CI workflows (actionlint) and every shell script they run (shellcheck).
    LintWorkflows,
    /// Check the workspace's structural rules: dependencies between crates, module docs.
    Tidy,
    /// Measure a component; prints figures and writes them to target/bench/<target>.json.
    Bench {
        #[arg(value_enum)]
        target: bench::Target,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Keep running on Ctrl-C: the test runner gets it too, and we clean up once it exits.
    let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Test { args } => test::test(&args).await,
        Cmd::Images { tag } => images::run(tag).await.map(|()| ExitCode::SUCCESS),
        Cmd::Setup { check } => setup::run(check),
        Cmd::LintWorkflows => workflows::run().map(|()| ExitCode::SUCCESS),
        Cmd::Tidy => tidy::run().map(|()| ExitCode::SUCCESS),
        Cmd::Bench { target } => bench::run(target).await.map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

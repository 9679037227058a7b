//! `slipway env check` and `slipway env secrets`.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use rand::RngCore;

use crate::{Context, Failure, registry};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load every service's configuration and print every problem.
    Check,
    /// Write a `secrets.env` with fresh random development secrets (never overwrites one).
    Secrets {
        /// The folder to write it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// The secrets a development stack needs, each made of 32 random bytes from the OS. Names
/// on one line share a value: compose's Postgres takes its password as `POSTGRES_PASSWORD`.
const GENERATED: [&[&str]; 3] = [
    &["SLIPWAY_AUTH_TOKEN_KEY"],
    &["SLIPWAY_WEB_COOKIE_KEY"],
    &["SLIPWAY_DATABASE_PASSWORD", "POSTGRES_PASSWORD"],
];

fn secrets(dir: &std::path::Path) -> Result<(), Failure> {
    let path = dir.join("secrets.env");
    let mut lines = String::from(
        "# Development secrets made by `slipway env secrets`. Git ignores this file; never commit it.\n\
         # Staging and production take real secrets as *_FILE variables naming Docker secrets.\n",
    );
    for keys in GENERATED {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        for key in keys {
            lines.push_str(&format!("{key}={hex}\n"));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::Refused(format!(
                "{} already exists; it is kept as it is (delete it to make new secrets)",
                path.display()
            )));
        }
        Err(e) => return Err(anyhow::anyhow!("cannot create {}: {e}", path.display()).into()),
    };
    file.write_all(lines.as_bytes()).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    println!("wrote {} with {}", path.display(), GENERATED.concat().join(", "));
    Ok(())
}

pub fn run(ctx: &Context, cmd: Command) -> Result<(), Failure> {
    if let Command::Secrets { dir } = cmd {
        return secrets(&dir);
    }
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

//! `slipway migrate up|down|status|new`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use kit::migrate::{MigrationState, Step};

use crate::registry;
use crate::{Context, Failure, prompt};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply every pending migration (of one schema, or of all).
    Up {
        #[arg(long, short)]
        service: Option<String>,
    },
    /// Revert the newest migrations of one schema (a service's, or `bus`).
    Down {
        /// How many to revert.
        #[arg(default_value_t = 1)]
        steps: usize,
        #[arg(long, short)]
        service: String,
        /// Do not ask for confirmation (asked in staging and prod).
        #[arg(long)]
        yes: bool,
    },
    /// Show every migration and whether it is applied.
    Status {
        #[arg(long, short)]
        service: Option<String>,
    },
    /// Create an up/down pair of files for a new migration of a service.
    New {
        service: String,
        /// What the migration does, in snake_case: `add_user_locale`.
        name: String,
    },
}

pub async fn run(ctx: &Context, cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::Up { service } => {
            let sources = ctx.sources();
            for (m, db) in registry::schemas(&sources, service.as_deref())? {
                report(m.schema(), "applied", &m.up(&db).await?);
            }
            provision_roles(&sources, service.as_deref()).await?;
        }
        Command::Down { steps, service, yes } => {
            let sources = ctx.sources();
            for (m, db) in registry::schemas(&sources, Some(&service))? {
                let environment = sources.environment();
                if environment.is_production_like() {
                    let q =
                        format!("Revert the {steps} newest migration(s) of {} in {environment}?", m.schema());
                    prompt::confirm(&q, yes)?;
                }
                report(m.schema(), "reverted", &m.down(&db, steps).await?);
            }
        }
        Command::Status { service } => {
            for (m, db) in registry::schemas(&ctx.sources(), service.as_deref())? {
                println!("{}:", m.schema());
                for s in m.status(&db).await? {
                    let state = match s.state {
                        MigrationState::Applied { on, duration } => {
                            format!("applied {} ({duration:.1?})", on.format("%Y-%m-%d %H:%M:%S UTC"))
                        }
                        MigrationState::Pending => "pending".into(),
                        MigrationState::Drifted => "CHANGED since applied".into(),
                        MigrationState::MissingFile => "applied, but no file in this build".into(),
                    };
                    println!("  {:<16} {:<40} {state}", s.version, file_name(&s.file));
                }
            }
        }
        Command::New { service, name } => {
            registry::find(&service)?;
            let (up, down) = new_files(&workspace_root()?, &service, &name)?;
            println!("created {}\ncreated {}", up.display(), down.display());
        }
    }
    Ok(())
}

/// Creates or updates the own role of each service that has one (`SLIPWAY_<SERVICE>_DATABASE_ROLE`
/// with `_ROLE_PASSWORD`), granted its schema and the bus's service functions only.
async fn provision_roles(sources: &kit::config::Sources, only: Option<&str>) -> Result<(), Failure> {
    for entry in registry::SERVICES {
        let Some(db) = entry.db(sources)? else { continue };
        let Some(role) = &db.role else { continue };
        let migrations = entry.migrations();
        let own: Vec<&str> = migrations.iter().map(|m| m.schema()).filter(|s| *s != bus::SCHEMA).collect();
        if only.is_some_and(|only| only != bus::SCHEMA && !own.contains(&only)) {
            continue;
        }
        let grants = kit::db::Grants {
            own_schemas: &own,
            functions: bus::SERVICE_FUNCTIONS,
            readable: bus::SERVICE_READABLE,
        };
        kit::db::provision(&db, role, grants).await.map_err(Failure::Failed)?;
        println!("{}: role {} may use schema {} and the bus", entry.name(), role.name, own.join(", "));
    }
    Ok(())
}

fn report(service: &str, verb: &str, steps: &[Step]) {
    if steps.is_empty() {
        println!("{service}: nothing to do");
    }
    for s in steps {
        println!("{service}: {verb} {} ({:.1?})", file_name(&s.file), s.duration);
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The folder holding the workspace's Cargo.toml, found from the working directory up.
pub(crate) fn workspace_root() -> Result<PathBuf, Failure> {
    let start = std::env::current_dir().map_err(|e| Failure::Failed(e.into()))?;
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|text| text.contains("[workspace]"))
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Failure::Failed(anyhow::anyhow!(
                "run this inside the Slipway repository (no workspace Cargo.toml above {})",
                start.display()
            ))
        })
}

/// Writes `<version>_<name>.up.sql` and `.down.sql`, the version being the current UTC time.
pub fn new_files(root: &Path, service: &str, name: &str) -> Result<(PathBuf, PathBuf), Failure> {
    let valid =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(Failure::Failed(anyhow::anyhow!(
            "migration name {name:?}: use lowercase letters, digits and underscores, e.g. add_user_locale"
        )));
    }
    let dir = root.join("services").join(service).join("migrations");
    if !dir.is_dir() {
        return Err(Failure::Failed(anyhow::anyhow!("{} does not exist", dir.display())));
    }
    let version = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let taken = std::fs::read_dir(&dir)
        .map_err(|e| Failure::Failed(e.into()))?
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&format!("{version}_")));
    if taken {
        return Err(Failure::Failed(anyhow::anyhow!(
            "a migration with version {version} exists; try again in a second"
        )));
    }
    let up = dir.join(format!("{version}_{name}.up.sql"));
    let down = dir.join(format!("{version}_{name}.down.sql"));
    let header = "-- Runs in a transaction. For statements that cannot (CREATE INDEX CONCURRENTLY),\n\
                  -- make `-- no-transaction` the first line and keep to one statement.\n";
    std::fs::write(&up, format!("-- {name}: what this migration does.\n{header}\n"))
        .and_then(|()| std::fs::write(&down, format!("-- Reverts {name}.\n")))
        .map_err(|e| Failure::Failed(e.into()))?;
    Ok((up, down))
}

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
        /// Instead, write the compose stack's secrets as one file each into this folder (made
        /// with mode 700), for its Docker secrets: only those missing, never over one.
        #[arg(long, value_name = "FOLDER", conflicts_with = "dir")]
        files: Option<PathBuf>,
    },
}

/// 32 random bytes from the OS, as hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The compose stack's Docker secrets, one file each in `./secrets/`: the database owner's
/// password (Postgres and the migrate job), each service's own database role's password,
/// the services' keys, and the key that encrypts the backups (docker-compose.backup.yml). Each
/// container is given only its own.
pub const SECRET_FILES: [&str; 8] = [
    "database_password",
    "auth_database_password",
    "mailer_database_password",
    "web_database_password",
    "auth_token_key",
    "auth_jwt_key",
    "web_cookie_key",
    "backup_key",
];

/// The compose stack's secrets, one file each, written where missing (an existing one is
/// never touched). The folder is private (700); the files are world-readable (444) inside
/// it, as Docker's own secrets are, because the services read them as an unprivileged user
/// in their containers.
pub fn secret_files(dir: &std::path::Path) -> Result<(), Failure> {
    if write_missing_secret_files(dir)?.is_empty() {
        return Err(Failure::Refused(format!(
            "every secret exists in {}; each file is kept as it is (move the folder away to make new secrets)",
            dir.display()
        )));
    }
    Ok(())
}

/// Writes the secret files missing from `dir` (see [`secret_files`]); returns their names,
/// none when every one exists.
pub fn write_missing_secret_files(dir: &std::path::Path) -> Result<Vec<&'static str>, Failure> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let fail = |what: &str, e: std::io::Error| Failure::from(anyhow::anyhow!("cannot {what}: {e}"));
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(|e| fail("create the folder", e))?;
        }
        Err(e) => return Err(fail(&format!("inspect {}", dir.display()), e)),
        Ok(meta) => check_private_folder(dir, &meta)?,
    }
    let missing: Vec<&'static str> =
        SECRET_FILES.iter().copied().filter(|name| !dir.join(name).exists()).collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    for name in &missing {
        let value = if *name == "auth_jwt_key" {
            token::generate_pem().map_err(anyhow::Error::msg)?
        } else {
            random_hex()
        };
        let path = dir.join(name);
        // create_new: never through a symlink planted at the name, never over a file.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| fail(&format!("create {}", path.display()), e))?;
        file.write_all(value.as_bytes()).map_err(|e| fail(&format!("write {}", path.display()), e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))
            .map_err(|e| fail(&format!("protect {}", path.display()), e))?;
    }
    let kept = SECRET_FILES.len() - missing.len();
    let kept = if kept > 0 { format!(" (kept the {kept} that existed)") } else { String::new() };
    println!("wrote {} in {}{kept}", missing.join(", "), dir.display());
    Ok(missing)
}

/// An existing folder takes secrets only if it is a real folder (not a symlink), this user's,
/// and writable by nobody else: otherwise someone else could read or swap the files.
fn check_private_folder(dir: &std::path::Path, meta: &std::fs::Metadata) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt as _;
    let refuse = |why: &str| {
        Err(Failure::Refused(format!(
            "{} {why}; give a new folder (it is created private, mode 700) or fix this one",
            dir.display()
        )))
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link");
    }
    if !meta.is_dir() {
        return refuse("is not a folder");
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return refuse("belongs to another user");
    }
    if meta.mode() & 0o022 != 0 {
        return refuse("is writable by other users");
    }
    Ok(())
}

/// The secrets a development stack needs, each made of 32 random bytes from the OS. Names
/// on one line share a value: compose's Postgres takes its password as `POSTGRES_PASSWORD`.
const GENERATED: [&[&str]; 3] = [
    &["SLIPWAY_AUTH_TOKEN_KEY"],
    &["SLIPWAY_WEB_COOKIE_KEY"],
    &["SLIPWAY_DATABASE_PASSWORD", "POSTGRES_PASSWORD"],
];

pub fn secrets(dir: &std::path::Path) -> Result<(), Failure> {
    let path = dir.join("secrets.env");
    let mut lines = String::from(
        "# Development secrets made by `slipway env secrets`. Git ignores this file; never commit it.\n\
         # Staging and production take real secrets as *_FILE variables naming Docker secrets.\n",
    );
    for keys in GENERATED {
        let hex = random_hex();
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
    match cmd {
        Command::Secrets { files: Some(files), .. } => return secret_files(&files),
        Command::Secrets { dir, .. } => return secrets(&dir),
        Command::Check => {}
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

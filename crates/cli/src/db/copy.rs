//! `slipway db dump` and `slipway db load`: the whole database (every service's schema and the
//! bus) to a file in pg_dump's custom format, and back into another database, for copying data
//! between environments. Owners and grants are left out, so a dump loads into a database with
//! other roles; `slipway migrate up` afterwards applies newer migrations and grants each
//! service's role its rights again.
//!
//! The password goes to pg_dump and pg_restore in a password file only they read (mode 600,
//! removed afterwards), never on a command line or in an environment.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use tokio::process::Command;

use crate::{Context, Failure, prompt, registry};

/// How pg_dump and pg_restore reach the database: the URL without its password, and the
/// password file that holds it.
struct Target {
    url: String,
    database: String,
    passfile: PathBuf,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.passfile);
    }
}

/// libpq's password file escapes `:` and `\` in each field.
fn escape(field: &str) -> String {
    field.replace('\\', "\\\\").replace(':', "\\:")
}

/// The owner's connection (the URL every schema is migrated with), made ready for libpq tools.
fn target(ctx: &Context) -> Result<Target, Failure> {
    let schemas = registry::schemas(&ctx.sources(), None)?;
    let (_, db) = schemas
        .into_iter()
        .next()
        .ok_or_else(|| Failure::Failed(anyhow::anyhow!("no service of this build has a database")))?;
    let mut url = url::Url::parse(db.url.expose_secret())
        .map_err(|e| Failure::Failed(anyhow::anyhow!("SLIPWAY_DATABASE_URL is not a valid URL: {e}")))?;
    let password =
        url.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
    let _ = url.set_password(None);
    let database = url.path().trim_start_matches('/').to_string();
    let passfile = std::env::temp_dir().join(format!("slipway-pgpass-{}", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&passfile)
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot write a password file: {e}")))?;
    if let Some(password) = password {
        let line = format!("*:*:*:*:{}\n", escape(&password));
        file.write_all(line.as_bytes()).map_err(|e| Failure::Failed(e.into()))?;
    }
    Ok(Target { url: url.to_string(), database, passfile })
}

/// Runs a libpq tool against the target; its error output on failure.
async fn tool(program: &str, target: &Target, args: &[&str]) -> Result<(), Failure> {
    let out = Command::new(program)
        .args(args)
        .env("PGPASSFILE", &target.passfile)
        .env_remove("PGPASSWORD")
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Failure::Failed(anyhow::anyhow!(
                "{program} is not installed: install PostgreSQL's client tools (Debian: apt-get install \
                 postgresql-client), of the server's major version or newer"
            )),
            _ => Failure::Failed(anyhow::anyhow!("cannot run {program}: {e}")),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    Err(Failure::Failed(anyhow::anyhow!(
        "{program} failed on database {}:\n  {}",
        target.database,
        tail[tail.len().saturating_sub(8)..].join("\n  ")
    )))
}

pub async fn dump(ctx: &Context, output: Option<PathBuf>) -> Result<(), Failure> {
    let target = target(ctx)?;
    let environment = ctx.sources().environment();
    let output = output.unwrap_or_else(|| {
        PathBuf::from(format!("slipway-{environment}-{}.dump", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")))
    });
    let path = output.to_string_lossy().to_string();
    let started = std::time::Instant::now();
    tool(
        "pg_dump",
        &target,
        &["--format=custom", "--no-owner", "--no-privileges", "--file", &path, "--dbname", &target.url],
    )
    .await?;
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    println!(
        "database {} ({environment}) dumped to {} ({:.1} MB in {:.1?})",
        target.database,
        output.display(),
        size as f64 / 1e6,
        started.elapsed()
    );
    Ok(())
}

pub async fn load(ctx: &Context, file: &Path, yes: bool) -> Result<(), Failure> {
    if !file.is_file() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{} is not a file: give a dump made by `slipway db dump`",
            file.display()
        )));
    }
    let target = target(ctx)?;
    let environment = ctx.sources().environment();
    let question = format!(
        "Replace every Slipway table of database {} ({environment}) with the contents of {}?",
        target.database,
        file.display()
    );
    prompt::confirm(&question, yes)?;
    let started = std::time::Instant::now();
    let path = file.to_string_lossy().to_string();
    let args = [
        "--no-owner",
        "--no-privileges",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
    ];
    tool("pg_restore", &target, &[&args[..], &["--dbname", &target.url, &path]].concat()).await?;
    println!(
        "database {} ({environment}) loaded from {} in {:.1?}; run `slipway migrate up` to apply newer \
         migrations and grant the services' roles their rights",
        target.database,
        file.display(),
        started.elapsed()
    );
    Ok(())
}

//! The database owner's password follows its secret file. Postgres reads `POSTGRES_PASSWORD`
//! only when its volume is new, so a changed file alone would leave the migrations refused
//! ("password authentication failed"). Before the migrations run, a deploy sets the owner's
//! password in the running database to the file's value: sent as a SCRAM verifier over the
//! container's local socket (trusted there, as the official image sets it up), on standard
//! input, so the password is never on a command line and never reaches Postgres in clear.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::compose::Compose;
use crate::Failure;

/// The database service: the one whose password is read from a secret file.
#[derive(Debug, Clone)]
pub struct Database {
    pub service: String,
    /// `POSTGRES_USER` (the owner), `postgres` by default.
    user: String,
    /// The secret (a file in the destination's secrets folder) holding the password.
    secret: String,
}

impl Database {
    /// The database of a service definition of the resolved model, if it is one.
    pub fn of(service: &str, def: &Value) -> Option<Self> {
        let file = def["environment"]["POSTGRES_PASSWORD_FILE"].as_str()?;
        Some(Self {
            service: service.to_string(),
            user: def["environment"]["POSTGRES_USER"].as_str().unwrap_or("postgres").to_string(),
            secret: file.rsplit('/').next().unwrap_or(file).to_string(),
        })
    }
}

/// Sets the owner's password in the running database to its secret file's value (a first
/// deploy has no running database: its volume is made with the file's value).
pub async fn owner_password(compose: &Compose<'_>, db: &Database) -> Result<(), Failure> {
    let Some(container) = compose.containers(&db.service).await?.into_iter().next() else { return Ok(()) };
    let path = compose.dest.secrets.join(&db.secret);
    let password = std::fs::read_to_string(&path)
        .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot read the secret {} ({e})", path.display())))?;
    let verifier = kit::db::scram_verifier(password.trim_end_matches(['\r', '\n']));
    let mut psql = compose.dest.engine.docker();
    psql.args(["exec", "--interactive", &container, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-U", &db.user, "-d", "postgres"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child =
        psql.spawn().map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker exec`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let sql = format!("ALTER ROLE CURRENT_USER PASSWORD '{verifier}';\n");
        let _ = stdin.write_all(sql.as_bytes()).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Failure::Failed(anyhow::anyhow!("`docker exec … psql` failed: {e}")))?;
    if !out.status.success() {
        return Err(super::engine_failure(
            compose.dest,
            &format!("setting the database owner's password from {}", path.display()),
            &out.stderr,
        ));
    }
    super::report::step(
        "rotate",
        serde_json::json!({ "service": db.service }),
        format!(
            "{}: the owner's password set from {} (a changed file rotates it)",
            db.service,
            path.display()
        ),
    );
    Ok(())
}

//! The per-schema advisory lock that makes concurrent migration runs take turns.

use std::time::Duration;

use sqlx::PgConnection;

use super::MigrateFailure;

/// The first key of Slipway's advisory locks ("SLPW"); the second is the schema's hash.
const LOCK_CLASS: i32 = 0x534C_5057;

/// How long a runner waits for another to finish before giving up.
const WAIT: Duration = Duration::from_secs(300);

/// Takes the lock, waiting up to five minutes for a runner that holds it.
pub(super) async fn acquire(conn: &mut PgConnection, schema: &str) -> Result<(), MigrateFailure> {
    // Migrations may run long: no statement timeout on this session, but a bounded lock wait.
    sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("SET lock_timeout = '{}ms'", WAIT.as_millis())))
        .execute(&mut *conn)
        .await?;
    let locked = sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(schema)
        .execute(&mut *conn)
        .await;
    if let Err(e) = locked {
        return Err(MigrateFailure::LockTimeout { schema: schema.into(), waited: WAIT, source: e });
    }
    sqlx::query("SET lock_timeout = 0").execute(&mut *conn).await?;
    Ok(())
}

/// Releases the lock.
pub(super) async fn release(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(schema)
        .execute(conn)
        .await?;
    Ok(())
}

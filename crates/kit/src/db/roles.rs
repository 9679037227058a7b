//! A service's own database role, made by the owner: rights on the service's schemas and a
//! named list of the bus's functions, and nothing else.
//!
//! The owner (the user of `SLIPWAY_DATABASE_URL`, which `slipway migrate up` connects as)
//! creates the role, or updates its password, and grants it again on every run, so tables
//! added by a new migration are covered. The password reaches Postgres as a SCRAM verifier,
//! never in clear, so it cannot appear in the server's statement log.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use sqlx::{Connection as _, PgConnection};

use crate::config::{DbConfig, DbRole};

/// What a role may use beyond its own schemas: functions and tables of other schemas, named
/// `schema.name`, each schema given `USAGE` only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grants<'a> {
    /// Schemas whose tables, sequences and functions the role may use (its own). Their
    /// `schema_migrations` table it may only read.
    pub own_schemas: &'a [&'a str],
    /// Functions it may call: `bus.publish`, …
    pub functions: &'a [&'a str],
    /// Tables it may read: `bus.schema_migrations`, …
    pub readable: &'a [&'a str],
}

/// Creates `role` (or resets its password and attributes) and grants it exactly `grants`,
/// connected as `owner`'s URL user, in one transaction.
pub async fn provision(owner: &DbConfig, role: &DbRole, grants: Grants<'_>) -> anyhow::Result<()> {
    let mut conn = super::dedicated(&owner.as_owner(), "public").await?;
    let result = provision_on(&mut conn, role, grants).await;
    let _ = conn.close().await;
    result
}

async fn provision_on(conn: &mut PgConnection, role: &DbRole, grants: Grants<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(DbRole::valid_name(&role.name), "{:?} is not a valid role name", role.name);
    let (owner, database): (String, String) =
        sqlx::query_as("SELECT current_user::text, current_database()::text").fetch_one(&mut *conn).await?;
    anyhow::ensure!(
        owner != role.name,
        "the service's role {:?} is the database owner's own user: give the service a role of its own",
        role.name
    );
    let r = quote(&role.name);
    let mut tx = conn.begin().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(&role.name)
        .fetch_one(&mut *tx)
        .await?;
    let mut statements = Vec::new();
    if !exists {
        statements.push(format!("CREATE ROLE {r}"));
    }
    let verifier = scram_verifier(role.password.expose_secret());
    statements.push(format!(
        "ALTER ROLE {r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS \
         NOINHERIT PASSWORD '{verifier}'"
    ));
    statements.push(format!("GRANT CONNECT ON DATABASE {} TO {r}", quote(&database)));
    for schema in grants.own_schemas {
        let s = quote(schema);
        statements.extend([
            format!("GRANT USAGE ON SCHEMA {s} TO {r}"),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}"),
            format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r}"),
            format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {r}"),
            format!("REVOKE INSERT, UPDATE, DELETE ON {s}.{} FROM {r}", crate::migrate::TABLE),
        ]);
    }
    let mut usage: Vec<&str> = Vec::new();
    for name in grants.functions.iter().chain(grants.readable) {
        let (schema, _) = name.split_once('.').context("a granted object is named schema.name")?;
        if !usage.contains(&schema) {
            usage.push(schema);
            statements.push(format!("GRANT USAGE ON SCHEMA {} TO {r}", quote(schema)));
        }
    }
    for function in grants.functions {
        statements.push(format!("GRANT EXECUTE ON FUNCTION {} TO {r}", qualified(function)));
    }
    for table in grants.readable {
        statements.push(format!("GRANT SELECT ON {} TO {r}", qualified(table)));
    }
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.with_context(|| {
            format!("granting role {:?} its rights (the owner needs CREATEROLE)", role.name)
        })?;
    }
    tx.commit().await?;
    Ok(())
}

/// An identifier in double quotes, any quote in it doubled.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn qualified(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}

/// The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802, RFC 7677): given in
/// `ALTER ROLE … PASSWORD`, the server keeps it as it is and never sees the password.
pub fn scram_verifier(password: &str) -> String {
    const ITERATIONS: u32 = 4096;
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salted = pbkdf2_sha256(password.as_bytes(), &salt, ITERATIONS);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored_key),
        B64.encode(server_key)
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (32 bytes, what SCRAM-SHA-256 uses).
fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_sha256(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &u);
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pbkdf2_sha256;

    #[test]
    fn pbkdf2_matches_the_published_test_vector() {
        // RFC 7914, section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes.
        let out = pbkdf2_sha256(b"passwd", b"salt", 1);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
    }
}

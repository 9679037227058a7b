//! What the database says is applied, compared with the migrations a build carries.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::migrate::Migration;
use sqlx::{PgConnection, Row};

use super::{Migrations, TABLE};

/// One applied migration as recorded in `<schema>.schema_migrations`.
#[derive(Debug, Clone)]
pub(super) struct Applied {
    pub checksum: Vec<u8>,
    pub duration: Duration,
    pub installed_on: chrono::DateTime<chrono::Utc>,
}

/// Where one migration stands in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationState {
    /// Applied and unchanged since.
    Applied {
        /// When it was applied.
        on: chrono::DateTime<chrono::Utc>,
        /// How long it took.
        duration: Duration,
    },
    /// In the build, not yet applied.
    Pending,
    /// Applied, but the file changed since.
    Drifted,
    /// Applied, but this build has no file for it.
    MissingFile,
}

/// One migration's line in `slipway migrate status`.
#[derive(Debug, Clone)]
pub struct MigrationStatus {
    /// Its version.
    pub version: i64,
    /// Its file name (or a placeholder when the build has no file).
    pub file: String,
    /// Where it stands.
    pub state: MigrationState,
}

/// The applied migrations, or none if the table does not exist yet.
pub(super) async fn applied(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<BTreeMap<i64, Applied>, sqlx::Error> {
    let table = format!("{schema}.{TABLE}");
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass($1)::text").bind(&table).fetch_one(&mut *conn).await?;
    if exists.is_none() {
        return Ok(BTreeMap::new());
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT version, checksum, execution_time, installed_on FROM {table} WHERE success ORDER BY version"
    )))
    .fetch_all(conn)
    .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let nanos: i64 = row.try_get("execution_time")?;
        out.insert(
            row.try_get("version")?,
            Applied {
                checksum: row.try_get("checksum")?,
                duration: Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)),
                installed_on: row.try_get("installed_on")?,
            },
        );
    }
    Ok(out)
}

pub(super) fn compare(
    m: &Migrations,
    known: &[Migration],
    applied: &BTreeMap<i64, Applied>,
) -> Vec<MigrationStatus> {
    let mut out: Vec<MigrationStatus> = known
        .iter()
        .filter(|k| k.migration_type.is_up_migration())
        .map(|k| {
            let state = match applied.get(&k.version) {
                None => MigrationState::Pending,
                Some(a) if a.checksum != *k.checksum => MigrationState::Drifted,
                Some(a) => MigrationState::Applied { on: a.installed_on, duration: a.duration },
            };
            MigrationStatus { version: k.version, file: m.file(k.version, false), state }
        })
        .collect();
    for version in applied.keys() {
        if !known.iter().any(|k| k.version == *version) {
            out.push(MigrationStatus {
                version: *version,
                file: m.file(*version, false),
                state: MigrationState::MissingFile,
            });
        }
    }
    out.sort_by_key(|s| s.version);
    out
}

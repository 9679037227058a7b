//! Schema migrations whose state lives in the database: sqlx's migrator, made safe to run
//! from many instances at once and clear about what went wrong.
//!
//! Each service owns one Postgres schema. Its applied migrations (version, checksum,
//! duration) are recorded in `<schema>.schema_migrations`. A run holds a per-schema advisory
//! lock on a connection of its own, never a pooled one, and closes that connection at the end,
//! so a failed migration cannot leave the lock held (sqlx issues #1871 and #1659).

mod error;
mod lock;
mod status;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection, PgConnection};

pub use error::MigrateFailure;
pub use status::{MigrationState, MigrationStatus};

use crate::config::DbConfig;

/// The table, inside the service's schema, that records applied migrations.
pub const TABLE: &str = "schema_migrations";

/// One service's migrations and the schema they belong to.
#[derive(Debug, Clone)]
pub struct Migrations {
    service: String,
    schema: String,
    /// Where the files live in the repository, for messages: `services/auth/migrations`.
    dir: String,
    migrations: Vec<Migration>,
}

/// Applies several schemas' migrations in order, logging each step: what a service does at
/// start (the bus's schema before its own).
pub async fn up_all(list: Vec<Migrations>, db: &DbConfig) -> Result<(), MigrateFailure> {
    for migrations in list {
        for step in migrations.up(db).await? {
            tracing::info!(file = %step.file, duration = ?step.duration, "migration applied");
        }
    }
    Ok(())
}

/// What a service does with its schemas at start: applies them (`MIGRATE_ON_START`, the
/// default) or waits until `slipway migrate up` has.
pub async fn at_start(list: Vec<Migrations>, db: &DbConfig) -> anyhow::Result<()> {
    if db.migrate_on_start { Ok(up_all(list, db).await?) } else { await_applied(&list, db, WAIT_LIMIT).await }
}

/// How long a service that does not migrate itself waits at start for `slipway migrate up`.
pub const WAIT_LIMIT: Duration = Duration::from_secs(300);

/// Waits until every migration of `list` is applied, checking as the service itself (its
/// own role when it has one): what a service that does not migrate does at start, so it
/// never serves on a schema older than its code (Swarm starts services in any order).
pub async fn await_applied(list: &[Migrations], db: &DbConfig, limit: Duration) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    let mut last_report = None::<tokio::time::Instant>;
    loop {
        let mut waiting_for = Vec::new();
        for m in list {
            match m.pending_as_service(db).await {
                Ok(0) => {}
                Ok(n) => waiting_for.push(format!("{}: {n} pending", m.schema)),
                Err(error) => waiting_for.push(format!("{}: {error:#}", m.schema)),
            }
        }
        if waiting_for.is_empty() {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= limit {
            anyhow::bail!(
                "the database's migrations are not applied after {waited:.0?} ({}): run `slipway migrate up`",
                waiting_for.join("; ")
            );
        }
        if last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(waiting_for = %waiting_for.join("; "), "waiting for `slipway migrate up`");
            last_report = Some(tokio::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A migration applied or reverted by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The migration's version (its file name's number).
    pub version: i64,
    /// The migration's file name.
    pub file: String,
    /// How long it took to apply.
    pub duration: Duration,
}

impl Migrations {
    /// From migrations embedded with `sqlx::migrate!("./migrations")`.
    pub fn new(service: &str, schema: &str, dir: &str, embedded: &Migrator) -> Self {
        Self {
            service: service.into(),
            schema: schema.into(),
            dir: dir.into(),
            migrations: embedded.iter().cloned().collect(),
        }
    }

    /// From the files of a folder read at run time (tools and tests).
    pub async fn from_dir(
        service: &str,
        schema: &str,
        dir: &std::path::Path,
    ) -> Result<Self, MigrateFailure> {
        let migrator = Migrator::new(dir.to_path_buf()).await?;
        Ok(Self::new(service, schema, &dir.display().to_string(), &migrator))
    }

    /// The service these migrations belong to.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The Postgres schema they build, which the service alone reads.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Where the files live, relative to the repository's root (`services/auth/migrations`).
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Each up migration as `<schema>.schema_migrations` records it once applied: its version
    /// and the hex of its checksum (what a restore drill compares a backup's tables with).
    pub fn recorded(&self) -> Vec<(i64, String)> {
        self.migrations
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| (m.version, m.checksum.iter().map(|b| format!("{b:02x}")).collect()))
            .collect()
    }

    fn migrator(&self) -> Migrator {
        let mut m = Migrator::with_migrations(self.migrations.clone());
        m.set_locking(false); // our own per-schema lock, on a dedicated connection
        m.dangerous_set_table_name(format!("{}.{TABLE}", self.schema));
        m.create_schema(Cow::Owned(self.schema.clone()));
        m
    }

    /// The file a version's up (or down) migration is read from, as a repository path.
    pub fn file(&self, version: i64, down: bool) -> String {
        let found = self
            .migrations
            .iter()
            .find(|m| m.version == version && m.migration_type.is_down_migration() == down);
        match found {
            Some(m) => {
                let suffix = match m.migration_type {
                    MigrationType::Simple => "sql",
                    MigrationType::ReversibleUp => "up.sql",
                    MigrationType::ReversibleDown => "down.sql",
                };
                format!("{}/{}_{}.{suffix}", self.dir, m.version, m.description.replace(' ', "_"))
            }
            None => format!("{}/{version}_*", self.dir),
        }
    }

    /// Applies every pending migration, each exactly once however many runners start together.
    pub async fn up(&self, db: &DbConfig) -> Result<Vec<Step>, MigrateFailure> {
        self.with_lock(db, async |conn: &mut PgConnection| {
            let before = status::applied(conn, &self.schema).await?;
            self.migrator()
                .run_direct(None, conn, false)
                .await
                .map_err(|e| MigrateFailure::from_sqlx(e, self))?;
            let after = status::applied(conn, &self.schema).await?;
            Ok(self.steps(&before, &after, false))
        })
        .await
    }

    /// Reverts the `steps` most recently applied migrations, newest first.
    pub async fn down(&self, db: &DbConfig, steps: usize) -> Result<Vec<Step>, MigrateFailure> {
        self.with_lock(db, async |conn: &mut PgConnection| {
            let before = status::applied(conn, &self.schema).await?;
            let newest: Vec<i64> = before.keys().rev().copied().collect();
            let target = newest.get(steps).copied().unwrap_or(0);
            for version in newest.iter().take(steps) {
                let reversible = self
                    .migrations
                    .iter()
                    .any(|m| m.version == *version && m.migration_type == MigrationType::ReversibleDown);
                if !reversible {
                    return Err(MigrateFailure::NoDown { file: self.file(*version, false) });
                }
            }
            let migrator = self.migrator();
            migrator.undo(&mut *conn, target).await.map_err(|e| MigrateFailure::from_sqlx(e, self))?;
            let after = status::applied(conn, &self.schema).await?;
            Ok(self.steps(&after, &before, true))
        })
        .await
    }

    /// Drops the service's schema with everything in it, then applies every migration: a
    /// clean slate for dev and test. The caller decides whether the environment allows it.
    pub async fn reset(&self, db: &DbConfig) -> Result<Vec<Step>, MigrateFailure> {
        self.with_lock(db, async |conn: &mut PgConnection| {
            let drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema.replace('"', "\"\""));
            sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut *conn).await?;
            self.migrator()
                .run_direct(None, conn, false)
                .await
                .map_err(|e| MigrateFailure::from_sqlx(e, self))?;
            Ok(status::applied(conn, &self.schema)
                .await?
                .into_iter()
                .map(|(v, a)| self.step(v, &a, false))
                .collect())
        })
        .await
    }

    /// Every migration known to the binary or the database, and its state.
    pub async fn status(&self, db: &DbConfig) -> Result<Vec<MigrationStatus>, MigrateFailure> {
        self.status_as(&db.as_owner()).await
    }

    /// The status read as `db` connects: as the owner, or as the service's own role (which
    /// may read the migrations table).
    async fn status_as(&self, db: &DbConfig) -> Result<Vec<MigrationStatus>, MigrateFailure> {
        let mut conn =
            crate::db::dedicated(db, &self.schema).await.map_err(|e| MigrateFailure::connect(e, db))?;
        let applied = status::applied(&mut conn, &self.schema).await;
        let _ = conn.close().await;
        Ok(status::compare(self, &self.migrations, &applied?))
    }

    /// How many of this build's migrations the database lacks, read as the service connects.
    async fn pending_as_service(&self, db: &DbConfig) -> Result<usize, MigrateFailure> {
        let statuses = self.status_as(db).await?;
        Ok(statuses.iter().filter(|s| s.state == MigrationState::Pending).count())
    }

    /// Migrations present in `more` but not in `less`, as steps (newest first when reverting).
    fn steps(
        &self,
        less: &BTreeMap<i64, status::Applied>,
        more: &BTreeMap<i64, status::Applied>,
        down: bool,
    ) -> Vec<Step> {
        let mut steps: Vec<Step> =
            more.iter().filter(|(v, _)| !less.contains_key(v)).map(|(v, a)| self.step(*v, a, down)).collect();
        if down {
            steps.reverse();
        }
        steps
    }

    fn step(&self, version: i64, applied: &status::Applied, down: bool) -> Step {
        Step { version, file: self.file(version, down), duration: applied.duration }
    }

    /// Runs `body` on a dedicated connection holding this schema's migration lock; the lock
    /// is released and the connection closed whatever `body` returns.
    async fn with_lock<T>(
        &self,
        db: &DbConfig,
        body: impl AsyncFnOnce(&mut PgConnection) -> Result<T, MigrateFailure>,
    ) -> Result<T, MigrateFailure> {
        let mut conn = crate::db::dedicated(&db.as_owner(), &self.schema)
            .await
            .map_err(|e| MigrateFailure::connect(e, db))?;
        if let Err(e) = lock::acquire(&mut conn, &self.schema).await {
            let _ = conn.close().await;
            return Err(e);
        }
        let result = body(&mut conn).await;
        if let Err(error) = lock::release(&mut conn, &self.schema).await {
            tracing::warn!(%error, schema = %self.schema, "releasing the migration lock failed; closing the connection releases it");
        }
        let _ = conn.close().await;
        result
    }
}

//! Why a migration run failed, in words that say what to do next.

use std::time::Duration;

use sqlx::migrate::MigrateError;

use super::Migrations;

/// Why a migration run failed; each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum MigrateFailure {
    /// The database could not be reached.
    #[error("cannot reach the database to migrate")]
    Connect(#[source] anyhow::Error),

    /// Postgres refused the password (a volume made with another one, say).
    #[error(
        "Postgres refused the password of user {user}. If its data volume was made with another \
         password (Postgres's image applies POSTGRES_PASSWORD only to a new volume: the prod files \
         brought up on the dev stack's volume, say), give the password the volume was made with, \
         or first set the new one in the database: \
         `docker compose exec postgres psql -U {user} -d postgres -c '\\password {user}'`"
    )]
    PasswordRefused {
        /// The user whose password was refused.
        user: String,
    },

    /// An applied migration's file changed since (its checksum differs).
    #[error(
        "migration {file} was changed after it was applied to this database (its checksum differs). \
         Restore the file as it was (git checkout it) and put the change in a new migration \
         (`slipway migrate new {service} <name>`); in dev, `slipway db reset {service}` rebuilds the schema"
    )]
    Drift {
        /// The service whose migration changed.
        service: String,
        /// The changed file.
        file: String,
    },

    /// The database has a migration this build does not know: it is newer than the code.
    #[error(
        "migration {version} is applied in the database but this build has no file for it: \
         the database is newer than the code. Deploy the newer build, or revert it with that build"
    )]
    Missing {
        /// The applied version the build has no file for.
        version: i64,
    },

    /// A migration failed inside its transaction, so nothing of it is applied.
    #[error(
        "migration {file} failed and was rolled back, so nothing of it is applied; fix the SQL and run again"
    )]
    Failed {
        /// The migration that failed.
        file: String,
        /// Postgres's error.
        source: sqlx::Error,
    },

    /// A migration that runs outside a transaction failed, perhaps half-applied.
    #[error(
        "migration {file} failed; it runs outside a transaction (-- no-transaction), \
         so check what it left behind before running again"
    )]
    FailedNoTx {
        /// The migration that failed.
        file: String,
        /// Postgres's error.
        source: sqlx::Error,
    },

    /// A revert was asked of a migration without a down file.
    #[error("migration {file} has no down file, so it cannot be reverted")]
    NoDown {
        /// The migration without a down file.
        file: String,
    },

    /// Another run held the schema's migration lock for too long.
    #[error("waited {waited:?} for another migration run on schema {schema} to finish; is one stuck?")]
    LockTimeout {
        /// The schema whose lock was held.
        schema: String,
        /// How long this run waited.
        waited: Duration,
        /// Postgres's lock-timeout error.
        source: sqlx::Error,
    },

    /// Reading or writing the migration table failed.
    #[error("migration bookkeeping failed")]
    Database(#[from] sqlx::Error),

    /// Any other failure of sqlx's migrator.
    #[error(transparent)]
    Other(#[from] MigrateError),
}

impl MigrateFailure {
    /// A failed connection, told apart when Postgres refused the password (SQLSTATE 28P01).
    pub(super) fn connect(e: anyhow::Error, db: &crate::config::DbConfig) -> Self {
        let refused = e
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .is_some_and(|d| d.code().as_deref() == Some("28P01"));
        if !refused {
            return Self::Connect(e);
        }
        use secrecy::ExposeSecret as _;
        let user = url::Url::parse(db.url.expose_secret())
            .map(|u| u.username().to_string())
            .unwrap_or_else(|_| "?".into());
        Self::PasswordRefused { user }
    }

    pub(super) fn from_sqlx(e: MigrateError, m: &Migrations) -> Self {
        match e {
            MigrateError::VersionMismatch(v) => {
                Self::Drift { service: m.service.clone(), file: m.file(v, false) }
            }
            MigrateError::VersionMissing(v) => Self::Missing { version: v },
            MigrateError::ExecuteMigration(source, v) => {
                let no_tx = m.migrations.iter().any(|x| x.version == v && x.no_tx);
                let down = false;
                if no_tx {
                    Self::FailedNoTx { file: m.file(v, down), source }
                } else {
                    Self::Failed { file: m.file(v, down), source }
                }
            }
            MigrateError::Execute(e) => Self::Database(e),
            other => Self::Other(other),
        }
    }
}

//! Migrations under the per-schema lock: applied once, drift refused, status and reset.

use std::path::{Path, PathBuf};

use kit::migrate::{MigrateFailure, MigrationState, Migrations};
use testkit::TestDb;

/// A folder of migration files, written for one test.
fn folder(files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kit-migrations-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).expect("write migration");
    }
    dir
}

async fn migrations(dir: &Path) -> Migrations {
    Migrations::from_dir("demo", "demo", dir).await.expect("readable migrations")
}

const BASE: &[(&str, &str)] = &[
    ("1_create_things.up.sql", "CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL);"),
    ("1_create_things.down.sql", "DROP TABLE things;"),
    ("2_count_runs.up.sql", "CREATE TABLE runs (n int); INSERT INTO runs VALUES (1);"),
    ("2_count_runs.down.sql", "DROP TABLE runs;"),
    ("3_add_colour.up.sql", "ALTER TABLE things ADD COLUMN colour text;"),
    ("3_add_colour.down.sql", "ALTER TABLE things DROP COLUMN colour;"),
];

async fn advisory_locks_held(db: &TestDb) -> i64 {
    // Only this test's database: other tests running beside it hold advisory locks of their own.
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
    )
    .fetch_one(&db.pool().await)
    .await
    .expect("count locks")
}

#[tokio::test]
async fn five_concurrent_runners_apply_every_migration_exactly_once() {
    let db = TestDb::create().await;
    let m = migrations(&folder(BASE)).await;
    let config = db.db_config();
    let runs = (0..5).map(|_| {
        let (m, config) = (m.clone(), config.clone());
        tokio::spawn(async move { m.up(&config).await })
    });
    let mut applied_by_run = Vec::new();
    for run in runs {
        applied_by_run.push(run.await.expect("runner task").expect("every runner succeeds").len());
    }
    applied_by_run.sort_unstable();
    assert_eq!(
        applied_by_run,
        vec![0, 0, 0, 0, 3],
        "one runner applies all three, the others find nothing to do"
    );

    let pool = db.pool().await;
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM demo.runs").fetch_one(&pool).await.expect("runs");
    assert_eq!(runs, 1, "the data migration ran once");
    let recorded: Vec<(i64, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT version, checksum, execution_time FROM demo.schema_migrations ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .expect("bookkeeping in the service's schema");
    assert_eq!(recorded.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(
        recorded.iter().all(|(_, checksum, nanos)| checksum.len() == 48 && *nanos > 0),
        "checksum and duration recorded"
    );
    assert_eq!(advisory_locks_held(&db).await, 0);
}

#[tokio::test]
async fn a_failing_migration_releases_the_lock_and_the_next_run_reports_it_clearly() {
    let db = TestDb::create().await;
    let mut files = BASE[..2].to_vec();
    files.push(("3_broken.up.sql", "ALTER TABLE things ADD COLUMN x int; SELECT * FROM no_such_table;"));
    files.push(("3_broken.down.sql", "SELECT 1;"));
    let dir = folder(&files);
    let m = migrations(&dir).await;

    for attempt in 1..=2 {
        let err = m.up(&db.db_config()).await.expect_err("migration 3 fails");
        let text = err.to_string();
        assert!(matches!(err, MigrateFailure::Failed { .. }), "attempt {attempt}: {err:?}");
        assert!(
            text.contains("3_broken.up.sql") && text.contains("rolled back"),
            "attempt {attempt}: {text}"
        );
        let cause = format!("{:#}", anyhow::Error::from(err));
        assert!(cause.contains("no_such_table"), "the database's reason is in the chain: {cause}");
        assert_eq!(advisory_locks_held(&db).await, 0, "attempt {attempt}: the lock is released");
    }
    let columns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'demo' AND table_name = 'things' AND column_name = 'x'",
    )
    .fetch_one(&db.pool().await)
    .await
    .expect("columns");
    assert_eq!(columns, 0, "the failed migration left nothing behind");

    std::fs::write(dir.join("3_broken.up.sql"), "ALTER TABLE things ADD COLUMN x int;").expect("fix it");
    let applied = migrations(&dir).await.up(&db.db_config()).await.expect("fixed migration applies");
    assert_eq!(applied.iter().map(|s| s.version).collect::<Vec<_>>(), vec![3]);
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused_with_a_message_naming_it() {
    let db = TestDb::create().await;
    let dir = folder(BASE);
    migrations(&dir).await.up(&db.db_config()).await.expect("first run");

    std::fs::write(dir.join("2_count_runs.up.sql"), "CREATE TABLE runs (n bigint);").expect("edit");
    let edited = migrations(&dir).await;
    let err = edited.up(&db.db_config()).await.expect_err("drift is refused");
    let text = err.to_string();
    assert!(matches!(err, MigrateFailure::Drift { .. }), "{err:?}");
    assert!(text.contains("2_count_runs.up.sql") && text.contains("changed after it was applied"), "{text}");
    assert!(text.contains("slipway migrate new demo"), "says how to fix it: {text}");

    let status = edited.status(&db.db_config()).await.expect("status");
    let states: Vec<_> =
        status.iter().map(|s| (s.version, matches!(s.state, MigrationState::Drifted))).collect();
    assert_eq!(states, vec![(1, false), (2, true), (3, false)]);
}

#[tokio::test]
async fn a_no_transaction_migration_can_create_an_index_concurrently() {
    let db = TestDb::create().await;
    let mut files = BASE.to_vec();
    files.push((
        "4_index_names.up.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY things_name_idx ON things (name);",
    ));
    files.push(("4_index_names.down.sql", "-- no-transaction\nDROP INDEX CONCURRENTLY things_name_idx;"));
    let m = migrations(&folder(&files)).await;
    m.up(&db.db_config()).await.expect("concurrent index builds");
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('demo.things_name_idx')::text")
        .fetch_one(&db.pool().await)
        .await
        .expect("regclass");
    assert_eq!(exists.as_deref(), Some("demo.things_name_idx"));
    m.down(&db.db_config(), 1).await.expect("and drops concurrently");
}

#[tokio::test]
async fn down_reverts_the_newest_migrations_and_status_shows_them_pending_again() {
    let db = TestDb::create().await;
    let m = migrations(&folder(BASE)).await;
    m.up(&db.db_config()).await.expect("up");

    let reverted = m.down(&db.db_config(), 2).await.expect("down 2");
    assert_eq!(reverted.iter().map(|s| s.version).collect::<Vec<_>>(), vec![3, 2], "newest first");
    assert!(reverted[0].file.ends_with("3_add_colour.down.sql"), "{reverted:?}");

    let status = m.status(&db.db_config()).await.expect("status");
    let pending: Vec<i64> =
        status.iter().filter(|s| s.state == MigrationState::Pending).map(|s| s.version).collect();
    assert_eq!(pending, vec![2, 3]);

    let again = m.up(&db.db_config()).await.expect("up again");
    assert_eq!(again.len(), 2);
}

#[tokio::test]
async fn a_migration_without_a_down_file_is_not_reverted_silently() {
    let db = TestDb::create().await;
    let m = migrations(&folder(&[("1_one_way.sql", "CREATE TABLE t (id int);")])).await;
    m.up(&db.db_config()).await.expect("up");
    let err = m.down(&db.db_config(), 1).await.expect_err("no down file");
    assert!(err.to_string().contains("1_one_way.sql has no down file"), "{err}");
}

#[tokio::test]
async fn a_service_that_does_not_migrate_starts_once_the_migrations_are_applied() {
    let db = TestDb::create().await;
    let m = migrations(&folder(BASE)).await;
    let config = kit::config::DbConfig { migrate_on_start: false, ..db.db_config() };
    let waiting = {
        let (m, config) = (m.clone(), config.clone());
        tokio::spawn(async move { kit::migrate::at_start(vec![m], &config).await })
    };
    m.up(&db.db_config()).await.expect("the migrate job applies them");
    waiting.await.expect("task").expect("the service stops waiting once they are applied");
    let things: Option<String> = sqlx::query_scalar("SELECT to_regclass('demo.things')::text")
        .fetch_one(&db.pool().await)
        .await
        .expect("query");
    assert_eq!(things.as_deref(), Some("demo.things"));
}

#[tokio::test]
async fn a_service_waiting_for_migrations_gives_up_saying_what_to_run() {
    let db = TestDb::create().await;
    let m = migrations(&folder(BASE)).await;
    let error = kit::migrate::await_applied(&[m], &db.db_config(), std::time::Duration::from_millis(600))
        .await
        .expect_err("nobody applies them");
    let message = format!("{error:#}");
    assert!(message.contains("demo: 3 pending") && message.contains("run `slipway migrate up`"), "{message}");
}

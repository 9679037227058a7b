//! `slipway db`: reset's refusal in prod, and dump and load between databases.

use testkit::TestDb;

use crate::helpers::{run, text};

async fn migrated_with_a_user(db: &TestDb) -> sqlx::PgPool {
    auth::migrations().up(&db.db_config()).await.expect("migrate");
    let pool = db.pool().await;
    sqlx::query(
        "INSERT INTO auth.users (id, email, password_hash) VALUES (gen_random_uuid(), 'a@example.com', 'x')",
    )
    .execute(&pool)
    .await
    .expect("insert");
    pool
}

async fn users(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(pool).await.expect("count")
}

#[tokio::test]
async fn db_reset_refuses_in_prod_and_leaves_the_data_alone() {
    let db = TestDb::create().await;
    let pool = migrated_with_a_user(&db).await;
    let vars = [("SLIPWAY_ENV", "prod"), ("DATABASE_URL", db.url.as_str())];
    let out = run(&vars, &["db", "reset", "auth", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("for dev and test only; SLIPWAY_ENV is prod"), "{}", text(&out));
    assert_eq!(users(&pool).await, 1);
}

#[tokio::test]
async fn db_reset_without_a_terminal_asks_for_yes() {
    let db = TestDb::create().await;
    let pool = migrated_with_a_user(&db).await;
    let out = run(&[("SLIPWAY_ENV", "dev"), ("DATABASE_URL", &db.url)], &["db", "reset", "auth"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("pass --yes"), "{}", text(&out));
    assert_eq!(users(&pool).await, 1);
}

#[tokio::test]
async fn db_reset_in_dev_empties_the_schema_and_migrates_it_again() {
    let db = TestDb::create().await;
    let pool = migrated_with_a_user(&db).await;
    let out = run(&[("SLIPWAY_ENV", "dev"), ("DATABASE_URL", &db.url)], &["db", "reset", "auth", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(users(&pool).await, 0);
    assert!(text(&out).contains("schema auth reset"), "{}", text(&out));
}

/// Every base table of the Slipway schemas with its row count, in name order.
async fn row_counts(pool: &sqlx::PgPool) -> Vec<(String, i64)> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut counts = Vec::new();
    for (schema, table) in tables {
        let sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\"");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await.expect("count");
        counts.push((format!("{schema}.{table}"), n));
    }
    counts
}

#[tokio::test]
async fn db_dump_and_db_load_copy_every_table_row_for_row_into_an_empty_database() {
    let from = TestDb::create().await;
    let vars = [("SLIPWAY_ENV", "dev"), ("DATABASE_URL", from.url.as_str())];
    let up = run(&vars, &["migrate", "up"]);
    assert!(up.status.success(), "{}", text(&up));
    let pool = from.pool().await;
    for i in 0..3 {
        sqlx::query("INSERT INTO auth.users (id, email, password_hash) VALUES (gen_random_uuid(), $1, 'x')")
            .bind(format!("user{i}@example.com"))
            .execute(&pool)
            .await
            .expect("insert");
    }
    let file = std::env::temp_dir().join(format!("slipway-{}.dump", uuid::Uuid::new_v4().simple()));
    let dump = run(&vars, &["db", "dump", "--output", &file.display().to_string()]);
    assert!(dump.status.success(), "{}", text(&dump));
    assert!(text(&dump).contains("dumped to"), "{}", text(&dump));

    let to = TestDb::create().await;
    let into = [("SLIPWAY_ENV", "dev"), ("DATABASE_URL", to.url.as_str())];
    let refused = run(&into, &["db", "load", &file.display().to_string()]);
    assert_eq!(refused.status.code(), Some(3), "without a terminal it asks for --yes: {}", text(&refused));
    let load = run(&into, &["db", "load", &file.display().to_string(), "--yes"]);
    assert!(load.status.success(), "{}", text(&load));
    assert!(text(&load).contains("run `slipway migrate up`"), "{}", text(&load));

    let (source, copy) = (row_counts(&pool).await, row_counts(&to.pool().await).await);
    assert_eq!(copy, source, "every table, row for row");
    assert!(source.contains(&("auth.users".to_string(), 3)), "{source:?}");
    assert!(source.len() > 5, "every schema's tables: {source:?}");
    let _ = std::fs::remove_file(file);
}

#[test]
fn db_load_of_something_that_is_not_a_dump_file_says_what_to_give() {
    let out = run(&[("SLIPWAY_ENV", "dev")], &["db", "load", "/nonexistent/slipway.dump", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not a file: give a dump made by `slipway db dump`"), "{}", text(&out));
}

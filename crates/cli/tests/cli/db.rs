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

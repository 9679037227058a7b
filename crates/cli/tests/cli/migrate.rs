//! `slipway migrate`: up, status, down and new against a real database.

use testkit::TestDb;

use crate::helpers::{run, slipway, text};

#[tokio::test]
async fn migrate_up_status_and_down_report_what_they_did() {
    let db = TestDb::create().await;
    let vars = [("SLIPWAY_ENV", "dev"), ("DATABASE_URL", db.url.as_str())];

    let status = text(&run(&vars, &["migrate", "status"]));
    assert!(status.contains("users.up.sql") && status.contains("pending"), "{status}");

    let up = run(&vars, &["migrate", "up"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(text(&up).contains("auth: applied 20261128000001_users.up.sql"), "{}", text(&up));
    assert!(text(&run(&vars, &["migrate", "up"])).contains("auth: nothing to do"));

    let status = text(&run(&vars, &["migrate", "status", "--service", "auth"]));
    assert!(status.contains("applied 20") && !status.contains("pending"), "{status}");

    let embedded = auth::migrations().status(&db.db_config()).await.expect("status");
    let newest = embedded.last().expect("auth has migrations").file.replace(".up.sql", ".down.sql");
    let newest = newest.rsplit('/').next().expect("file name");
    let down = run(&vars, &["migrate", "down", "--service", "auth"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(text(&down).lines().count(), 1, "one step by default: {}", text(&down));
    assert!(text(&down).contains(&format!("auth: reverted {newest}")), "{}", text(&down));

    let all = embedded.len().to_string();
    let down_all = run(&vars, &["migrate", "down", &all, "--service", "auth"]);
    assert!(text(&down_all).contains("auth: reverted 20261128000001_users.down.sql"), "{}", text(&down_all));
    let gone: Option<String> = sqlx::query_scalar("SELECT to_regclass('auth.users')::text")
        .fetch_one(&db.pool().await)
        .await
        .expect("query");
    assert_eq!(gone, None);
}

#[test]
fn migrate_new_creates_an_up_down_pair_and_refuses_bad_names() {
    let root = std::env::temp_dir().join(format!("slipway-ws-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(root.join("services/auth/migrations")).expect("mkdir");
    std::fs::write(root.join("Cargo.toml"), "[workspace]\n").expect("write");
    let nested = root.join("services/auth");

    let out = slipway(&[])
        .current_dir(&nested)
        .args(["migrate", "new", "auth", "add_locale"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out));
    let mut names: Vec<String> = std::fs::read_dir(root.join("services/auth/migrations"))
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].ends_with("_add_locale.down.sql") && names[1].ends_with("_add_locale.up.sql"),
        "{names:?}"
    );
    assert_eq!(names[0].split('_').next().map(str::len), Some(14), "a UTC timestamp version: {names:?}");

    let bad = slipway(&[])
        .current_dir(&nested)
        .args(["migrate", "new", "auth", "Add Locale"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("lowercase letters, digits and underscores"), "{}", text(&bad));

    let unknown =
        slipway(&[]).current_dir(&nested).args(["migrate", "new", "billing", "x"]).output().expect("runs");
    assert!(
        text(&unknown).contains("no service called \"billing\"; known: auth, mailer, web, gateway"),
        "{}",
        text(&unknown)
    );
}

#[test]
fn bad_command_lines_exit_2_with_usage() {
    let out = run(&[], &["migrate", "sideways"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("Usage"), "{}", text(&out));
}

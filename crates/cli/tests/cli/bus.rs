//! `slipway bus dead`: listing, retrying and discarding dead letters on a real bus.

use bus::{Backend, Group, Publish};
use serde_json::json;
use testkit::TestDb;

use crate::helpers::{run, text};

#[tokio::test]
async fn bus_dead_lists_retries_and_discards_dead_letters() {
    let db = TestDb::create().await;
    bus::migrations().up(&db.db_config()).await.expect("migrate");
    let pg = bus::pg::PgBus::new(db.pool().await);
    pg.subscribe(&Group::new("mailer"), &["auth.activation_requested"]).await.expect("subscribe");
    let first = pg
        .publish(&Publish::new("auth.activation_requested", json!({})))
        .await
        .expect("publish")
        .expect("id");
    let second = pg
        .publish(&Publish::new("auth.activation_requested", json!({})))
        .await
        .expect("publish")
        .expect("id");
    for d in pg.claim("mailer", "t", 10, std::time::Duration::from_secs(30)).await.expect("claim") {
        pg.fail(&d, "550 5.1.1 no such user", true).await.expect("fail");
    }
    let vars = [("SLIPWAY_ENV", "dev"), ("DATABASE_URL", db.url.as_str())];

    let list = text(&run(&vars, &["bus", "dead", "list"]));
    assert!(list.contains(&first.to_string()) && list.contains("550 5.1.1 no such user"), "{list}");
    assert!(list.contains("2 dead letter(s)"), "{list}");

    let retried = run(&vars, &["bus", "dead", "retry", "mailer", &first.to_string()]);
    assert!(retried.status.success(), "{}", text(&retried));
    let again = pg.claim("mailer", "t", 10, std::time::Duration::from_secs(30)).await.expect("claim");
    assert_eq!(again.iter().map(|d| d.id).collect::<Vec<_>>(), vec![first]);

    assert!(run(&vars, &["bus", "dead", "discard", "mailer", &second.to_string()]).status.success());
    assert!(text(&run(&vars, &["bus", "dead", "list", "--group", "mailer"])).contains("0 dead letter(s)"));
    let missing = run(&vars, &["bus", "dead", "retry", "mailer", &second.to_string()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("has no dead letter"), "{}", text(&missing));
}

//! `slipway migrate up` gives each service that names one a database role of its own.

use std::str::FromStr as _;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

use crate::helpers::{run, text};

/// A Postgres of the test's own that asks every role but its superuser for a password (the
/// shared test server trusts everyone on loopback, which would prove nothing about them).
struct Server {
    cluster: devdb::Cluster,
    url: String,
}

impl Server {
    async fn start() -> Self {
        let cluster = devdb::Cluster::start_checking_passwords().expect("a throwaway Postgres");
        let mut conn = PgConnection::connect(&cluster.url("postgres")).await.expect("connect as postgres");
        sqlx::raw_sql("CREATE DATABASE slipway").execute(&mut conn).await.expect("create database");
        let _ = conn.close().await;
        let url = cluster.url("slipway");
        Self { cluster, url }
    }

    async fn connect_as(&self, role: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
        let options = PgConnectOptions::from_str(&self.url).expect("url").username(role).password(password);
        PgConnection::connect_with(&options).await
    }
}

/// The SQLSTATE of a failed statement.
async fn refused(conn: &mut PgConnection, sql: &str) -> String {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *conn).await {
        Ok(_) => format!("allowed: {sql}"),
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.to_string()).unwrap_or_default(),
        Err(e) => format!("{e}"),
    }
}

#[tokio::test]
async fn a_service_role_reaches_its_own_schema_and_the_bus_functions_and_nothing_else() {
    let server = Server::start().await;
    let (auth, web) = ("slipway_auth", "slipway_web");
    let vars = [
        ("SLIPWAY_ENV", "dev"),
        ("DATABASE_URL", server.url.as_str()),
        ("SLIPWAY_AUTH_DATABASE_ROLE", auth),
        ("SLIPWAY_AUTH_DATABASE_ROLE_PASSWORD", "first 'password' \\ of auth"),
        ("SLIPWAY_WEB_DATABASE_ROLE", web),
        ("SLIPWAY_WEB_DATABASE_ROLE_PASSWORD", "web's password"),
    ];
    let up = run(&vars, &["migrate", "up"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains(&format!("auth: role {auth} may use schema auth and the bus")),
        "{}",
        text(&up)
    );
    assert!(!text(&up).contains("first 'password'"), "the password is never printed: {}", text(&up));

    let mut conn = server.connect_as(auth, "first 'password' \\ of auth").await.expect("auth's role logs in");
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&mut conn).await.expect("own table");
    assert_eq!(users, 0);
    let published: Option<uuid::Uuid> = sqlx::query_scalar("SELECT bus.publish('roles.test', '{}'::jsonb)")
        .fetch_one(&mut conn)
        .await
        .expect("the bus's publish function");
    assert!(published.is_some());
    sqlx::query("SELECT bus.subscribe('auth', 'roles.test')").execute(&mut conn).await.expect("subscribe");

    for sql in [
        "SELECT count(*) FROM web.sessions",
        "SELECT count(*) FROM bus.messages",
        "SELECT count(*) FROM bus.events",
        "SELECT count(*) FROM bus.deliveries",
        "SELECT * FROM bus.dead_letters('auth')",
        "DELETE FROM auth.schema_migrations",
        "CREATE TABLE auth.extra (id int)",
        "CREATE SCHEMA other",
    ] {
        assert_eq!(refused(&mut conn, sql).await, "42501", "insufficient_privilege for {sql}");
    }
    let _ = conn.close().await;

    // Run again with a new password: the role keeps its rights and takes the new password.
    let rotated: Vec<(&str, &str)> = vars
        .iter()
        .map(|&(k, v)| if k == "SLIPWAY_AUTH_DATABASE_ROLE_PASSWORD" { (k, "second") } else { (k, v) })
        .collect();
    let again = run(&rotated, &["migrate", "up"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        server.connect_as(auth, "first 'password' \\ of auth").await.is_err(),
        "the old password is refused"
    );
    let mut conn = server.connect_as(auth, "second").await.expect("the new password works");
    sqlx::query("SELECT count(*) FROM auth.sessions").execute(&mut conn).await.expect("still its own tables");
    let _ = conn.close().await;

    let mut conn = server.connect_as(web, "web's password").await.expect("web's role logs in");
    sqlx::query("SELECT count(*) FROM web.sessions").execute(&mut conn).await.expect("web's own table");
    assert_eq!(refused(&mut conn, "SELECT count(*) FROM auth.users").await, "42501");
    let _ = conn.close().await;
    drop(server.cluster);
}

#[test]
fn a_role_without_its_password_is_a_configuration_error() {
    let out = run(
        &[("SLIPWAY_ENV", "dev"), ("SLIPWAY_AUTH_DATABASE_ROLE", "slipway_auth")],
        &["migrate", "status"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("SLIPWAY_AUTH_DATABASE_ROLE_PASSWORD: required with DATABASE_ROLE"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn a_refused_database_password_is_named_with_what_to_do() {
    let server = Server::start().await;
    let mut conn = PgConnection::connect(&server.cluster.url("postgres")).await.expect("connect");
    sqlx::raw_sql("CREATE ROLE owner LOGIN SUPERUSER PASSWORD 'made with this'")
        .execute(&mut conn)
        .await
        .expect("role");
    let _ = conn.close().await;
    let url = server.url.replacen("postgres@", "owner@", 1);
    let out = run(
        &[("SLIPWAY_ENV", "dev"), ("DATABASE_URL", url.as_str()), ("SLIPWAY_DATABASE_PASSWORD", "a new one")],
        &["migrate", "up"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("Postgres refused the password of user owner"), "{said}");
    assert!(
        said.contains("POSTGRES_PASSWORD only to a new volume") && said.contains("\\password owner"),
        "{said}"
    );
    assert!(!said.contains("a new one"), "the password is not printed: {said}");
}

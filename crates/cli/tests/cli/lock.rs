//! Destinations, the deploy lock and deploys: their errors, without an engine (e2e takes real
//! locks and deploys to a second engine).

use std::path::PathBuf;

use crate::helpers::{slipway, text};

/// A project folder holding `deploy.toml` with `contents`.
fn project(contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slipway-deploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("deploy.toml"), contents).expect("deploy.toml");
    dir
}

fn lock(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    slipway(&[]).current_dir(dir).arg("lock").args(args).output().expect("slipway runs")
}

#[test]
fn an_unknown_destination_names_the_known_ones() {
    let dir = project(
        "[destinations.staging]\nengine = \"ssh://deploy@10.0.0.5\"\n[destinations.prod]\nengine = \"context:prod\"\n",
    );
    let out = lock(&dir, &["status", "production"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no destination called \"production\"")
            && text(&out).contains("known: prod, staging"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_missing_or_malformed_destinations_file_says_what_to_fix() {
    let empty = std::env::temp_dir().join(format!("slipway-nodeploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = lock(&empty, &["status", "prod"]);
    assert!(text(&out).contains("deploy.toml") && text(&out).contains("project's root"), "{}", text(&out));

    let out = lock(&project("[destinations.prod]\nengin = \"ssh://h\"\n"), &["status", "prod"]);
    assert!(text(&out).contains("unknown field `engin`"), "{}", text(&out));

    let out = lock(&project("[destinations.prod]\nengine = \"http://h\"\n"), &["status", "prod"]);
    assert!(
        text(&out).contains("engine: expected unix:///path/docker.sock, ssh://user@host"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unreachable_engine_is_named_with_how_it_was_reached() {
    let dir = project(
        "[destinations.prod]\nengine = \"tcp://127.0.0.1:1\"\npublic_url = \"https://example.com\"\n",
    );
    let out = lock(&dir, &["status", "prod"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("failed on the Docker engine of prod (tcp://127.0.0.1:1)"), "{}", text(&out));
}

#[test]
fn a_deploy_from_a_tree_with_uncommitted_changes_is_refused_unless_allowed() {
    let dir = project(
        "[destinations.prod]\nengine = \"tcp://127.0.0.1:1\"\npublic_url = \"https://example.com\"\n",
    );
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(&dir)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "--quiet"]);
    git(&["add", "deploy.toml"]);
    git(&["commit", "--quiet", "-m", "first"]);
    std::fs::write(dir.join("deploy.toml"), "[destinations.prod]\nengine = \"tcp://127.0.0.1:1\"\npublic_url = \"https://example.com\"\n# changed\n").expect("edit");

    let deploy = |extra: &[&str]| {
        slipway(&[]).current_dir(&dir).args(["deploy", "prod"]).args(extra).output().expect("runs")
    };
    let refused = deploy(&[]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(
        text(&refused).contains("uncommitted changes") && text(&refused).contains("--allow-dirty"),
        "{}",
        text(&refused)
    );

    let allowed = deploy(&["--allow-dirty"]);
    assert_eq!(allowed.status.code(), Some(1), "{}", text(&allowed));
    assert!(
        text(&allowed).contains("reaching the engine failed on the Docker engine of prod"),
        "{}",
        text(&allowed)
    );
}

#[test]
fn logs_of_a_service_the_destination_does_not_have_name_the_services_it_has() {
    let dir = project(
        "[destinations.local]\nengine = \"unix:///var/run/docker.sock\"\npublic_url = \"http://localhost:8080\"\n",
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in ["docker-compose.yml", "docker-compose.prod.yml", ".env"] {
        std::fs::copy(root.join(file), dir.join(file)).expect(file);
    }
    let out = slipway(&[]).current_dir(&dir).args(["logs", "local", "auht"]).output().expect("slipway runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("local has no service \"auht\"; its services are")
            && text(&out).contains("auth, docker-proxy, gateway, mailer, migrate, postgres, web"),
        "{}",
        text(&out)
    );
}

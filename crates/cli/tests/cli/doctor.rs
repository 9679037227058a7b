//! `slipway doctor`: passes on this repository's wiring, and names each piece a test breaks.

use std::path::{Path, PathBuf};

use crate::helpers::{repo, slipway, text};

/// A copy of the files the wiring lives in: the compose files, the Dockerfile, the scopes,
/// the CLI's registry, and every service's manifest and migrations folder.
fn project() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slipway-doctor-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("crates/project/src")).expect("temp dir");
    std::fs::create_dir_all(dir.join("crates/cli/src")).expect("temp dir");
    for file in [
        "docker-compose.yml",
        "docker-compose.override.yml",
        "docker-compose.prod.yml",
        "docker-compose.nats.yml",
        "Dockerfile",
        "crates/project/src/lib.rs",
        "crates/cli/src/registry.rs",
    ] {
        std::fs::copy(repo().join(file), dir.join(file)).expect("copy a wiring file");
    }
    for service in std::fs::read_dir(repo().join("services")).expect("services").flatten() {
        let copy = dir.join("services").join(service.file_name());
        if !service.path().join("Cargo.toml").is_file() {
            continue;
        }
        std::fs::create_dir_all(&copy).expect("service dir");
        std::fs::copy(service.path().join("Cargo.toml"), copy.join("Cargo.toml")).expect("copy a manifest");
        let migrations = service.path().join("migrations");
        if migrations.is_dir() {
            std::fs::create_dir_all(copy.join("migrations")).expect("migrations dir");
            for file in std::fs::read_dir(&migrations).expect("migrations").flatten() {
                std::fs::copy(file.path(), copy.join("migrations").join(file.file_name()))
                    .expect("copy a migration");
            }
        }
    }
    dir
}

fn doctor(dir: &Path, extra: &[&str]) -> (bool, String) {
    let out = slipway(&[]).args(["doctor", "--dir"]).arg(dir).args(extra).output().expect("slipway runs");
    (out.status.success(), text(&out))
}

/// Replaces `from` with `to` in `file`, which must contain it once.
fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in {file}");
    std::fs::write(&path, text.replace(from, to)).expect("write");
}

/// What a test breaks, how, and what the doctor must say.
type Breakage = (&'static str, fn(&Path), &'static str);

#[test]
fn the_doctor_passes_on_this_repository_and_names_each_piece_of_wiring_a_test_breaks() {
    let dir = project();
    let (ok, out) = doctor(&dir, &["--wiring-only"]);
    assert!(ok, "{out}");
    for service in ["auth", "mailer", "web", "gateway"] {
        assert!(out.contains(&format!("ok       {service}: Dockerfile target")), "{out}");
    }

    assert!(out.contains("ok       bus overlay: auth, mailer on NATS in docker-compose.nats.yml"), "{out}");

    let broken: [Breakage; 7] = [
        (
            "a missing label",
            |d| edit(d, "docker-compose.yml", "      slipway.port: \"8081\"\n", ""),
            "auth: routed by the gateway but has no slipway.port label",
        ),
        (
            "a missing Dockerfile target",
            |d| edit(d, "Dockerfile", "FROM runtime AS mailer\n", "FROM runtime AS postman\n"),
            "mailer: the Dockerfile has no target mailer",
        ),
        (
            "a duplicate route",
            |d| edit(d, "docker-compose.yml", "      slipway.path: /\n", "      slipway.path: /api/auth\n"),
            "auth and web both claim the route */api/auth",
        ),
        (
            "a missing migrations folder",
            |d| std::fs::remove_dir_all(d.join("services/web/migrations")).expect("remove"),
            "web: its migrations folder services/web/migrations is missing",
        ),
        (
            "a service left out of the CLI's registry",
            |d| edit(d, "crates/cli/src/registry.rs", "    &Of::<mailer::Config>(PhantomData),\n", ""),
            "mailer: not in the CLI's registry",
        ),
        (
            "a missing dev entry",
            |d| edit(d, "docker-compose.override.yml", "  mailer:\n", "  postman:\n"),
            "mailer: docker-compose.override.yml has no service mailer",
        ),
        (
            "a service on the bus left out of the NATS overlay",
            |d| edit(d, "docker-compose.nats.yml", "  mailer: *on-nats\n", ""),
            "mailer: on the bus but not moved to NATS by docker-compose.nats.yml",
        ),
    ];
    for (what, break_it, named) in broken {
        let dir = project();
        break_it(&dir);
        let (ok, out) = doctor(&dir, &["--wiring-only"]);
        assert!(!ok, "{what}: the doctor passed:\n{out}");
        assert!(out.contains(named), "{what}: expected {named:?} in:\n{out}");
        assert!(out.contains("doctor found 1 problem"), "{what}: one problem, not more:\n{out}");
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_docker_on_the_path_the_doctor_names_it_and_the_command_that_installs_it() {
    let dir = project();
    let empty = dir.join("empty-bin");
    std::fs::create_dir_all(&empty).expect("empty bin dir");
    let out =
        slipway(&[]).env("PATH", &empty).args(["doctor", "--dir"]).arg(&dir).output().expect("slipway runs");
    let out_text = text(&out);
    assert!(!out.status.success(), "{out_text}");
    assert!(out_text.contains("Docker is not installed"), "{out_text}");
    assert!(out_text.contains("apt-get install docker.io"), "{out_text}");
    let _ = std::fs::remove_dir_all(dir);
}

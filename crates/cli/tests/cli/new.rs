//! `slipway new service`: a service wired in everywhere in one step, or nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::helpers::{cargo_in, repo, slipway, text};

/// A copy of the repository's files (tracked and new, not ignored ones such as target/).
fn copy_of_repo() -> PathBuf {
    testkit::copy_of_checkout(&repo(), "slipway-new")
}

/// Every file under `dir` and its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

fn new_service(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out =
        slipway(&[]).current_dir(dir).args(["new", "service"]).args(args).output().expect("slipway runs");
    (out.status.code(), text(&out))
}

#[test]
fn a_new_service_is_wired_in_everywhere_the_doctor_checks_and_a_bad_name_or_a_failure_changes_nothing() {
    let dir = copy_of_repo();
    let (code, out) = new_service(&dir, &["notes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("services/notes/src/lib.rs"), "{out}");
    let (code, out) = new_service(&dir, &["plain", "--no-db", "--public"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = new_service(&dir, &["pyx", "--lang", "python"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(dir.join("services/pyx/app.py").is_file() && dir.join("services/pyx/requirements.txt").is_file());
    let app = std::fs::read_to_string(dir.join("services/pyx/app.py")).expect("app.py");
    assert!(app.contains("NAME = \"pyx\"") && app.contains("if __name__ == \"__main__\":"), "{app}");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("exclude = [\"services/pyx\"]"), "not a workspace member: {manifest}");
    assert!(!out.contains("crates/cli/Cargo.toml"), "an unchanged file is not listed as changed: {out}");
    assert!(!dir.join("services/plain/migrations").exists(), "no database, no migrations");
    let doctor =
        slipway(&[]).args(["doctor", "--wiring-only", "--dir"]).arg(&dir).output().expect("doctor runs");
    assert!(doctor.status.success(), "{}", text(&doctor));
    assert!(text(&doctor).contains("ok       notes: Dockerfile target"), "{}", text(&doctor));
    let compose = std::fs::read_to_string(dir.join("docker-compose.yml")).expect("compose");
    assert!(compose.contains("slipway.path: /api/notes"), "routed at /api/notes");
    assert!(compose.contains("slipway.protected: \"true\""), "protected by default");
    assert!(compose.contains("slipway.protected: \"false\""), "--public is not");
    assert!(!compose.contains("plain_database_password"), "--no-db has no role and no secret");
    let nats = std::fs::read_to_string(dir.join("docker-compose.nats.yml")).expect("the NATS overlay");
    assert!(nats.contains("  notes: *on-nats\n"), "a service on the bus follows SLIPWAY_BUS_URL: {nats}");
    assert!(!nats.contains("plain:") && !nats.contains("pyx:"), "no bus, or Python: not in it: {nats}");
    assert!(
        compose.contains("slipway.port: \"8084\"") && compose.contains("slipway.port: \"8085\""),
        "the second new service gets a port of its own before the CLI is rebuilt"
    );
    assert!(text(&doctor).contains("ok       plain: Dockerfile target"), "{}", text(&doctor));
    assert!(text(&doctor).contains("ok       pyx: Dockerfile target"), "{}", text(&doctor));
    assert!(
        compose.contains("slipway.port: \"8086\"") && compose.contains("pyx_database_password"),
        "the Python service has its port, role and secret"
    );

    let before = snapshot(&dir);
    let (code, out) = new_service(&dir, &["notes"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("exists already"), "{out}");
    let (code, out) = new_service(&dir, &["pyplain", "--lang", "python", "--no-db"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("--no-db"), "{out}");
    for bad in ["Notes", "my-notes", "type", "auth"] {
        let (code, out) = new_service(&dir, &[bad]);
        assert_eq!(code, Some(3), "{bad}: {out}");
    }
    assert!(before == snapshot(&dir), "a refused name changes nothing");
    let _ = std::fs::remove_dir_all(&dir);

    // A file without the line an edit needs: the command fails, naming it, and writes nothing.
    let dir = copy_of_repo();
    let prod = dir.join("docker-compose.prod.yml");
    let text_before = std::fs::read_to_string(&prod).expect("prod file");
    std::fs::write(&prod, text_before.replace("  migrate:\n", "  migrations:\n")).expect("write");
    let before = snapshot(&dir);
    let (code, out) = new_service(&dir, &["notes"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("docker-compose.prod.yml") && out.contains("nothing was written"), "{out}");
    assert!(before == snapshot(&dir), "nothing is half-written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn new_services_with_and_without_a_database_or_the_bus_build_lint_clean_and_pass_their_own_tests() {
    let dir = copy_of_repo();
    for args in [&["notes"][..], &["plain", "--no-db"], &["quiet", "--no-bus"]] {
        let (code, out) = new_service(&dir, args);
        assert_eq!(code, Some(0), "{out}");
    }
    cargo_in(
        &dir,
        &[
            &["fmt", "--all", "--", "--check"],
            // --locked, as the project's CI builds: `new service` brought Cargo.lock up to date.
            &[
                "clippy",
                "--locked",
                "-p",
                "notes",
                "-p",
                "plain",
                "-p",
                "quiet",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &["test", "--locked", "-p", "notes", "-p", "plain", "-p", "quiet"],
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

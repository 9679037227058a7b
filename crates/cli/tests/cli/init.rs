//! `slipway init`: a new product's repository, made from this checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{cargo_in, repo, slipway, text};

fn fresh_dir() -> PathBuf {
    std::env::temp_dir().join(format!("slipway-init-{}", uuid::Uuid::new_v4().simple())).join("shop")
}

fn init(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out =
        slipway(&[]).current_dir(repo()).arg("init").arg(dir).args(extra).output().expect("slipway runs");
    (out.status.code(), text(&out))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).output().expect("git runs");
    assert!(out.status.success(), "git {}: {}", args.join(" "), text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn init_makes_a_named_repository_with_fresh_secrets_and_one_commit_and_refuses_a_used_folder() {
    let dir = fresh_dir();
    let (code, out) = init(&dir, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(
        git(&dir, &["status", "--porcelain"]),
        "",
        "the secrets are ignored, everything else committed"
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    assert!(readme.starts_with("# shop\n"), "named after the folder");
    assert!(readme.contains("cargo xtask test"), "the quickstart is kept");
    let dotenv = std::fs::read_to_string(dir.join(".env")).expect(".env");
    assert!(dotenv.contains("COMPOSE_PROJECT_NAME=shop\n"), "its own compose project and volumes");
    let compose = std::fs::read_to_string(dir.join("docker-compose.yml")).expect("compose");
    assert!(compose.contains("image: shop/auth:") && !compose.contains("image: slipway/auth:"), "{compose}");
    let backup = std::fs::read_to_string(dir.join("docker-compose.backup.yml")).expect("backup compose");
    assert!(backup.contains("image: slipway/postgres:15"), "the platform's Postgres image keeps its name");
    let project = std::fs::read_to_string(dir.join("crates/project/src/lib.rs")).expect("project");
    assert!(project.contains("pub const IMAGES: &str = \"shop\";"), "its images' namespace");
    let secrets = std::fs::read_to_string(dir.join("secrets.env")).expect("secrets.env");
    let ours = std::fs::read_to_string(repo().join("secrets.env")).unwrap_or_default();
    assert_ne!(secrets, ours, "fresh secrets, not this checkout's");
    assert!(dir.join("secrets/auth_jwt_key").is_file(), "the stack's secret files");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join(".ci/run")).expect("run").permissions(),
    );
    assert!(mode & 0o111 != 0, ".ci/run stays executable");
    let doctor = slipway(&[]).args(["doctor", "--wiring-only", "--dir"]).arg(&dir).output().expect("doctor");
    assert!(doctor.status.success(), "{}", text(&doctor));

    let (code, out) = init(&dir, &[]);
    assert_eq!(code, Some(3), "a used folder is refused: {out}");
    assert!(out.contains("not empty"), "{out}");
    let other = fresh_dir();
    let (code, out) = init(&other, &["--name", "Shop!"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("not a product name"), "{out}");
    assert!(!other.exists(), "nothing written for a bad name");
    let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
}

#[test]
fn an_initialised_project_is_formatted_and_builds() {
    let dir = fresh_dir();
    let (code, out) = init(&dir, &["--name", "shop"]);
    assert_eq!(code, Some(0), "{out}");
    cargo_in(
        &dir,
        &[&["fmt", "--all", "--", "--check"], &["check", "--workspace", "--all-targets", "--locked"]],
    );
    let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
}

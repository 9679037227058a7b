//! `slipway up`: what it says and writes outside a project.

use crate::helpers::{run, text};

#[test]
fn up_outside_a_project_says_where_to_run_it_and_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("slipway-up-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = crate::helpers::slipway(&[]).current_dir(&dir).arg("up").output().expect("slipway runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no docker-compose.yml in this folder"), "{}", text(&out));
    assert!(!dir.join("secrets").exists(), "no secrets written outside a project");
    let _ = std::fs::remove_dir_all(&dir);
    // The usage lists it.
    assert!(text(&run(&[], &["--help"])).contains("up"));
}

#[test]
fn up_without_docker_names_it_and_the_command_that_installs_it_before_writing_anything() {
    let dir = std::env::temp_dir().join(format!("slipway-up-{}", uuid::Uuid::new_v4().simple()));
    let empty = dir.join("empty-bin");
    std::fs::create_dir_all(&empty).expect("dir");
    std::fs::write(dir.join("docker-compose.yml"), "services: {}\n").expect("compose file");
    let out = crate::helpers::slipway(&[])
        .env("PATH", &empty)
        .current_dir(&dir)
        .arg("up")
        .output()
        .expect("slipway runs");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("Docker is not installed"), "{said}");
    assert!(said.contains("apt-get install docker.io"), "{said}");
    assert!(!dir.join("secrets").exists(), "nothing written before the prerequisites are there");
    let _ = std::fs::remove_dir_all(&dir);
}

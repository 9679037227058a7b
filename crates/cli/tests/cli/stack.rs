//! `slipway stack deploy --check`: what Swarm is given from the compose files.

use crate::helpers::text;

/// A copy of the project's compose files in a folder of its own.
fn project() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("slipway-stack-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["docker-compose.yml", "docker-compose.prod.yml", ".env"] {
        std::fs::copy(root.join(file), dir.join(file)).expect(file);
    }
    std::fs::write(dir.join("secrets.env"), "").expect("secrets.env");
    dir
}

#[test]
fn stack_deploy_check_gives_swarm_the_prod_stack_without_compose_only_keys() {
    let dir = project();
    let vars = [("SLIPWAY_TAG", "3f1c0a9e2b7d"), ("SLIPWAY_PUBLIC_URL", "https://example.com")];
    let out = crate::helpers::slipway(&vars)
        .current_dir(&dir)
        .args(["stack", "deploy", "--check"])
        .output()
        .expect("slipway runs");
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", text(&out));
    for image in ["auth", "mailer", "web", "gateway", "slipway"] {
        assert!(shown.contains(&format!("image: slipway/{image}:3f1c0a9e2b7d")), "{image}: {shown}");
    }
    assert!(shown.contains("replicas: 2") && shown.contains("read_only: true"), "{shown}");
    assert!(!shown.contains("depends_on") && !shown.contains("build:"), "{shown}");
    let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 4, "the copies handed to docker are removed: {left:?}");

    // Without an image tag, compose's own message says what to set.
    let untagged = crate::helpers::slipway(&vars[1..])
        .current_dir(&dir)
        .args(["stack", "deploy", "--check"])
        .output()
        .expect("slipway runs");
    assert_eq!(untagged.status.code(), Some(1));
    assert!(text(&untagged).contains("set SLIPWAY_TAG"), "{}", text(&untagged));
    let _ = std::fs::remove_dir_all(&dir);
}

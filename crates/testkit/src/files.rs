//! Copies of a repository's files, for tests that change a project or run one elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of the git checkout at `root` — tracked and new ones, never ignored ones such as
/// target/ — copied into a new folder under the temporary directory named `prefix-<uuid>`.
pub fn copy_of_checkout(root: &Path, prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    let listed = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard", "-z"])
        .current_dir(root)
        .output()
        .expect("git ls-files");
    assert!(listed.status.success(), "git ls-files: {}", String::from_utf8_lossy(&listed.stderr));
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file).to_string();
        let (from, to) = (root.join(&file), dir.join(&file));
        if from.is_file() {
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&from, &to).expect("copy");
        }
    }
    dir
}

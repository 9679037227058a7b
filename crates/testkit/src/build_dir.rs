//! A cargo build-dir of a test's own, seeded with this build's compiled dependencies, for a
//! test that builds a copy of the workspace (a product from `slipway init`, a new service).
//!
//! Sharing this build's build-dir with a copy is not safe: cargo names a workspace crate's
//! artifacts by its path relative to the workspace root, the same in the copy, so the copy's
//! build would replace this build's `kit` or `slipway` with its own, and this build would then
//! take them as fresh. Only the registry dependencies' artifacts are copied here; the copy's own
//! crates are compiled into the new folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The build-dir of a workspace whose root is `workspace` (`CARGO_BUILD_BUILD_DIR`, else
/// `CARGO_TARGET_DIR`, else `workspace/target`).
pub fn build_dir_of(workspace: &Path) -> PathBuf {
    ["CARGO_BUILD_BUILD_DIR", "CARGO_TARGET_DIR"]
        .iter()
        .find_map(std::env::var_os)
        .map_or_else(|| workspace.join("target"), PathBuf::from)
}

/// Fills `dest` (a new folder) with the `debug` artifacts of `build_dir`'s dependencies that
/// are not members of `workspace`: a build-dir for a copy of the workspace.
pub fn seed_build_dir(workspace: &Path, build_dir: &Path, dest: &Path) {
    let members = members(workspace);
    let (from, to) = (build_dir.join("debug"), dest.join("debug"));
    let mut hashes = HashSet::new();
    let mut fingerprints = Vec::new();
    for entry in entries(&from.join(".fingerprint")) {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some((package, hash)) = name.rsplit_once('-') else { continue };
        if !members.contains(package) {
            hashes.insert(hash.to_string());
            fingerprints.push(entry.path());
        }
    }
    copy_into(&fingerprints, &to.join(".fingerprint"));
    for dir in ["deps", "build"] {
        let theirs: Vec<PathBuf> = entries(&from.join(dir))
            .into_iter()
            .filter(|entry| {
                let name = entry.file_name().to_string_lossy().to_string();
                let stem = name.split('.').next().unwrap_or_default().to_string();
                stem.rsplit_once('-').is_some_and(|(_, hash)| hashes.contains(hash))
            })
            .map(|entry| entry.path())
            .collect();
        copy_into(&theirs, &to.join(dir));
    }
}

/// The package names of the workspace's members: every `[package]` name under crates/,
/// services/ and the root's other folders.
fn members(workspace: &Path) -> HashSet<String> {
    let mut manifests = Vec::new();
    for dir in [workspace.to_path_buf(), workspace.join("crates"), workspace.join("services")] {
        manifests
            .extend(entries(&dir).into_iter().map(|e| e.path().join("Cargo.toml")).filter(|p| p.is_file()));
    }
    manifests
        .iter()
        .filter_map(|m| std::fs::read_to_string(m).ok())
        .filter_map(|text| {
            let package = text.split("[package]").nth(1)?;
            let line = package.lines().find(|l| l.trim_start().starts_with("name"))?;
            Some(line.split('"').nth(1)?.to_string())
        })
        .collect()
}

fn entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    std::fs::read_dir(dir).map(|d| d.flatten().collect()).unwrap_or_default()
}

/// Copies files and folders (with everything in them) into `dir`, keeping modification times
/// (cargo's freshness checks compare them), with one `cp` per few hundred paths. A build
/// running at the same time deletes its intermediate files as it goes (seen in CI: a
/// `…rcgu.o` listed, then gone): a chunk that fails is copied again path by path, and a path
/// that no longer exists is skipped.
fn copy_into(paths: &[PathBuf], dir: &Path) {
    std::fs::create_dir_all(dir).expect("make the folder");
    let cp = |paths: &[PathBuf]| {
        std::process::Command::new("cp")
            .args(["-a", "--reflink=auto", "--target-directory"])
            .arg(dir)
            .args(paths)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("cp runs")
            .success()
    };
    for chunk in paths.chunks(500) {
        if cp(chunk) {
            continue;
        }
        for path in chunk {
            let copied = cp(std::slice::from_ref(path));
            assert!(copied || !path.exists(), "cp -a {} into {} failed", path.display(), dir.display());
        }
    }
}

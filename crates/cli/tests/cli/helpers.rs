//! Running `slipway` with a controlled environment.

use std::process::{Command, Output};
pub use testkit::free_port;

pub const SLIPWAY: &str = env!("CARGO_BIN_EXE_slipway");

/// `slipway` with only the given variables (plus PATH), run from an empty folder.
pub fn slipway(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(SLIPWAY);
    cmd.env_clear().current_dir(std::env::temp_dir());
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(vars.iter().copied());
    cmd
}

pub fn run(vars: &[(&str, &str)], args: &[&str]) -> Output {
    slipway(vars).args(args).output().expect("slipway runs")
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The repository's root.
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository")
}

/// Runs cargo with each of `runs`' arguments in `dir` (another workspace, made by a test), in
/// a target folder of its own seeded with this build's compiled dependencies (never this
/// build's own: testkit::build_dir says why); fails the test with cargo's output when one
/// fails.
pub fn cargo_in(dir: &std::path::Path, runs: &[&[&str]]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = dir.join("target");
    testkit::seed_build_dir(&repo(), &testkit::build_dir_of(&repo()), &target);
    for args in runs {
        let out = Command::new(&cargo)
            .args(*args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "cargo {}:\n{}", args.join(" "), text(&out));
    }
}

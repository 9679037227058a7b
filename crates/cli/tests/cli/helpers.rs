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

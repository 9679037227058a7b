//! `cargo xtask tidy`: the workspace's structural rules, checked from `cargo metadata` and the
//! source tree. Its tests run them on this workspace, so `cargo xtask test` fails when a rule
//! is broken:
//!
//! - a shared crate (`crates/*`) depends on no service (`services/*`), in any way;
//! - a service depends on another service only as a dev-dependency (contract tests);
//! - only the roots (the CLI, e2e and xtask) are depended on by nothing, and nothing depends
//!   on a root;
//! - every Rust source file opens with a `//!` line saying what it is for;
//! - one TLS crypto provider, ring, in the whole build (tests included): `Cargo.lock` holds
//!   no aws-lc-rs, which rustls's and hyper-rustls's default features would bring back.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

/// The packages nothing may depend on: the binaries that put the platform together.
const ROOTS: [&str; 3] = ["slipway-cli", "e2e", "xtask"];

/// Where a package sits in the dependency rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shared,
    Service,
    Root,
}

/// A workspace package and its dependencies on other workspace packages.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub kind: Kind,
    /// (name, whether only a dev-dependency) of each dependency inside the workspace.
    pub deps: Vec<(String, bool)>,
}

/// Every broken dependency rule, as a sentence naming both packages.
pub fn dependency_problems(packages: &[Package]) -> Vec<String> {
    let kind = |name: &str| packages.iter().find(|p| p.name == name).map(|p| p.kind);
    let mut problems = Vec::new();
    for p in packages {
        for (dep, dev) in &p.deps {
            let dev_note = if *dev { " (as a dev-dependency)" } else { "" };
            match (p.kind, kind(dep)) {
                (_, Some(Kind::Root)) => {
                    problems.push(format!(
                        "{} depends on {dep}{dev_note}, a root that nothing may depend on",
                        p.name
                    ));
                }
                (Kind::Shared, Some(Kind::Service)) => problems.push(format!(
                    "shared crate {} depends on service {dep}{dev_note}: shared crates depend on no service",
                    p.name
                )),
                (Kind::Service, Some(Kind::Service)) if !dev => problems.push(format!(
                    "service {} depends on service {dep}: a service may use another only as a \
                     dev-dependency (contract tests); share code through a crate in crates/",
                    p.name
                )),
                _ => {}
            }
        }
    }
    problems
}

/// The workspace's packages from `cargo metadata`.
pub fn packages(root: &Path) -> anyhow::Result<Vec<Package>> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    anyhow::ensure!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).context("cargo metadata's JSON")?;
    let listed = meta["packages"].as_array().context("no packages in cargo metadata")?;
    let names: Vec<&str> = listed.iter().filter_map(|p| p["name"].as_str()).collect();
    Ok(listed
        .iter()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            let manifest = p["manifest_path"].as_str()?;
            let kind = if ROOTS.contains(&name) {
                Kind::Root
            } else if manifest.contains("/services/") {
                Kind::Service
            } else {
                Kind::Shared
            };
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| Some((d["name"].as_str()?, d["kind"].as_str() == Some("dev"))))
                .filter(|(d, _)| names.contains(d))
                .map(|(d, dev)| (d.to_string(), dev))
                .collect();
            Some(Package { name: name.to_string(), kind, deps })
        })
        .collect())
}

/// The files among `files` (path, contents) whose first line is not a `//!` module doc.
pub fn undocumented<'f>(files: impl IntoIterator<Item = (&'f Path, &'f str)>) -> Vec<&'f Path> {
    files
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path)
        .collect()
}

/// Every `.rs` file under the workspace's crates, services, xtask and e2e.
pub fn sources(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> =
        ["crates", "services", "xtask", "e2e"].iter().map(|d| root.join(d)).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The crates `lock` (a Cargo.lock's text) names that are a second crypto provider.
pub fn second_providers(lock: &str) -> Vec<&str> {
    lock.lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
        .filter(|name| name.starts_with("aws-lc"))
        .collect()
}

/// Every rule's problems in the workspace at `root`.
pub fn problems(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = dependency_problems(&packages(root)?);
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    for name in second_providers(&lock) {
        problems.push(format!(
            "Cargo.lock holds {name}, a second crypto provider beside ring: give the crate that brings it \
             (`cargo tree -i {name}`) `default-features = false` and its `ring` feature"
        ));
    }
    let files = sources(root)?;
    let texts: Vec<(PathBuf, String)> =
        files.into_iter().map(|p| std::fs::read_to_string(&p).map(|t| (p, t))).collect::<Result<_, _>>()?;
    for path in undocumented(texts.iter().map(|(p, t)| (p.as_path(), t.as_str()))) {
        let shown = path.strip_prefix(root).unwrap_or(path).display();
        problems.push(format!("{shown} does not open with a `//!` line saying what the module is for"));
    }
    Ok(problems)
}

/// `cargo xtask tidy`: prints every problem; fails if there is any.
pub fn run() -> anyhow::Result<()> {
    let problems = problems(&workspace())?;
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    anyhow::ensure!(problems.is_empty(), "{} tidy problems (the rules: xtask/src/tidy.rs)", problems.len());
    eprintln!("tidy: the dependency rules hold and every source file has a module doc");
    Ok(())
}

/// The workspace's root: xtask's parent.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Kind, Package, dependency_problems, problems, second_providers, undocumented, workspace};

    fn package(name: &str, kind: Kind, deps: &[(&str, bool)]) -> Package {
        Package { name: name.into(), kind, deps: deps.iter().map(|(d, dev)| (d.to_string(), *dev)).collect() }
    }

    /// A workspace shaped like this one, following the rules.
    fn good() -> Vec<Package> {
        vec![
            package("kit", Kind::Shared, &[("testkit", true)]),
            package("testkit", Kind::Shared, &[("kit", false)]),
            package("auth", Kind::Service, &[("kit", false)]),
            package("web", Kind::Service, &[("kit", false), ("auth", true)]),
            package("slipway-cli", Kind::Root, &[("auth", false), ("web", false)]),
            package("e2e", Kind::Root, &[("testkit", true)]),
        ]
    }

    #[test]
    fn a_workspace_that_follows_the_rules_has_no_problems() {
        assert_eq!(dependency_problems(&good()), Vec::<String>::new());
    }

    #[test]
    fn a_service_depending_on_another_service_is_a_problem_unless_for_tests() {
        let mut w = good();
        w[3].deps.push(("auth".into(), false));
        let problems = dependency_problems(&w);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("service web depends on service auth"), "{problems:?}");
    }

    #[test]
    fn a_shared_crate_depending_on_a_service_is_a_problem_even_for_tests() {
        let mut w = good();
        w[0].deps.push(("auth".into(), true));
        let problems = dependency_problems(&w);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("shared crate kit depends on service auth"), "{problems:?}");
    }

    #[test]
    fn depending_on_a_root_is_a_problem() {
        let mut w = good();
        w[1].deps.push(("slipway-cli".into(), false));
        let problems = dependency_problems(&w);
        assert!(problems.iter().any(|p| p.starts_with("testkit depends on slipway-cli")), "{problems:?}");
    }

    #[test]
    fn a_file_without_a_module_doc_is_named() {
        let files = [
            (Path::new("a.rs"), "//! A.\nfn a() {}\n"),
            (Path::new("b.rs"), "// not a module doc\nfn b() {}\n"),
            (Path::new("c.rs"), ""),
        ];
        assert_eq!(undocumented(files), [Path::new("b.rs"), Path::new("c.rs")]);
    }

    #[test]
    fn aws_lc_in_the_lock_file_is_a_second_provider() {
        let lock = "[[package]]\nname = \"ring\"\n\n[[package]]\nname = \"aws-lc-rs\"\nversion = \"1\"\n";
        assert_eq!(second_providers(lock), ["aws-lc-rs"]);
        assert!(second_providers("[[package]]\nname = \"ring\"\n").is_empty());
    }

    #[test]
    fn this_workspace_follows_the_dependency_rules_and_documents_every_module() {
        let problems = problems(&workspace()).expect("the workspace is readable");
        assert!(problems.is_empty(), "tidy problems:\n{}", problems.join("\n"));
    }
}

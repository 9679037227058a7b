//! `slipway init DIR [--name NAME]`: a new product from this Slipway checkout — its own git
//! repository holding the platform, named for the product, with fresh development secrets
//! and a first commit. Nothing is fetched: it works offline.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Failure;
use crate::new::Changes;

/// `slipway init`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new project's folder: one that does not exist yet, or an empty one.
    dir: PathBuf,
    /// The product's name (lower-case letters, digits and hyphens); by default the folder's.
    #[arg(long)]
    name: Option<String>,
}

/// Makes the project.
pub fn run(args: Args) -> Result<(), Failure> {
    let source = crate::migrate::workspace_root()?;
    let folder = args.dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let name = product_name(args.name.as_deref().unwrap_or(&folder))?;
    if std::fs::read_dir(&args.dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Failure::Refused(format!("{} is not empty: give a new folder", args.dir.display())));
    }
    if !git(&source, &["--version"]).is_ok_and(|o| o.status.success()) {
        return Err(Failure::Refused(
            "git is needed to make the repository: install it (apt-get install git)".into(),
        ));
    }
    let mut changes = Changes::default();
    for file in files(&source)? {
        let from = source.join(&file);
        let bytes =
            std::fs::read(&from).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", from.display()))?;
        let bytes = match file.to_str() {
            Some("README.md") => readme(&String::from_utf8_lossy(&bytes), &name).into_bytes(),
            Some(".env") => dotenv(&String::from_utf8_lossy(&bytes), &name).into_bytes(),
            Some("crates/project/src/lib.rs") => {
                namespace(&String::from_utf8_lossy(&bytes), &name).into_bytes()
            }
            Some(f) if f.starts_with("docker-compose") && f.ends_with(".yml") => {
                images(&String::from_utf8_lossy(&bytes), &name).into_bytes()
            }
            _ => bytes,
        };
        let mode = std::fs::metadata(&from).map(|m| m.permissions().mode()).unwrap_or(0o644);
        changes.write_with_mode(file, bytes, mode);
    }
    changes.apply(&args.dir)?;
    crate::env::secrets(&args.dir)?;
    crate::env::write_missing_secret_files(&args.dir.join("secrets"))?;
    first_commit(&args.dir, &name)?;
    println!(
        "slipway: made {name} in {dir}, with fresh development secrets and a first commit\n\
         next:\n  cd {dir}\n  cargo slipway up     # the stack at http://127.0.0.1:8080\n  \
         cargo xtask test     # every test",
        dir = args.dir.display()
    );
    Ok(())
}

/// A product's name: it names the compose project (and so its volumes) and the site.
fn product_name(name: &str) -> Result<String, Failure> {
    let valid = !name.is_empty()
        && name.len() <= 40
        && name.as_bytes()[0].is_ascii_lowercase()
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(name.to_string())
    } else {
        Err(Failure::Refused(format!(
            "{name:?} is not a product name: use 1 to 40 lower-case letters, digits and hyphens, starting with \
             a letter (--name NAME, or a folder named so)"
        )))
    }
}

fn git(dir: &Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("git").args(args).current_dir(dir).output()
}

/// The checkout's files: tracked and new ones, never ignored ones (target/, secrets).
fn files(source: &Path) -> Result<Vec<PathBuf>, Failure> {
    let out = git(source, &["ls-files", "--cached", "--others", "--exclude-standard", "-z"])
        .map_err(|e| anyhow::anyhow!("cannot list the checkout's files: {e}"))?;
    if !out.status.success() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{} is not a git checkout of Slipway: run `slipway init` from one",
            source.display()
        )));
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| PathBuf::from(String::from_utf8_lossy(f).as_ref()))
        .filter(|f| source.join(f).is_file())
        .collect())
}

/// The platform's README, as the product's: its name on top, then Slipway's guide.
fn readme(text: &str, name: &str) -> String {
    let rest = text.strip_prefix("# Slipway\n").unwrap_or(text);
    format!(
        "# {name}\n\n{name} is a service-oriented web product built on Slipway (made with `slipway init`). \
         The guide below is Slipway's: the quickstart's two commands run the stack and the tests.\n{rest}"
    )
}

/// The development settings with the product's compose project (its own volumes, next to
/// any other project's) and its site name.
fn dotenv(text: &str, name: &str) -> String {
    let mut out: String = text
        .lines()
        .map(|l| {
            if l.starts_with("COMPOSE_PROJECT_NAME=") {
                format!("COMPOSE_PROJECT_NAME={name}")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    out.push_str(&format!("# The name the site and its emails show.\nSLIPWAY_WEB_SITE_NAME={name}\nSLIPWAY_MAILER_SITE_NAME={name}\n"));
    out
}

/// The project's image namespace, the product's name (`shop/auth`).
fn namespace(text: &str, name: &str) -> String {
    let from = format!("pub const IMAGES: &str = \"{}\";", project::IMAGES);
    text.replace(&from, &format!("pub const IMAGES: &str = \"{name}\";"))
}

/// A compose file's images in the product's namespace, except slipway/postgres (Postgres with
/// pgBackRest: the same image in every project, built by `cargo xtask images`).
fn images(text: &str, name: &str) -> String {
    let from = format!("image: {}/", project::IMAGES);
    text.split_inclusive('\n')
        .map(|line| {
            if line.contains(&from) && !line.contains("slipway/postgres:") {
                line.replacen(&from, &format!("image: {name}/"), 1)
            } else {
                line.to_string()
            }
        })
        .collect()
}

fn first_commit(dir: &Path, name: &str) -> Result<(), Failure> {
    let identity = git(dir, &["config", "user.email"]).is_ok_and(|o| o.status.success());
    let mut commit = vec!["commit", "-q", "-m"];
    let message = format!("{name}: a new product on Slipway");
    commit.push(&message);
    let fallback = ["-c", "user.name=slipway init", "-c", "user.email=slipway-init@localhost"];
    let steps: [Vec<&str>; 3] = [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        if identity { commit } else { fallback.iter().copied().chain(commit).collect() },
    ];
    for args in steps {
        let out = git(dir, &args).map_err(|e| anyhow::anyhow!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(Failure::Failed(anyhow::anyhow!(
                "git {} failed in {}: {}; the files are written, make the repository by hand",
                args.join(" "),
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

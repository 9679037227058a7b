//! `slipway new service NAME`: a service that builds and passes its own tests at once, wired
//! into the workspace, the CLI, the images, the compose files and the README in one step —
//! or, on any error, not at all.

mod changes;
mod name;
mod python;
mod rust;
mod wiring;

use std::path::Path;

use crate::Failure;
pub(crate) use changes::Changes;
use name::ServiceName;

/// `slipway new …`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A new service: its crate in services/NAME, routed at /api/NAME behind the gateway.
    Service {
        /// The service's name: lower-case letters and digits (a DNS label and a Rust crate).
        name: String,
        /// Route it without the gateway's token check (by default the gateway verifies the
        /// caller's access token and passes the user id on).
        #[arg(long)]
        public: bool,
        /// No database: no schema, migrations or role (and so no bus either).
        #[arg(long)]
        no_db: bool,
        /// No bus: no event published or handled.
        #[arg(long)]
        no_bus: bool,
        /// The service's language: a Rust crate on the kit, or a Python app (PyPI packages
        /// only) on the same contract.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
    },
}

/// A new service's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A crate in the workspace, on the kit.
    Rust,
    /// `app.py` on the standard library and psycopg, in an image of its own.
    Python,
}

/// What is being made.
#[derive(Debug)]
pub(crate) struct Plan {
    name: ServiceName,
    port: u16,
    public: bool,
    /// It has a schema, migrations and a database role.
    db: bool,
    /// It publishes and handles bus events (only with a database).
    bus: bool,
    lang: Lang,
    /// The project's image namespace (`project::IMAGES` in its sources: `slipway/NAME`).
    images: String,
}

impl Plan {
    /// A template with the plan's name, scope and port filled in.
    fn render(&self, template: &str) -> String {
        template
            .replace("__name__", self.name.as_str())
            .replace("__SCOPE__", &self.name.scope())
            .replace("__port__", &self.port.to_string())
    }
}

/// Runs `slipway new`.
pub fn run(command: Command) -> Result<(), Failure> {
    let Command::Service { name, public, no_db, no_bus, lang } = command;
    if lang == Lang::Python && (no_db || no_bus) {
        return Err(Failure::Refused(
            "a Python service comes with its schema and the bus for now: drop --no-db and --no-bus (or use \
             --lang rust)"
                .into(),
        ));
    }
    let root = crate::migrate::workspace_root()?;
    let plan = plan(&root, &name, public, !no_db, !no_db && !no_bus, lang)?;
    let changes = changes(&root, &plan)?;
    let paths: Vec<String> = changes.paths().map(|p| p.display().to_string()).collect();
    changes.apply(&root)?;
    format(&root, &paths);
    if plan.lang == Lang::Rust {
        lock(&root, &plan);
    }
    println!("slipway: made the service {} (port {}):", plan.name, plan.port);
    for path in paths {
        println!("  {path}");
    }
    let test = match plan.lang {
        Lang::Rust => format!("`cargo test -p {}` runs its tests", plan.name),
        Lang::Python => format!("`python3 services/{}/app.py` runs it (`cargo slipway dev` too)", plan.name),
    };
    println!(
        "next: {test}; `cargo slipway up` runs it in the stack at http://127.0.0.1:8080/api/{n}; \
         `cargo slipway doctor` checks the wiring",
        n = plan.name
    );
    Ok(())
}

/// Adds the new crate to Cargo.lock (offline: it depends only on what the workspace locks
/// already), so a `--locked` build — the project's CI — passes before anything is compiled.
fn lock(root: &Path, plan: &Plan) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let locked = std::process::Command::new(cargo)
        .args(["update", "--workspace", "--offline", "--quiet"])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success());
    if !locked {
        eprintln!(
            "slipway: could not add {} to Cargo.lock: run `cargo update --workspace` before committing \
             (CI builds with --locked)",
            plan.name
        );
    }
}

/// Formats the Rust files written (the project's rustfmt.toml applies), so the project stays
/// `cargo fmt --check` clean; without rustfmt it says what to run.
fn format(root: &Path, paths: &[String]) {
    let rust: Vec<&String> = paths.iter().filter(|p| p.ends_with(".rs")).collect();
    let formatted = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&rust)
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success());
    if !formatted {
        eprintln!("slipway: could not run rustfmt on the new files: run `cargo fmt` before committing");
    }
}

fn plan(root: &Path, name: &str, public: bool, db: bool, bus: bool, lang: Lang) -> Result<Plan, Failure> {
    let name = ServiceName::parse(name).map_err(Failure::Refused)?;
    if root.join("services").join(name.as_str()).exists() || root.join("crates").join(name.as_str()).exists()
    {
        return Err(Failure::Refused(format!(
            "services/{name} or crates/{name} exists already: choose another name"
        )));
    }
    if crate::registry::SERVICES.iter().any(|s| s.name() == name.as_str()) {
        return Err(Failure::Refused(format!("the CLI already knows a service called {name}")));
    }
    Ok(Plan { port: next_port(root), name, public, db, bus, lang, images: image_namespace(root) })
}

/// The namespace the project's images have, read from its `project::IMAGES` (a project made
/// by `slipway init` has its own), or this CLI's.
fn image_namespace(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("crates/project/src/lib.rs")).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.trim().strip_prefix("pub const IMAGES: &str = \"")?.strip_suffix("\";").map(str::to_string)
        })
        .unwrap_or_else(|| project::IMAGES.to_string())
}

/// One past the highest port a service listens on, skipping the gateway's admin port: the
/// ports of the services this CLI was built with, and the `slipway.port` of every service in
/// the base compose file (one made by an earlier `new service` before the CLI was rebuilt).
fn next_port(root: &Path) -> u16 {
    let known = crate::registry::SERVICES.iter().filter_map(|s| s.port());
    let compose = crate::doctor::compose::ComposeFile::read(root, "docker-compose.yml").ok().flatten();
    let labelled = compose.iter().flat_map(|c| {
        c.services().into_iter().filter_map(|s| c.labels(&s).get("slipway.port")?.parse::<u16>().ok())
    });
    let highest = known.chain(labelled).max().unwrap_or(8080);
    let mut port = highest + 1;
    while port == 9090 {
        port += 1;
    }
    port
}

fn changes(root: &Path, plan: &Plan) -> Result<Changes, Failure> {
    let mut changes = Changes::default();
    let files = match plan.lang {
        Lang::Rust => rust::files(plan),
        Lang::Python => python::files(plan),
    };
    for (path, content) in files {
        changes.write(path, content);
    }
    for (path, edit) in wiring::EDITS {
        let text = std::fs::read_to_string(root.join(path))
            .map_err(|e| Failure::Failed(anyhow::anyhow!("cannot read {path}: {e}")))?;
        let edited = edit(&text, plan).map_err(|why| {
            Failure::Failed(anyhow::anyhow!(
                "cannot wire {} into {path}: {why}; nothing was written (docs/adding-a-service.md lists the \
                 edits to make by hand)",
                plan.name
            ))
        })?;
        if edited != text {
            changes.write(*path, edited);
        }
    }
    Ok(changes)
}

//! The services this build knows, seen through one interface.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use kit::config::{Common, ConfigErrors, DbConfig, Sources};
use kit::migrate::Migrations;
use kit::service::{Service, Shutdown};

pub type Running = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// What the CLI can do with a service without knowing its type.
pub trait Entry: Sync {
    fn name(&self) -> &'static str;
    fn check(&self, sources: &Sources) -> Result<(), ConfigErrors>;
    fn db(&self, sources: &Sources) -> Result<Option<DbConfig>, ConfigErrors>;
    fn migrations(&self) -> Vec<Migrations>;
    /// The port the service listens on by default (its dev configuration's).
    fn port(&self) -> Option<u16>;
    /// Loads the configuration and returns it with the future that runs the service.
    fn start(&self, sources: &Sources, shutdown: Shutdown) -> Result<(Common, Running), ConfigErrors>;
}

struct Of<S>(PhantomData<fn() -> S>);

impl<S: Service> Entry for Of<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn check(&self, sources: &Sources) -> Result<(), ConfigErrors> {
        S::load(sources).map(drop)
    }

    /// Reads only the database settings, so `slipway migrate` in a container needs the
    /// database's URL and nothing else of the service's. A service has a database when it
    /// has migrations.
    fn db(&self, sources: &Sources) -> Result<Option<DbConfig>, ConfigErrors> {
        if S::migrations().is_empty() {
            return Ok(None);
        }
        DbConfig::load(sources, S::NAME).map(Some)
    }

    fn migrations(&self) -> Vec<Migrations> {
        S::migrations()
    }

    fn port(&self) -> Option<u16> {
        let dev = Sources::from_vars([("SLIPWAY_ENV", "dev")]);
        S::load(&dev).ok().map(|c| c.common().http.addr.port())
    }

    fn start(&self, sources: &Sources, shutdown: Shutdown) -> Result<(Common, Running), ConfigErrors> {
        let config = S::load(sources)?;
        let common = config.common().clone();
        Ok((common, Box::pin(config.run(shutdown))))
    }
}

/// A service in another language, by name, port and migrations folder (relative to this
/// crate, as `sqlx::migrate!` wants it): the CLI migrates its schema, makes its role and, in
/// `slipway dev`, runs it as a child process (`python3 services/NAME/app.py`).
#[allow(unused_macros, reason = "`slipway new service --lang python` adds its uses")]
macro_rules! external {
    ($name:literal, $port:literal, $dir:literal) => {{
        static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!($dir);
        fn migrations() -> Migrations {
            Migrations::new($name, $name, concat!("services/", $name, "/migrations"), &MIGRATOR)
        }
        &External { name: $name, port: $port, migrations }
    }};
}

/// A service the CLI knows only by its name, port and migrations (see `external!`).
#[allow(dead_code, reason = "made by `external!`, which `slipway new service --lang python` uses")]
pub struct External {
    name: &'static str,
    port: u16,
    migrations: fn() -> Migrations,
}

impl Entry for External {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self, sources: &Sources) -> Result<(), ConfigErrors> {
        DbConfig::load(sources, self.name).map(drop)
    }

    fn db(&self, sources: &Sources) -> Result<Option<DbConfig>, ConfigErrors> {
        DbConfig::load(sources, self.name).map(Some)
    }

    fn migrations(&self) -> Vec<Migrations> {
        vec![bus::migrations(), (self.migrations)()]
    }

    fn port(&self) -> Option<u16> {
        Some(self.port)
    }

    /// Applies its migrations (unless `MIGRATE_ON_START` is off, as a Rust service does at
    /// start), then runs `python3 services/NAME/app.py` from the workspace's root with its
    /// database's URL and its port; SIGTERM when the others stop.
    fn start(&self, sources: &Sources, shutdown: Shutdown) -> Result<(Common, Running), ConfigErrors> {
        let mut reader = sources.reader(self.name);
        let common = Common::read(&mut reader, self.port);
        reader.finish_part()?;
        let db = DbConfig::load(sources, self.name)?;
        let scope = self.name.to_ascii_uppercase();
        let mut child = tokio::process::Command::new("python3");
        child.arg(format!("services/{}/app.py", self.name)).kill_on_drop(true);
        if let Ok(root) = crate::migrate::workspace_root() {
            child.current_dir(root);
        }
        child.env(format!("SLIPWAY_{scope}_DATABASE_URL"), secrecy::ExposeSecret::expose_secret(&db.url));
        child.env(format!("SLIPWAY_{scope}_PORT"), common.http.addr.port().to_string());
        // It stops when this process is gone, even killed (no orphan keeps its port).
        child.env("SLIPWAY_DEV_PID", std::process::id().to_string());
        let (name, migrations) = (self.name, self.migrations());
        let running = async move {
            if db.migrate_on_start {
                kit::migrate::up_all(migrations, &db)
                    .await
                    .map_err(|e| anyhow::anyhow!("{name}: applying its migrations failed: {e}"))?;
            }
            let mut process = child
                .spawn()
                .map_err(|e| anyhow::anyhow!("cannot start {name} with python3 ({e}): install Python 3"))?;
            tokio::select! {
                status = process.wait() => anyhow::bail!("{name} exited ({})", status?),
                () = shutdown => {
                    if let Some(pid) = process.id().and_then(|id| i32::try_from(id).ok()) {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                    }
                    process.wait().await?;
                    Ok(())
                }
            }
        };
        Ok((common, Box::pin(running)))
    }
}

/// Every service, in start order. A new service adds its line here.
pub static SERVICES: &[&dyn Entry] = &[
    &Of::<auth::Config>(PhantomData),
    &Of::<mailer::Config>(PhantomData),
    &Of::<web::Config>(PhantomData),
    &Of::<gateway::Config>(PhantomData),
];

/// Every schema the services migrate, once each, in migration order (the bus before the
/// services that use it), with the database of the first service that uses it; or only the
/// schema called `only`.
pub fn schemas(sources: &Sources, only: Option<&str>) -> Result<Vec<(Migrations, DbConfig)>, crate::Failure> {
    let mut out: Vec<(Migrations, DbConfig)> = Vec::new();
    for entry in SERVICES {
        let Some(db) = entry.db(sources)? else { continue };
        for m in entry.migrations() {
            if !out.iter().any(|(seen, _)| seen.schema() == m.schema()) {
                out.push((m, db.clone()));
            }
        }
    }
    match only {
        None => Ok(out),
        Some(name) => {
            let known: Vec<String> = out.iter().map(|(m, _)| m.schema().to_string()).collect();
            let found: Vec<_> = out.into_iter().filter(|(m, _)| m.schema() == name).collect();
            if found.is_empty() {
                return Err(crate::Failure::Failed(anyhow::anyhow!(
                    "no schema called {name:?}; known: {}",
                    known.join(", ")
                )));
            }
            Ok(found)
        }
    }
}

/// The service called `name`, or a message listing the known ones.
pub fn find(name: &str) -> Result<&'static dyn Entry, crate::Failure> {
    SERVICES.iter().copied().find(|s| s.name() == name).ok_or_else(|| {
        let known: Vec<_> = SERVICES.iter().map(|s| s.name()).collect();
        crate::Failure::Failed(anyhow::anyhow!("no service called {name:?}; known: {}", known.join(", ")))
    })
}

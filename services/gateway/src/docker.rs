//! Docker discovery: watches the engine's events, lists the running containers, and publishes
//! the routes their labels ask for. It subscribes before it lists (events since a moment before
//! the list are replayed), re-lists after any disconnect — a restarted daemon included — and
//! resyncs in full periodically. A container being stopped or killed leaves its routes at once,
//! before it dies, so it gets no new requests while it drains.

mod labels;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::routes::{RouteSpec, Table, merge};

/// Where and how to watch Docker.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The engine's unix socket, or `tcp://host:port` of `gateway docker-proxy`.
    pub socket: String,
    /// Which network's address to use for containers on several (default: the first).
    pub network: Option<String>,
    /// How often to re-list every container, events or not.
    pub resync: Duration,
    /// Whose containers to route.
    pub scope: Scope,
}

/// Which containers the gateway routes: on a shared engine, another compose project's
/// containers (a second checkout, a test run) must not join this project's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The gateway's own compose project or Swarm stack when it runs in a container that
    /// belongs to one; otherwise every container.
    Auto,
    /// Every container on the engine.
    All,
    /// The containers of this compose project or Swarm stack.
    Project(String),
}

impl kit::config::Setting for Scope {
    const EXPECTED: &'static str = "auto, all, or a compose project's name";
    fn parse_setting(s: &str) -> Option<Self> {
        match s.trim() {
            "" => None,
            "auto" => Some(Self::Auto),
            "all" => Some(Self::All),
            name => Some(Self::Project(name.to_string())),
        }
    }
}

/// What discovery last saw: the routes of the containers ready for traffic, and how many
/// containers that opted in are still starting (their Docker health check has yet to pass),
/// which a starting gateway waits for so that it is not healthy before the instances it routes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub routes: Vec<RouteSpec>,
    pub starting: usize,
}

/// Starts watching; the receiver always holds the listing of the containers last seen.
pub fn spawn(settings: Settings) -> watch::Receiver<Listing> {
    let (tx, rx) = watch::channel(Listing::default());
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        let mut errors = 0u32;
        let mut watcher = Watcher {
            settings: &settings,
            tx: &tx,
            project: None,
            containers: HashMap::new(),
            starting: HashSet::new(),
            seen: BTreeMap::new(),
            published: false,
        };
        loop {
            let result = match connect(&settings.socket) {
                Ok(docker) => watcher.run(&docker, &mut backoff).await,
                Err(e) => Err(e),
            };
            if let Err(error) = result {
                // Log the first failure and then every 50th, so a long outage does not flood the log.
                if errors.is_multiple_of(50) {
                    tracing::warn!(%error, socket = settings.socket, "docker discovery lost the engine; keeping the last routes and reconnecting");
                }
                errors += 1;
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    rx
}

/// The engine at a unix socket path, or the docker proxy at `tcp://host:port`.
fn connect(at: &str) -> Result<Docker, bollard::errors::Error> {
    match at.strip_prefix("tcp://").or_else(|| at.strip_prefix("http://")) {
        Some(addr) => Docker::connect_with_http(&format!("http://{addr}"), 10, bollard::API_DEFAULT_VERSION),
        None => Docker::connect_with_socket(at, 10, bollard::API_DEFAULT_VERSION),
    }
}

struct Watcher<'a> {
    settings: &'a Settings,
    tx: &'a watch::Sender<Listing>,
    /// The project whose containers are routed (none: all), settled at the first connection.
    project: Option<Option<String>>,
    /// Container id → the routes it belongs to.
    containers: HashMap<String, Vec<RouteSpec>>,
    /// Containers that opted in and whose health check has yet to pass.
    starting: HashSet<String>,
    /// Every route seen since start, without instances: a route whose containers are all gone
    /// answers 503 (no healthy instance), not 404 as if it never existed.
    seen: BTreeMap<String, RouteSpec>,
    /// Whether a listing was sent yet: the first is sent even when empty, so a starting
    /// gateway knows discovery is done.
    published: bool,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Watcher<'_> {
    /// One connection's life: subscribe, list, then follow events and resync until an error.
    async fn run(&mut self, docker: &Docker, backoff: &mut Duration) -> Result<(), bollard::errors::Error> {
        let since = unix_now() - 1;
        docker.ping().await?;
        let filters = HashMap::from([("type".to_string(), vec!["container".to_string()])]);
        let options =
            EventsOptions { since: Some(since.to_string()), filters: Some(filters), ..Default::default() };
        let mut events = docker.events(Some(options));
        if self.project.is_none() {
            self.project = Some(self.own_project(docker).await?);
        }
        self.resync(docker).await?;
        tracing::info!(
            socket = self.settings.socket,
            containers = self.containers.len(),
            project = self.project.clone().flatten().as_deref().unwrap_or("(all)"),
            "docker discovery connected"
        );
        *backoff = Duration::from_millis(100);
        let mut resync = tokio::time::interval(self.settings.resync);
        resync.reset();
        loop {
            tokio::select! {
                event = events.next() => {
                    let Some(event) = event else { return Ok(()) };
                    let event = event?;
                    let Some(actor) = event.actor else { continue };
                    let (Some(id), Some(action)) = (actor.id, event.action) else { continue };
                    let attributes = actor.attributes.unwrap_or_default();
                    self.on_event(docker, &id, &action, &attributes).await?;
                }
                _ = resync.tick() => self.resync(docker).await?,
                () = self.tx.closed() => return Ok(()),
            }
        }
    }

    async fn on_event(
        &mut self,
        docker: &Docker,
        id: &str,
        action: &str,
        attributes: &HashMap<String, String>,
    ) -> Result<(), bollard::errors::Error> {
        let leaving = match action {
            "stop" | "die" | "pause" | "destroy" | "oom" => true,
            // `docker kill -s HUP` does not stop anything; TERM, KILL, INT and QUIT do.
            "kill" => attributes.get("signal").is_none_or(|s| {
                matches!(s.as_str(), "15" | "9" | "2" | "3" | "SIGTERM" | "SIGKILL" | "SIGINT" | "SIGQUIT")
            }),
            _ => false,
        };
        if leaving {
            let was_starting = self.starting.remove(id);
            if self.containers.remove(id).is_some() || was_starting {
                tracing::info!(container = id, action, "container leaving: drained from its routes");
                self.publish();
            }
            return Ok(());
        }
        if action == "start"
            || action == "unpause"
            || action == "rename"
            || action.starts_with("health_status")
        {
            self.inspect(docker, id).await?;
            self.publish();
        }
        Ok(())
    }

    /// The project to keep to: the configured one, or with `auto` the gateway's own, found by
    /// inspecting the container it runs in (its hostname is the container id).
    async fn own_project(&self, docker: &Docker) -> Result<Option<String>, bollard::errors::Error> {
        match &self.settings.scope {
            Scope::All => Ok(None),
            Scope::Project(name) => Ok(Some(name.clone())),
            Scope::Auto => {
                // Not a setting: the hostname Docker gives the container, its id.
                #[allow(clippy::disallowed_methods, reason = "the container's own id, set by Docker")]
                let Ok(me) = std::env::var("HOSTNAME") else { return Ok(None) };
                let options = None::<bollard::query_parameters::InspectContainerOptions>;
                match docker.inspect_container(&me, options).await {
                    Ok(c) => Ok(labels::project(&c)),
                    Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Lists every running container and replaces what is known.
    async fn resync(&mut self, docker: &Docker) -> Result<(), bollard::errors::Error> {
        let running = docker.list_containers(Some(ListContainersOptions::default())).await?;
        self.containers.clear();
        self.starting.clear();
        for id in running.into_iter().filter_map(|c| c.id) {
            self.inspect(docker, &id).await?;
        }
        self.publish();
        Ok(())
    }

    async fn inspect(&mut self, docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
        // Counted again below if it still is.
        self.starting.remove(id);
        let container = match docker
            .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
        {
            Ok(c) => c,
            // Gone between the event and the inspection.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                self.containers.remove(id);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if let Some(Some(project)) = &self.project
            && labels::project(&container).as_deref() != Some(project)
        {
            self.containers.remove(id);
            return Ok(());
        }
        // Checked here, once per change, so a bad label is reported once and never reaches the table.
        let checked = labels::specs(&container, self.settings.network.as_deref()).and_then(|specs| {
            if let Some(specs) = &specs {
                Table::build(specs.clone(), &Table::default())?;
            }
            Ok(specs)
        });
        match checked {
            Ok(Some(specs)) => {
                if specs.is_empty() && labels::starting(&container) {
                    self.starting.insert(id.to_string());
                }
                self.containers.insert(id.to_string(), specs);
            }
            Ok(None) => {
                self.containers.remove(id);
            }
            Err(problem) => {
                tracing::warn!(container = id, problem, "container ignored: fix its slipway labels");
                self.containers.remove(id);
            }
        }
        Ok(())
    }

    /// Sends the merged routes if they changed (sorted, so the order of events does not matter).
    fn publish(&mut self) {
        for spec in self.containers.values().flatten() {
            self.seen.insert(spec.name.clone(), RouteSpec { instances: Vec::new(), ..spec.clone() });
        }
        let mut by_name: BTreeMap<&str, Vec<&RouteSpec>> = BTreeMap::new();
        self.containers.values().flatten().for_each(|s| by_name.entry(&s.name).or_default().push(s));
        let live: Vec<RouteSpec> = by_name.into_values().flatten().cloned().collect();
        let gone = self.seen.values().filter(|s| !live.iter().any(|l| l.name == s.name)).cloned();
        let mut routes = merge(Vec::new(), live.iter().cloned().chain(gone).collect());
        routes.iter_mut().for_each(|r| r.instances.sort());
        let first = !std::mem::replace(&mut self.published, true);
        let listing = Listing { routes, starting: self.starting.len() };
        self.tx.send_if_modified(|current| {
            let changed = *current != listing || first;
            if changed {
                *current = listing;
            }
            changed
        });
    }
}

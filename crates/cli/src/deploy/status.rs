//! `slipway status DESTINATION`: what runs there now: each service's release, its instances
//! healthy of total, how many the gateway has in rotation, and the last deploy.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::compose::{self, Switch};
use super::{Destination, find, history};
use crate::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A destination named in deploy.toml.
    destination: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One container of the project, as status and logs see it.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub service: String,
    /// The image's tag: the release it runs.
    pub release: String,
    /// `running`, `exited`, …
    pub state: String,
    /// Docker's health status, if the container has a health check.
    pub health: Option<String>,
    pub exit_code: i64,
    pub ips: Vec<String>,
}

impl Container {
    fn healthy(&self) -> bool {
        self.state == "running" && self.health.as_deref().is_none_or(|h| h == "healthy")
    }
}

/// Every container of the project (running or not), inspected in one call.
pub async fn containers(dest: &Destination, project: &str) -> Result<Vec<Container>, Failure> {
    let filter = format!("label=com.docker.compose.project={project}");
    let out = dest.engine.output(&["ps", "--all", "--quiet", "--no-trunc", "--filter", &filter]).await?;
    if !out.status.success() {
        return Err(super::engine_failure(dest, "listing containers", &out.stderr));
    }
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let out = dest.engine.output(&[&["inspect"][..], &ids].concat()).await?;
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut containers: Vec<Container> = all
        .iter()
        .map(|c| Container {
            id: c["Id"].as_str().unwrap_or_default().to_string(),
            name: c["Name"].as_str().unwrap_or_default().trim_start_matches('/').to_string(),
            service: c["Config"]["Labels"]["com.docker.compose.service"].as_str().unwrap_or("?").to_string(),
            release: c["Config"]["Image"]
                .as_str()
                .and_then(|i| i.rsplit_once(':'))
                .map_or("?", |(_, t)| t)
                .to_string(),
            state: c["State"]["Status"].as_str().unwrap_or("?").to_string(),
            health: c["State"]["Health"]["Status"].as_str().map(str::to_string),
            exit_code: c["State"]["ExitCode"].as_i64().unwrap_or(0),
            ips: c["NetworkSettings"]["Networks"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, n)| n["IPAddress"].as_str().filter(|ip| !ip.is_empty()).map(str::to_string))
                .collect(),
        })
        .collect();
    containers.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    Ok(containers)
}

/// The addresses the gateway has in rotation (of `route` only, if given), asked inside the
/// gateway container `gateway`; `None` when it does not answer.
pub async fn in_rotation(dest: &Destination, gateway: &str, route: Option<&str>) -> Option<Vec<String>> {
    let out = dest.engine.output(&["exec", gateway, "gateway", "routes"]).await.ok()?;
    if !out.status.success() {
        return None;
    }
    let routes: Value = serde_json::from_slice(&out.stdout).ok()?;
    let available = routes["routes"]
        .as_array()?
        .iter()
        .filter(|r| route.is_none_or(|name| r["name"] == name))
        .flat_map(|r| r["instances"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["available"] == true)
        .filter_map(|i| i["addr"].as_str().and_then(|a| a.rsplit_once(':')).map(|(ip, _)| ip.to_string()))
        .collect();
    Some(available)
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let dest = find(Path::new("."), &args.destination)?;
    super::reach(&dest).await?;
    let model = compose::model(&dest, "none").await?;
    let containers = containers(&dest, &model.project).await?;
    let last = model.services.iter().find(|s| s.switch == Switch::Last).map(|s| s.name.as_str());
    let gateway = containers.iter().find(|c| Some(c.service.as_str()) == last && c.state == "running");
    let rotation = match gateway {
        Some(g) => in_rotation(&dest, &g.id, None).await,
        None => None,
    };
    let history = super::recorded_in(&dest, &model.project).await.unwrap_or_default();
    let live = history::live(&history);

    let mut services: BTreeMap<&str, Vec<&Container>> = BTreeMap::new();
    containers.iter().for_each(|c| services.entry(&c.service).or_default().push(c));
    let rows: Vec<Value> = services
        .iter()
        .map(|(service, cs)| {
            let running: Vec<&&Container> = cs.iter().filter(|c| c.state != "exited").collect();
            let mut releases: Vec<&str> = cs.iter().map(|c| c.release.as_str()).collect();
            releases.sort_unstable();
            releases.dedup();
            let routed = model.services.iter().any(|s| s.name == *service && s.route.is_some());
            let in_rotation = match (&rotation, routed) {
                (Some(ips), true) => {
                    Some(running.iter().filter(|c| c.ips.iter().any(|ip| ips.contains(ip))).count())
                }
                _ => None,
            };
            let exited = cs.iter().find(|c| c.state == "exited").filter(|_| running.is_empty());
            json!({
                "service": service,
                "release": releases.join(","),
                "healthy": running.iter().filter(|c| c.healthy()).count(),
                "total": running.len(),
                "in_rotation": in_rotation,
                "exited": exited.map(|c| c.exit_code),
            })
        })
        .collect();
    let live = live
        .map(|r| json!({ "release": r.tag, "at": r.at, "by": r.by, "kind": r.kind, "seconds": r.seconds }));
    if args.json {
        let status = json!({ "destination": dest.name, "live": live, "services": rows, "gateway_answered": rotation.is_some() });
        println!("{status}");
        return Ok(());
    }
    match &live {
        Some(l) => println!(
            "{} ({}): live release {}, {} by {} at {} ({:.0} s)",
            dest.name,
            dest.engine.describe(),
            l["release"].as_str().unwrap_or("?"),
            l["kind"].as_str().unwrap_or("?"),
            l["by"].as_str().unwrap_or("?"),
            l["at"].as_str().unwrap_or("?"),
            l["seconds"].as_f64().unwrap_or(0.0)
        ),
        None => println!("{} ({}): no release recorded", dest.name, dest.engine.describe()),
    }
    if rows.is_empty() {
        println!("nothing runs there");
        return Ok(());
    }
    println!("{:<16} {:<14} {:<9} IN ROTATION", "SERVICE", "RELEASE", "HEALTHY");
    for row in &rows {
        let healthy = match row["exited"].as_i64() {
            Some(code) => format!("exited {code}"),
            None => format!("{}/{}", row["healthy"], row["total"]),
        };
        let rotation = match row["in_rotation"].as_u64() {
            Some(n) => format!("{n}/{}", row["total"]),
            None => "-".to_string(),
        };
        println!(
            "{:<16} {:<14} {healthy:<9} {rotation}",
            row["service"].as_str().unwrap_or("?"),
            row["release"].as_str().unwrap_or("?")
        );
    }
    if rotation.is_none() && last.is_some() {
        println!("(the gateway did not answer: rotation unknown)");
    }
    Ok(())
}

//! Bringing a destination to a new release without dropping a request: the migrations
//! first; then every blue-green service's new containers beside its old ones, and the old
//! ones stopped only once all the new ones are healthy and in rotation at the gateway (which
//! drains an instance at its stop event), so a release that fails anywhere is removed whole
//! and the old one keeps serving; the gateway last, the same way, on the port its holder
//! keeps open. Before the migrations, the database owner's password is set from its file.

use std::time::{Duration, Instant};

use serde_json::json;

use super::compose::{self, Compose, Model, Service, Switch};
use super::{ports, report};
use crate::Failure;

/// What a switch does with the one-shots (the migrations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Run them to completion first (a deploy).
    Run,
    /// Leave the schema as it is, and warn when it is newer than the release (a rollback).
    Check,
}

/// The whole switch. A stack that is not running yet is simply brought up.
pub async fn release(compose: &Compose<'_>, model: &Model, migrations: Migrations) -> Result<(), Failure> {
    if !compose.any_running().await? {
        report::step("first-deploy", json!({}), "starting every service (a first deploy; migrations first)");
        return compose::up_all(compose).await;
    }
    let of = |switch: Switch| model.services.iter().filter(move |s| s.switch == switch);
    if let Some(db) = &model.database {
        super::rotate::owner_password(compose, db).await?;
    }
    for one_shot in of(Switch::OneShot) {
        if migrations == Migrations::Check {
            warn_if_schema_is_newer(compose, &one_shot.name).await;
            continue;
        }
        report::step(
            "one-shot",
            json!({ "service": one_shot.name }),
            format!("{}: running the new release's (nothing is switched if it fails)", one_shot.name),
        );
        let what = format!("{} (the new release's one-shot)", one_shot.name);
        compose.run(&["run", "--rm", "--no-TTY", &one_shot.name], &what).await?;
    }
    let in_place: Vec<&str> = of(Switch::InPlace).map(|s| s.name.as_str()).collect();
    if !in_place.is_empty() {
        let mut args = vec!["up", "--detach", "--wait", "--no-deps", "--no-build", "--pull", "never"];
        args.extend(&in_place);
        compose.run(&args, "updating the services replaced in place").await?;
    }
    blue_green(compose, of(Switch::BlueGreen).collect()).await?;
    for last in of(Switch::Last) {
        replace_last(compose, last).await?;
    }
    Ok(())
}

/// The gateway: with its ports holder running, a new one beside the old, sharing the port,
/// and the old one stopped once the new is healthy (warm). A host deployed before holders
/// existed gets one now, and its gateway is down meanwhile, once.
async fn replace_last(compose: &Compose<'_>, last: &Service) -> Result<(), Failure> {
    let holder = last.holder.as_ref().map(|_| ports::Holder::name(&last.name));
    if let Some(holder) = &holder
        && !compose.containers(holder).await?.is_empty()
    {
        return blue_green(compose, vec![last]).await;
    }
    let started = Instant::now();
    if holder.is_some() {
        report::warn(format!(
            "{} gets a ports holder now, so later deploys replace it without closing its port; this time \
             it is down for a moment",
            last.name
        ));
        remove(compose, &compose.containers(&last.name).await?).await;
    }
    let mut args = vec!["up", "--detach", "--wait", "--no-deps", "--no-build", "--pull", "never", &last.name];
    args.extend(holder.as_deref());
    compose.run(&args, &format!("replacing {}", last.name)).await?;
    report::step(
        "replaced",
        json!({ "service": last.name, "seconds": started.elapsed().as_secs_f64() }),
        format!("{}: replaced ({:.1?})", last.name, started.elapsed()),
    );
    Ok(())
}

/// A rollback runs no migrations: it says when the database holds some the release does not
/// know, which it then relies on being backward compatible (expand/contract).
async fn warn_if_schema_is_newer(compose: &Compose<'_>, one_shot: &str) {
    let args = ["run", "--rm", "--no-TTY", one_shot, "migrate", "status"];
    match compose.output(&args, "reading the migrations' status").await {
        Ok(status) => {
            let newer: Vec<&str> = status.lines().filter(|l| l.contains("no file in this build")).collect();
            if !newer.is_empty() {
                report::warn(format!(
                    "the database has {} migration(s) this release does not know; it runs on a newer schema, \
                     which must be backward compatible (see the README's expand/contract):\n  {}",
                    newer.len(),
                    newer.join("\n  ")
                ));
            }
        }
        Err(e) => report::warn(format!("could not compare the schema with this release: {e}")),
    }
}

/// A service's containers of the old release and of the new.
struct Pair<'m> {
    service: &'m Service,
    old: Vec<String>,
    new: Vec<String>,
}

/// New containers beside the old for every service; once all the new are healthy (and in
/// rotation), the old stop. If any is not in time, every new one is removed and the old
/// release keeps serving.
async fn blue_green(compose: &Compose<'_>, services: Vec<&Service>) -> Result<(), Failure> {
    let started = Instant::now();
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    for service in services {
        let old = compose.containers(&service.name).await?;
        let scale = format!("{}={}", service.name, old.len() + service.replicas);
        let args =
            ["up", "--detach", "--no-deps", "--no-recreate", "--no-build", "--pull", "never", "--scale"];
        let started = compose
            .run(
                &[&args[..], &[scale.as_str(), service.name.as_str()]].concat(),
                &format!("starting the new {}", service.name),
            )
            .await;
        let new = match (started, compose.containers(&service.name).await) {
            (Ok(()), Ok(now)) => now.into_iter().filter(|id| !old.contains(id)).collect::<Vec<_>>(),
            (Err(e), _) | (_, Err(e)) => {
                remove(compose, pairs.iter().flat_map(|p| p.new.clone()).collect::<Vec<_>>().as_slice())
                    .await;
                return Err(e);
            }
        };
        report::step(
            "started",
            json!({ "service": service.name, "new": new.len(), "old": old.len() }),
            format!("{}: {} new instance(s) started beside {} old", service.name, new.len(), old.len()),
        );
        pairs.push(Pair { service, old, new });
    }
    let deadline = Instant::now() + compose.dest.health_timeout;
    let mut said = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for pair in &pairs {
            if !ready(compose, pair.service, &pair.new).await {
                waiting.push(pair);
            }
        }
        if waiting.is_empty() {
            break;
        }
        // Progress while waiting: every 5 s, who is still not ready.
        if said.elapsed() >= Duration::from_secs(5) {
            said = Instant::now();
            let names: Vec<&str> = waiting.iter().map(|p| p.service.name.as_str()).collect();
            let left = deadline.saturating_duration_since(Instant::now());
            report::step(
                "waiting",
                json!({ "services": names, "left_s": left.as_secs() }),
                format!("waiting for {} to be healthy and in rotation ({left:.0?} left)", names.join(", ")),
            );
        }
        if Instant::now() >= deadline {
            let names: Vec<&str> = waiting.iter().map(|p| p.service.name.as_str()).collect();
            let mut message = format!(
                "the new release of {} was not healthy and in rotation within {:?}; every new container \
                 was removed and the old release keeps serving",
                names.join(", "),
                compose.dest.health_timeout
            );
            for pair in &waiting {
                for id in &pair.new {
                    message.push_str(&format!("\n\n{}", compose::describe(compose.dest, id).await));
                }
            }
            let all_new: Vec<String> = pairs.iter().flat_map(|p| p.new.clone()).collect();
            remove(compose, &all_new).await;
            return Err(Failure::Failed(anyhow::anyhow!(message)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for pair in &pairs {
        remove(compose, &pair.old).await;
        let rotation = if pair.service.route.is_some() { " and in rotation" } else { "" };
        report::step(
            "switched",
            json!({ "service": pair.service.name, "new": pair.new.len(), "old": pair.old.len() }),
            format!(
                "{}: {} new instance(s) healthy{rotation}, {} old stopped",
                pair.service.name,
                pair.new.len(),
                pair.old.len()
            ),
        );
    }
    report::step(
        "switch-done",
        json!({ "seconds": started.elapsed().as_secs_f64() }),
        format!("switched in {:.1?}", started.elapsed()),
    );
    Ok(())
}

/// Every new container healthy, and every one of them available at the gateway when the
/// service is routed.
async fn ready(compose: &Compose<'_>, service: &Service, new: &[String]) -> bool {
    let docker = async |args: &[&str]| {
        let out = compose.dest.engine.output(args).await.ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    for id in new {
        let health = docker(&[
            "inspect",
            "--format",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            id,
        ])
        .await;
        if !matches!(health.as_deref(), Some("healthy" | "running")) {
            return false;
        }
    }
    let Some(route) = &service.route else { return true };
    let Ok(gateways) = compose.containers("gateway").await else { return false };
    let Some(gateway) = gateways.first() else { return true };
    let Some(available) = super::status::in_rotation(compose.dest, gateway, Some(route)).await else {
        return false;
    };
    for id in new {
        let ips =
            docker(&["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", id])
                .await;
        let in_rotation =
            ips.is_some_and(|ips| ips.split_whitespace().any(|ip| available.iter().any(|a| a == ip)));
        if !in_rotation {
            return false;
        }
    }
    true
}

/// Stops (the gateway drains each at its stop event) and removes containers.
async fn remove(compose: &Compose<'_>, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let _ = compose.dest.engine.output(&[&["stop"][..], &ids].concat()).await;
    let _ = compose.dest.engine.output(&[&["rm", "--force"][..], &ids].concat()).await;
}

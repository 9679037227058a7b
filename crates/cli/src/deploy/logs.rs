//! `slipway logs DESTINATION [SERVICE…]`: every instance's log lines merged in time order and
//! pretty-printed from the services' JSON lines; with `--request-id`, every line of every
//! service that carried that request.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::compose;
use super::find;
use super::status::{Container, containers};
use crate::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A destination named in deploy.toml.
    destination: String,
    /// Only these services (every one by default).
    services: Vec<String>,
    /// Keep printing lines as they come.
    #[arg(short, long)]
    follow: bool,
    /// Only lines since this (`10m`, `2h`, or an RFC 3339 time), as `docker logs --since`.
    #[arg(long)]
    since: Option<String>,
    /// Lines per container, from the end (default 100; every line with --since or --request-id).
    #[arg(long)]
    tail: Option<String>,
    /// Only the lines that carried this request id (`x-request-id`), from every service.
    #[arg(long)]
    request_id: Option<String>,
    /// The lines as the services wrote them (JSON), without pretty-printing.
    #[arg(long)]
    raw: bool,
}

/// One line: when the engine received it, from which container, and what it said.
struct Line {
    at: String,
    container: String,
    text: String,
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let dest = find(Path::new("."), &args.destination)?;
    super::reach(&dest).await?;
    let model = compose::model(&dest, "none").await?;
    let known: Vec<&str> = model.services.iter().map(|s| s.name.as_str()).collect();
    if let Some(unknown) = args.services.iter().find(|s| !known.contains(&s.as_str())) {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{} has no service {unknown:?}; its services are {}",
            dest.name,
            known.join(", ")
        )));
    }
    let chosen: Vec<Container> = containers(&dest, &model.project)
        .await?
        .into_iter()
        .filter(|c| args.services.is_empty() || args.services.contains(&c.service))
        .collect();
    if chosen.is_empty() {
        println!("{}: no containers", dest.name);
        return Ok(());
    }
    let tail = match (&args.tail, &args.since, &args.request_id) {
        (Some(n), _, _) => n.clone(),
        (None, None, None) => "100".to_string(),
        _ => "all".to_string(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Line>(1024);
    for container in &chosen {
        let mut cmd = dest.engine.docker();
        cmd.args(["logs", "--timestamps", "--tail", &tail]);
        if let Some(since) = &args.since {
            cmd.args(["--since", since]);
        }
        if args.follow {
            cmd.arg("--follow");
        }
        cmd.arg(&container.id).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.kill_on_drop(true);
        let mut child =
            cmd.spawn().map_err(|e| Failure::Failed(anyhow::anyhow!("cannot run `docker logs`: {e}")))?;
        let name = container.name.clone();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let (tx, name) = (tx.clone(), name.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let (at, text) = line.split_once(' ').unwrap_or(("", line.as_str()));
                    let line = Line { at: at.to_string(), container: name.clone(), text: text.to_string() };
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            });
        }
        tokio::spawn(async move { child.wait().await });
    }
    drop(tx);
    let keep = |l: &Line| args.request_id.as_deref().is_none_or(|id| l.text.contains(id));
    let width = chosen.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let show = |l: &Line| {
        println!(
            "{:<width$}  {}",
            l.container,
            if args.raw { l.text.clone() } else { pretty(&l.at, &l.text) }
        )
    };
    if args.follow {
        // As they come: the engine stamps each line, but followed streams are not merged.
        while let Some(line) = rx.recv().await {
            if keep(&line) {
                show(&line);
            }
        }
        return Ok(());
    }
    let mut all = Vec::new();
    while let Some(line) = rx.recv().await {
        if keep(&line) {
            all.push(line);
        }
    }
    // RFC 3339 with nanoseconds in UTC, as the engine writes them, sorts as text.
    all.sort_by(|a, b| a.at.cmp(&b.at));
    all.iter().for_each(show);
    Ok(())
}

/// A service's JSON line as `HH:MM:SS.mmm LEVEL message key=value …`; any other line as is,
/// after the engine's time.
fn pretty(at: &str, text: &str) -> String {
    let time = at.get(11..23).unwrap_or(at);
    let Ok(Value::Object(line)) = serde_json::from_str::<Value>(text) else {
        return format!("{time} {text}");
    };
    let level = line.get("level").and_then(Value::as_str).unwrap_or("");
    let mut out = format!("{time} {level:<5}");
    let fields = line.get("fields").and_then(Value::as_object);
    if let Some(message) = fields.and_then(|f| f.get("message")).and_then(Value::as_str) {
        out.push_str(&format!(" {message}"));
    }
    let span = line.get("span").and_then(Value::as_object);
    let pairs = fields.into_iter().flatten().chain(span.into_iter().flatten());
    for (key, value) in pairs.filter(|(k, _)| *k != "message" && *k != "name") {
        match value {
            Value::String(s) => out.push_str(&format!(" {key}={s}")),
            other => out.push_str(&format!(" {key}={other}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pretty;

    #[test]
    fn a_json_line_is_shown_as_time_level_message_and_fields_and_any_other_line_as_is() {
        let at = "2026-12-04T17:01:02.345678901Z";
        let json = r#"{"timestamp":"x","level":"WARN","fields":{"message":"instance ejected","instance":"10.0.0.5:8081","n":3},"target":"gateway","span":{"request_id":"r-1","name":"request"}}"#;
        assert_eq!(
            pretty(at, json),
            "17:01:02.345 WARN  instance ejected instance=10.0.0.5:8081 n=3 request_id=r-1"
        );
        assert_eq!(pretty(at, "LOG:  checkpoint starting"), "17:01:02.345 LOG:  checkpoint starting");
    }
}

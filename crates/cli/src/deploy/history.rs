//! A destination's release history: one JSON line per deploy, kept on the destination (in a
//! volume there), so it survives the deployer's laptop and every deployer sees the same one.

use std::io::Read as _;

use serde::{Deserialize, Serialize};

use super::Destination;
use crate::Failure;

const FILE: &str = "releases.jsonl";

/// One deploy or rollback, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// The image tag: `slipway/<service>:<tag>`.
    pub tag: String,
    /// `deploy` or `rollback`.
    pub kind: String,
    /// Each image and its id, as shipped.
    pub images: Vec<(String, String)>,
    /// Who deployed, from where: `user@machine`.
    pub by: String,
    /// When it started (RFC 3339, UTC).
    pub at: String,
    pub seconds: f64,
    /// `live`, or `failed: …` (nothing was switched, or the new release was removed).
    pub outcome: String,
    /// The release that was live before (set by [`append`]).
    pub replaced: Option<String>,
}

/// The history's volume on the destination, and a stopped helper container that mounts it
/// (the engine's archive API reads and writes files through it).
struct Helper<'a> {
    dest: &'a Destination,
    name: String,
}

impl<'a> Helper<'a> {
    async fn create(dest: &'a Destination, project: &str, image: &str) -> Result<Self, Failure> {
        let name = format!("{project}-releases");
        let _ = dest.engine.output(&["rm", "--force", &name]).await;
        let mount = format!("{project}_releases:/releases");
        let out = dest
            .engine
            .output(&["create", "--name", &name, "--network", "none", "--volume", &mount, image])
            .await?;
        if !out.status.success() {
            return Err(super::engine_failure(dest, "opening the release history", &out.stderr));
        }
        Ok(Self { dest, name })
    }

    async fn remove(self) {
        let _ = self.dest.engine.output(&["rm", "--force", &self.name]).await;
    }

    async fn read(&self) -> Result<Vec<Release>, Failure> {
        let source = format!("{}:/releases/{FILE}", self.name);
        let out = self.dest.engine.output(&["cp", &source, "-"]).await?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            if said.contains("Could not find") || said.contains("No such") {
                return Ok(Vec::new());
            }
            return Err(super::engine_failure(self.dest, "reading the release history", &out.stderr));
        }
        let mut archive = tar::Archive::new(out.stdout.as_slice());
        let mut text = String::new();
        for entry in archive.entries().map_err(|e| anyhow::anyhow!("the history's archive: {e}"))? {
            let mut entry = entry.map_err(|e| anyhow::anyhow!("the history's archive: {e}"))?;
            entry.read_to_string(&mut text).map_err(|e| anyhow::anyhow!("the history: {e}"))?;
        }
        Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }

    async fn write(&self, releases: &[Release]) -> Result<(), Failure> {
        let mut text = String::new();
        for r in releases {
            text.push_str(&serde_json::to_string(r).map_err(|e| anyhow::anyhow!("{e}"))?);
            text.push('\n');
        }
        let archive = super::archive::archive([(FILE, text.as_bytes())], 0o644)?;
        super::archive::copy_in(
            self.dest,
            &format!("{}:/releases", self.name),
            &archive,
            "recording the release",
        )
        .await
    }
}

/// Every release recorded on the destination, oldest first; `image` is any image the host has
/// (the helper container is made from it and never started).
pub async fn read(dest: &Destination, project: &str, image: &str) -> Result<Vec<Release>, Failure> {
    let helper = Helper::create(dest, project, image).await?;
    let releases = helper.read().await;
    helper.remove().await;
    releases
}

/// Adds one release to the destination's history, with the release live before it as the
/// one it replaced; returns the whole history.
pub async fn append(
    dest: &Destination,
    project: &str,
    image: &str,
    mut release: Release,
) -> Result<Vec<Release>, Failure> {
    let helper = Helper::create(dest, project, image).await?;
    let written = match helper.read().await {
        Ok(mut releases) => {
            release.replaced = live(&releases).map(|r| r.tag.clone());
            releases.push(release);
            helper.write(&releases).await.map(|()| releases)
        }
        Err(e) => Err(e),
    };
    helper.remove().await;
    written
}

/// The tags of the last `n` distinct releases that went live, newest first.
pub fn last_live(releases: &[Release], n: usize) -> Vec<&str> {
    let mut tags: Vec<&str> = Vec::new();
    for r in releases.iter().rev().filter(|r| r.outcome == "live") {
        if tags.len() == n {
            break;
        }
        if !tags.contains(&r.tag.as_str()) {
            tags.push(&r.tag);
        }
    }
    tags
}

/// The release live now: the newest whose outcome is `live`.
pub fn live(releases: &[Release]) -> Option<&Release> {
    releases.iter().rev().find(|r| r.outcome == "live")
}

#[cfg(test)]
mod tests {
    use super::{Release, last_live};

    fn release(tag: &str, outcome: &str) -> Release {
        Release {
            tag: tag.into(),
            kind: "deploy".into(),
            images: Vec::new(),
            by: "me@here".into(),
            at: "2026-12-04T00:00:00Z".into(),
            seconds: 1.0,
            outcome: outcome.into(),
            replaced: None,
        }
    }

    #[test]
    fn the_releases_kept_are_the_last_distinct_ones_that_went_live_newest_first() {
        let history: Vec<Release> = [
            ("a", "live"),
            ("b", "live"),
            ("c", "failed: web"),
            ("d", "live"),
            ("b", "live"),
            ("e", "failed: auth"),
        ]
        .iter()
        .map(|(t, o)| release(t, o))
        .collect();
        assert_eq!(last_live(&history, 5), ["b", "d", "a"]);
        assert_eq!(last_live(&history, 2), ["b", "d"]);
    }
}

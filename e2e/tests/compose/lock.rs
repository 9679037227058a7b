//! A destination's deploy lock on a real engine (this machine's, as destination `here`).

use std::process::Stdio;
use std::time::Duration;

use testkit::eventually;
use tokio::process::{Child, Command};

use crate::helpers::{TAG, binary, images};

const SOON: Duration = Duration::from_secs(30);

struct Project {
    dir: std::path::PathBuf,
    image: String,
}

impl Project {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("slipway-lock-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("project folder");
        std::fs::write(
            dir.join("deploy.toml"),
            "[destinations.here]\nengine = \"unix:///var/run/docker.sock\"\npublic_url = \"http://127.0.0.1:8080\"\n",
        )
        .expect("deploy.toml");
        Self { dir, image: format!("{}/slipway:{TAG}", project::IMAGES) }
    }

    fn slipway(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary("slipway"));
        cmd.current_dir(&self.dir).args(args).kill_on_drop(true);
        cmd
    }

    /// `slipway lock run here -- sleep 120` (and `--wait` if asked), in the background.
    fn hold(&self, wait: bool) -> Child {
        let mut args = vec!["lock", "run", "here", "--image", &self.image];
        if wait {
            args.push("--wait");
        }
        let command: &[&str] = if wait { &["true"] } else { &["sleep", "120"] };
        args.push("--");
        args.extend(command);
        // No pipes to the test: a killed holder's orphaned `sleep` must not hold the test's output.
        self.slipway(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    }

    async fn status(&self) -> String {
        let out = self.slipway(&["lock", "status", "here"]).output().await.expect("lock status");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rm", "--force", "slipway-deploy-lock"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_deploy_lock_is_held_once_names_its_holder_and_dies_with_a_killed_holder() {
    images().await;
    let project = Project::new();
    let _ = testkit::docker::docker(&["rm", "--force", "slipway-deploy-lock"]).await;
    assert_eq!(project.status().await.trim(), "here: not held");

    // One holder; a second is refused at once, and told who holds it.
    let mut first = project.hold(false);
    eventually(SOON, "the first run to hold the lock", async || project.status().await.contains("held by"))
        .await;
    let second = project
        .slipway(&["lock", "run", "here", "--image", &project.image, "--", "true"])
        .output()
        .await
        .expect("second run");
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(3), "{said}");
    assert!(
        said.contains("held by") && said.contains("lock run here") && said.contains("sleep 120"),
        "{said}"
    );

    // The holder is SIGKILLed: nothing expires, the lock dies with its connection.
    first.kill().await.expect("SIGKILL the holder");
    eventually(SOON, "the lock to be released once its holder died", async || {
        project.status().await.trim() == "here: not held"
    })
    .await;

    // A waiting run gets the lock once it is broken by force.
    let mut third = project.hold(false);
    eventually(SOON, "the third run to hold the lock", async || project.status().await.contains("held by"))
        .await;
    let mut waiting = project.hold(true);
    let release = project.slipway(&["lock", "release", "here", "--yes"]).output().await.expect("release");
    let said = String::from_utf8_lossy(&release.stdout);
    assert!(release.status.success() && said.contains("here: released (was held by"), "{said}");
    let waited =
        tokio::time::timeout(SOON, waiting.wait()).await.expect("the waiting run finishes").expect("wait");
    assert!(waited.success(), "the waiting run took the lock and ran: {waited}");
    let _ = third.kill().await;
    assert_eq!(project.status().await.trim(), "here: not held", "a finished run leaves no lock");
}

//! A throwaway NATS server with JetStream: loopback, a free port, its store in a temporary
//! folder; it can be killed and started again on the same port and store (a server restart
//! mid-stream), and is stopped and deleted when dropped. `cargo xtask test` runs one for the
//! whole run; a test that restarts its server starts its own.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server a test uses: NATS_URL (`cargo xtask test` sets it to its throwaway one), else
/// one on this machine's standard port.
pub fn url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A namespace of its own for one test (its stream and buckets are that test's alone), on
/// the server at [`url`]. Tests leave their streams behind (a bus has no async drop): those
/// of tests that started over ten minutes ago go first, so a long-lived server does not fill.
pub async fn namespace() -> String {
    use futures_util::StreamExt as _;
    if let Ok(client) = async_nats::connect(url()).await {
        let js = async_nats::jetstream::new(client);
        let mut streams = js.streams();
        let mut old = Vec::new();
        while let Some(Ok(info)) = streams.next().await {
            let name = &info.config.name;
            let age = chrono::Utc::now() - info.created;
            if (name.starts_with("SLIPWAY_T") || name.starts_with("KV_SLIPWAY_T")) && age.num_minutes() > 10 {
                old.push(name.clone());
            }
        }
        for name in old {
            let _ = js.delete_stream(&name).await;
        }
    }
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// How many messages of `namespace`'s stream some consumer has yet to deliver or to see
/// acknowledged (0 once every group has settled everything), and how many the stream holds.
pub async fn unsettled(namespace: &str) -> (u64, u64) {
    use futures_util::StreamExt as _;
    let client = async_nats::connect(url()).await.expect("NATS at NATS_URL");
    let js = async_nats::jetstream::new(client);
    let mut stream =
        js.get_stream(format!("SLIPWAY_{}", namespace.to_ascii_uppercase())).await.expect("the stream");
    let stored = stream.info().await.expect("stream info").state.messages;
    let names: Vec<String> = stream.consumer_names().filter_map(async |n| n.ok()).collect().await;
    let mut total = 0;
    for name in names {
        let info = stream.consumer_info(&name).await.expect("consumer info");
        total += info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(0);
    }
    (total, stored)
}

/// The running server.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Server {
    /// Starts one, or says what is missing.
    pub fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(format!("slipway-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut server = Self { child: None, dir, port };
        server.spawn()?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its process id while it runs (a benchmark reads its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills it (SIGKILL: no clean shutdown) and starts it again on the same port and store.
    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let program = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(program)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {program} ({e}): `cargo xtask setup` installs nats-server"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "the throwaway NATS server did not listen on port {} within 10 s",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts it again after [`Server::kill`], on the same port and store.
    pub fn restart(&mut self) -> Result<(), String> {
        self.spawn()
    }

    /// Kills it (SIGKILL) and leaves it down.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

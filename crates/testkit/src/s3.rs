//! S3-compatible object storage for backup tests: moto's server (PyPI `moto[server]`) behind
//! Debian's nginx for TLS, with a certificate made for the test (werkzeug's own TLS ends each
//! response without a close_notify, which OpenSSL 3 clients such as pgBackRest take for a
//! truncated response), behind a [`TcpProxy`] on an address containers reach, so a test can
//! make the storage unreachable and bring it back with its data intact.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use crate::TcpProxy;

/// A running server with one bucket; stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    moto: std::process::Child,
    nginx: std::process::Child,
    proxy: TcpProxy,
    dir: PathBuf,
    /// The certificate clients must trust (PEM).
    pub ca: PathBuf,
    /// The bucket made for the test.
    pub bucket: String,
}

impl S3Server {
    /// Starts moto on loopback and the proxy on `ip`, with a certificate for `ip` and the
    /// names in `dns`, and creates the bucket `bucket`; returns once the bucket exists.
    pub async fn start(ip: IpAddr, dns: &[&str], bucket: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("slipway-s3-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("s3 folder");
        let alt: Vec<String> =
            std::iter::once(format!("IP:{ip}")).chain(dns.iter().map(|d| format!("DNS:{d}"))).collect();
        let (crt, key) = crate::tls::self_signed(&dir, "s3", &alt.join(","));
        let free = || {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("a free port")
                .local_addr()
                .expect("addr")
                .port()
        };
        let (moto_port, tls_port) = (free(), free());
        let log = std::fs::File::create(dir.join("moto.log")).expect("log");
        let moto = std::process::Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("python3 runs moto's server (pip install 'moto[server]')");
        let d = dir.display();
        let conf = format!(
            "daemon off; user root; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{ access_log off; client_max_body_size 0; client_body_temp_path {d}/body; \
             proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; \
             scgi_temp_path {d}/scgi;\n\
             server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {}; ssl_certificate_key {};\n\
             location / {{ proxy_pass http://127.0.0.1:{moto_port}; proxy_set_header Host localhost; \
             proxy_request_buffering off; proxy_buffering off; }} }} }}\n",
            crt.display(),
            key.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let nginx = std::process::Command::new("nginx")
            .arg("-e")
            .arg(dir.join("nginx.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .spawn()
            .expect("nginx runs (Debian's nginx-light)");
        let proxy = TcpProxy::start_on(ip, (Ipv4Addr::LOCALHOST, tls_port).into()).await;
        let server = Self { moto, nginx, proxy, dir, ca: crt.clone(), bucket: bucket.to_string() };
        // The bucket, made through the proxy with the certificate checked: the path containers
        // will take.
        let url = format!("https://{ip}:{}/{bucket}", server.port());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let made = tokio::process::Command::new("curl")
                .args(["-sSf", "-X", "PUT", "--max-time", "5", "--cacert"])
                .arg(&crt)
                .arg(&url)
                .output()
                .await
                .expect("curl runs");
            if made.status.success() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto did not create the bucket: {}\n{}",
                String::from_utf8_lossy(&made.stderr),
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// The port the proxy listens on, at the `ip` given to [`S3Server::start`].
    pub fn port(&self) -> u16 {
        self.proxy.port()
    }

    /// Unreachable: every connection dropped, new ones refused; the data stays.
    pub fn cut(&self) {
        self.proxy.cut();
    }

    /// Reachable again.
    pub fn restore(&self) {
        self.proxy.restore();
    }

    /// What moto and nginx logged.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("moto.log"), read("nginx.log"))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // nginx's master stops its workers on SIGTERM (a SIGKILL would orphan them).
        let _ = std::process::Command::new("kill").args(["-TERM", &self.nginx.id().to_string()]).status();
        let _ = self.nginx.wait();
        let _ = self.moto.kill();
        let _ = self.moto.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

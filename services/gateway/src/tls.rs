//! TLS termination with rustls. Certificates come from a [`CertSource`], chosen per connection
//! by SNI; the one source today is a directory of PEM pairs (`<host>.crt` + `<host>.key`, the
//! nginx-proxy convention), re-read when it changes. An ACME source can implement the same trait.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where certificates come from.
pub trait CertSource: Send + Sync + Debug {
    /// The certificate for a client's SNI name (`None` when it sent none).
    fn resolve(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>>;
}

/// A directory of `<host>.crt`/`<host>.key` pairs. A host without its own pair is served the
/// pair of its nearest parent domain (so `example.com.crt` may hold `*.example.com`), and
/// `default.crt` serves clients that send no name or an unknown one.
#[derive(Debug)]
pub struct CertDir {
    dir: PathBuf,
    certs: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
    stamp: std::sync::Mutex<Vec<(PathBuf, Option<SystemTime>)>>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn stamp(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| (e.path(), e.metadata().and_then(|m| m.modified()).ok()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn load_pair(crt: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(crt)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", crt.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", crt.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signer =
        provider().key_provider.load_private_key(key).map_err(|e| format!("{}: {e}", crt.display()))?;
    Ok(CertifiedKey::new(chain, signer))
}

fn scan(dir: &Path) -> Result<HashMap<String, Arc<CertifiedKey>>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!("cannot read the certificates folder {} ({e}); set SLIPWAY_GATEWAY_TLS_DIR", dir.display())
    })?;
    let mut certs = HashMap::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.extension().and_then(|e| e.to_str()) != Some("crt") {
            continue;
        }
        let Some(host) = path.file_stem().and_then(|s| s.to_str()).map(str::to_ascii_lowercase) else {
            continue;
        };
        let key = path.with_extension("key");
        if !key.exists() {
            return Err(format!("{}: no matching {} beside it", path.display(), key.display()));
        }
        certs.insert(host, Arc::new(load_pair(&path, &key)?));
    }
    if certs.is_empty() {
        return Err(format!("{}: no <host>.crt/<host>.key pair found", dir.display()));
    }
    Ok(certs)
}

impl CertDir {
    /// Loads every pair; any unreadable or mismatched file is an error naming it.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let certs = scan(dir)?;
        Ok(Self { dir: dir.to_path_buf(), certs: ArcSwap::from_pointee(certs), stamp: stamp(dir).into() })
    }

    /// Re-reads the folder if a file in it changed; a broken change keeps the current certificates.
    pub fn refresh(&self) {
        let now = stamp(&self.dir);
        let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if *last == now {
            return;
        }
        *last = now;
        match scan(&self.dir) {
            Ok(certs) => {
                tracing::info!(certificates = certs.len(), "TLS certificates reloaded");
                self.certs.store(Arc::new(certs));
            }
            Err(problem) => {
                tracing::error!(problem, "TLS certificates not reloaded; keeping the current ones")
            }
        }
    }
}

impl CertSource for CertDir {
    fn resolve(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.load();
        let mut name = server_name.map(str::to_ascii_lowercase);
        while let Some(n) = name {
            if let Some(c) = certs.get(&n) {
                return Some(c.clone());
            }
            name = n.split_once('.').map(|(_, parent)| parent.to_string()).filter(|p| p.contains('.'));
        }
        certs.get("default").cloned()
    }
}

#[derive(Debug)]
struct Resolver(Arc<dyn CertSource>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.resolve(hello.server_name())
    }
}

/// A TLS acceptor offering HTTP/2 and HTTP/1.1 (ALPN) with certificates from `source`.
pub fn acceptor(source: Arc<dyn CertSource>) -> anyhow::Result<TlsAcceptor> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(source)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

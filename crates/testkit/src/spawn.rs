//! `spawn`: any service, in this process, on a port of its own, with the settings a test gives.
//!
//! The service binds port 0, so no other test or process can take its port between choosing
//! and binding it. It stops when the [`Spawned`] is dropped.

use kit::config::Sources;
use kit::service::{App, Service};
use tokio::sync::oneshot;

/// A running service; stopped when dropped.
#[derive(Debug)]
pub struct Spawned {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
}

/// Loads `S`'s configuration from `vars` (with `SLIPWAY_ENV=test` and the service's port 0
/// unless `vars` says otherwise), builds it and serves it in a task.
///
/// # Panics
/// When the configuration is invalid (every problem printed) or the service fails to build.
pub async fn spawn<S: Service>(vars: &[(&str, &str)]) -> Spawned {
    let port_var = format!("SLIPWAY_{}_PORT", S::NAME.to_ascii_uppercase());
    let mut all: Vec<(String, String)> = vec![("SLIPWAY_ENV".into(), "test".into()), (port_var, "0".into())];
    for (k, v) in vars {
        all.retain(|(known, _)| known != k);
        all.push((k.to_string(), v.to_string()));
    }
    let config = match S::load(&Sources::from_vars(all)) {
        Ok(config) => config,
        Err(errors) => panic!("{}'s test configuration is invalid: {errors}", S::NAME),
    };
    let app = config.build().await.unwrap_or_else(|e| panic!("{} builds: {e:#}", S::NAME));
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(Box::pin(async move {
        let _ = stopped.await;
    })));
    Spawned { port, stop: Some(stop) }
}

impl Spawned {
    /// The port the service listens on (loopback).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

//! `spawn_stack()`: auth, the mailer (dev mailbox) and web, each the real application on its
//! own port, sharing one fresh database (each in its own schema).

use kit::config::Sources;
use testkit::TestDb;
use tokio::sync::oneshot;

pub struct Stack {
    pub web: String,
    pub db: TestDb,
    auth: String,
    stops: Vec<oneshot::Sender<()>>,
}

impl Stack {
    /// Stops auth and waits until it no longer accepts connections.
    pub async fn stop_auth(&mut self) {
        if let Some(stop) = self.stops.first_mut().map(|s| std::mem::replace(s, oneshot::channel().0)) {
            let _ = stop.send(());
        }
        let addr = self.auth.trim_start_matches("http://").to_string();
        testkit::eventually(std::time::Duration::from_secs(30), "auth stops listening", async || {
            tokio::net::TcpStream::connect(&addr).await.is_err()
        })
        .await;
    }
}

fn sources(pairs: &[(&str, String)]) -> Sources {
    Sources::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
}

fn stopper() -> (oneshot::Sender<()>, impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

/// The three services; web runs in `web_env` (dev or test, which changes its cookies).
pub async fn spawn_stack(web_env: &str) -> Stack {
    spawn_stack_with(web_env, &[]).await
}

/// The three services, web with extra settings.
pub async fn spawn_stack_with(web_env: &str, web_extra: &[(&str, &str)]) -> Stack {
    let db = TestDb::create().await;
    // Bound now and kept: auth needs web's address before web exists.
    let web_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind web's port");
    let web_port = web_listener.local_addr().expect("web's address").port();
    let web = format!("http://127.0.0.1:{web_port}");
    let url = db.url.clone();

    let auth_config = auth::Config::load(&sources(&[
        ("SLIPWAY_ENV", "test".into()),
        ("SLIPWAY_DATABASE_URL", url.clone()),
        ("SLIPWAY_AUTH_PORT", "0".into()),
        ("SLIPWAY_AUTH_PUBLIC_URL", web.clone()),
    ]))
    .expect("auth config");
    let auth = auth::Application::build(auth_config).await.expect("auth builds");
    let auth_url = format!("http://127.0.0.1:{}", auth.port());
    let auth_url_kept = auth_url.clone();

    let mailer_config = mailer::Config::load(&sources(&[
        ("SLIPWAY_ENV", "test".into()),
        ("SLIPWAY_DATABASE_URL", url.clone()),
        ("SLIPWAY_MAILER_PORT", "0".into()),
        ("SLIPWAY_MAILER_POLL", "200ms".into()),
    ]))
    .expect("mailer config");
    let mailer = mailer::Application::build(mailer_config).await.expect("mailer builds");
    let mailer_url = format!("http://127.0.0.1:{}", mailer.port());

    let mut web_vars = vec![
        ("SLIPWAY_ENV", web_env.to_string()),
        ("SLIPWAY_DATABASE_URL", url),
        ("SLIPWAY_WEB_PORT", web_port.to_string()),
        ("SLIPWAY_WEB_AUTH_URL", auth_url),
        ("SLIPWAY_WEB_MAILER_URL", mailer_url),
    ];
    web_vars.extend(web_extra.iter().map(|(k, v)| (*k, v.to_string())));
    let web_config = web::Config::load(&sources(&web_vars)).expect("web config");
    let web_app = web::Application::build_on(web_config, web_listener).await.expect("web builds");

    let mut stops = Vec::new();
    let (s, f) = stopper();
    tokio::spawn(auth.run_until(f));
    stops.push(s);
    let (s, f) = stopper();
    tokio::spawn(mailer.run_until(f));
    stops.push(s);
    let (s, f) = stopper();
    tokio::spawn(web_app.run_until(f));
    stops.push(s);
    Stack { web, db, auth: auth_url_kept, stops }
}

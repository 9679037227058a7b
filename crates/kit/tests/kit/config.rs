//! The layered configuration: sources, their order, and every problem reported at once.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kit::ExposeSecret;
use kit::config::{Common, DbConfig, LogFormat, Sources};

/// A tiny service configuration, read the way every service reads its own.
#[derive(Debug)]
struct Demo {
    common: Common,
    db: DbConfig,
    api_key: kit::SecretString,
    workers: u32,
}

fn load(vars: &[(&str, &str)]) -> Result<Demo, kit::config::ConfigErrors> {
    load_from(&Sources::from_vars(vars.iter().copied()))
}

fn load_from(sources: &Sources) -> Result<Demo, kit::config::ConfigErrors> {
    let mut r = sources.reader("auth");
    let demo = Demo {
        common: Common::read(&mut r, 9000),
        db: DbConfig::read(&mut r),
        api_key: r.secret("API_KEY", "dev-api-key"),
        workers: r.get("WORKERS", 4),
    };
    r.finish()?;
    Ok(demo)
}

#[test]
fn three_wrong_variables_are_all_reported_with_their_names() {
    let err = load(&[
        ("SLIPWAY_ENV", "dev"),
        ("SLIPWAY_AUTH_PORT", "eighty"),
        ("SLIPWAY_AUTH_WORKERS", "-3"),
        ("SLIPWAY_SHUTDOWN_GRACE", "soon"),
    ])
    .expect_err("three bad values");
    let vars: Vec<&str> = err.0.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(vars.len(), 3, "{err}");
    for var in ["SLIPWAY_AUTH_PORT", "SLIPWAY_AUTH_WORKERS", "SLIPWAY_SHUTDOWN_GRACE"] {
        assert!(vars.contains(&var), "{var} missing from {err}");
    }
    let text = err.to_string();
    assert!(text.contains("3 configuration problems"), "{text}");
    assert!(text.contains("expected a whole number from 0 to 65535, got \"eighty\""), "{text}");
    assert!(text.contains("expected a duration"), "{text}");
}

const TYPOS: &[(&str, &str)] = &[
    ("SLIPWAY_ENV", "dev"),
    ("SLIPWAY_AUTH_WORKRS", "2"),
    ("SLIPWAY_DATABSE_URL", "postgres://x"),
    ("SLIPWAY_MAILER_SMTP_HOST", "mail"),
];

#[test]
fn unknown_variables_of_the_scope_are_refused_with_a_suggestion_and_other_named_scopes_ignored() {
    let sources = Sources::from_vars(TYPOS.iter().copied()).with_scopes(&["auth", "MAILER"]);
    let err = load_from(&sources).expect_err("two unknown");
    let text = err.to_string();
    assert_eq!(err.0.len(), 2, "{text}");
    assert!(
        text.contains("SLIPWAY_AUTH_WORKRS: unknown setting (did you mean SLIPWAY_AUTH_WORKERS?)"),
        "{text}"
    );
    assert!(text.contains("SLIPWAY_DATABSE_URL: unknown setting"), "{text}");
    assert!(!text.contains("MAILER"), "another service's settings are not auth's business: {text}");
}

#[test]
fn a_variable_of_a_scope_the_project_does_not_name_is_reported_as_unknown() {
    let sources = Sources::from_vars(TYPOS.iter().copied()).with_scopes(&["AUTH", "WEB"]);
    let err = load_from(&sources).expect_err("three unknown");
    assert_eq!(err.0.len(), 3, "{err}");
    assert!(err.to_string().contains("SLIPWAY_MAILER_SMTP_HOST: unknown setting"), "{err}");
}

#[test]
fn a_secret_never_appears_in_debug_output_or_logs() {
    let secret = "hunter2-very-secret-value";
    let url = "postgres://app:pa55word-in-url@db/app";
    let demo =
        load(&[("SLIPWAY_ENV", "prod"), ("SLIPWAY_AUTH_API_KEY", secret), ("SLIPWAY_DATABASE_URL", url)])
            .expect("valid prod config");
    assert_eq!(demo.api_key.expose_secret(), secret, "the value itself is available to code");

    let debug = format!("{demo:?} {demo:#?}");
    assert!(!debug.contains(secret) && !debug.contains("pa55word"), "{debug}");

    let buffer = SharedBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber_for(writer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(config = ?demo, "loaded");
        tracing::info!(api_key = ?demo.api_key, db = ?demo.db, "fields");
    });
    let logs = buffer.text();
    assert!(logs.contains("loaded") && logs.contains("REDACTED"), "{logs}");
    assert!(!logs.contains(secret) && !logs.contains("pa55word"), "{logs}");
}

#[test]
fn production_refuses_missing_default_and_example_secrets_with_what_to_do() {
    let err = load(&[
        ("SLIPWAY_ENV", "prod"),
        ("SLIPWAY_AUTH_API_KEY", "dev-api-key"),
        ("SLIPWAY_DATABASE_URL", "CHANGE-ME"),
    ])
    .expect_err("default secrets in prod");
    let text = err.to_string();
    assert!(text.contains("SLIPWAY_AUTH_API_KEY: is the development default"), "{text}");
    assert!(text.contains("SLIPWAY_DATABASE_URL: is the example value"), "{text}");
    assert!(text.contains("openssl rand"), "{text}");
    assert!(!text.contains("dev-api-key"), "a refused secret is not echoed: {text}");

    let err = load(&[("SLIPWAY_ENV", "staging")]).expect_err("missing secrets in staging");
    let text = err.to_string();
    assert!(text.contains("SLIPWAY_AUTH_API_KEY: required in staging"), "{text}");
    assert!(text.contains("SLIPWAY_AUTH_DATABASE_URL: required in staging"), "{text}");

    let dev = load(&[("SLIPWAY_ENV", "dev")]).expect("dev takes the defaults");
    assert_eq!(dev.api_key.expose_secret(), "dev-api-key");
}

#[test]
fn an_unset_environment_means_prod_so_a_forgotten_setting_fails_closed() {
    let err = load(&[]).expect_err("prod without secrets");
    assert!(err.to_string().contains("required in prod"), "{err}");
}

#[test]
fn a_file_section_of_a_scope_the_project_does_not_name_is_reported_with_the_file() {
    let dir = tempdir();
    let file = dir.join("slipway.toml");
    std::fs::write(&file, "env = \"dev\"\n[mailer]\nsmtp_host = \"mail\"\n[mialer]\nsmtp_host = \"x\"\n")
        .expect("write toml");
    let vars = [("SLIPWAY_CONFIG_FILE".to_string(), file.display().to_string())];
    let sources = Sources::load(vars, &dir).with_scopes(&["AUTH", "MAILER"]);
    let err = load_from(&sources).expect_err("one unknown section");
    assert_eq!(err.0.len(), 1, "{err}");
    let text = err.to_string();
    assert!(text.contains("SLIPWAY_MIALER_SMTP_HOST: unknown setting"), "{text}");
    assert!(text.contains(&format!("from config file {}", file.display())), "{text}");
}

#[test]
fn layers_apply_in_order_file_then_dotenv_then_environment_then_secret_files() {
    let dir = tempdir();
    let file = dir.join("slipway.toml");
    std::fs::write(&file, "log = \"warn\"\n[auth]\nworkers = 7\nport = 1111\n").expect("write toml");
    std::fs::write(dir.join(".env"), "SLIPWAY_ENV=dev\nSLIPWAY_AUTH_PORT=2222\nSLIPWAY_LOG_FORMAT=json\n")
        .expect("write .env");
    std::fs::write(dir.join("secrets.env"), "SLIPWAY_AUTH_API_KEY=from-secrets-env\n")
        .expect("write secrets.env");
    let key_file = dir.join("api_key");
    std::fs::write(&key_file, "from-secret-file\n").expect("write secret");

    let vars = |extra: &[(&str, &str)]| {
        let mut v = vec![("SLIPWAY_CONFIG_FILE".to_string(), file.display().to_string())];
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };
    let demo = load_from(&Sources::load(vars(&[]), &dir)).expect("valid");
    assert_eq!(demo.workers, 7, "from the file");
    assert_eq!(demo.common.log, "warn", "from the file");
    assert_eq!(demo.common.http.addr.port(), 2222, ".env beats the file");
    assert_eq!(demo.common.log_format, LogFormat::Json, "from .env");
    assert_eq!(demo.api_key.expose_secret(), "from-secrets-env");

    let env = vars(&[
        ("SLIPWAY_AUTH_PORT", "3333"),
        ("SLIPWAY_AUTH_API_KEY_FILE", &key_file.display().to_string()),
    ]);
    let demo = load_from(&Sources::load(env, &dir)).expect("valid");
    assert_eq!(demo.common.http.addr.port(), 3333, "the environment beats .env");
    assert_eq!(demo.api_key.expose_secret(), "from-secret-file", "a _FILE secret beats everything");

    let prod = vars(&[
        ("SLIPWAY_ENV", "prod"),
        ("SLIPWAY_AUTH_API_KEY", "real"),
        ("SLIPWAY_DATABASE_URL", "postgres://db/x"),
    ]);
    let demo = load_from(&Sources::load(prod, &dir)).expect("valid prod");
    assert_eq!(demo.common.http.addr.port(), 1111, "prod ignores .env files; the file still applies");
}

#[test]
fn an_unreadable_secret_file_is_reported_by_variable_and_path() {
    let err = load(&[("SLIPWAY_ENV", "dev"), ("SLIPWAY_AUTH_API_KEY_FILE", "/nonexistent/key")])
        .expect_err("missing file");
    let text = err.to_string();
    assert!(text.contains("SLIPWAY_AUTH_API_KEY_FILE: cannot read secret file /nonexistent/key"), "{text}");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kit-config-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    dir
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::SystemTime::now())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
}

#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tracing_subscriber_for(writer: SharedBuffer) -> impl tracing::Subscriber {
    tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish()
}

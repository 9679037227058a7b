//! `slipway env`: `check` reports every problem of every service at once; `secrets` writes fresh secrets, never over existing ones.

use crate::helpers::{run, text};

#[test]
fn env_check_prints_every_problem_of_every_service_and_exits_78() {
    let vars = [
        ("SLIPWAY_ENV", "staging"),
        ("SLIPWAY_DATABASE_URL", "postgres://app:real-password@db/app"),
        ("SLIPWAY_AUTH_PORT", "99999"),
        ("SLIPWAY_LOG_FORMAT", "xml"),
    ];
    let out = run(&vars, &["env", "check"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("environment: staging"), "{t}");
    for var in ["SLIPWAY_AUTH_PORT", "SLIPWAY_LOG_FORMAT", "SLIPWAY_AUTH_TOKEN_KEY: required in staging"] {
        assert!(t.contains(var), "{var} missing: {t}");
    }
    assert!(!t.contains("real-password"), "{t}");
}

#[test]
fn env_check_passes_a_good_dev_configuration() {
    let out = run(&[("SLIPWAY_ENV", "dev")], &["env", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("auth: ok"));
}

#[test]
fn env_secrets_writes_fresh_private_secrets_once_and_never_overwrites_them() {
    let dirs: Vec<_> = (0..2)
        .map(|_| {
            let d = std::env::temp_dir().join(format!("slipway-secrets-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&d).expect("dir");
            d
        })
        .collect();
    let values: Vec<Vec<(String, String)>> = dirs
        .iter()
        .map(|d| {
            let out = run(&[], &["env", "secrets", "--dir", d.to_str().expect("utf-8")]);
            assert!(out.status.success(), "{}", text(&out));
            let path = d.join("secrets.env");
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&path).expect("file").permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "only its owner may read it");
            std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect()
        })
        .collect();
    let keys: Vec<&str> = values[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "SLIPWAY_AUTH_TOKEN_KEY",
            "SLIPWAY_WEB_COOKIE_KEY",
            "SLIPWAY_DATABASE_PASSWORD",
            "POSTGRES_PASSWORD"
        ]
    );
    for (_, v) in values.iter().flatten() {
        assert!(v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
    }
    assert_eq!(values[0][2].1, values[0][3].1, "the services and Postgres share the database password");
    assert_ne!(values[0][0].1, values[0][1].1, "each secret is its own");
    assert_ne!(values[0], values[1], "every run makes new values");

    let before = std::fs::read(dirs[0].join("secrets.env")).expect("read");
    let again = run(&[], &["env", "secrets", "--dir", dirs[0].to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    assert_eq!(std::fs::read(dirs[0].join("secrets.env")).expect("read"), before, "kept as it was");
    dirs.iter().for_each(|d| {
        let _ = std::fs::remove_dir_all(d);
    });
}

#[test]
fn env_secrets_files_writes_the_missing_secret_files_in_a_private_folder_and_keeps_the_rest() {
    let parent = std::env::temp_dir().join(format!("slipway-files-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&parent).expect("dir");
    let dir = parent.join("secrets");
    let out = run(&[], &["env", "secrets", "--files", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("exists").permissions()) & 0o777
    };
    assert_eq!(mode(&dir), 0o700, "only its owner may enter the folder");
    for name in [
        "database_password",
        "auth_database_password",
        "web_database_password",
        "auth_token_key",
        "backup_key",
    ] {
        let value = std::fs::read_to_string(dir.join(name)).expect(name);
        assert!(value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()), "{name}: {value}");
        assert_eq!(mode(&dir.join(name)), 0o444, "{name} is read-only");
    }
    let pem = std::fs::read_to_string(dir.join("auth_jwt_key")).expect("jwt key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "a PKCS#8 PEM: {pem}");

    let before = std::fs::read(dir.join("auth_token_key")).expect("read");
    let again = run(&[], &["env", "secrets", "--files", dir.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert_eq!(std::fs::read(dir.join("auth_token_key")).expect("read"), before, "kept as it was");

    // A secret a newer release needs is added beside the existing ones.
    std::fs::remove_file(dir.join("web_database_password")).expect("remove");
    let upgrade = run(&[], &["env", "secrets", "--files", dir.to_str().expect("utf-8")]);
    assert!(upgrade.status.success(), "{}", text(&upgrade));
    assert!(text(&upgrade).contains("wrote web_database_password") && text(&upgrade).contains("kept the 7"));
    assert_eq!(std::fs::read(dir.join("auth_token_key")).expect("read"), before, "still as it was");
    assert_eq!(mode(&dir.join("web_database_password")), 0o444);
    let _ = std::fs::remove_dir_all(&parent);
}

#[test]
fn env_secrets_files_refuses_a_symlinked_or_shared_folder_and_writes_nothing() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = std::env::temp_dir().join(format!("slipway-files-{}", uuid::Uuid::new_v4().simple()));
    let elsewhere = parent.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).expect("mode");
    let link = parent.join("secrets");
    std::os::unix::fs::symlink(&elsewhere, &link).expect("symlink");
    let out = run(&[], &["env", "secrets", "--files", link.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&elsewhere).expect("dir").count(), 0, "nothing written through the link");

    let shared = parent.join("shared");
    std::fs::create_dir_all(&shared).expect("dir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("mode");
    let out = run(&[], &["env", "secrets", "--files", shared.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("writable by other users"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&shared).expect("dir").count(), 0);
    let _ = std::fs::remove_dir_all(&parent);
}

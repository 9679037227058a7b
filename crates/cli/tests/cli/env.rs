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

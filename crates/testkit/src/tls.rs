//! Self-signed certificates made with openssl for test servers that speak TLS.

use std::path::{Path, PathBuf};

/// Makes `<dir>/<name>.crt` and `<dir>/<name>.key`, an EC certificate for the subject
/// alternative names `alt` (`IP:10.0.0.1,DNS:example.test`), valid two days; the certificate
/// is its own CA, so clients trust it by trusting that file.
pub fn self_signed(dir: &Path, name: &str, alt: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", &format!("/CN=slipway-test-{name}"), "-addext"])
        .arg(format!("subjectAltName={alt}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
    (crt, key)
}

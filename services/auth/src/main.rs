//! The auth service binary: `auth [serve|healthcheck|check-config]`.

fn main() -> std::process::ExitCode {
    kit::service::main::<auth::Config>(project::SCOPES)
}

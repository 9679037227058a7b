//! The web binary: `web [serve|healthcheck|check-config]`.

fn main() -> std::process::ExitCode {
    kit::service::main::<web::Config>(project::SCOPES)
}

//! The mailer binary: `mailer [serve|healthcheck|check-config]`.

fn main() -> std::process::ExitCode {
    kit::service::main::<mailer::Config>(project::SCOPES)
}

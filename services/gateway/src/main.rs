//! The gateway binary: `gateway [serve|healthcheck|check-config]`.

fn main() -> std::process::ExitCode {
    kit::service::main::<gateway::Config>()
}

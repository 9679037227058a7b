//! The gateway binary: `gateway [serve|healthcheck|check-config]`, `gateway routes` (the
//! running gateway's routes and instances, as JSON), `gateway docker-proxy
//! [serve|healthcheck]`, the read-only Docker API proxy that discovery talks to, and
//! `gateway hold`, which only holds a network namespace (and its published ports) for the
//! gateways that join it, so one can replace another without closing the port.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "docker-proxy") {
        return gateway::docker_proxy::main(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "routes") {
        return gateway::admin::print_routes();
    }
    if args.first().is_some_and(|a| a == "hold") {
        // `gateway hold healthcheck`: the holder's health check (running is all it does).
        if args.get(1).is_some_and(|a| a == "healthcheck") {
            return std::process::ExitCode::SUCCESS;
        }
        return gateway::listen::hold();
    }
    kit::service::main::<gateway::Config>(project::SCOPES)
}

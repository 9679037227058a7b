//! The `slipway` command.

fn main() -> std::process::ExitCode {
    slipway_cli::main()
}

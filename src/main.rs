//! The `vigil` binary: parse the CLI, load settings, run the command, map errors to exit codes.

fn main() {
    println!("vigil {}", env!("CARGO_PKG_VERSION"));
}

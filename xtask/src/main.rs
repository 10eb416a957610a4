//! `cargo xtask`: developer tasks for the imagegen workspace.
//!
//! Tasks are added by the fixtures and benchmark work; each is a subcommand.

use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask <task>\n\ntasks: none yet (fixtures and bench come with the xtask issue)";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("help" | "--help" | "-h") => {
            eprintln!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("unknown task `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

//! `imagegen`: prompt in, image files out, through Kolbo or KoalaImages, for the fewest
//! credits, never losing a paid-for image.
//!
//! ```text
//! imagegen generate "a lighthouse at dusk, watercolor"
//! imagegen estimate "a fox" --aspect 16:9 -n 4
//! imagegen batch prompts.txt --budget 50
//! imagegen resume
//! ```
//!
//! With no API key set, `generate`, `estimate`, `models` and `batch` run against a
//! simulator of both APIs started in this process. See `imagegen --help` and the exit code
//! table in [`exit`].

// Doc comments double as clap's --help text, where `<out>`-style placeholders are
// meant literally, not as HTML.
#![allow(rustdoc::invalid_html_tags)]

mod args;
mod commands;
mod exit;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    let code = runtime.block_on(run(cli));
    // Jobs still running in the background (after Ctrl-C) are journaled; do not wait.
    runtime.shutdown_background();
    ExitCode::from(code)
}

async fn run(cli: Cli) -> u8 {
    let quiet = cli.quiet;
    let db = cli.db.as_deref();
    match cli.command {
        Command::Generate(args) => commands::generate::run(args, db, quiet).await,
        Command::Estimate(args) => commands::estimate::run(args, quiet).await,
        Command::Models(args) => commands::models::run(args, quiet).await,
        Command::Credits(args) => commands::credits::run(args, quiet).await,
        Command::Moodboards(args) => commands::library::moodboards(args, quiet).await,
        Command::VisualDna(args) => commands::library::visual_dna(args, quiet).await,
        Command::Batch(args) => commands::batch::run(args, db, quiet).await,
        Command::Resume(args) => commands::resume::run(args, db, quiet).await,
        Command::Sim(args) => commands::sim::run(args, quiet).await,
        Command::Serve(args) => commands::serve::run(args, db, quiet).await,
        Command::Mcp(args) => commands::mcp::run(args, db, quiet).await,
        Command::History(args) => commands::history::run(args, db, quiet).await,
        Command::Spend(args) => commands::spend::run(args, db, quiet).await,
        Command::Keys(command) => commands::keys::run(command, db, quiet).await,
    }
}

/// Logs go to stderr. `RUST_LOG` wins; otherwise `-q` shows errors, the default warnings,
/// `-v` imagegen's info, `-vv` debug, `-vvv` trace. HTTP clients never log headers, so
/// keys stay out of logs at every level.
fn init_logging(quiet: bool, verbose: u8) {
    // A catalog that cannot be fetched is reported by the command itself (with its exit
    // code), so the router's own warning about it is left to `-v`.
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,imagegen_router::catalog=error",
        (false, 1) => "warn,imagegen=info,imagegen_router=info,kolbo_api=info,koala_api=info",
        (false, 2) => "info,imagegen=debug,imagegen_router=debug,kolbo_api=debug,koala_api=debug",
        (false, _) => "debug,imagegen=trace,imagegen_router=trace,kolbo_api=trace,koala_api=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .try_init();
}

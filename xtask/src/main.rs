//! `cargo xtask`: developer tasks for the imagegen workspace.
//!
//! - `cargo xtask fixtures record [--provider kolbo|koala] [--live [--yes]]`: runs the
//!   named scenarios (every route, every documented error) against an in-process simulator
//!   (or the real APIs with `--live`) and writes `fixtures/<provider>/sim/` (or `live/`),
//!   secrets scrubbed and volatile values normalized.
//! - `cargo xtask fixtures check`: every fixture parses with the wire crates' types for its
//!   route and holds no secret-shaped string (CI runs it).
//! - `cargo xtask test [ARGS]`: the README's test command: installs what the tests need
//!   (PostgreSQL's server programs, from Debian's packages, when missing and root), then
//!   `cargo test --workspace [ARGS]`.
//! - `cargo xtask bench [--quick]`: client overhead, scale, polling latency and a batch
//!   under Kolbo's rate limit, against the simulator; writes `docs/benchmarks.md`.
//!   `cargo xtask bench --only instances` (several gateways on one PostgreSQL ledger) and
//!   `cargo xtask bench --only gateway [--without-litellm]` (the latency `imagegen serve`
//!   adds and its requests per second per core, against LiteLLM's proxy, installed from
//!   PyPI into `target/bench-venv`) run apart and print their tables.
//! - `cargo xtask fuzz [--seconds N] [--target NAME] [--seed-only]`: seeds `fuzz/corpus/`
//!   from `fixtures/`, then runs each fuzz target for N seconds (default 60) with
//!   `cargo +nightly fuzz`; prints executions and exec/s per target; fails on a crash.
//! - `cargo xtask soak [--generations N] [--gateways N] [--fault-rate F] [--kill-every N]`:
//!   generations through several `imagegen serve` processes on one PostgreSQL ledger, with
//!   injected faults and `kill -9`, then an audit (lost jobs, double charges, budget
//!   overshoot); ends on its own within `--time-limit`.

// Doc comments double as clap's --help text, where `<out>`-style placeholders are
// meant literally, not as HTML.
#![allow(rustdoc::invalid_html_tags)]
// A command-line tool: its output is meant for stdout.
#![allow(clippy::print_stdout)]

mod bench;
mod fixtures;
mod fuzz;
mod soak;
mod test_run;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use fixtures::session::Api;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Developer tasks for imagegen")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Record or check the HTTP fixtures in fixtures/.
    Fixtures {
        #[command(subcommand)]
        action: FixturesAction,
    },
    /// Install what the tests need (PostgreSQL), then run `cargo test --workspace`.
    Test {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks against the simulator (release mode); writes docs/benchmarks.md.
    Bench(bench::BenchArgs),
    /// Fuzz every parser of network or user data (`fuzz/`, nightly, cargo-fuzz).
    Fuzz(fuzz::FuzzArgs),
    /// Many generations through several gateways with injected faults and kill -9, then
    /// an audit: lost jobs, double charges, budget overshoot (needs PostgreSQL).
    Soak(soak::SoakArgs),
    /// Internal: one scale run in a child process (see `bench`).
    #[command(hide = true)]
    BenchScaleChild(bench::scale::ChildArgs),
}

#[derive(Debug, Subcommand)]
enum FixturesAction {
    /// Run the scenarios and write fixtures/<provider>/sim/ (or live/ with --live).
    Record {
        /// Only this provider.
        #[arg(long, value_enum)]
        provider: Option<ProviderArg>,
        /// Record from the real APIs (KOLBO_API_KEY / KOALA_API_KEY); spends credits.
        #[arg(long)]
        live: bool,
        /// With --live: spend without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Check every fixture: well formed, parses with the wire types, no secrets.
    Check,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProviderArg {
    Kolbo,
    Koala,
}

impl From<ProviderArg> for Api {
    fn from(p: ProviderArg) -> Self {
        match p {
            ProviderArg::Kolbo => Api::Kolbo,
            ProviderArg::Koala => Api::Koala,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Fixtures { action } => fixtures_task(action),
        Task::Test { args } => test_run::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Soak(args) => soak::run(&args),
        Task::BenchScaleChild(args) => bench::scale::child(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs this same command again as `cargo run --release -p xtask -- …`: the benchmarks
/// and the soak measure release code.
fn rerun_in_release(task: &str) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("{task}: running in release mode (cargo run --release -p xtask -- {task} …)");
    let status = std::process::Command::new(cargo)
        .args(["run", "--release", "--quiet", "-p", "xtask", "--"])
        .args(std::env::args().skip(1))
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the release run failed: {status}"))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a Tokio runtime: {e}"))
}

fn fixtures_task(action: FixturesAction) -> Result<(), String> {
    let root = fixtures::fixtures_root();
    match action {
        FixturesAction::Record {
            provider,
            live,
            yes,
        } => {
            let only = provider.map(Api::from);
            let files = if live {
                let options = fixtures::LiveOptions { only, yes };
                runtime()?.block_on(fixtures::record_live(&options))?
            } else {
                runtime()?.block_on(fixtures::record_sim(only))?
            };
            fixtures::write(&root, &files)?;
            for (path, _) in &files {
                println!("wrote fixtures/{}", path.display());
            }
            println!("{} fixtures recorded", files.len());
            Ok(())
        }
        FixturesAction::Check => {
            let (findings, checked) = fixtures::check::check_tree(&root)?;
            if findings.is_empty() {
                println!("fixtures check: {checked} fixtures, all well formed and free of secrets");
                return Ok(());
            }
            for finding in &findings {
                let shown = finding.path.strip_prefix(&root).unwrap_or(&finding.path);
                eprintln!("fixtures/{}:", shown.display());
                for problem in &finding.problems {
                    eprintln!("  - {problem}");
                }
            }
            Err(format!(
                "{} of {checked} fixtures have problems (listed above)",
                findings.len()
            ))
        }
    }
}

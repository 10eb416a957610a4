//! `cargo xtask bench`.
pub(crate) mod scale;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Smaller runs (well under a minute).
    #[arg(long)]
    pub(crate) quick: bool,
}

pub(crate) fn run(_args: &BenchArgs) -> Result<(), String> {
    Err("not yet".into())
}

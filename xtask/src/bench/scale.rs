//! Scale.
/// Options of the child.
#[derive(Debug, clap::Args)]
pub(crate) struct ChildArgs {
    #[arg(long)]
    pub(crate) in_flight: usize,
}

pub(crate) fn child(_args: &ChildArgs) -> Result<(), String> {
    Err("not yet".into())
}

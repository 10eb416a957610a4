//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn a text prompt into image files through Kolbo or KoalaImages, for the fewest credits.
///
/// With no API key set, commands run against a local simulator of both APIs.
#[derive(Debug, Parser)]
#[command(name = "imagegen", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Environment:\n  KOLBO_API_KEY, KOALA_API_KEY      provider keys (a provider is used when its key is set)\n  KOLBO_BASE_URL, KOALA_BASE_URL    API base URLs (e.g. those `imagegen sim` prints)\n  KOALA_PLAN                        basic or professional (unset: unknown)\n  KOLBO_CREDIT_USD, KOALA_CREDIT_USD  what one credit is worth in dollars\n  NO_COLOR                          no colours\n\nExit codes: 0 ok, 2 input rejected before sending, 3 refused by a provider,\n4 generation failed, 5 budget or price cap, 1 anything else."
)]
pub(crate) struct Cli {
    /// Print less (errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate images for a prompt and save them.
    Generate(GenerateArgs),
    /// Show the ranked, explained candidates for a prompt, without spending anything.
    Estimate(RequestArgs),
    /// List the models of the configured providers, with prices.
    Models(ModelsArgs),
    /// Show the credit balance where the provider reports one.
    Credits(JsonArg),
    /// Generate images for many prompts (one per line, or JSON Lines with options).
    Batch(BatchArgs),
    /// Finish every accepted but unfinished job of a journal, without submitting again.
    Resume(ResumeArgs),
    /// Run the local simulator of both APIs in the foreground.
    Sim(SimArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProviderArg {
    Kolbo,
    Koala,
}

impl ProviderArg {
    pub(crate) fn id(self) -> &'static str {
        match self {
            Self::Kolbo => "kolbo",
            Self::Koala => "koala",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct RequestArgs {
    /// What to draw.
    pub(crate) prompt: String,
    /// Number of images.
    #[arg(short = 'n', long, default_value_t = 1)]
    pub(crate) count: u32,
    /// Aspect ratio, such as 16:9 (or square, portrait, landscape).
    #[arg(long, value_name = "RATIO", conflicts_with = "size")]
    pub(crate) aspect: Option<String>,
    /// Pixel size, such as 1024x1024.
    #[arg(long, value_name = "WxH")]
    pub(crate) size: Option<String>,
    /// Style name (photo, illustration, watercolor, anime, …) for providers that take one.
    #[arg(long)]
    pub(crate) style: Option<String>,
    /// Quality: low, medium, high, or a model's own quality name (fast, turbo, …).
    #[arg(long)]
    pub(crate) quality: Option<String>,
    /// Reference image URL (repeatable).
    #[arg(long = "ref", value_name = "URL")]
    pub(crate) refs: Vec<String>,
    /// Use only this provider.
    #[arg(long, value_enum)]
    pub(crate) provider: Option<ProviderArg>,
    /// Use only this model.
    #[arg(long, value_name = "ID")]
    pub(crate) model: Option<String>,
    /// The most credits one image may cost.
    #[arg(long, value_name = "N")]
    pub(crate) max_credits: Option<String>,
    /// The most credits the whole run may spend.
    #[arg(long, value_name = "N")]
    pub(crate) budget: Option<String>,
    /// Do not let the provider rewrite the prompt.
    #[arg(long)]
    pub(crate) no_enhance: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    pub(crate) request: RequestArgs,
    /// Where to save images.
    #[arg(long, value_name = "DIR", default_value = "imagegen-out")]
    pub(crate) out: PathBuf,
    /// Show what would be done and what it would cost, without spending anything.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ModelsArgs {
    /// Only this provider's models.
    #[arg(long, value_enum)]
    pub(crate) provider: Option<ProviderArg>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct JsonArg {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct BatchArgs {
    /// File with one prompt per line, or JSON Lines (`{"prompt": …, "count": …, …}`).
    pub(crate) file: PathBuf,
    /// How many prompts run at once.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// The most credits the whole batch may spend.
    #[arg(long, value_name = "N")]
    pub(crate) budget: Option<String>,
    /// The most credits one image may cost.
    #[arg(long, value_name = "N")]
    pub(crate) max_credits: Option<String>,
    /// Use only this provider.
    #[arg(long, value_enum)]
    pub(crate) provider: Option<ProviderArg>,
    /// Use only this model.
    #[arg(long, value_name = "ID")]
    pub(crate) model: Option<String>,
    /// Journal of paid jobs (default: <out>/imagegen-journal.jsonl).
    #[arg(long, value_name = "PATH")]
    pub(crate) journal: Option<PathBuf>,
    /// Where to save images.
    #[arg(long, value_name = "DIR", default_value = "imagegen-out")]
    pub(crate) out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ResumeArgs {
    /// The journal to finish (default: imagegen-out/imagegen-journal.jsonl).
    #[arg(long, value_name = "PATH")]
    pub(crate) journal: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SimArgs {
    /// Port for the API listener (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    /// Generation-time factor: 1 realistic, 0.1 ten times faster, 0 instant.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) speed: f64,
    /// Print the base URLs and keys as one JSON line.
    #[arg(long)]
    pub(crate) json: bool,
}

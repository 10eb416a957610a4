//! Command-line arguments.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use imagegen::batch::MAX_BATCH_CONCURRENCY;
use imagegen::core::MAX_IMAGES_PER_REQUEST;
use imagegen::ledger::SpendGroup;
use imagegen::ledger::api_keys::KeyPeriod;
use imagegen::{Credits, ImageShape, InvalidInput, ModelId, ProviderId, Quality, RequestOptions};

/// Turn a text prompt into image files through Kolbo or KoalaImages, for the fewest credits.
///
/// With no API key set, commands run against a local simulator of both APIs.
#[derive(Debug, Parser)]
#[command(name = "imagegen", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Environment:\n  KOLBO_API_KEY, KOALA_API_KEY      provider keys (a provider is used when its key is set)\n  KOLBO_BASE_URL, KOALA_BASE_URL    API base URLs (e.g. those `imagegen sim` prints)\n  KOALA_PLAN                        basic or professional (unset: unknown)\n  KOLBO_CREDIT_USD, KOALA_CREDIT_USD  what one credit is worth in dollars\n  NO_COLOR                          no colours\n\nExit codes: 0 ok, 2 input rejected before sending, 3 refused by a provider (key, credits,\nplan, rate limit), 4 generation failed after acceptance, 5 budget or price cap,\n1 anything else (such as a host that cannot be reached)."
)]
pub(crate) struct Cli {
    /// Print less (errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// The ledger of paid jobs, images and spend: a SQLite file path, `sqlite://PATH` or
    /// `postgres://…` (default: imagegen/ledger.sqlite3 in the user's data directory).
    #[arg(long, global = true, env = "IMAGEGEN_DATABASE_URL", value_name = "URL")]
    pub(crate) db: Option<String>,
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
    /// List the Kolbo account's moodboards (for --moodboard).
    Moodboards(JsonArg),
    /// List the Kolbo account's visual DNAs (for --visual-dna).
    VisualDna(JsonArg),
    /// Generate images for many prompts (one per line, or JSON Lines with options).
    Batch(BatchArgs),
    /// Finish every paid job the ledger holds open, from any run, without submitting again.
    Resume(ResumeArgs),
    /// Run the local simulator of both APIs in the foreground.
    Sim(SimArgs),
    /// Serve the OpenAI Images API (POST /v1/images/generations, GET /v1/models) in the
    /// foreground, until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Serve imagegen's tools to an AI agent over MCP on stdin/stdout (generate_image,
    /// estimate_cost, list_models, get_generation, list_history); logs go to stderr.
    Mcp(McpArgs),
    /// List past generations from the ledger, newest first.
    History(HistoryArgs),
    /// Sum what the ledger shows was charged, by provider, model or day.
    Spend(SpendArgs),
    /// Create, list and revoke the keys clients present to the gateway (`imagegen serve`).
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// The providers the command line can configure (from their keys).
const PROVIDERS: [&str; 2] = ["kolbo", "koala"];

/// `--provider`: one of the providers the CLI knows, typed as the core's [`ProviderId`].
fn provider_parser() -> impl TypedValueParser<Value = ProviderId> {
    PossibleValuesParser::new(PROVIDERS).try_map(|name| name.parse::<ProviderId>())
}

/// `--model`: through the core's `FromStr` (trimmed, never empty); clap would otherwise
/// take the text as it is through `From<String>`.
fn parse_model(text: &str) -> Result<ModelId, InvalidInput> {
    text.parse()
}

/// `--count`: 1 to the core's most images per request.
fn count_parser() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_IMAGES_PER_REQUEST))
}

/// `--concurrency`: 1 to the library's most prompts at once.
fn parse_concurrency(text: &str) -> Result<usize, String> {
    let out_of_range =
        || format!("`{text}`: run between 1 and {MAX_BATCH_CONCURRENCY} prompts at once");
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH_CONCURRENCY).contains(&n) => Ok(n),
        Ok(_) => Err(out_of_range()),
        Err(_) if text.trim().bytes().all(|b| b.is_ascii_digit()) && !text.trim().is_empty() => {
            Err(out_of_range())
        }
        Err(_) => Err(format!(
            "`{text}` is not a number: run between 1 and {MAX_BATCH_CONCURRENCY} prompts at once"
        )),
    }
}

/// `--aspect`: a ratio or an orientation word (a pixel size belongs to `--size`).
fn parse_aspect(text: &str) -> Result<ImageShape, String> {
    match text.parse::<ImageShape>().map_err(|e| e.to_string())? {
        ImageShape::Pixels(d) => Err(format!(
            "`{d}` is a pixel size: use --size for it, or a ratio such as 16:9"
        )),
        shape => Ok(shape),
    }
}

/// `--size`: pixel dimensions (a ratio belongs to `--aspect`).
fn parse_size(text: &str) -> Result<ImageShape, String> {
    match text.parse::<ImageShape>().map_err(|e| e.to_string())? {
        shape @ ImageShape::Pixels(_) => Ok(shape),
        shape => Err(format!(
            "`{shape}` is not a pixel size: use WIDTHxHEIGHT such as 1024x1024, or --aspect for ratios"
        )),
    }
}

/// `--max-credits`, `--budget`: a positive amount of credits.
fn parse_positive_credits(text: &str) -> Result<Credits, String> {
    let credits = text
        .parse::<Credits>()
        .map_err(|e| format!("{e}: write it like 10 or 2.5"))?;
    if credits.is_zero() {
        return Err("zero credits allows nothing: give a positive amount".to_owned());
    }
    Ok(credits)
}

#[derive(Debug, Clone, Args)]
pub(crate) struct RequestArgs {
    /// What to draw.
    pub(crate) prompt: String,
    /// Number of images (1 to 64).
    #[arg(short = 'n', long, default_value_t = 1, value_parser = count_parser())]
    pub(crate) count: u32,
    /// Aspect ratio, such as 16:9 (or square, portrait, landscape).
    #[arg(long, value_name = "RATIO", conflicts_with = "size", value_parser = parse_aspect)]
    pub(crate) aspect: Option<ImageShape>,
    /// Pixel size, such as 1024x1024.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub(crate) size: Option<ImageShape>,
    /// Style name (photo, illustration, watercolor, anime, …) for providers that take one.
    #[arg(long)]
    pub(crate) style: Option<String>,
    /// Quality: low, medium, high, or a model's own quality name (fast, turbo, …).
    #[arg(long)]
    pub(crate) quality: Option<Quality>,
    /// Resolution tier (1K, 2K, 4K) for models priced by resolution.
    #[arg(long, value_name = "TIER")]
    pub(crate) resolution: Option<String>,
    /// Reference image URL (repeatable).
    #[arg(long = "ref", value_name = "URL")]
    pub(crate) refs: Vec<String>,
    /// Use only this provider.
    #[arg(long, value_name = "PROVIDER", value_parser = provider_parser())]
    pub(crate) provider: Option<ProviderId>,
    /// Use only this model; `auto` lets the provider pick (Kolbo's Smart Select, which
    /// reserves Kolbo's highest price and charges what Kolbo reports).
    #[arg(long, value_name = "ID", value_parser = parse_model)]
    pub(crate) model: Option<ModelId>,
    /// The most credits one image may cost.
    #[arg(long, value_name = "N", value_parser = parse_positive_credits)]
    pub(crate) max_credits: Option<Credits>,
    /// The most credits the whole run may spend.
    #[arg(long, value_name = "N", value_parser = parse_positive_credits)]
    pub(crate) budget: Option<Credits>,
    /// Do not let the provider rewrite the prompt.
    #[arg(long)]
    pub(crate) no_enhance: bool,
    /// Use a model whose nearest shape is far from the one asked (the aspect ratio changes
    /// by more than 10 %); by default such models are skipped, and naming one is an error.
    #[arg(long)]
    pub(crate) allow_reshape: bool,
    /// Apply this Kolbo moodboard (`imagegen moodboards` lists them); Kolbo only.
    #[arg(long = "moodboard", value_name = "ID")]
    pub(crate) moodboard: Option<String>,
    /// Use this Kolbo visual DNA (repeatable, at most 3; `imagegen visual-dna` lists
    /// them); Kolbo only.
    #[arg(long = "visual-dna", value_name = "ID")]
    pub(crate) visual_dna: Vec<String>,
    /// Have KoalaImages write alt text for each image; KoalaImages only.
    #[arg(long)]
    pub(crate) alt_text: bool,
    /// Keep gpt-image-2's lossless PNG at KoalaImages; KoalaImages only.
    #[arg(long)]
    pub(crate) preserve_original: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

impl RequestArgs {
    /// The typed options of this request (the run budget is not one: it is the run's).
    pub(crate) fn options(&self) -> RequestOptions {
        let mut options = RequestOptions::new(self.prompt.clone());
        options.count = Some(self.count);
        options.aspect = self.aspect;
        options.size = self.size;
        options.style.clone_from(&self.style);
        options.quality.clone_from(&self.quality);
        options.resolution.clone_from(&self.resolution);
        options.refs.clone_from(&self.refs);
        options.provider.clone_from(&self.provider);
        options.model.clone_from(&self.model);
        options.max_credits = self.max_credits;
        options.no_enhance = self.no_enhance;
        options.allow_reshape = self.allow_reshape;
        options.moodboard_id.clone_from(&self.moodboard);
        options.visual_dna_ids.clone_from(&self.visual_dna);
        options.alt_text = self.alt_text;
        options.preserve_original = self.preserve_original;
        options
    }
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
    #[arg(long, value_name = "PROVIDER", value_parser = provider_parser())]
    pub(crate) provider: Option<ProviderId>,
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
    /// File with one prompt per line, or JSON Lines (`{"prompt": …, "count": …, …}`); at
    /// most 64 MiB and 10,000 prompts.
    pub(crate) file: PathBuf,
    /// How many prompts run at once (1 to 32).
    #[arg(long, default_value_t = 4, value_parser = parse_concurrency)]
    pub(crate) concurrency: usize,
    /// The most credits the whole batch may spend.
    #[arg(long, value_name = "N", value_parser = parse_positive_credits)]
    pub(crate) budget: Option<Credits>,
    /// The most credits one image may cost (a line's own `max_credits` can only lower it).
    #[arg(long, value_name = "N", value_parser = parse_positive_credits)]
    pub(crate) max_credits: Option<Credits>,
    /// Use only this provider (a line naming another one is an error).
    #[arg(long, value_name = "PROVIDER", value_parser = provider_parser())]
    pub(crate) provider: Option<ProviderId>,
    /// Use only this model (a line naming another one is an error).
    #[arg(long, value_name = "ID", value_parser = parse_model)]
    pub(crate) model: Option<ModelId>,
    /// Let every line use a model whose nearest shape is far from the one asked.
    #[arg(long)]
    pub(crate) allow_reshape: bool,
    /// Generate again the lines the ledger shows as already saved into this directory
    /// (they are skipped otherwise, so running a file again pays only for what is new).
    #[arg(long)]
    pub(crate) rerun: bool,
    /// Where to save images.
    #[arg(long, value_name = "DIR", default_value = "imagegen-out")]
    pub(crate) out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ResumeArgs {
    /// Import this JSON Lines journal (written by an earlier version) into the ledger
    /// first; its open jobs are then finished with every other.
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
    /// Make about this fraction of every route's calls fail, with every kind of fault
    /// the simulator has (0.05: 5 %; see `FaultMix`).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, value_parser = parse_fraction)]
    pub(crate) fault_rate: f64,
    /// Print the base URLs and keys as one JSON line.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--fault-rate`: a number from 0 to 1.
fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "`{text}`: give a fraction from 0 to 1, such as 0.05 for 5 %"
        )),
    }
}

/// `--public-url`: an http(s) URL.
fn parse_public_url(text: &str) -> Result<imagegen_server::Url, String> {
    text.parse::<imagegen_server::Url>().map_err(|e| {
        format!("`{text}` is not a URL ({e}): use one like https://images.example.org/")
    })
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0 picks a free one). Without gateway keys in the
    /// ledger (`imagegen keys create`), only a loopback address is allowed.
    #[arg(long, value_name = "ADDR", default_value_t = imagegen_server::DEFAULT_LISTEN)]
    pub(crate) listen: std::net::SocketAddr,
    /// Where to keep generated images (default: imagegen/images in the user's data
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) image_dir: Option<PathBuf>,
    /// The URL clients reach the gateway at, for the image URLs it returns (default:
    /// http:// and the Host the request named).
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub(crate) public_url: Option<imagegen_server::Url>,
    /// The most generations one caller (a gateway key, or this machine's callers without
    /// one) runs at once; one more is refused with 429 `too_many_requests_in_flight` and
    /// `Retry-After: 1`, nothing sent or charged.
    #[arg(
        long,
        value_name = "N",
        default_value_t = imagegen_server::DEFAULT_MAX_IN_FLIGHT_PER_KEY,
        value_parser = in_flight_parser(),
    )]
    pub(crate) max_in_flight_per_key: usize,
    /// Kolbo's generation limit for this account, `N/WINDOW` (`10/60s`, `10/min`,
    /// `600/1h`; default the documented 10 a minute). Every gateway on the same `--db`
    /// paces against it together.
    #[arg(long, value_name = "N/WINDOW", value_parser = parse_rate_limit)]
    pub(crate) kolbo_rate_limit: Option<RateLimit>,
    /// How long a gateway's lease on the jobs it waits on lasts, in seconds, unless it
    /// renews it (it does, a third of the way through). When a gateway dies, another on
    /// the same `--db` finishes its open jobs once their lease ran out.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) job_lease: u64,
    /// How long an MCP tool call at /mcp waits for its images, in seconds (fractions
    /// allowed; default 120); past it, the call answers `pending` with the paid job ids,
    /// to fetch with `get_generation`.
    #[arg(long, value_name = "SECS", value_parser = parse_wait_limit)]
    pub(crate) mcp_wait_limit: Option<std::time::Duration>,
}

/// `--wait-limit`: a positive number of seconds (fractions allowed).
fn parse_wait_limit(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "`{text}`: give a number of seconds above 0 (at most a day), such as 120 or 0.5"
        )),
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct McpArgs {
    /// The most credits this server may spend in its life (every call's worst case is
    /// reserved in the ledger before anything is sent; a call that does not fit is
    /// refused with what is left and what it needs).
    #[arg(long, value_name = "CREDITS", value_parser = parse_positive_credits)]
    pub(crate) budget: Option<Credits>,
    /// Where to save images (default: imagegen/mcp-out in the user's data directory; a
    /// temporary folder on the built-in simulator without --db).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// The longest one tool call waits for its images, in seconds; past it the call
    /// answers "pending" with the paid job ids, which get_generation fetches later.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_wait_limit)]
    pub(crate) wait_limit: std::time::Duration,
}

/// `--kolbo-rate-limit`: at most `limit` generation starts per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    pub(crate) limit: u32,
    pub(crate) window: std::time::Duration,
}

/// `N/WINDOW`: `N` at least 1; `WINDOW` a number of seconds with `s`, `m` or `h`, or
/// `sec`, `min`, `hour` alone (one of them).
fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    let shape = || format!("`{text}` is not a rate limit: write N/WINDOW, like 10/60s or 10/min");
    let (limit, window) = text.trim().split_once('/').ok_or_else(shape)?;
    let limit: u32 = limit.trim().parse().map_err(|_| shape())?;
    if limit == 0 {
        return Err(format!("`{text}`: the limit must be at least 1"));
    }
    let window = window.trim();
    let (number, unit) = match window.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => window.split_at(at),
        None => (window, "s"),
    };
    let count: u64 = if number.is_empty() {
        1
    } else {
        number.parse().map_err(|_| shape())?
    };
    let seconds = match unit {
        "s" | "sec" => 1,
        "m" | "min" => 60,
        "h" | "hour" => 3600,
        _ => return Err(shape()),
    };
    let secs = count.saturating_mul(seconds);
    if secs == 0 || secs > 86_400 {
        return Err(format!("`{text}`: the window must be 1 s to 1 day"));
    }
    Ok(RateLimit {
        limit,
        window: std::time::Duration::from_secs(secs),
    })
}

/// `--max-in-flight-per-key`: at least one generation.
fn in_flight_parser() -> impl TypedValueParser<Value = usize> {
    clap::value_parser!(u32)
        .range(1..)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// `--limit`: at least one generation.
fn limit_parser() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(1..)
}

#[derive(Debug, Clone, Args)]
pub(crate) struct HistoryArgs {
    /// Show at most this many generations.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = limit_parser())]
    pub(crate) limit: u32,
    /// Only generations whose prompt contains this text (ignoring ASCII case).
    #[arg(long, value_name = "TEXT")]
    pub(crate) search: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--by`: how `spend` groups charges, typed as the ledger's [`SpendGroup`].
fn spend_group_parser() -> impl TypedValueParser<Value = SpendGroup> {
    PossibleValuesParser::new(["provider", "model", "day", "provider-day"]).map(|name| {
        match name.as_str() {
            "model" => SpendGroup::Model,
            "day" => SpendGroup::Day,
            "provider-day" => SpendGroup::ProviderDay,
            _ => SpendGroup::Provider,
        }
    })
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SpendArgs {
    /// Group by provider, model (per provider), UTC day, or provider and day.
    #[arg(long, value_name = "GROUP", default_value = "provider", value_parser = spend_group_parser())]
    pub(crate) by: SpendGroup,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What `imagegen keys` does.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a gateway key and print it once on stdout (the ledger keeps only its hash).
    Create(KeysCreateArgs),
    /// List the gateway keys: name, prefix, budget, spend this period (never the keys).
    List(JsonArg),
    /// Revoke a gateway key, by its name, its prefix (igk_ and 6 hex digits) or the key.
    Revoke(KeysRevokeArgs),
}

/// `--period`: typed as the ledger's [`KeyPeriod`].
fn key_period_parser() -> impl TypedValueParser<Value = KeyPeriod> {
    PossibleValuesParser::new(["day", "month", "total"]).try_map(|name| name.parse::<KeyPeriod>())
}

#[derive(Debug, Clone, Args)]
pub(crate) struct KeysCreateArgs {
    /// The key's name (unique among live keys).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: String,
    /// The most credits the key may spend per period (default: unlimited, still counted).
    #[arg(long, value_name = "CREDITS", value_parser = parse_positive_credits)]
    pub(crate) budget: Option<Credits>,
    /// The period the budget counts over, in UTC (default: month with --budget, else
    /// total).
    #[arg(long, value_name = "PERIOD", value_parser = key_period_parser())]
    pub(crate) period: Option<KeyPeriod>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct KeysRevokeArgs {
    /// The key's name, its prefix (igk_ and 6 hex digits) or the whole key.
    #[arg(value_name = "NAME_OR_PREFIX")]
    pub(crate) key: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([&["imagegen"], args].concat())
    }

    fn request(args: &[&str]) -> RequestArgs {
        match parse(&[&["estimate", "a fox"], args].concat())
            .unwrap()
            .command
        {
            Command::Estimate(request) => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_are_typed_at_the_edge() {
        let args = request(&[
            "-n",
            "2",
            "--aspect",
            "16:9",
            "--quality",
            "turbo",
            "--resolution",
            "2k",
            "--provider",
            "koala",
            "--model",
            "gpt-image-2",
            "--max-credits",
            "2.5",
            "--allow-reshape",
        ]);
        let (request, call) = args.options().into_parts().unwrap();
        assert_eq!(request.count(), 2);
        assert_eq!(request.shape(), Some("16:9".parse().unwrap()));
        assert_eq!(request.quality(), Some(&Quality::Named("turbo".into())));
        assert_eq!(request.resolution(), Some("2K"));
        assert_eq!(call.provider, Some(ProviderId::new("koala")));
        assert_eq!(call.model, Some(ModelId::new("gpt-image-2")));
        assert_eq!(call.max_credits_per_image, Some("2.5".parse().unwrap()));
        assert!(call.allow_reshape);
        let (request, call) = request_default().options().into_parts().unwrap();
        assert_eq!(request.count(), 1);
        assert!(call.is_empty());
    }

    #[test]
    fn model_auto_and_provider_options() {
        let (_, call) = request(&["--model", "auto"])
            .options()
            .into_parts()
            .unwrap();
        assert!(call.provider_picks);
        assert_eq!(call.model, None);
        let (request_kolbo, _) = request(&[
            "--moodboard",
            "mb-1",
            "--visual-dna",
            "d1",
            "--visual-dna",
            "d2",
        ])
        .options()
        .into_parts()
        .unwrap();
        assert_eq!(
            request_kolbo.extras().raw(&ProviderId::new("kolbo")),
            Some(&serde_json::json!({"moodboard_id": "mb-1", "visual_dna_ids": ["d1", "d2"]}))
        );
        let (request_koala, _) = request(&["--alt-text", "--preserve-original"])
            .options()
            .into_parts()
            .unwrap();
        assert_eq!(
            request_koala.extras().raw(&ProviderId::new("koala")),
            Some(&serde_json::json!({"generate_alt_text": true, "preserve_original": true}))
        );
        let four = request(&[
            "--visual-dna",
            "a",
            "--visual-dna",
            "b",
            "--visual-dna",
            "c",
            "--visual-dna",
            "d",
        ])
        .options()
        .into_parts()
        .unwrap_err();
        assert_eq!(four.field(), "visual_dna_ids");
    }

    fn request_default() -> RequestArgs {
        request(&[])
    }

    #[test]
    fn a_bad_value_is_a_usage_error_naming_its_flag() {
        for (args, flag) in [
            (&["--aspect", "banana"][..], "--aspect"),
            (&["--aspect", "1024x1024"], "--aspect"),
            (&["--size", "16:9"], "--size"),
            (&["--quality", " "], "--quality"),
            (&["--provider", "openai"], "--provider"),
            (&["--model", " "], "--model"),
            (&["--max-credits", "cheap"], "--max-credits"),
            (&["--budget", "0"], "--budget"),
            (&["-n", "0"], "--count"),
            (&["-n", "65"], "--count"),
            (&["--aspect", "16:9", "--size", "1024x1024"], "--aspect"),
        ] {
            let err = parse(&[&["generate", "a fox"], args].concat()).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn concurrency_is_bounded_at_the_edge() {
        for bad in [
            "0",
            "33",
            "1000",
            "99999999999999999999999",
            "-1",
            "four",
            "",
        ] {
            let flag = format!("--concurrency={bad}");
            let err = parse(&["batch", "p.txt", &flag]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            let text = err.to_string();
            assert!(text.contains("--concurrency"), "{bad}: {text}");
            assert!(text.contains("between 1 and 32"), "{bad}: {text}");
        }
        for (good, n) in [("1", 1), ("32", 32)] {
            match parse(&["batch", "p.txt", "--concurrency", good])
                .unwrap()
                .command
            {
                Command::Batch(args) => assert_eq!(args.concurrency, n),
                other => panic!("{other:?}"),
            }
        }
        // The help states the documented limits.
        assert_eq!(
            (
                MAX_BATCH_CONCURRENCY,
                imagegen::batch::MAX_BATCH_PROMPTS,
                crate::commands::batch::MAX_BATCH_FILE_BYTES
            ),
            (32, 10_000, 64 * 1024 * 1024)
        );
    }
}

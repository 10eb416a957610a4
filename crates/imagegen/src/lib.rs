//! # imagegen
//!
//! Turn a text prompt into image files through paid image-generation APIs (Kolbo and
//! KoalaImages), choosing the provider and model that does the job for the fewest credits,
//! and never losing an image that was paid for.
//!
//! This is the crate most programs depend on. It puts the pieces together behind one
//! [`Client`]:
//!
//! - **Configuration** from the environment ([`ClientConfig`]: `KOLBO_API_KEY`,
//!   `KOALA_API_KEY`, `KOLBO_BASE_URL`, `KOALA_BASE_URL`, `KOALA_PLAN`,
//!   `KOLBO_CREDIT_USD`, `KOALA_CREDIT_USD`) or a [`ClientBuilder`]. A provider is used
//!   when its key is set; keys are secrets that never reach a log, an error or an image
//!   host.
//! - **Routing** by the [`imagegen_router`]: every model of every provider is judged for
//!   the request ([`Client::estimate`] explains each one), the cheapest capable one is
//!   tried first, and a provider that refuses without charging (out of credits, plan, rate
//!   limit) hands over to the next. Price caps and a run [budget](RoutingPolicy::run_budget)
//!   are reserved before anything is sent, so they are never exceeded.
//! - **Images on disk**: [`Generation::save`] downloads with bounded concurrency and no
//!   credentials, and writes `<prompt-slug>-<n>.<ext>` (never overwriting) with a JSON
//!   [`Sidecar`] saying what was asked, the [`CallPlan`] sent, where the image came from
//!   and what it cost.
//! - **Nothing paid for is lost**: [`Client::generate_to_dir`] records each accepted job
//!   in a [`job_log::JobLog`] before waiting for it (the [`ledger_log::LedgerLog`] on the
//!   `imagegen-ledger` store, SQLite or PostgreSQL, or a JSON Lines [`journal`]), saves
//!   whatever was delivered even when a later step fails, and [`Client::resume`] finishes
//!   open jobs after a crash by polling, never by submitting again. [`Client::batch`] runs
//!   many prompts under one budget.
//!
//! ## Example
//!
//! Without an API key, `Client::simulated` (feature `simulator`) runs the same code against
//! a simulator of both APIs started in this process (same clients, same HTTP, real images):
//!
#![cfg_attr(feature = "simulator", doc = "```")]
#![cfg_attr(not(feature = "simulator"), doc = "```ignore")]
//! use imagegen::{Client, GenerationRequest};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), imagegen::Error> {
//! let client = match Client::from_env() {
//!     Ok(client) => client,
//!     Err(imagegen::Error::NoProvider) => Client::simulated().await?,
//!     Err(other) => return Err(other),
//! };
//!
//! let request = GenerationRequest::builder("a lighthouse at dusk, watercolor")
//!     .shape("16:9".parse().map_err(|e| imagegen::InvalidInput::new("aspect", format!("{e}")))?)
//!     .build()?;
//!
//! // What would it cost, and where? Nothing is spent.
//! let estimate = client.estimate(&request).await?;
//! println!("{estimate}");
//!
//! // Generate on the cheapest capable model, then save with sidecars.
//! let generation = client.generate(&request).await?;
//! println!("{} credits: {}", generation.credits_charged, generation.route_summary());
//! let dir = std::env::temp_dir().join("imagegen-doc-example");
//! for saved in generation.save(&dir).await? {
//!     println!("{} {}x{:?}", saved.path.display(), saved.width.unwrap_or(0), saved.height);
//! }
//! # Ok(()) }
//! ```
//!
//! More in `examples/`: one prompt, the cheapest of both providers under a price cap, and
//! a batch with a budget.
//!
//! ## Crates underneath
//!
//! Re-exported for when you need them: [`core`] (the provider-neutral types),
//! [`router`], [`kolbo_api`] and [`koala_api`] (each provider's full API, for what the
//! neutral request does not cover: Kolbo moodboards and visual DNA, KoalaImages alt text).
//!
//! ## Features
//!
//! - `simulator` (off by default, so an SDK user's build carries no server):
//!   `Client::simulated` and `Client::with_simulator`, through the `imagegen-sim` crate.
//!   The `imagegen` CLI turns it on for its keyless mode.

pub mod batch;
pub mod client;
pub mod config;
pub mod error;
mod gate;
pub mod generation;
pub mod job_log;
pub mod journal;
pub mod layout;
pub mod ledger_log;
pub mod ledger_window;
pub mod naming;
mod pacing;
pub mod progress;
pub mod request_options;
pub mod resume;
pub mod run;

pub use batch::{BatchItem, BatchOptions, BatchReport, parse_batch};
#[cfg(feature = "simulator")]
pub use client::SIMULATED_SPEED;
pub use client::{Client, ClientBuilder, GenerateOptions};
pub use config::{ClientConfig, ConfigError};
pub use error::{Error, ErrorKind};
pub use generation::{Asked, GeneratedImage, Generation, ImageData, SavedImage, Sidecar};
pub use journal::Journal;
pub use request_options::RequestOptions;
pub use resume::ResumeReport;
pub use run::RunReport;

pub use imagegen_core::{
    AspectRatio, Balance, CallPlan, CreditWorth, Credits, Dimensions, GenerationRequest,
    GenerationRequestBuilder, ImageShape, InvalidInput, JobHandle, JobState, ModelEntry, ModelId,
    NoProgress, PlanName, ProgressEvent, ProgressSink, ProviderId, Quality, Usd,
};
pub use imagegen_router::{
    Attempt, AttemptOutcome, BudgetStatus, CallOptions, Candidate, Comparison, Estimate, Exclusion,
    JobPlan, MergedCatalog, Preference, RouteError, RoutingPolicy,
};

/// The provider-neutral vocabulary (`imagegen-core`).
pub use imagegen_core as core;
/// The shared HTTP transport and the credential-free image downloader (`imagegen-http`).
pub use imagegen_http as http;
pub use imagegen_http::{DownloadError, DownloadedImage, ImageDownloader, ImageFormat};
/// The store of paid jobs, images, spend and limits (`imagegen-ledger`).
pub use imagegen_ledger as ledger;
/// Routing across providers (`imagegen-router`).
pub use imagegen_router as router;
/// The simulator of both APIs (`imagegen-sim`), for tests and demos.
#[cfg(feature = "simulator")]
pub use imagegen_sim as sim;
pub use koala_api;
pub use kolbo_api;

//! Kolbo's image-generation API for Rust: exact wire types, a client that keeps the key
//! safe and never pays twice, a poller that never re-submits, and the
//! [`imagegen_core::Provider`] implementation.
//!
//! Kolbo (`https://api.kolbo.ai/api`) starts a generation with
//! `POST /v1/generate/image`, charges it at once, and is polled at
//! `GET /v1/generate/{id}/status` until the images are ready. This crate owns that
//! protocol:
//!
//! | module | what it owns |
//! |---|---|
//! | [`types`] | every request and response body of the image routes, one file per route family: `generate` (request, accepted answer), `status` (status, states, results, cancel), `models` (catalog, pricing fields), `account` (credits), `moodboards`, `visual_dna`, `error` (the error envelope); all re-exported as `kolbo_api::types::X` |
//! | `decode` (private) | how every answer body becomes a type: plain serde straight into the types first (camelCase via `#[serde(alias)]`), a lenient second pass only when that fails (a key sent twice, a number out of range, both spellings of one key, then each member serde names as unreadable left out: a bad optional field becomes absent), the error-envelope probe, and the generation id salvaged from a cut-off accepted body |
//! | [`client`] | [`KolboClient`]: one method per route over the shared [`imagegen_http`] transport; `X-API-Key` as a sensitive header, redirects refused, GETs retried by the shared loop, POSTs sent once |
//! | [`pace`] | [`SubmitPacer`]: an opt-in sliding-window pacer that keeps generation starts within Kolbo's 10 per minute, so batches see no 429 |
//! | [`poll`] | [`PollSchedule`](poll::PollSchedule) and [`KolboClient::wait_for_generation`]: polling on an injected clock, transient failures retried, a deadline that keeps the id |
//! | [`request_body`] | [`request_body()`](request_body::request_body): the body a router's [`CallPlan`] makes, translated field by field, deciding nothing |
//! | [`validate`] | local checks of a body (documented limits; with a model, its catalog entry): invalid requests are never sent |
//! | [`extras`] | [`KolboOptions`](extras::KolboOptions): Kolbo's options object (moodboard, visual DNA, undocumented fields) |
//! | [`provider`] | [`KolboProvider`]: `imagegen_core::Provider` with a cached, priced catalog, plan submission, options, balance |
//! | [`endpoint`] | route URLs, and a tolerant reader for the `poll_url` Kolbo returns |
//! | [`error`] | [`KolboError`], mapped into [`imagegen_core::Error`] by Kolbo's `code` first, the HTTP status second |
//!
//! Money rules this crate keeps:
//! - Kolbo has no idempotency key, so `POST /v1/generate/image` is sent once and never
//!   repeated by this crate: a 429 is returned as a rate-limit refusal with its
//!   `Retry-After` (the router waits it out: retries happen in one layer only), a failed
//!   connect as [`Error::NotDelivered`], and a timeout
//!   after sending as [`Error::MaybeDelivered`].
//! - Once accepted, a job is only polled. Running out of time gives
//!   [`Error::StillRunning`] with the id.
//! - If an accepted generation's body arrives cut short, the id is recovered from what
//!   did arrive.
//!
//! # Example: this crate alone
//!
//! The common path (submit one planned call, wait for it, download the images) needs no
//! other imagegen crate: what its signatures use is re-exported here ([`CallPlan`],
//! [`ModelChoice`], [`Prompt`], the [`Provider`] trait, [`NoProgress`], [`JobOutput`],
//! [`Error`], the credential-free [`ImageDownloader`], …), and the two crates under it are
//! re-exported whole as [`imagegen_core`] and [`imagegen_http`]. With `kolbo-api` and
//! `tokio` (features `rt`, `macros`) in `Cargo.toml`:
//!
//! ```no_run
//! use kolbo_api::{
//!     CallPlan, ImageDownloader, KolboClient, KolboProvider, ModelChoice, NoProgress, Prompt,
//!     Provider,
//! };
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = KolboClient::builder(std::env::var("KOLBO_API_KEY")?)
//!         .base_url("https://api.kolbo.ai/api") // the default; a proxy or a simulator here
//!         .build()?;
//!     let kolbo = KolboProvider::new(client);
//!
//!     // What does each model cost per image?
//!     for model in kolbo.catalog().await? {
//!         println!("{}: {} credits", model.id, model.price.per_image);
//!     }
//!
//!     // One planned call (the router makes these): Smart Select picks the model, the shape
//!     // is sent as it is. `submit` sends one paid POST, never repeated; `wait` only polls.
//!     let prompt = Prompt::new("a lighthouse at dusk")?;
//!     let call = CallPlan::new(kolbo_api::PROVIDER_ID, ModelChoice::ProviderDefault, prompt, 1)
//!         .with_shape("16:9".parse()?);
//!     let job = kolbo.submit(&call).await?;
//!     let output = kolbo.wait(&job, &NoProgress).await?;
//!
//!     // The images are CDN URLs: fetch them without the API key.
//!     let downloader = ImageDownloader::new()?;
//!     for (i, image) in output.images.iter().enumerate() {
//!         let saved = downloader
//!             .download_with_extension(&image.url, format!("lighthouse-{i}").as_ref())
//!             .await?;
//!         println!("{:?}: {} bytes", saved.path, saved.bytes);
//!     }
//!     Ok(())
//! }
//! ```

pub mod client;
pub mod endpoint;
pub mod error;
pub mod extras;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod pace;
pub mod poll;
pub mod provider;
pub mod request_body;
pub mod types;
pub mod validate;

mod decode;

pub use client::{DEFAULT_MAX_OPEN_REQUESTS, KolboClient, KolboClientBuilder};
pub use error::KolboError;
/// How GETs are retried ([`KolboClientBuilder::retry_policy`]); the shared transport's
/// policy. POSTs are never retried.
pub use imagegen_http::RetryPolicy;
pub use pace::{SharedTake, SharedWindow, SharedWindowError, SubmitPacer};
pub use provider::KolboProvider;

// What the public signatures use, so that this crate works as the only dependency.
/// The provider-neutral vocabulary under this crate, whole.
pub use imagegen_core;
#[doc(no_inline)]
pub use imagegen_core::{
    Balance, CallPlan, CancelOutcome, Clock, CreditWorth, Credits, Error, ImageRef, ImageShape,
    InvalidInput, JobHandle, JobOutput, JobState, ManualClock, ModelChoice, ModelEntry, ModelId,
    NoProgress, Price, ProgressEvent, ProgressSink, Prompt, Provider, ProviderExtras, ProviderId,
    SharedClock, StyleDelivery, TokioClock,
};
/// The shared HTTP transport under this crate, whole.
pub use imagegen_http;
#[doc(no_inline)]
pub use imagegen_http::{DownloadError, DownloadPolicy, DownloadedImage, ImageDownloader};

/// The provider id Kolbo is known by in imagegen (`kolbo`).
pub const PROVIDER_ID: &str = "kolbo";

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

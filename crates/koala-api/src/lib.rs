//! # koala-api
//!
//! The KoalaImages API (`POST https://koala.sh/api/image-generation/`) in Rust: exact wire
//! types, the documented model and price table, local validation so no credit is spent on
//! a request that could only fail, an HTTP client that keeps the API key to itself (over
//! the shared [`imagegen_http`] transport), and an [`imagegen_core::Provider`]
//! implementation.
//!
//! ## What Koala does, and what this crate does about it
//!
//! - **Billing per image.** Every image of every request Koala receives is charged:
//!   gpt-image-2 costs 1 (`fast`), 8 (`medium`) or 20 (`high`) credits, ideogram-3.0 3,
//!   nano-banana-2 5, the deprecated standard 1 and premium 5 ([`ModelSpec`]). The response
//!   carries no cost, so the charge is computed from the table ([`Preflight::credits`]).
//!   The POST is sent once and never retried here, not even after a `429` (returned as
//!   [`ApiErrorKind::RateLimited`] with its `Retry-After`; the router waits it out).
//! - **Plans.** ideogram-3.0, nano-banana-2, premium and gpt-image-2 at `medium`/`high`
//!   need the Professional Plan. Tell the client the plan ([`KoalaPlan`]) and such a
//!   request is refused before sending instead of answered with a `403`.
//! - **Sizes.** 11 pixel sizes, 9 ratio shorthands and `square`/`portrait`/`landscape` are
//!   documented ([`Size`]). Koala's server snaps any size gpt-image-2 is asked for to one of
//!   its five native sizes, so the catalog offers gpt-image-2 exactly those five, and every
//!   other model exactly the documented proportions ([`size`]). Nothing is snapped here.
//! - **URLs before images.** Koala answers at once with URLs that block until the images
//!   exist (usually 8–15 s, rarely hours). [`imagegen_http::ImageDownloader`] waits with a
//!   long read timeout, retries under a deadline, never sends credentials, and decides the
//!   format from the bytes: a `.jpg` URL may serve PNG.
//! - **Errors.** `400/401/402/403/429/500` and everything else map into
//!   [`KoalaError`] and from there into [`imagegen_core::Error`] (see [`error`]).
//!
//! ## Example
//!
//! ```no_run
//! use imagegen_http::ImageDownloader;
//! use koala_api::{ImageGenerationRequest, KoalaClient, KoalaPlan, Model, Quality};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = KoalaClient::builder(std::env::var("KOALA_API_KEY")?)
//!     .plan(KoalaPlan::Professional)
//!     .build()?;
//! let request = ImageGenerationRequest::new("a watercolor fox in the snow")
//!     .with_model(Model::GptImage2)
//!     .with_quality(Quality::Medium)
//!     .with_size("16:9")
//!     .with_num_images(2)
//!     .with_generate_alt_text(true);
//!
//! // What it will cost, before anything is sent.
//! let preflight = client.preflight(&request)?;
//! println!("{} credits", preflight.credits.unwrap_or_default());
//!
//! let generation = client.generate(&request).await?;
//! let downloader = ImageDownloader::new()?;
//! for (i, image) in generation.images.iter().enumerate() {
//!     let url = image.parsed_url().ok_or("Koala sent an unusable URL")?;
//!     // Blocks until the image is ready; writes fox-0.png or fox-0.jpg.
//!     let saved = downloader
//!         .download_with_extension(&url, format!("fox-{i}").as_ref())
//!         .await?;
//!     println!("{:?}: {} bytes, {:?}x{:?}", saved.path, saved.bytes, saved.width, saved.height);
//! }
//! # Ok(()) }
//! ```
//!
//! ## Example: this crate alone, behind the provider-neutral trait
//!
//! [`KoalaProvider`] writes each [`CallPlan`] (the router resolves them) as Koala's body
//! with [`request_body()`], deciding nothing again. That common path (submit one planned
//! call, wait, download the images) needs no other imagegen crate: what its signatures use
//! is re-exported here ([`CallPlan`], [`ModelChoice`], [`Prompt`], the [`Provider`] trait,
//! [`NoProgress`], [`JobOutput`], [`Error`], [`ImageDownloader`], …), and the two crates
//! under it are re-exported whole as [`imagegen_core`] and [`imagegen_http`]. With
//! `koala-api` and `tokio` (features `rt`, `macros`) in `Cargo.toml`:
//!
//! ```no_run
//! use koala_api::{
//!     CallPlan, ImageDownloader, KoalaClient, KoalaPlan, KoalaProvider, ModelChoice,
//!     NoProgress, Prompt, Provider,
//! };
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = KoalaClient::builder(std::env::var("KOALA_API_KEY")?)
//!         .base_url("https://koala.sh/api") // the default; a proxy or a simulator here
//!         .plan(KoalaPlan::Basic)
//!         .build()?;
//!     let koala = KoalaProvider::new(client);
//!
//!     // One planned call: gpt-image-2 at its `fast` quality (1 credit an image).
//!     let prompt = Prompt::new("a watercolor fox in the snow")?;
//!     let call = CallPlan::new(koala_api::PROVIDER_ID, ModelChoice::Exact("gpt-image-2".into()), prompt, 2)
//!         .with_shape("1:1".parse()?)
//!         .with_quality("fast");
//!     // One POST, never repeated; Koala answers with the URLs at once, so `wait` reads
//!     // them out of the handle.
//!     let job = koala.submit(&call).await?;
//!     let output = koala.wait(&job, &NoProgress).await?;
//!
//!     // Each URL blocks until its image exists: the downloader waits, without the key.
//!     let downloader = ImageDownloader::new()?;
//!     for (i, image) in output.images.iter().enumerate() {
//!         let saved = downloader
//!             .download_with_extension(&image.url, format!("fox-{i}").as_ref())
//!             .await?;
//!         println!("{:?}: {} bytes", saved.path, saved.bytes);
//!     }
//!     Ok(())
//! }
//! ```

pub mod client;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod models;
pub mod options;
pub mod plan;
pub mod provider;
pub mod request_body;
pub mod size;
pub mod types;
pub mod validate;

pub use client::{Generation, KoalaClient, KoalaClientBuilder};
pub use error::{ApiErrorKind, KoalaError};
pub use models::{ModelSpec, QualitySpec};
pub use options::KoalaOptions;
pub use plan::KoalaPlan;
pub use provider::{KoalaJobState, KoalaProvider};
pub use request_body::request_body;
pub use types::{
    EnhancePrompt, GeneratedImage, ImageGenerationRequest, Model, Quality, Size, Style,
};
pub use validate::{InvalidRequest, Preflight, validate};

// What the public signatures use, so that this crate works as the only dependency.
// (`Quality` here is Koala's own; the provider-neutral one is `imagegen_core::Quality`.)
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

/// The provider id: `koala`.
pub const PROVIDER_ID: &str = "koala";

/// The `User-Agent` this crate's HTTP clients send.
pub(crate) const USER_AGENT: &str = concat!("imagegen-koala-api/", env!("CARGO_PKG_VERSION"));

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

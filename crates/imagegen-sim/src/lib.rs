//! A faithful local simulator of the Kolbo and KoalaImages image-generation APIs.
//!
//! `imagegen-sim` is an [axum] server on `127.0.0.1` that speaks both providers' HTTP
//! APIs closely enough that the real clients run against it unchanged: the CLI's keyless
//! demo mode, the end-to-end tests and the benchmarks all use it. It writes every JSON
//! body with its own types (never the wire crates'), so a mistake in a client cannot hide
//! behind the same mistake here; conformance tests compare what it serves with the
//! documented exchanges in the workspace's `fixtures/`.
//!
//! What it models:
//!
//! - **Kolbo** under `/api/v1`: `generate/image` (Smart Select, caps, `credit × multipliers
//!   × n` charged at start), `generate/{id}/status` (processing with rising progress, or
//!   first pending when queueing is asked for → completed / failed with a refund /
//!   cancelled), `generate/{id}/cancel`
//!   (409 once finished), `models`, `account/credits`, `moodboards`, `visual-dna`; the
//!   `{success,error,code}` envelope, the odd 429 body with `Retry-After`, per-key rate
//!   limits, and a `poll_url` in either documented form.
//! - **KoalaImages** under `/api`: `image-generation/` with Bearer auth, every documented
//!   parameter, the Professional-plan rules (403), credits (402), validation (400), the
//!   `[{url, alt}]` answer, and image URLs that block until the image is ready.
//! - **Real images**: PNG or JPEG of the right dimensions, drawn from a hash of the prompt
//!   (the same prompt gives the same bytes), served by the API listener (KoalaImages) or
//!   by a second listener standing in for Kolbo's CDN, a different origin.
//! - **Time** from an injectable [`imagegen_core::Clock`] with a speed factor, **faults**
//!   ([`Fault`]) on any route on the Nth call, and a [`RequestLog`] that records which
//!   credential reached which listener.
//!
//! ```no_run
//! use imagegen_sim::{Fault, FaultRule, Route, SimConfig};
//!
//! # async fn demo() -> Result<(), imagegen_sim::SimError> {
//! let sim = imagegen_sim::start(SimConfig::default().with_speed(0.1)).await?;
//! println!("KOLBO_BASE_URL={}", sim.kolbo_base_url());
//! println!("KOALA_BASE_URL={}", sim.koala_base_url());
//! // Test keys (never print real ones): sim.kolbo_api_key(), sim.koala_api_key().
//!
//! // The second status poll fails with a Cloudflare-style HTML page.
//! sim.faults().inject(FaultRule::nth(Route::KolboStatus, 2, Fault::HtmlErrorPage { status: 502 }));
//!
//! // ... run a client against the base URLs ...
//! assert!(sim.request_log().entries().iter().all(|r| r.path != "/nope"));
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Tests drive time with a `ManualClock`:
//!
//! ```no_run
//! # async fn demo() -> Result<(), imagegen_sim::SimError> {
//! use imagegen_core::ManualClock;
//! use imagegen_sim::{ImageSize, SimConfig};
//!
//! let clock = ManualClock::manual();
//! let sim = imagegen_sim::start(
//!     SimConfig::default()
//!         .with_clock(clock.shared())
//!         .with_image_size(ImageSize::MaxSide(64)),
//! )
//! .await?;
//! // ... submit a generation, then:
//! clock.advance(std::time::Duration::from_secs(30)); // now it is finished
//! # drop(sim); Ok(()) }
//! ```

mod amount;
mod cdn;
mod charges;
mod config;
mod error;
mod fault;
mod fault_mix;
mod handle;
mod image;
mod image_store;
mod interceptor;
mod koala;
mod kolbo;
mod listener;
mod log;
mod rate_limit;
mod reply;
mod rng;
mod serve;
mod state;
mod timing;
mod wallclock;

pub use charges::Charge;
pub use config::{
    ImageSize, KoalaAccount, KoalaConfig, KoalaErrorBody, KoalaPlan, KolboAccount, KolboConfig,
    KolboProgress, KolboRateLimits, PollUrlForm, SimConfig,
};
pub use error::SimError;
pub use fault::{Fault, FaultId, FaultRule, Faults, Route, Trigger};
pub use fault_mix::FaultMix;
pub use handle::{SimHandle, start};
pub use log::{AuthSeen, Credential, ListenerKind, LoggedRequest, RequestLog};

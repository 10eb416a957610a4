//! Provider-neutral vocabulary of imagegen.
//!
//! This crate owns the types every other imagegen crate speaks, and nothing that talks to
//! the network: no HTTP client, no async runtime, no knowledge of any particular provider.
//!
//! - [`GenerationRequest`]: what a user asks for (prompt, count, [`ImageShape`], style,
//!   [`Quality`], reference images, prompt enhancement, typed per-provider extras).
//! - [`Credits`], [`Multiplier`], [`Usd`], [`CreditWorth`]: money as exact fixed-point
//!   numbers with checked arithmetic.
//! - [`ModelEntry`], [`Price`], [`Capabilities`], [`ShapeSupport`]: the model catalog.
//! - [`CallPlan`]: one billable call, fully resolved by the router (model, exact shape,
//!   quality name, style, options, price); a wire crate only translates it.
//! - [`Provider`]: the async trait a provider implements (catalog, profile, option
//!   requirements, submit a plan, wait, cancel, balance), with serializable [`JobHandle`]s
//!   so a paid job can be resumed after a crash.
//! - [`Error`]: one taxonomy every provider maps into, answering "was anything sent?" and
//!   "could this have cost money?" without string matching.
//! - [`Clock`]: time as a dependency; tests use [`ManualClock`] and never sleep.
//! - [`fixture`]: the format of recorded HTTP exchanges in the workspace's `fixtures/`.
//!
//! ```
//! use imagegen_core::{Credits, GenerationRequest, ImageShape, ShapeFit, ShapeSupport};
//!
//! let request = GenerationRequest::builder("a lighthouse at dusk, watercolor")
//!     .count(2)
//!     .shape("21:9".parse::<ImageShape>()?)
//!     .build()?;
//!
//! // How would a model that only makes a few fixed sizes take it?
//! let sizes = ShapeSupport::Sizes { sizes: vec!["1024x1024".parse()?, "1792x1008".parse()?], snap: true };
//! let fit = sizes.fit(request.shape().unwrap_or_default());
//! assert!(matches!(fit, ShapeFit::Snapped { .. }));
//!
//! // And what would two images at 2.5 credits cost?
//! let total = "2.5".parse::<Credits>()?.checked_mul(request.count());
//! assert_eq!(total, Some(Credits::whole(5)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod catalog;
pub mod clock;
pub mod credits;
pub mod error;
pub mod fixture;
pub mod ids;
pub mod plan;
pub mod provider;
pub mod request;
pub mod shape;

pub use catalog::{
    Capabilities, ModelEntry, NEAR_SHAPE_TOLERANCE, Price, PriceError, QualityOption, ShapeFit,
    ShapeSupport, StyleSupport,
};
#[cfg(feature = "tokio")]
pub use clock::TokioClock;
pub use clock::{Clock, ManualClock, SharedClock, Sleep, unix_millis};
pub use credits::{AmountParseError, CreditWorth, Credits, CreditsWithUnit, Multiplier, Usd};
pub use error::{Error, InvalidInput, Refund, Refusal};
pub use ids::{ModelId, PlanName, ProviderId};
pub use plan::{CallPlan, ModelChoice, StyleDelivery};
pub use provider::{
    Balance, CancelOutcome, ImageRef, JobHandle, JobOutput, JobState, NoProgress, ProgressEvent,
    ProgressSink, Provider, ProviderProfile,
};
pub use request::{
    GenerationRequest, GenerationRequestBuilder, MAX_IMAGES_PER_REQUEST, MAX_PROMPT_CHARS,
    PROMPT_PREVIEW_CHARS, Prompt, ProviderExtras, Quality, prompt_preview,
};
pub use shape::{AspectRatio, Dimensions, ImageShape, Orientation, ShapeParseError};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

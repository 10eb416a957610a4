//! Exact wire types for Kolbo's image routes, typed to the documentation and tolerant of
//! what it leaves open, one file per route family:
//!
//! | file | route family | types |
//! |---|---|---|
//! | `generate.rs` | `POST /v1/generate/image` | [`GenerateImageRequest`], [`GenerationStarted`], the request limits |
//! | `status.rs` | `GET /v1/generate/{id}/status`, `POST …/cancel` | [`GenerationStatus`], [`GenerationState`], [`GenerationResult`], [`FailureDetails`], [`CreditsBreakdownEntry`], [`CancelResponse`] |
//! | `models.rs` | `GET /v1/models` | [`ModelsQuery`], [`ModelsResponse`], [`KolboModel`] (price and capability fields), the Smart Select aliases |
//! | `account.rs` | `GET /v1/account/credits` | [`AccountCreditsResponse`], [`AccountCredits`] |
//! | `moodboards.rs` | `GET /v1/moodboards[/{id}]` | [`MoodboardQuery`], [`MoodboardList`], [`MoodboardResponse`], [`Moodboard`] |
//! | `visual_dna.rs` | `GET /v1/visual-dna[/{id}]` | [`VisualDnaQuery`], [`VisualDnaList`], [`VisualDnaResponse`], [`VisualDna`] |
//! | `error.rs` | any route | [`ErrorBody`], the error envelope |
//!
//! - Requests ([`GenerateImageRequest`]) carry every documented field, plus an
//!   [`extra`](GenerateImageRequest::extra) map for the undocumented ones Kolbo's own
//!   clients send (`resolution`, `quality`, `enable_web_search`, …).
//! - Responses ignore unknown fields, keep unknown enum values (`Unknown(String)`), accept
//!   the camelCase spellings older servers sent (`generationId`, `supportedAspectRatios`)
//!   through `#[serde(alias)]`, and read a mistyped optional field as absent rather than
//!   failing the whole response. Only what a response cannot do without is strict: a
//!   generation id, a state.
//!
//! These types decode with plain serde (`serde_json::from_str` works). The client decodes
//! every answer through the crate's `decode` module, which adds a second, lenient pass for
//! bodies serde refuses as a whole (a key sent twice, a number out of range).
//!
//! ```
//! use kolbo_api::types::{GenerationState, GenerationStatus};
//! let status: GenerationStatus = serde_json::from_str(
//!     r#"{"success":true,"generation_id":"abc123","state":"upscaling","progress":80}"#,
//! )?;
//! assert_eq!(status.state, GenerationState::Unknown("upscaling".into()));
//! assert!(!status.state.is_terminal()); // unknown states count as still running
//! # Ok::<(), serde_json::Error>(())
//! ```

mod account;
mod error;
mod generate;
mod models;
mod moodboards;
mod status;
mod visual_dna;

pub use account::{AccountCredits, AccountCreditsResponse};
pub use error::ErrorBody;
pub use generate::{
    DOCUMENTED_REQUEST_FIELDS, GenerateImageRequest, GenerationStarted, MAX_NUM_IMAGES,
    MAX_VISUAL_DNA_IDS,
};
pub use models::{KolboModel, ModelsQuery, ModelsResponse, SMART_SELECT_ALIASES, is_smart_select};
pub use moodboards::{Moodboard, MoodboardList, MoodboardQuery, MoodboardResponse};
pub use status::{
    CancelResponse, CreditsBreakdownEntry, FailureDetails, GenerationResult, GenerationState,
    GenerationStatus,
};
pub use visual_dna::{VisualDna, VisualDnaList, VisualDnaQuery, VisualDnaResponse};

//! The format of a recorded HTTP exchange in `fixtures/`: what a provider was sent and what
//! it answered. Wire-crate tests replay them, the simulator's conformance tests compare
//! against them, and `cargo xtask fixtures` records and checks them.
//!
//! ```
//! use imagegen_core::fixture::{Fixture, FixtureSource};
//! let text = r#"{
//!   "source": "docs",
//!   "description": "generation started (Smart Select)",
//!   "request": {"method": "POST", "path": "/api/v1/generate/image",
//!               "headers": {"x-api-key": "[redacted]"}, "body": {"prompt": "A city"}},
//!   "response": {"status": 200, "headers": {"content-type": "application/json"},
//!                "body": {"success": true, "generation_id": "abc123"}}
//! }"#;
//! let fixture: Fixture = serde_json::from_str(text)?;
//! assert_eq!(fixture.source, FixtureSource::Docs);
//! assert_eq!(fixture.response.body_bytes(), br#"{"success":true,"generation_id":"abc123"}"#);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value that stands in for a secret in a fixture.
pub const REDACTED: &str = "[redacted]";

/// Where a fixture came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixtureSource {
    /// Transcribed from the provider's documentation; never overwritten by recordings.
    Docs,
    /// Recorded from the real API.
    Live,
    /// Recorded from `imagegen-sim`.
    Sim,
}

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fixture {
    /// Where it came from.
    pub source: FixtureSource,
    /// What the exchange shows, in a sentence.
    pub description: String,
    /// What was sent.
    pub request: RecordedRequest,
    /// What came back.
    pub response: RecordedResponse,
}

/// A request as sent (secrets replaced by [`REDACTED`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path below the origin, starting with `/` (`/api/v1/generate/image`).
    pub path: String,
    /// The query string without `?`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Headers worth pinning, names lower case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The JSON body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// A response as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// The HTTP status.
    pub status: u16,
    /// Headers worth pinning, names lower case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body when it is JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// The body when it is not JSON (an HTML error page, a truncated document), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
}

impl RecordedResponse {
    /// The body as bytes on the wire: compact JSON, or the verbatim text.
    pub fn body_bytes(&self) -> Vec<u8> {
        match (&self.body, &self.body_text) {
            (_, Some(text)) => text.as_bytes().to_vec(),
            (Some(json), None) => json.to_string().into_bytes(),
            (None, None) => Vec::new(),
        }
    }
}

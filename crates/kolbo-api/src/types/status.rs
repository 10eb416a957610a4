//! `GET /v1/generate/{id}/status` and `POST /v1/generate/{id}/cancel`: where a generation
//! is, its states, its results and its failure details.

use std::fmt;

use imagegen_core::Credits;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Where a generation is, from `GET /v1/generate/{id}/status`.
///
/// Kolbo documents `pending`, `processing`, `completed`, `failed` and `cancelled`. Any
/// other value is kept as [`Unknown`](Self::Unknown) and counts as still running, as
/// Kolbo's own poller does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GenerationState {
    /// Queued.
    Pending,
    /// Generating.
    Processing,
    /// Done; `result.urls` holds the images.
    Completed,
    /// Failed; the charge is refunded automatically.
    Failed,
    /// Cancelled.
    Cancelled,
    /// A state this version does not know; treated as still running.
    Unknown(String),
}

impl GenerationState {
    /// The state as Kolbo writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown(s) => s,
        }
    }

    /// Whether the generation has stopped for good (completed, failed, cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl From<&str> for GenerationState {
    fn from(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for GenerationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for GenerationState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GenerationState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::from(text.as_str()))
    }
}

/// The answer to `GET /v1/generate/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationStatus {
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// The job's id.
    #[serde(
        alias = "generationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generation_id: Option<String>,
    /// The kind of generation (`"image"`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Where the job is (required).
    pub state: GenerationState,
    /// Percent done, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// The output, when completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<GenerationResult>,
    /// Why it failed, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Structured failure details (undocumented; sent by newer servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetails>,
    /// The final cost after multipliers, when finished (undocumented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_used: Option<Credits>,
    /// The cost per model, when finished (undocumented).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credits_breakdown: Vec<CreditsBreakdownEntry>,
}

impl GenerationStatus {
    /// Progress as a whole percentage clamped to 0–100, when reported.
    pub fn percent(&self) -> Option<u8> {
        self.progress
            .filter(|p| p.is_finite())
            .map(|p| p.clamp(0.0, 100.0).round() as u8)
    }

    /// The best failure message: the structured one, then `error`, then a generic one.
    pub fn failure_message(&self) -> String {
        self.failure
            .as_ref()
            .and_then(|f| f.message.clone())
            .or_else(|| self.error.clone())
            .unwrap_or_else(|| format!("the generation is {}", self.state))
    }
}

/// The output of a completed generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationResult {
    /// Image URLs (on Kolbo's CDN: fetch them without the API key).
    #[serde(default)]
    pub urls: Vec<String>,
    /// The model that ran (`"auto"` or the real id for Smart Select runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The prompt after enhancement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_used: Option<String>,
    /// When it finished (ISO-8601), as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// A thumbnail URL (undocumented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

/// Structured details of a failed generation (undocumented; from Kolbo's own skill docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailureDetails {
    /// Human-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Category such as `content_policy` or `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// A code such as `CONTENT_FLAGGED_SENSITIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Whether a new attempt may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// `error`, `warning`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The upstream provider that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// One entry of `credits_breakdown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreditsBreakdownEntry {
    /// The model billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The base price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Credits>,
    /// The price after multipliers.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    pub final_credits: Option<Credits>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The answer to `POST /v1/generate/{id}/cancel` (undocumented; used by Kolbo's MCP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CancelResponse {
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// The job's id.
    #[serde(
        alias = "generationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generation_id: Option<String>,
    /// The state after cancelling (`cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<GenerationState>,
    /// Credits given back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_refunded: Option<Credits>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_round_trip_and_unknown_is_running() {
        for s in [
            "pending",
            "processing",
            "completed",
            "failed",
            "cancelled",
            "error",
        ] {
            let state: GenerationState = serde_json::from_value(json!(s)).unwrap();
            assert_eq!(serde_json::to_value(&state).unwrap(), json!(s));
        }
        assert!(!GenerationState::from("error").is_terminal());
        assert!(GenerationState::Cancelled.is_terminal());
    }

    #[test]
    fn percent_is_clamped() {
        let status: GenerationStatus =
            serde_json::from_value(json!({"state": "processing", "progress": 152.4})).unwrap();
        assert_eq!(status.percent(), Some(100));
        let status: GenerationStatus =
            crate::decode::body(200, br#"{"state": "processing", "progress": "half"}"#).unwrap();
        assert_eq!(status.percent(), None);
    }
}

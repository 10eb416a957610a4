//! The error envelope every route may answer with.

use serde::{Deserialize, Serialize};

/// An error body. Kolbo sends two shapes, both read by this type:
///
/// - the envelope `{"success": false, "error": "…", "code": "INSUFFICIENT_CREDITS"}`;
/// - the rate limiter's `{"status": false, "message": "Too many requests, …"}`.
///
/// ```
/// use kolbo_api::types::ErrorBody;
/// let body: ErrorBody = serde_json::from_str(
///     r#"{"status":false,"message":"Too many requests, please try again later"}"#)?;
/// assert!(body.is_error());
/// assert_eq!(body.message(), Some("Too many requests, please try again later"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// `false` in the envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// `false` in the rate limiter's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<bool>,
    /// The envelope's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The rate limiter's message (and some other routes').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A machine-readable code such as `MODEL_NOT_FOUND`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl ErrorBody {
    /// Whether the body says the call failed (`success: false` or `status: false`).
    pub fn is_error(&self) -> bool {
        self.success == Some(false) || self.status == Some(false)
    }

    /// The message: `error`, else `message`.
    pub fn message(&self) -> Option<&str> {
        self.error
            .as_deref()
            .or(self.message.as_deref())
            .filter(|m| !m.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_body_reads_both_shapes() {
        let envelope: ErrorBody = serde_json::from_value(
            json!({"success": false, "error": "Model not found", "code": "MODEL_NOT_FOUND"}),
        )
        .unwrap();
        assert!(envelope.is_error());
        assert_eq!(envelope.message(), Some("Model not found"));
        let ok: ErrorBody = serde_json::from_value(json!({"success": true})).unwrap();
        assert!(!ok.is_error());
    }
}

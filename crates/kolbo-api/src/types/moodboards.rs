//! `GET /v1/moodboards` and `GET /v1/moodboards/{id}`: style templates.

use serde::{Deserialize, Serialize};

/// Query parameters of `GET /v1/moodboards`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MoodboardQuery {
    /// `personal`, `preset`, `global` or `organization`; all when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Restrict to a project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

impl MoodboardQuery {
    /// Restricts to one scope.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// The answer to `GET /v1/moodboards` (some builds wrap the list as `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MoodboardList {
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// The moodboards.
    #[serde(alias = "data", default)]
    pub moodboards: Vec<Moodboard>,
    /// How many the server counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The answer to `GET /v1/moodboards/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MoodboardResponse {
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// The moodboard.
    pub moodboard: Moodboard,
}

/// A moodboard: a style template whose master prompt is merged into the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Moodboard {
    /// The id to send as `moodboard_id` (some builds: `_id`).
    #[serde(alias = "_id")]
    pub id: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The prompt merged into every generation using it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_prompt: Option<String>,
    /// A preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// Its images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// A written style guide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_guide: Option<String>,
}

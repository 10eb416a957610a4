//! `GET /v1/visual-dna` and `GET /v1/visual-dna/{id}`: characters, products, styles and
//! environments kept consistent across images.

use serde::{Deserialize, Serialize};

use crate::decode::tolerant;

/// Query parameters of `GET /v1/visual-dna`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDnaQuery {
    /// Which DNAs (the docs say `personal`, `global`, `organization`; some servers take
    /// `mine`, `global`, `all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Text search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Page number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Page size (at most 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl VisualDnaQuery {
    /// Restricts to one scope.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Searches by text.
    #[must_use]
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }
}

/// The answer to `GET /v1/visual-dna`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDnaList {
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// The visual DNAs.
    #[serde(alias = "visualDnas", default)]
    pub visual_dnas: Vec<VisualDna>,
    /// How many are on this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// How many there are in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whether another page follows.
    #[serde(
        alias = "hasMore",
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub has_more: Option<bool>,
}

/// The answer to `GET /v1/visual-dna/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDnaResponse {
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// The visual DNA.
    #[serde(alias = "visualDna")]
    pub visual_dna: VisualDna,
}

/// A visual DNA: a character, product, style or environment kept consistent across images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDna {
    /// The id to send in `visual_dna_ids`.
    #[serde(alias = "_id")]
    pub id: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `character`, `product`, `style`, `environment`, … (older builds: `dnaType`).
    #[serde(alias = "dnaType", default, skip_serializing_if = "Option::is_none")]
    pub dna_type: Option<String>,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// Its source images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Whether it is one of Kolbo's global presets.
    #[serde(
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_global: Option<bool>,
    /// When it was made, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// A character sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet_url: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The system prompt (only from `GET /v1/visual-dna/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
}

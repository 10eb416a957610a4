//! Saved images as a gallery lists them: newest first, filtered, a page at a time
//! ([`Ledger::images`](crate::Ledger::images)), one with its job
//! ([`Ledger::image`](crate::Ledger::image)), and one removed
//! ([`Ledger::delete_image`](crate::Ledger::delete_image)).

use imagegen_core::{ModelId, ProviderId};
use serde::Serialize;

use crate::api_keys::ApiKeyId;
use crate::types::{ImageRecord, JobRecord};

/// Which saved image: its job's provider and id, and its position in the job's output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct ImageKey {
    /// The job's provider.
    pub provider: ProviderId,
    /// The provider's job id.
    pub job_id: String,
    /// The image's position in the job's output, from 0.
    pub index: u32,
}

impl ImageKey {
    /// Image `index` of job `job_id` at `provider`.
    pub fn new(provider: impl Into<ProviderId>, job_id: impl Into<String>, index: u32) -> Self {
        Self {
            provider: provider.into(),
            job_id: job_id.into(),
            index,
        }
    }
}

/// Where a page of [`Ledger::images`](crate::Ledger::images) ended: the next page starts
/// after it. Stable while new images arrive (they sort before it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImageCursor {
    /// The last image's recording time.
    pub created_at_ms: u64,
    /// The last image.
    pub key: ImageKey,
}

impl ImageCursor {
    /// The cursor after image `key`, recorded at `created_at_ms` (as a page's link
    /// carries it back).
    pub fn new(created_at_ms: u64, key: ImageKey) -> Self {
        Self { created_at_ms, key }
    }
}

/// What [`Ledger::images`](crate::Ledger::images) lists: newest first, at most `limit`,
/// after `after` when given, matching every filter given.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
/// use imagegen_core::{Credits, JobHandle};
/// use imagegen_ledger::{AcceptedJob, ImageQuery, JobFinish, NewImage};
/// let job = AcceptedJob::new(JobHandle::new("koala", "g1", 2, 1_000), "a red fox", "out", Credits::whole(2));
/// ledger.record_accepted(&job).await?;
/// let images = vec![NewImage::new(0, "out/a.png"), NewImage::new(1, "out/b.png")];
/// ledger.finish_job(&"koala".into(), "g1", &JobFinish::done(2_000, images)).await?;
///
/// let first = ledger.images(&ImageQuery::newest(1).matching("FOX")).await?;
/// assert_eq!(first.len(), 1);
/// let next = ledger.images(&ImageQuery::newest(1).after(first[0].cursor())).await?;
/// assert_eq!(next.len(), 1);
/// assert_ne!(next[0].image.path, first[0].image.path);
/// assert!(ledger.images(&ImageQuery::newest(10).matching("hen")).await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ImageQuery {
    /// At most this many (at least one).
    pub limit: u32,
    /// Only after this one (the previous page's last).
    pub after: Option<ImageCursor>,
    /// Only from this provider.
    pub provider: Option<ProviderId>,
    /// Only from this model.
    pub model: Option<ModelId>,
    /// Only recorded at or after this time.
    pub since_ms: Option<u64>,
    /// Only recorded before this time.
    pub until_ms: Option<u64>,
    /// Only whose prompt contains this text (ignoring case).
    pub search: Option<String>,
    /// Only paid for by this gateway key.
    pub api_key: Option<ApiKeyId>,
}

impl ImageQuery {
    /// The newest `limit` images.
    pub fn newest(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            ..Self::default()
        }
    }

    /// The page after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: ImageCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Only from `provider`.
    #[must_use]
    pub fn from_provider(mut self, provider: impl Into<ProviderId>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Only from `model`.
    #[must_use]
    pub fn from_model(mut self, model: impl Into<ModelId>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Only recorded in `[since_ms, until_ms)`.
    #[must_use]
    pub fn between(mut self, since_ms: Option<u64>, until_ms: Option<u64>) -> Self {
        self.since_ms = since_ms;
        self.until_ms = until_ms;
        self
    }

    /// Only whose prompt contains `text` (ignoring case).
    #[must_use]
    pub fn matching(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// Only paid for by gateway key `key`.
    #[must_use]
    pub fn paid_by(mut self, key: ApiKeyId) -> Self {
        self.api_key = Some(key);
        self
    }
}

/// A saved image with the job that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ImageEntry {
    /// The image.
    pub image: ImageRecord,
    /// Its job: prompt, model, plan, credits, times.
    pub job: JobRecord,
}

impl ImageEntry {
    /// Which image this is.
    pub fn key(&self) -> ImageKey {
        ImageKey::new(
            self.image.provider.clone(),
            self.image.job_id.clone(),
            self.image.index,
        )
    }

    /// The cursor of the page that ends with this image.
    pub fn cursor(&self) -> ImageCursor {
        ImageCursor {
            created_at_ms: self.image.created_at_ms,
            key: self.key(),
        }
    }
}

/// What [`Ledger::delete_image`](crate::Ledger::delete_image) removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeletedImage {
    /// The removed image's file.
    pub path: std::path::PathBuf,
    /// Whether another image row still names the same file (the same bytes saved twice
    /// in a content-addressed store): then the file must stay.
    pub file_still_used: bool,
}

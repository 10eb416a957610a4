//! What goes into the ledger and what comes out: plain data, no store types.

use std::fmt;
use std::path::PathBuf;

use imagegen_core::{Credits, JobHandle, ModelId, ProviderId};
use serde::Serialize;

use crate::Lease;
use crate::api_keys::ApiKeyId;
use sha2::{Digest, Sha256};

/// Which database a ledger is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// One SQLite file (WAL mode), shared by the processes on one machine.
    Sqlite,
    /// A PostgreSQL database, shared by any number of processes and machines.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

/// Names one row of `requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request #{}", self.0)
    }
}

/// Names one reservation; never reused, even after it is settled or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ReservationId(pub u64);

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reservation #{}", self.0)
    }
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// Its credits are held against the budget.
    Held,
    /// Ended with a charge, which is counted as spent.
    Settled,
    /// Ended with nothing spent.
    Released,
}

impl ReservationState {
    /// The name stored in `reservations.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Settled => "settled",
            Self::Released => "released",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "held" => Self::Held,
            "settled" => Self::Settled,
            "released" => Self::Released,
            _ => return None,
        })
    }
}

impl fmt::Display for ReservationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a paid job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// The provider accepted it (so it is paid for) and it has not finished yet: open.
    Accepted,
    /// Finished with its images saved.
    Done,
    /// Finished without images.
    Failed,
}

impl JobState {
    /// The name stored in `jobs.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "accepted" => Self::Accepted,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch file and line a request came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchLine {
    /// Names the batch (its path, or a hash of it).
    pub key: String,
    /// Its line number, from 1.
    pub line: u32,
}

/// One generation request, as [`Ledger::record_request`](crate::Ledger::record_request)
/// takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewRequest {
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The prompt.
    pub prompt: String,
    /// The whole request as JSON (opaque to the ledger).
    pub request_json: String,
    /// Where its images go.
    pub out_dir: PathBuf,
    /// The batch line it came from, if any.
    pub batch: Option<BatchLine>,
    /// The caller's hash of the normalized request and `out_dir`: the same request into
    /// the same folder has the same key, so a re-run can find what is already saved.
    pub request_key: String,
}

impl NewRequest {
    /// A request made at `created_at_ms`.
    pub fn new(
        prompt: impl Into<String>,
        request_json: impl Into<String>,
        out_dir: impl Into<PathBuf>,
        request_key: impl Into<String>,
        created_at_ms: u64,
    ) -> Self {
        Self {
            created_at_ms,
            prompt: prompt.into(),
            request_json: request_json.into(),
            out_dir: out_dir.into(),
            batch: None,
            request_key: request_key.into(),
        }
    }

    /// Marks it as line `line` of the batch `key`.
    #[must_use]
    pub fn in_batch(mut self, key: impl Into<String>, line: u32) -> Self {
        self.batch = Some(BatchLine {
            key: key.into(),
            line,
        });
        self
    }
}

/// A job a provider accepted, as [`Ledger::record_accepted`](crate::Ledger::record_accepted)
/// takes it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AcceptedJob {
    /// The provider's handle: enough to resume the job.
    pub handle: JobHandle,
    /// The prompt.
    pub prompt: String,
    /// Where its images go.
    pub out_dir: PathBuf,
    /// Credits reserved for it.
    pub reserved: Credits,
    /// The plan that was sent, as JSON (opaque to the ledger).
    pub plan_json: Option<String>,
    /// The request it serves.
    pub request: Option<RequestId>,
    /// The budget it was paid from, by name.
    pub budget: Option<String>,
    /// The ledger reservation holding its credits: finishing the job settles it.
    pub reservation: Option<ReservationId>,
    /// The gateway instance waiting on it, and until when (see [`crate::lease`]).
    pub lease: Option<Lease>,
    /// The gateway key that paid for it.
    pub api_key: Option<ApiKeyId>,
}

impl AcceptedJob {
    /// A job with `reserved` credits held for it.
    pub fn new(
        handle: JobHandle,
        prompt: impl Into<String>,
        out_dir: impl Into<PathBuf>,
        reserved: Credits,
    ) -> Self {
        Self {
            handle,
            prompt: prompt.into(),
            out_dir: out_dir.into(),
            reserved,
            plan_json: None,
            request: None,
            budget: None,
            reservation: None,
            lease: None,
            api_key: None,
        }
    }

    /// Leases it to the instance waiting on it (see [`crate::lease`]).
    #[must_use]
    pub fn with_lease(mut self, lease: Lease) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Names the gateway key that paid for it.
    #[must_use]
    pub fn with_api_key(mut self, key: ApiKeyId) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Keeps the plan that was sent.
    #[must_use]
    pub fn with_plan_json(mut self, plan_json: impl Into<String>) -> Self {
        self.plan_json = Some(plan_json.into());
        self
    }

    /// Links it to the request it serves.
    #[must_use]
    pub fn with_request(mut self, request: RequestId) -> Self {
        self.request = Some(request);
        self
    }

    /// Names the budget it was paid from.
    #[must_use]
    pub fn with_budget(mut self, budget: impl Into<String>) -> Self {
        self.budget = Some(budget.into());
        self
    }

    /// Links the ledger reservation holding its credits (and that reservation's budget):
    /// [`Ledger::finish_job`](crate::Ledger::finish_job) then settles it in the same
    /// transaction.
    #[must_use]
    pub fn with_reservation(mut self, budget: impl Into<String>, id: ReservationId) -> Self {
        self.budget = Some(budget.into());
        self.reservation = Some(id);
        self
    }
}

/// One saved image, as [`JobResult::Done`] carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewImage {
    /// Its position in the job's output, from 0.
    pub index: u32,
    /// Where it was saved.
    pub path: PathBuf,
    /// The SHA-256 of its bytes, lower-case hex.
    pub sha256: Option<String>,
    /// Its size in bytes.
    pub bytes: Option<u64>,
    /// Its media type (`image/png`).
    pub mime: Option<String>,
    /// Its width in pixels.
    pub width: Option<u32>,
    /// Its height in pixels.
    pub height: Option<u32>,
    /// The provider's alt text.
    pub alt_text: Option<String>,
    /// Where it was downloaded from; the ledger keeps it without query or fragment
    /// (signed URLs carry tokens there).
    pub source_url: Option<String>,
}

impl NewImage {
    /// Image `index` of a job, saved at `path`.
    pub fn new(index: u32, path: impl Into<PathBuf>) -> Self {
        Self {
            index,
            path: path.into(),
            sha256: None,
            bytes: None,
            mime: None,
            width: None,
            height: None,
            alt_text: None,
            source_url: None,
        }
    }

    /// Its content: SHA-256 (hex), size and media type.
    #[must_use]
    pub fn with_content(
        mut self,
        sha256: impl Into<String>,
        bytes: u64,
        mime: impl Into<String>,
    ) -> Self {
        self.sha256 = Some(sha256.into());
        self.bytes = Some(bytes);
        self.mime = Some(mime.into());
        self
    }

    /// Its size in pixels.
    #[must_use]
    pub fn with_dimensions(mut self, width: u32, height: u32) -> Self {
        self.width = Some(width);
        self.height = Some(height);
        self
    }

    /// The provider's alt text.
    #[must_use]
    pub fn with_alt_text(mut self, alt_text: impl Into<String>) -> Self {
        self.alt_text = Some(alt_text.into());
        self
    }

    /// Where it came from (query and fragment are dropped when stored).
    #[must_use]
    pub fn with_source_url(mut self, url: impl Into<String>) -> Self {
        self.source_url = Some(url.into());
        self
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobResult {
    /// Its images were saved.
    Done {
        /// The images.
        images: Vec<NewImage>,
    },
    /// It failed for good.
    Failed {
        /// Why (and whether it was refunded).
        error: String,
    },
}

/// How a job ended, as [`Ledger::finish_job`](crate::Ledger::finish_job) takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobFinish {
    /// When it ended.
    pub finished_at_ms: u64,
    /// What the provider charged, when known (zero for a refunded failure).
    pub charged: Option<Credits>,
    /// The model that ran, when the provider picked it.
    pub model: Option<ModelId>,
    /// Done or failed.
    pub result: JobResult,
}

impl JobFinish {
    /// Done, with `images` saved.
    pub fn done(finished_at_ms: u64, images: Vec<NewImage>) -> Self {
        Self {
            finished_at_ms,
            charged: None,
            model: None,
            result: JobResult::Done { images },
        }
    }

    /// Failed, for `error`.
    pub fn failed(finished_at_ms: u64, error: impl Into<String>) -> Self {
        Self {
            finished_at_ms,
            charged: None,
            model: None,
            result: JobResult::Failed {
                error: error.into(),
            },
        }
    }

    /// What the provider charged.
    #[must_use]
    pub fn with_charged(mut self, charged: Credits) -> Self {
        self.charged = Some(charged);
        self
    }

    /// The model that ran.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<ModelId>) -> Self {
        self.model = Some(model.into());
        self
    }
}

/// What [`Ledger::finish_job`](crate::Ledger::finish_job) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finished {
    /// Whether this call finished it; `false` when it had already finished (nothing was
    /// changed: the first outcome stands).
    pub newly: bool,
    /// Its state now.
    pub state: JobState,
    /// The linked reservation, when this call settled it.
    pub settlement: Option<Settlement>,
}

/// One paid job, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// The provider.
    pub provider: ProviderId,
    /// The provider's job id.
    pub job_id: String,
    /// The model, when known.
    pub model: Option<ModelId>,
    /// Where it stands.
    pub state: JobState,
    /// The handle, to resume it.
    pub handle: JobHandle,
    /// The plan that was sent, as JSON.
    pub plan_json: Option<String>,
    /// The request it serves.
    pub request: Option<RequestId>,
    /// The prompt.
    pub prompt: String,
    /// Where its images go.
    pub out_dir: PathBuf,
    /// Credits reserved for it.
    pub reserved: Credits,
    /// What the provider charged, when known.
    pub charged: Option<Credits>,
    /// When the provider accepted it.
    pub accepted_at_ms: u64,
    /// When it finished.
    pub finished_at_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The budget it was paid from.
    pub budget: Option<String>,
    /// The reservation holding its credits.
    pub reservation: Option<ReservationId>,
    /// The gateway instance finishing it, and until when.
    pub lease: Option<Lease>,
    /// The gateway key that paid for it.
    pub api_key: Option<ApiKeyId>,
}

/// One saved image, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImageRecord {
    /// The job's provider.
    pub provider: ProviderId,
    /// The job.
    pub job_id: String,
    /// Its position in the job's output, from 0.
    pub index: u32,
    /// Where it was saved.
    pub path: PathBuf,
    /// SHA-256, lower-case hex.
    pub sha256: Option<String>,
    /// Size in bytes.
    pub bytes: Option<u64>,
    /// Media type.
    pub mime: Option<String>,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Alt text.
    pub alt_text: Option<String>,
    /// Where it came from, without query or fragment.
    pub source_url: Option<String>,
    /// When it was recorded.
    pub created_at_ms: u64,
}

/// A finished job with the images it saved.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SavedJob {
    /// The job.
    pub job: JobRecord,
    /// Its images, by index.
    pub images: Vec<ImageRecord>,
}

/// What [`Ledger::history`](crate::Ledger::history) lists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryQuery {
    /// At most this many jobs.
    pub limit: u32,
    /// Only jobs whose prompt contains this text (ignoring ASCII case).
    pub search: Option<String>,
}

impl HistoryQuery {
    /// The newest `limit` jobs.
    pub fn newest(limit: u32) -> Self {
        Self {
            limit,
            search: None,
        }
    }

    /// Only jobs whose prompt contains `text`.
    #[must_use]
    pub fn matching(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }
}

/// One job in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The provider.
    pub provider: ProviderId,
    /// The provider's job id.
    pub job_id: String,
    /// The model, when known.
    pub model: Option<ModelId>,
    /// The prompt.
    pub prompt: String,
    /// Where it stands.
    pub state: JobState,
    /// Credits reserved for it.
    pub reserved: Credits,
    /// What it cost, when known.
    pub charged: Option<Credits>,
    /// When it was accepted.
    pub accepted_at_ms: u64,
    /// When it finished.
    pub finished_at_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its saved files, by image index.
    pub files: Vec<PathBuf>,
}

/// How [`Ledger::spend`](crate::Ledger::spend) groups what was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendGroup {
    /// One row per provider.
    Provider,
    /// One row per provider and model.
    Model,
    /// One row per UTC day the jobs were accepted.
    Day,
    /// One row per provider and UTC day (a chart of spend per provider per day).
    ProviderDay,
}

/// What [`Ledger::spend`](crate::Ledger::spend) sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpendQuery {
    /// The grouping.
    pub group: SpendGroup,
    /// Only jobs accepted at or after this time.
    pub since_ms: Option<u64>,
    /// Only jobs accepted before this time.
    pub until_ms: Option<u64>,
    /// Only jobs paid by this gateway key.
    pub api_key: Option<ApiKeyId>,
}

impl SpendQuery {
    /// Everything charged, grouped by `group`.
    pub fn by(group: SpendGroup) -> Self {
        Self {
            group,
            since_ms: None,
            until_ms: None,
            api_key: None,
        }
    }

    /// Only jobs paid by gateway key `key`.
    #[must_use]
    pub fn paid_by(mut self, key: ApiKeyId) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Only jobs accepted in `[since_ms, until_ms)`.
    #[must_use]
    pub fn between(mut self, since_ms: u64, until_ms: u64) -> Self {
        self.since_ms = Some(since_ms);
        self.until_ms = Some(until_ms);
        self
    }
}

/// One group of [`Ledger::spend`](crate::Ledger::spend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SpendRow {
    /// The provider (grouped by provider or model).
    pub provider: Option<ProviderId>,
    /// The model (grouped by model; `None` there when the model is unknown).
    pub model: Option<ModelId>,
    /// The UTC day, `YYYY-MM-DD` (grouped by day).
    pub day: Option<String>,
    /// What was charged.
    pub credits: Credits,
    /// How many charged jobs.
    pub jobs: u64,
}

/// What settling a reservation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// What had been reserved.
    pub reserved: Credits,
    /// What was charged, counted as spent in full.
    pub charged: Credits,
    /// How much the charge passed the reservation, when it did.
    pub overshoot: Option<Credits>,
}

/// A budget's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BudgetStatus {
    /// Its name.
    pub name: String,
    /// The limit, or `None` when unlimited.
    pub limit: Option<Credits>,
    /// Settled charges.
    pub spent: Credits,
    /// Held by open reservations.
    pub reserved: Credits,
    /// What may still be reserved, or `None` when unlimited.
    pub remaining: Option<Credits>,
    /// The sum of every charge above its reservation.
    pub overshoot: Credits,
}

/// Names a provider account without its key: the SHA-256 of the key, in hex.
///
/// ```
/// use imagegen_ledger::AccountHash;
/// let account = AccountHash::of_key("kolbo_live_secret");
/// assert_eq!(account.as_str().len(), 64);
/// assert!(!account.as_str().contains("secret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountHash(String);

impl AccountHash {
    /// The hash of an API key. The key itself is never stored.
    pub fn of_key(key: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"imagegen-account\0")
            .chain_update(key.as_bytes())
            .finalize();
        Self(crate::digest::hex(&digest))
    }

    /// A hash computed elsewhere: 64 hex digits (stored lower-case), or `None`.
    pub fn from_hex(hash: &str) -> Option<Self> {
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(hash.to_ascii_lowercase()))
    }

    /// The hash, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cooldown: no calls to `provider` (and `model`, when named) before `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Cooldown {
    /// The provider.
    pub provider: ProviderId,
    /// The model, or `None` for the whole provider.
    pub model: Option<ModelId>,
    /// Until when, in milliseconds since the Unix epoch.
    pub until_ms: u64,
}

/// One record of today's JSONL journal, as plain data: the facade converts each
/// `imagegen::journal::JournalRecord` into one of these for
/// [`Ledger::import_journal`](crate::Ledger::import_journal).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JournalEntry {
    /// A provider accepted a job.
    Accepted {
        /// When it was written.
        at_ms: u64,
        /// The job.
        job: JobHandle,
        /// The prompt.
        prompt: String,
        /// Where its images go.
        out_dir: PathBuf,
        /// Credits reserved for it.
        reserved: Credits,
    },
    /// A job ended.
    Finished {
        /// When it was written.
        at_ms: u64,
        /// The provider.
        provider: ProviderId,
        /// The provider's job id.
        job_id: String,
        /// How it ended.
        outcome: JournalOutcome,
    },
    /// A request was not submitted (nothing was paid: imported as nothing).
    Skipped {
        /// When it was written.
        at_ms: u64,
        /// The prompt.
        prompt: String,
        /// Why.
        reason: String,
    },
}

/// How a journaled job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalOutcome {
    /// Its images were saved at these paths, in order.
    Saved {
        /// Where.
        paths: Vec<PathBuf>,
    },
    /// It failed for good.
    Failed {
        /// Why.
        error: String,
    },
}

/// What [`Ledger::import_journal`](crate::Ledger::import_journal) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct ImportReport {
    /// Accepted jobs new to the ledger.
    pub accepted: usize,
    /// Jobs this import finished.
    pub finished: usize,
    /// Records the ledger already held (an import run twice adds nothing).
    pub already_known: usize,
    /// `finished` records for jobs neither the journal nor the ledger accepted.
    pub unmatched: usize,
    /// `skipped` records (nothing was paid; not stored).
    pub skipped: usize,
}

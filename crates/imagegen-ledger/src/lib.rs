//! The ledger: imagegen's one durable store of money state.
//!
//! Every paid job, every saved image, what was spent and what may still be spent lives
//! here, in a SQLite file by default (`~/.local/share/imagegen/ledger.sqlite3`, see
//! [`default_sqlite_path`]) or in a PostgreSQL database when many processes or machines
//! share one account. Both stores implement one object-safe trait, [`Ledger`]; [`open`]
//! picks the store from a URL:
//!
//! - `sqlite://PATH`, `sqlite:PATH` or a bare path: a SQLite file in WAL mode with a busy
//!   timeout, safe for several processes at once (writes that read first run under
//!   `BEGIN IMMEDIATE`);
//! - `postgres://…` or `postgresql://…`: a PostgreSQL database (TLS through rustls).
//!
//! The gateway (`imagegen serve`) keeps its API keys here too, hashed, each spending from
//! a budget per period ([`api_keys`]), and its `Idempotency-Key` records
//! ([`idempotency`]).
//!
//! The schema is migrated when a ledger is opened. `docs/ledger-schema.md` describes every
//! table and the invariants. Money is stored as exact integer millionths of a credit
//! ([`Credits`] micros), never as floats.
//!
//! What the ledger guarantees:
//!
//! - **A job is durable before it is waited on**: [`Ledger::record_accepted`] returns only
//!   once the row is committed, so a crash afterwards leaves it in [`Ledger::open_jobs`].
//! - **A budget is never passed**: [`Ledger::reserve`] checks the limit and holds the
//!   amount in one atomic step, whatever the number of connections and processes.
//! - **Nothing is counted twice**: a reservation settles or releases once; a job finishes
//!   once; importing a journal twice adds nothing.
//! - **No hold outlives its gateway**: a gateway's hold carries its lease
//!   ([`Ledger::reserve_leased`]); once the lease runs out another gateway resolves it
//!   from what was sent ([`Ledger::resolve_expired_holds`], [`holds`]), settling in full
//!   what may have been charged and releasing only what was never sent.
//!
//! ```
//! use imagegen_core::{Credits, JobHandle};
//! use imagegen_ledger::{AcceptedJob, JobFinish, NewImage};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let url = format!("sqlite://{}", dir.path().join("ledger.sqlite3").display());
//! let ledger = imagegen_ledger::open(&url).await?;
//!
//! // Hold the worst case, then record the job the provider accepted before waiting on it.
//! ledger.set_budget("daily", Some(Credits::whole(20))).await?;
//! let reservation = ledger.reserve("daily", Credits::whole(8)).await?;
//! let handle = JobHandle::new("kolbo", "gen_1", 1, 1_767_225_600_000);
//! let job = AcceptedJob::new(handle, "a fox", "imagegen-out", Credits::whole(8))
//!     .with_reservation("daily", reservation);
//! ledger.record_accepted(&job).await?;
//! assert_eq!(ledger.open_jobs().await?.len(), 1);
//!
//! // It finished: its image is recorded and its reservation settles to the real charge.
//! let finish = JobFinish::done(1_767_225_605_000, vec![NewImage::new(0, "imagegen-out/a-fox-1.png")])
//!     .with_charged(Credits::whole(5));
//! let finished = ledger.finish_job(&"kolbo".into(), "gen_1", &finish).await?;
//! assert_eq!(finished.settlement.map(|s| s.charged), Some(Credits::whole(5)));
//! assert!(ledger.open_jobs().await?.is_empty());
//! let daily = ledger.budget("daily").await?.expect("set above");
//! assert_eq!(daily.remaining, Some(Credits::whole(15)));
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagegen_core::{Credits, ModelId, ProviderId, SharedClock, TokioClock};

pub mod api_keys;
mod connections;
mod convert;
pub mod digest;
mod error;
pub mod generations;
pub mod holds;
pub mod idempotency;
pub mod image_query;
pub mod lease;
mod postgres;
pub mod rate_slots;
mod sqlite;
mod sqlite_writer;
mod target;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;
mod types;

pub use api_keys::{ApiKey, ApiKeyId, ApiKeyRecord, KeyPeriod, NewApiKey, api_key_hash};
pub use convert::utc_minute;
pub use error::LedgerError;
pub use generations::{GenerationRecord, GenerationState, NewGeneration};
pub use holds::{HoldOutcome, HoldResolution};
pub use idempotency::IdempotencyBegin;
pub use image_query::{DeletedImage, ImageCursor, ImageEntry, ImageKey, ImageQuery};
pub use lease::Lease;
pub use postgres::PostgresLedger;
pub use rate_slots::{RateSlot, RateSlotId};
pub use sqlite::SqliteLedger;
pub use target::{DEFAULT_FILE_NAME, default_sqlite_path, redact_url};
pub use types::{
    AcceptedJob, AccountHash, Backend, BatchLine, BudgetStatus, Cooldown, Finished, HistoryEntry,
    HistoryQuery, ImageRecord, ImportReport, JobFinish, JobRecord, JobResult, JobState,
    JournalEntry, JournalOutcome, NewImage, NewRequest, RequestId, ReservationId, ReservationState,
    SavedJob, Settlement, SpendGroup, SpendQuery, SpendRow,
};

/// How a ledger is opened: how many connections, waits and the clock that stamps rows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LedgerOptions {
    /// At most this many connections (default 8): SQLite's readers, or every PostgreSQL
    /// connection.
    pub max_connections: u32,
    /// How long a SQLite statement waits for another writer's lock (default 30 s).
    pub busy_timeout: Duration,
    /// How long an operation waits for a free connection (default 30 s).
    pub acquire_timeout: Duration,
    /// PostgreSQL only: a connection idle for at least this long is pinged before it is
    /// used again, and replaced when it does not answer (default 1 s). One used again
    /// sooner is not, unless a ledger operation failed since it was last handed out (that
    /// failure may have been its breaking).
    pub recheck_idle_after: Duration,
    /// The clock that stamps reservations and budgets (the real clock by default).
    pub clock: SharedClock,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(30),
            recheck_idle_after: Duration::from_secs(1),
            clock: TokioClock::shared(),
        }
    }
}

impl LedgerOptions {
    /// Up to `connections` connections (at least one).
    #[must_use]
    pub fn with_max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// SQLite's busy timeout.
    #[must_use]
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long to wait for a free connection.
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long a PostgreSQL connection may sit idle before it is pinged again.
    #[must_use]
    pub fn with_recheck_idle_after(mut self, idle: Duration) -> Self {
        self.recheck_idle_after = idle;
        self
    }

    /// The clock that stamps rows.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

/// Opens the ledger `url` names with default options; see [`open_with`].
pub async fn open(url: &str) -> Result<Arc<dyn Ledger>, LedgerError> {
    open_with(url, &LedgerOptions::default()).await
}

/// Opens the ledger `url` names (`sqlite://PATH`, a bare path, `postgres://…`,
/// `postgresql://…`), creating a SQLite file and its folder when missing, and brings its
/// tables up to date.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use imagegen_ledger::{Backend, LedgerOptions};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("nested").join("ledger.sqlite3");
/// let options = LedgerOptions::default().with_max_connections(4);
/// let ledger = imagegen_ledger::open_with(&path.display().to_string(), &options).await?;
/// assert_eq!(ledger.backend(), Backend::Sqlite);
/// assert!(path.exists());
/// # Ok(()) }
/// ```
pub async fn open_with(url: &str, options: &LedgerOptions) -> Result<Arc<dyn Ledger>, LedgerError> {
    Ok(match target::parse(url)? {
        target::Target::Sqlite(connect) => {
            Arc::new(SqliteLedger::connect(connect, redact_url(url), options).await?)
        }
        target::Target::Postgres(connect) => {
            Arc::new(PostgresLedger::connect(connect, redact_url(url), options).await?)
        }
    })
}

/// The durable store of paid jobs, images, spend, budgets, rate windows and cooldowns.
///
/// Object-safe and shared as `Arc<dyn Ledger>`; every method is one atomic step (one
/// statement or one transaction), safe with any number of concurrent callers in any
/// number of processes. The examples run on SQLite in a temporary folder; PostgreSQL
/// behaves the same.
#[async_trait]
pub trait Ledger: Send + Sync + fmt::Debug {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Its URL, with any password redacted.
    fn url(&self) -> &str;

    /// Records one generation request and returns its id.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_ledger::NewRequest;
    /// let request = NewRequest::new("a fox", r#"{"prompt":"a fox"}"#, "out", "key-1", 1_000)
    ///     .in_batch("prompts.txt", 3);
    /// let first = ledger.record_request(&request).await?;
    /// let second = ledger.record_request(&request).await?;
    /// assert_ne!(first, second);
    /// # Ok(()) }
    /// ```
    async fn record_request(&self, request: &NewRequest) -> Result<RequestId, LedgerError>;

    /// Records a job a provider accepted, committed (durable) before it returns: call it
    /// before waiting on the job. `Ok(false)` when the ledger already holds this
    /// (provider, job id): the first record stands.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::{AcceptedJob, JobState};
    /// let handle = JobHandle::new("koala", "v2-abc", 2, 1_000).with_model("gpt-image-2");
    /// let job = AcceptedJob::new(handle, "a fox", "out", Credits::whole(2))
    ///     .with_plan_json(r#"{"model":"gpt-image-2"}"#);
    /// assert!(ledger.record_accepted(&job).await?);
    /// assert!(!ledger.record_accepted(&job).await?); // already there
    /// let stored = ledger.job(&"koala".into(), "v2-abc").await?.expect("recorded");
    /// assert_eq!(stored.state, JobState::Accepted);
    /// assert_eq!(stored.handle, job.handle);
    /// # Ok(()) }
    /// ```
    async fn record_accepted(&self, job: &AcceptedJob) -> Result<bool, LedgerError>;

    /// Finishes an open job, done with its images or failed, in one transaction; when the
    /// job has a linked reservation still held, it is settled in the same transaction (at
    /// the charge when known, else at the whole reservation). A job already finished is
    /// left as it is (`newly: false`); an unknown job is [`LedgerError::UnknownJob`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::{AcceptedJob, JobFinish, JobState};
    /// let job = AcceptedJob::new(JobHandle::new("kolbo", "g1", 1, 1_000), "a fox", "out", Credits::whole(8));
    /// ledger.record_accepted(&job).await?;
    /// let failed = JobFinish::failed(2_000, "content policy (refunded)").with_charged(Credits::ZERO);
    /// let finished = ledger.finish_job(&"kolbo".into(), "g1", &failed).await?;
    /// assert!(finished.newly);
    /// assert_eq!(finished.state, JobState::Failed);
    /// // A second finish changes nothing.
    /// let again = ledger.finish_job(&"kolbo".into(), "g1", &JobFinish::done(3_000, vec![])).await?;
    /// assert!(!again.newly);
    /// assert_eq!(again.state, JobState::Failed);
    /// # Ok(()) }
    /// ```
    async fn finish_job(
        &self,
        provider: &ProviderId,
        job_id: &str,
        finish: &JobFinish,
    ) -> Result<Finished, LedgerError>;

    /// One job, by provider and job id.
    async fn job(
        &self,
        provider: &ProviderId,
        job_id: &str,
    ) -> Result<Option<JobRecord>, LedgerError>;

    /// Every open job (accepted, not finished), from any run or process, oldest first:
    /// what `resume` finishes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::AcceptedJob;
    /// for (id, at) in [("late", 2_000), ("early", 1_000)] {
    ///     let job = AcceptedJob::new(JobHandle::new("kolbo", id, 1, at), "p", "out", Credits::whole(1));
    ///     ledger.record_accepted(&job).await?;
    /// }
    /// let open: Vec<String> = ledger.open_jobs().await?.into_iter().map(|j| j.job_id).collect();
    /// assert_eq!(open, ["early", "late"]);
    /// # Ok(()) }
    /// ```
    async fn open_jobs(&self) -> Result<Vec<JobRecord>, LedgerError>;

    /// The done jobs with saved images of every request recorded with `request_key`,
    /// newest first: empty when nothing was saved yet (a batch re-run sends that line
    /// again), otherwise what was saved.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::{AcceptedJob, JobFinish, NewImage, NewRequest};
    /// let request = ledger.record_request(&NewRequest::new("a fox", "{}", "out", "k1", 1_000)).await?;
    /// assert!(ledger.saved_jobs("k1").await?.is_empty());
    /// let job = AcceptedJob::new(JobHandle::new("kolbo", "g1", 1, 1_000), "a fox", "out", Credits::whole(1))
    ///     .with_request(request);
    /// ledger.record_accepted(&job).await?;
    /// let image = NewImage::new(0, "out/a-fox-1.png").with_content("ab12", 1_234, "image/png");
    /// ledger.finish_job(&"kolbo".into(), "g1", &JobFinish::done(2_000, vec![image])).await?;
    /// let saved = ledger.saved_jobs("k1").await?;
    /// assert_eq!(saved[0].images[0].path, std::path::Path::new("out/a-fox-1.png"));
    /// # Ok(()) }
    /// ```
    async fn saved_jobs(&self, request_key: &str) -> Result<Vec<SavedJob>, LedgerError>;

    /// Jobs newest first, at most `query.limit`, optionally only those whose prompt
    /// contains `query.search`, each with its provider, model, credits and files.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::{AcceptedJob, HistoryQuery};
    /// for (id, prompt, at) in [("g1", "a red fox", 1_000), ("g2", "a koi pond", 2_000)] {
    ///     let job = AcceptedJob::new(JobHandle::new("kolbo", id, 1, at), prompt, "out", Credits::whole(1));
    ///     ledger.record_accepted(&job).await?;
    /// }
    /// let all = ledger.history(&HistoryQuery::newest(10)).await?;
    /// assert_eq!(all[0].prompt, "a koi pond");
    /// let foxes = ledger.history(&HistoryQuery::newest(10).matching("FOX")).await?;
    /// assert_eq!(foxes.len(), 1);
    /// # Ok(()) }
    /// ```
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, LedgerError>;

    /// What charged jobs cost, summed by provider, model or UTC day (of acceptance). Only
    /// jobs with a known charge count.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::{AcceptedJob, SpendGroup, SpendQuery};
    /// let handle = JobHandle::new("kolbo", "g1", 1, 1_767_225_600_000)
    ///     .with_credits_charged(Credits::whole(8));
    /// ledger.record_accepted(&AcceptedJob::new(handle, "p", "out", Credits::whole(8))).await?;
    /// let days = ledger.spend(&SpendQuery::by(SpendGroup::Day)).await?;
    /// assert_eq!(days[0].day.as_deref(), Some("2026-01-01"));
    /// assert_eq!(days[0].credits, Credits::whole(8));
    /// # Ok(()) }
    /// ```
    async fn spend(&self, query: &SpendQuery) -> Result<Vec<SpendRow>, LedgerError>;

    /// Imports records of today's JSONL journal (converted to [`JournalEntry`]) in one
    /// transaction: accepted jobs become open jobs, finished ones are finished, skipped
    /// ones are counted. Importing the same records again adds nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::JournalEntry;
    /// let entries = [JournalEntry::Accepted {
    ///     at_ms: 1_000,
    ///     job: JobHandle::new("kolbo", "g1", 1, 1_000),
    ///     prompt: "a fox".into(),
    ///     out_dir: "out".into(),
    ///     reserved: Credits::whole(8),
    /// }];
    /// assert_eq!(ledger.import_journal(&entries).await?.accepted, 1);
    /// assert_eq!(ledger.import_journal(&entries).await?.already_known, 1);
    /// assert_eq!(ledger.open_jobs().await?.len(), 1);
    /// # Ok(()) }
    /// ```
    async fn import_journal(&self, entries: &[JournalEntry]) -> Result<ImportReport, LedgerError>;

    /// Creates budget `name`, or changes its limit (`None`: unlimited, still counting).
    /// What was spent and reserved is kept.
    async fn set_budget(&self, name: &str, limit: Option<Credits>) -> Result<(), LedgerError>;

    /// Budget `name`'s figures, or `None` when there is no such budget.
    async fn budget(&self, name: &str) -> Result<Option<BudgetStatus>, LedgerError>;

    /// Holds `amount` against budget `name` atomically: it succeeds only when
    /// `spent + reserved + amount <= limit`, whatever else reserves at the same time, and
    /// otherwise fails with [`LedgerError::BudgetExceeded`] holding nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::Credits;
    /// use imagegen_ledger::LedgerError;
    /// ledger.set_budget("run", Some(Credits::whole(20))).await?;
    /// let first = ledger.reserve("run", Credits::whole(16)).await?;
    /// let refused = ledger.reserve("run", Credits::whole(8)).await;
    /// assert!(matches!(refused, Err(LedgerError::BudgetExceeded { .. })));
    /// // The provider charged 10: the other 6 come back.
    /// let settled = ledger.settle(first, Credits::whole(10)).await?;
    /// assert_eq!(settled.overshoot, None);
    /// assert!(ledger.settle(first, Credits::whole(10)).await.is_err()); // never twice
    /// let second = ledger.reserve("run", Credits::whole(8)).await?;
    /// ledger.release(second).await?;
    /// let run = ledger.budget("run").await?.expect("set above");
    /// assert_eq!((run.spent, run.reserved), (Credits::whole(10), Credits::ZERO));
    /// # Ok(()) }
    /// ```
    async fn reserve(&self, budget: &str, amount: Credits) -> Result<ReservationId, LedgerError>;

    /// Lowers what reservation `id` holds to `amount` (part of a request was never sent).
    async fn shrink(&self, id: ReservationId, amount: Credits) -> Result<(), LedgerError>;

    /// Ends reservation `id` with `charged` spent; the rest comes back. A charge above the
    /// reservation is counted in full (money spent is spent) and reported as overshoot.
    /// A reservation settles once: again is [`LedgerError::ReservationClosed`].
    async fn settle(&self, id: ReservationId, charged: Credits) -> Result<Settlement, LedgerError>;

    /// Ends reservation `id` with nothing spent.
    async fn release(&self, id: ReservationId) -> Result<(), LedgerError>;

    /// No calls to `provider` (`model`, or the whole provider for `None`) before
    /// `until_ms`. A cooldown only ever grows: an earlier `until_ms` than the one stored
    /// changes nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::ModelId;
    /// let model = ModelId::new("nano-banana-2");
    /// ledger.set_cooldown(&"kolbo".into(), Some(&model), 5_000).await?;
    /// ledger.set_cooldown(&"kolbo".into(), Some(&model), 3_000).await?; // shorter: ignored
    /// assert_eq!(ledger.cooldown(&"kolbo".into(), Some(&model), 1_000).await?, Some(5_000));
    /// assert_eq!(ledger.cooldown(&"kolbo".into(), Some(&model), 5_000).await?, None); // over
    /// assert_eq!(ledger.cooldown(&"kolbo".into(), None, 1_000).await?, None);
    /// # Ok(()) }
    /// ```
    async fn set_cooldown(
        &self,
        provider: &ProviderId,
        model: Option<&ModelId>,
        until_ms: u64,
    ) -> Result<(), LedgerError>;

    /// When the cooldown of `provider` (`model`, or the whole provider for `None`) ends, if
    /// it is still running at `now_ms`.
    async fn cooldown(
        &self,
        provider: &ProviderId,
        model: Option<&ModelId>,
        now_ms: u64,
    ) -> Result<Option<u64>, LedgerError>;

    /// Every cooldown still running at `now_ms`.
    async fn cooldowns(&self, now_ms: u64) -> Result<Vec<Cooldown>, LedgerError>;

    /// Stores a gateway key (its hash, never the key), stamped with the ledger's clock,
    /// and returns it as stored. A live key with the same name is
    /// [`LedgerError::DuplicateApiKeyName`]; a bad name is
    /// [`LedgerError::InvalidApiKeyName`]; in both cases nothing is stored. See
    /// [`api_keys`] for the whole life of a key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::Credits;
    /// use imagegen_ledger::{ApiKey, KeyPeriod, LedgerError, NewApiKey};
    /// let new = NewApiKey::new("ci-bot", &ApiKey::generate()?)
    ///     .with_limit(Credits::whole(20))
    ///     .with_period(KeyPeriod::Day);
    /// let created = ledger.create_api_key(&new).await?;
    /// assert_eq!((created.limit, created.period), (Some(Credits::whole(20)), KeyPeriod::Day));
    /// let again = NewApiKey::new("ci-bot", &ApiKey::generate()?);
    /// assert!(matches!(
    ///     ledger.create_api_key(&again).await,
    ///     Err(LedgerError::DuplicateApiKeyName { .. })
    /// ));
    /// # Ok(()) }
    /// ```
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, LedgerError>;

    /// The live gateway key whose hash is `key_hash` ([`api_key_hash`] of the presented
    /// key), with its spend in the current period; `None` for an unknown or revoked key.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, LedgerError>;

    /// Every gateway key, live and revoked, oldest first, each with its limit and what it
    /// spent and holds in its current period (of the ledger's clock). Never the keys or
    /// their hashes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::Credits;
    /// use imagegen_ledger::{ApiKey, NewApiKey};
    /// let created = ledger.create_api_key(&NewApiKey::new("ci-bot", &ApiKey::generate()?)).await?;
    /// let budget = ledger.ensure_key_budget(&created, 0).await?.expect("live");
    /// let held = ledger.reserve(&budget, Credits::whole(3)).await?;
    /// ledger.settle(held, Credits::whole(2)).await?;
    /// let keys = ledger.list_api_keys().await?;
    /// assert_eq!((keys[0].name.as_str(), keys[0].spent), ("ci-bot", Credits::whole(2)));
    /// # Ok(()) }
    /// ```
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, LedgerError>;

    /// Revokes the live gateway key named `name_or_prefix`, or whose display prefix
    /// (`igk_` and 6 hex digits) or whole key it is: `true` when a key was revoked,
    /// `false` when no live key matches. A prefix shared by several live keys is
    /// [`LedgerError::AmbiguousApiKey`] and revokes nothing. A revoked key is never found
    /// again; its name may be reused.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_ledger::{ApiKey, NewApiKey};
    /// let key = ApiKey::generate()?;
    /// ledger.create_api_key(&NewApiKey::new("ci-bot", &key)).await?;
    /// assert!(ledger.revoke_api_key(key.prefix()).await?);
    /// assert!(!ledger.revoke_api_key("ci-bot").await?); // already revoked
    /// assert!(ledger.find_api_key(key.hash()).await?.is_none());
    /// assert!(ledger.list_api_keys().await?[0].revoked_at_ms.is_some());
    /// # Ok(()) }
    /// ```
    async fn revoke_api_key(&self, name_or_prefix: &str) -> Result<bool, LedgerError>;

    /// Creates the budget of `key`'s period at `now_ms`
    /// ([`ApiKeyRecord::budget_name`]) with the key's limit when it does not exist yet,
    /// and returns its name, for [`reserve`](Ledger::reserve) and
    /// [`settle`](Ledger::settle). One `INSERT … ON CONFLICT DO NOTHING`: idempotent,
    /// and safe with any number of concurrent callers; an existing budget is left as it
    /// is. `None` for a revoked key (it may spend nothing).
    async fn ensure_key_budget(
        &self,
        key: &ApiKeyRecord,
        now_ms: u64,
    ) -> Result<Option<String>, LedgerError>;

    /// Claims the idempotency record (`scope`, `idem_key`) for a request whose hash is
    /// `request_hash`, atomically (one `INSERT … ON CONFLICT DO NOTHING`, then a read):
    /// [`IdempotencyBegin::Started`] for exactly one of any number of concurrent callers;
    /// otherwise what the record holds ([`Running`](IdempotencyBegin::Running),
    /// [`Done`](IdempotencyBegin::Done)), or [`Conflict`](IdempotencyBegin::Conflict) when
    /// it was claimed for another request hash. See [`idempotency`].
    ///
    /// A claim names the generation that runs it (`generation_id`), recorded in the same
    /// statement: a repeat that finds the record still running reads that generation
    /// ([`idempotent_generation`](Ledger::idempotent_generation)), which another gateway
    /// answers if the first one died. A gateway records the generation
    /// ([`create_generation`](Ledger::create_generation)) before it claims, so the link
    /// never points at nothing.
    async fn begin_idempotent(
        &self,
        scope: &str,
        idem_key: &str,
        request_hash: &str,
        generation_id: Option<&str>,
        now_ms: u64,
    ) -> Result<IdempotencyBegin, LedgerError>;

    /// Records the response of a running idempotent request (stamped with the ledger's
    /// clock): later [`begin_idempotent`](Ledger::begin_idempotent) calls get it as
    /// [`IdempotencyBegin::Done`]. `true` when a running record became done; `false` when
    /// there is none (abandoned, or already done: the first response stands).
    async fn finish_idempotent(
        &self,
        scope: &str,
        idem_key: &str,
        status: u16,
        response: &str,
    ) -> Result<bool, LedgerError>;

    /// Deletes a running idempotency record, for a request that failed with nothing
    /// charged, so a retry with the same key may run. `true` when one was deleted; a
    /// finished record is never deleted.
    async fn abandon_idempotent(&self, scope: &str, idem_key: &str) -> Result<bool, LedgerError>;

    /// Deletes every idempotency record created before `before_ms` (done or still
    /// marked running, as one left by a process that crashed), and returns how many: a
    /// key older than that may be used again. Run it now and then with a cutoff well past
    /// any request's running time (a day, say).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_ledger::IdempotencyBegin;
    /// ledger.begin_idempotent("anonymous", "k1", "h1", None, 1_000).await?;
    /// ledger.begin_idempotent("anonymous", "k2", "h2", None, 5_000).await?;
    /// assert_eq!(ledger.prune_idempotent(2_000).await?, 1);
    /// let again = ledger.begin_idempotent("anonymous", "k1", "h1", None, 6_000).await?;
    /// assert_eq!(again, IdempotencyBegin::Started);
    /// # Ok(()) }
    /// ```
    async fn prune_idempotent(&self, before_ms: u64) -> Result<u64, LedgerError>;

    /// The generation idempotency record (`scope`, `idem_key`) is linked to: a repeat
    /// that finds the record still running reads that generation, which another gateway
    /// may have finished after the first one died.
    async fn idempotent_generation(
        &self,
        scope: &str,
        idem_key: &str,
    ) -> Result<Option<String>, LedgerError>;

    /// Saved images, newest first, a page at a time, as `query` filters them (see
    /// [`image_query`]).
    async fn images(&self, query: &ImageQuery) -> Result<Vec<ImageEntry>, LedgerError>;

    /// One saved image with its job, when recorded.
    async fn image(&self, key: &ImageKey) -> Result<Option<ImageEntry>, LedgerError>;

    /// Removes a saved image's record (its job and what it cost stay), and says whether
    /// its file is still named by another record; `None` when there was none.
    async fn delete_image(&self, key: &ImageKey) -> Result<Option<DeletedImage>, LedgerError>;

    /// Whether a request with key `request_key` was recorded. A client records its
    /// request before it first sends it (the write-ahead of
    /// `imagegen::job_log::JobLog::record_submitting`), so a request recorded without a
    /// job may have been charged for, its answer lost with the process that sent it; one
    /// never recorded was never sent.
    async fn request_recorded(&self, request_key: &str) -> Result<bool, LedgerError>;

    /// Every job of every request recorded with `request_key`, in any state, with the
    /// images saved so far, oldest first: what a generation taken over from a gateway
    /// that died answers with.
    async fn request_jobs(&self, request_key: &str) -> Result<Vec<SavedJob>, LedgerError>;

    /// Renews every lease `owner` holds, on its open jobs, its running generations and
    /// its held reservations ([`Ledger::reserve_leased`]), until `until_ms`; returns how
    /// many rows it renewed. A gateway instance calls this well within its lease time for
    /// as long as it runs (see [`lease`]).
    async fn renew_leases(&self, owner: &str, until_ms: u64) -> Result<u64, LedgerError>;

    /// Ends every lease `owner` holds, now (on jobs, generations and held reservations):
    /// what it leaves open may be claimed or resolved by another instance at once (a
    /// graceful stop). Returns how many rows it released.
    async fn release_leases(&self, owner: &str) -> Result<u64, LedgerError>;

    /// Claims for `lease` up to `limit` open jobs whose lease ran out (their instance
    /// died), oldest first, and returns them: the caller now finishes them. Jobs recorded
    /// without a lease, and the claimer's own, are never claimed. Of concurrent
    /// claimers, one gets each job.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::{Credits, JobHandle};
    /// use imagegen_ledger::{AcceptedJob, Lease};
    /// // Instance "a" accepted a job, leased until 1 ms after the epoch: long run out.
    /// let handle = JobHandle::new("kolbo", "gen_1", 1, 1_767_225_600_000);
    /// let job = AcceptedJob::new(handle, "a fox", "out", Credits::whole(8)).with_lease(Lease::new("a", 1));
    /// ledger.record_accepted(&job).await?;
    /// let far = u64::MAX / 2;
    /// let claimed = ledger.claim_expired_jobs(&Lease::new("b", far), 10).await?;
    /// assert_eq!(claimed.len(), 1);
    /// assert_eq!(claimed[0].lease, Some(Lease::new("b", far)));
    /// assert!(ledger.claim_expired_jobs(&Lease::new("c", far), 10).await?.is_empty());
    /// # Ok(()) }
    /// ```
    async fn claim_expired_jobs(
        &self,
        lease: &Lease,
        limit: u32,
    ) -> Result<Vec<JobRecord>, LedgerError>;

    /// Records a background generation that starts now (see [`generations`]).
    async fn create_generation(&self, generation: &NewGeneration) -> Result<(), LedgerError>;

    /// Names the request (`request_key`, whose jobs a gateway that takes generation `id`
    /// over looks up) of a generation recorded without one, as it claimed its
    /// `Idempotency-Key`. Only while it runs and is still leased to `owner`: `false`
    /// when another gateway took it over (its owner stalled past its lease) or it was
    /// answered, and then nothing may be sent for it.
    async fn set_generation_request_key(
        &self,
        id: &str,
        owner: &str,
        request_key: &str,
    ) -> Result<bool, LedgerError>;

    /// Generation `id`, when recorded.
    async fn generation(&self, id: &str) -> Result<Option<GenerationRecord>, LedgerError>;

    /// Keeps `progress` (JSON) as the latest progress of running generation `id`.
    async fn set_generation_progress(&self, id: &str, progress: &str) -> Result<(), LedgerError>;

    /// Finishes running generation `id` with its answer (HTTP `status`, JSON
    /// `response`); `false` when it was not running (the first answer stands).
    async fn finish_generation(
        &self,
        id: &str,
        status: u16,
        response: &str,
    ) -> Result<bool, LedgerError>;

    /// Claims for `lease` up to `limit` running generations whose lease ran out, oldest
    /// first; as [`Ledger::claim_expired_jobs`].
    async fn claim_expired_generations(
        &self,
        lease: &Lease,
        limit: u32,
    ) -> Result<Vec<GenerationRecord>, LedgerError>;

    /// Takes a slot for one call to `provider` on `account`, which allows `limit` calls
    /// per `window_ms`, or says how long to wait: a sliding window shared by every
    /// process on this ledger (see [`rate_slots`]).
    async fn acquire_rate_slot(
        &self,
        provider: &ProviderId,
        account: &AccountHash,
        limit: u32,
        window_ms: u64,
    ) -> Result<RateSlot, LedgerError>;

    /// The call of slot `id` has its answer: the slot counts for one more window.
    async fn finish_rate_slot(&self, id: RateSlotId) -> Result<(), LedgerError>;

    /// Closes every connection; later calls fail. Dropping the ledger also closes them.
    async fn close(&self);

    /// Holds `amount` on `budget` as [`Ledger::reserve`] does, for gateway generation
    /// `generation_id` under `lease`: the hold's owner renews it with its other leases
    /// ([`Ledger::renew_leases`]); should the owner die, another gateway resolves it once
    /// the lease runs out ([`Ledger::resolve_expired_holds`], see [`holds`]). Link the
    /// generation before anything can be sent for it: what was sent is read from that
    /// generation's request.
    async fn reserve_leased(
        &self,
        budget: &str,
        amount: Credits,
        generation_id: &str,
        lease: &Lease,
    ) -> Result<ReservationId, LedgerError>;

    /// Resolves up to `limit` held reservations whose lease ran out (their gateway died),
    /// oldest first, for `lease`'s owner, from what the ledger knows was sent (see
    /// [`holds`]): settled at the charges of its generation's jobs once none is open,
    /// settled in full when its request was recorded and no job was (it may have been
    /// charged), released when nothing was sent. One whose jobs are still open stays held
    /// and is looked at again after `lease.until_ms`. Reservations without a lease and
    /// the caller's own are never touched; of concurrent callers, one resolves each.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
    /// use imagegen_core::Credits;
    /// use imagegen_ledger::{HoldOutcome, Lease};
    /// ledger.set_budget("key:1:total", Some(Credits::whole(10))).await?;
    /// // Gateway "a" held 8 credits for generation "req_1", then died before sending it.
    /// let held = Lease::new("a", 1);
    /// ledger.reserve_leased("key:1:total", Credits::whole(8), "req_1", &held).await?;
    /// let resolved = ledger.resolve_expired_holds(&Lease::new("b", u64::MAX / 2), 16).await?;
    /// assert_eq!(resolved.len(), 1);
    /// assert_eq!(resolved[0].outcome, HoldOutcome::Released);
    /// let budget = ledger.budget("key:1:total").await?.expect("set above");
    /// assert_eq!(budget.remaining, Some(Credits::whole(10)));
    /// # Ok(()) }
    /// ```
    async fn resolve_expired_holds(
        &self,
        lease: &Lease,
        limit: u32,
    ) -> Result<Vec<HoldResolution>, LedgerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `open` can be spawned on a multi-threaded runtime.
    #[test]
    fn opening_is_send() {
        fn send<T: Send>(_: &T) {}
        send(&open("ledger.sqlite3"));
        send(&SqliteLedger::open(
            "ledger.sqlite3",
            &LedgerOptions::default(),
        ));
        send(&PostgresLedger::open(
            "postgres://db/x",
            &LedgerOptions::default(),
        ));
    }
}

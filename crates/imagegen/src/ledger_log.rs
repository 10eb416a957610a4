//! [`LedgerLog`]: paid jobs recorded in the `imagegen-ledger` store (SQLite or
//! PostgreSQL), with their requests, images and charges, so that `resume` finds every open
//! job from any run, a batch run again can skip what it saved, and history and spend can
//! be read back.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use imagegen::job_log::JobLog;
//! use imagegen::ledger_log::LedgerLog;
//! let dir = tempfile::tempdir()?;
//! let ledger = imagegen_ledger::open(&dir.path().join("ledger.sqlite3").display().to_string()).await?;
//! let log = LedgerLog::new(ledger);
//! assert!(log.open_jobs().await?.jobs.is_empty());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use imagegen_core::provider::unix_millis;
use imagegen_core::{CallPlan, Credits, JobHandle, SharedClock, TokioClock};
use imagegen_ledger::{
    AcceptedJob, JobFinish, JobRecord, Ledger, LedgerError, NewImage, NewRequest, RequestId,
};

use crate::generation::SavedImage;
use crate::job_log::{AcceptedRecord, JobLog, OpenJobs, RunContext, SubmittingRecord};
use crate::journal::{Outcome, UnfinishedJob};

/// A [`JobLog`] on the ledger; see the [module docs](self).
pub struct LedgerLog {
    ledger: Arc<dyn Ledger>,
    clock: SharedClock,
    /// The ledger's id of each request already recorded, by request key.
    requests: Mutex<HashMap<String, RequestId>>,
    /// The batch the requests of this log belong to, if any.
    batch_key: Option<String>,
    /// The instance waiting on its jobs, and how long each lease lasts.
    lease: Option<(String, std::time::Duration)>,
    /// The gateway key paying for its jobs.
    api_key: Option<imagegen_ledger::ApiKeyId>,
}

impl std::fmt::Debug for LedgerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerLog")
            .field("ledger", &self.ledger.url())
            .field("batch_key", &self.batch_key)
            .finish_non_exhaustive()
    }
}

impl LedgerLog {
    /// A log on `ledger`.
    pub fn new(ledger: Arc<dyn Ledger>) -> Self {
        Self {
            ledger,
            clock: TokioClock::shared(),
            requests: Mutex::new(HashMap::new()),
            batch_key: None,
            lease: None,
            api_key: None,
        }
    }

    /// Leases each job it records to `owner` for `lease` (see
    /// [`imagegen_ledger::lease`]): if `owner` dies before the job is finished, another
    /// instance on the ledger claims it once the lease ran out and finishes it. The owner
    /// renews its leases itself ([`Ledger::renew_leases`]).
    #[must_use]
    pub fn leased_to(mut self, owner: impl Into<String>, lease: std::time::Duration) -> Self {
        self.lease = Some((owner.into(), lease));
        self
    }

    /// Records each job as paid by gateway key `key`.
    #[must_use]
    pub fn paid_by(mut self, key: imagegen_ledger::ApiKeyId) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Records requests as lines of the batch `key` (its file path, say).
    #[must_use]
    pub fn in_batch(mut self, key: impl Into<String>) -> Self {
        self.batch_key = Some(key.into());
        self
    }

    /// Stamps records with `clock`'s wall time.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The ledger underneath.
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    /// [`JobLog::record_finished`] when the caller already knows the SHA-256 of each saved
    /// image (`hashes[i]` for `saved[i]`; a missing one is read from the file), as a
    /// content-addressed store does: no image is hashed twice.
    pub async fn record_finished_hashed(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        saved: &[SavedImage],
        hashes: &[String],
    ) -> io::Result<()> {
        let now = self.now_ms();
        let finish = match outcome {
            Outcome::Saved { .. } => {
                let images = saved
                    .iter()
                    .enumerate()
                    .map(|(i, s)| new_image(s, hashes.get(i).cloned()))
                    .collect();
                let mut finish = JobFinish::done(now, images);
                let charged = saved
                    .iter()
                    .filter_map(|s| s.image.credits)
                    .try_fold(Credits::ZERO, Credits::checked_add);
                if let Some(charged) =
                    charged.filter(|_| saved.iter().all(|s| s.image.credits.is_some()))
                {
                    finish = finish.with_charged(charged);
                }
                if let Some(model) = saved.iter().find_map(|s| s.image.model.clone()) {
                    finish = finish.with_model(model);
                }
                finish
            }
            Outcome::Failed { error } => JobFinish::failed(now, error.clone()),
        };
        self.ledger
            .finish_job(&job.provider, &job.job_id, &finish)
            .await
            .map_err(to_io)?;
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        unix_millis(self.clock.wall_time())
    }

    /// The ledger's id of the request of `prompt` into `out_dir` in `context`, recording
    /// it the first time (before its first submission, see
    /// [`JobLog::record_submitting`]).
    async fn request_id(
        &self,
        prompt: &str,
        out_dir: &Path,
        context: &RunContext,
    ) -> Result<Option<RequestId>, LedgerError> {
        let Some(key) = context.request_key.as_deref() else {
            return Ok(None);
        };
        let known = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied();
        if let Some(id) = known {
            return Ok(Some(id));
        }
        let mut request = NewRequest::new(
            prompt,
            context.request_json.clone().unwrap_or_default(),
            out_dir,
            key,
            self.now_ms(),
        );
        if let (Some(batch), Some(line)) = (&self.batch_key, context.batch_line) {
            request = request.in_batch(batch.clone(), line);
        }
        let id = self.ledger.record_request(&request).await?;
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), id);
        Ok(Some(id))
    }
}

fn to_io(error: LedgerError) -> io::Error {
    io::Error::other(error)
}

#[async_trait]
impl JobLog for LedgerLog {
    fn location(&self) -> String {
        self.ledger.url().to_owned()
    }

    async fn record_submitting(&self, submitting: &SubmittingRecord<'_>) -> io::Result<()> {
        // The request's row is the write-ahead: a request in the ledger without a job
        // may have been charged for (see `Ledger::request_recorded`).
        self.request_id(submitting.prompt, submitting.out_dir, submitting.context)
            .await
            .map_err(to_io)?;
        Ok(())
    }

    async fn record_accepted(&self, accepted: &AcceptedRecord<'_>) -> io::Result<()> {
        let request = self
            .request_id(accepted.prompt, accepted.out_dir, accepted.context)
            .await
            .map_err(to_io)?;
        let mut job = AcceptedJob::new(
            accepted.job.clone(),
            accepted.prompt,
            accepted.out_dir,
            accepted.reserved,
        );
        if let Some(plan) = accepted.plan.and_then(|p| serde_json::to_string(p).ok()) {
            job = job.with_plan_json(plan);
        }
        if let Some(request) = request {
            job = job.with_request(request);
        }
        if let Some((owner, lease)) = &self.lease {
            let until = imagegen_core::provider::unix_millis(self.clock.wall_time())
                .saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX));
            job = job.with_lease(imagegen_ledger::Lease::new(owner.clone(), until));
        }
        if let Some(key) = self.api_key {
            job = job.with_api_key(key);
        }
        self.ledger.record_accepted(&job).await.map_err(to_io)?;
        Ok(())
    }

    async fn record_finished(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        saved: &[SavedImage],
    ) -> io::Result<()> {
        self.record_finished_hashed(job, outcome, saved, &[]).await
    }

    async fn record_skipped(&self, prompt: &str, reason: &str) -> io::Result<()> {
        // Nothing was sent or paid: the ledger keeps money, not intentions.
        tracing::debug!(prompt = %imagegen_core::prompt_preview(prompt), %reason, "skipped");
        Ok(())
    }

    async fn open_jobs(&self) -> io::Result<OpenJobs> {
        let jobs = self.ledger.open_jobs().await.map_err(to_io)?;
        Ok(OpenJobs {
            jobs: jobs.into_iter().map(UnfinishedJob::from).collect(),
            bad_lines: Vec::new(),
        })
    }
}

/// A ledger job as `resume` takes it (its plan read back when the ledger kept one).
impl From<JobRecord> for UnfinishedJob {
    fn from(record: JobRecord) -> Self {
        let plan = record
            .plan_json
            .as_deref()
            .and_then(|json| serde_json::from_str::<CallPlan>(json).ok());
        Self {
            job: record.handle,
            plan,
            prompt: record.prompt,
            out_dir: record.out_dir,
            reserved_credits: record.reserved,
        }
    }
}

/// A saved image as the ledger keeps it: its file's SHA-256, size, type, size in pixels,
/// alt text and source.
fn new_image(saved: &SavedImage, known_hash: Option<String>) -> NewImage {
    let index = u32::try_from(saved.image.index).unwrap_or(u32::MAX);
    let mut image = NewImage::new(index, &saved.path)
        .with_source_url(crate::generation::shown_url(&saved.image.url));
    let hash = match known_hash {
        Some(hash) => Ok(hash),
        None => imagegen_ledger::digest::file_sha256(&saved.path).map(|(hash, _)| hash),
    };
    match hash {
        Ok(hash) => image = image.with_content(hash, saved.bytes, saved.mime),
        Err(e) => {
            tracing::warn!(path = %saved.path.display(), error = %e, "the image could not be hashed")
        }
    }
    if let (Some(width), Some(height)) = (saved.width, saved.height) {
        image = image.with_dimensions(width, height);
    }
    if let Some(alt) = &saved.image.alt {
        image = image.with_alt_text(alt.clone());
    }
    image
}

/// What [`import_journal`] did: what the ledger took, and the journal lines it had to
/// skip.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JournalImport {
    /// Counts of what was imported.
    pub report: imagegen_ledger::ImportReport,
    /// Lines of the journal that could not be read (skipped; every other line imported).
    pub bad_lines: Vec<crate::journal::BadLine>,
}

/// Imports the JSON Lines journal at `path` into `ledger`: its accepted jobs (open ones
/// become resumable from the ledger), how they ended, nothing twice. A bad line is
/// skipped and reported, never a reason to refuse the file.
pub async fn import_journal(
    ledger: &dyn Ledger,
    path: &Path,
) -> Result<JournalImport, crate::Error> {
    use crate::journal::JournalRecord;
    use imagegen_ledger::{JournalEntry, JournalOutcome};
    let contents = crate::journal::read_journal(path)
        .map_err(|e| crate::Error::io("reading the journal", path, e))?;
    let entries: Vec<JournalEntry> = contents
        .records
        .iter()
        .map(|record| match record {
            JournalRecord::Accepted {
                at_ms,
                job,
                prompt,
                out_dir,
                reserved_credits,
                ..
            } => JournalEntry::Accepted {
                at_ms: *at_ms,
                job: job.clone(),
                prompt: prompt.clone(),
                out_dir: out_dir.clone(),
                reserved: *reserved_credits,
            },
            JournalRecord::Finished {
                at_ms,
                provider,
                job_id,
                outcome,
                ..
            } => JournalEntry::Finished {
                at_ms: *at_ms,
                provider: provider.clone(),
                job_id: job_id.clone(),
                outcome: match outcome {
                    Outcome::Saved { paths } => JournalOutcome::Saved {
                        paths: paths.clone(),
                    },
                    Outcome::Failed { error } => JournalOutcome::Failed {
                        error: error.clone(),
                    },
                },
            },
            JournalRecord::Skipped {
                at_ms,
                prompt,
                reason,
                ..
            } => JournalEntry::Skipped {
                at_ms: *at_ms,
                prompt: prompt.clone(),
                reason: reason.clone(),
            },
        })
        .collect();
    let report = ledger.import_journal(&entries).await?;
    Ok(JournalImport {
        report,
        bad_lines: contents.bad_lines,
    })
}

//! [`JobLog`]: where a run records every paid job, durably, before it waits on it.
//!
//! Two logs implement it: the [`Journal`](crate::journal::Journal), a JSON Lines file
//! (light, no database), and the ledger log, the
//! `imagegen-ledger` store (SQLite or PostgreSQL) that the CLI uses, which also keeps
//! images, spend and history. A run calls [`JobLog::record_accepted`] the moment a
//! provider accepts a job (awaited before the first poll), [`JobLog::record_finished`]
//! when its images are saved or it failed for good, and `resume` reads
//! [`JobLog::open_jobs`].
//!
//! A write that fails is an error the run reports loudly ([`crate::Error::JournalWrite`]),
//! and the client submits nothing more.

use std::fmt;
use std::io;
use std::path::Path;

use async_trait::async_trait;
use imagegen_core::{CallPlan, Credits, GenerationRequest, JobHandle};
use imagegen_router::CallOptions;

use crate::generation::SavedImage;
use crate::journal::{BadLine, Outcome, UnfinishedJob};

/// What run an accepted job belongs to: the request it was sent for, and its batch line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RunContext {
    /// The request's key (see [`request_key`]): the same request into the
    /// same directory has the same key, so a batch run again can skip what was saved.
    pub request_key: Option<String>,
    /// The request as JSON (the `GenerationRequest` and its call options).
    pub request_json: Option<String>,
    /// The batch line it came from, from 1.
    pub batch_line: Option<u32>,
}

/// An accepted job, as [`JobLog::record_accepted`] records it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AcceptedRecord<'a> {
    /// The provider's job handle: what `resume` needs.
    pub job: &'a JobHandle,
    /// The call it was sent as.
    pub plan: Option<&'a CallPlan>,
    /// The prompt.
    pub prompt: &'a str,
    /// Where its images go.
    pub out_dir: &'a Path,
    /// Credits reserved for it.
    pub reserved: Credits,
    /// The run it belongs to.
    pub context: &'a RunContext,
}

/// A submission about to be sent, as [`JobLog::record_submitting`] records it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SubmittingRecord<'a> {
    /// The call about to be sent.
    pub plan: &'a CallPlan,
    /// The prompt.
    pub prompt: &'a str,
    /// Where its images go.
    pub out_dir: &'a Path,
    /// The run it belongs to.
    pub context: &'a RunContext,
}

/// The jobs a log holds open, and (for a file) the lines it had to skip.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct OpenJobs {
    /// Accepted and not finished, oldest first.
    pub jobs: Vec<UnfinishedJob>,
    /// Lines of a journal file that could not be read (always empty for a database).
    pub bad_lines: Vec<BadLine>,
}

/// A log whose open jobs are exactly the ones chosen (jobs a gateway took over, one job
/// an agent asked to finish); every record goes to `log` underneath. Hand it to
/// [`Client::resume`](crate::Client::resume) to finish just those jobs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use imagegen::JobHandle;
/// use imagegen::job_log::{ChosenJobs, JobLog};
/// use imagegen::journal::{Journal, UnfinishedJob};
/// let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("journal.jsonl"))?;
/// let job = UnfinishedJob {
///     job: JobHandle::new("kolbo", "gen_1", 1, 1_767_225_600_000),
///     plan: None,
///     prompt: "a fox".into(),
///     out_dir: dir.path().to_path_buf(),
///     reserved_credits: imagegen::Credits::whole(1),
/// };
/// let chosen = ChosenJobs::new(Arc::new(journal), vec![job]);
/// // Open: exactly the chosen job, whatever the journal holds.
/// assert_eq!(chosen.open_jobs().await?.jobs.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ChosenJobs {
    log: std::sync::Arc<dyn JobLog>,
    jobs: Vec<UnfinishedJob>,
}

impl ChosenJobs {
    /// `jobs`, recorded in `log`.
    pub fn new(log: std::sync::Arc<dyn JobLog>, jobs: Vec<UnfinishedJob>) -> Self {
        Self { log, jobs }
    }

    /// The chosen jobs.
    pub fn jobs(&self) -> &[UnfinishedJob] {
        &self.jobs
    }
}

#[async_trait]
impl JobLog for ChosenJobs {
    fn location(&self) -> String {
        self.log.location()
    }

    async fn record_submitting(&self, submitting: &SubmittingRecord<'_>) -> io::Result<()> {
        self.log.record_submitting(submitting).await
    }

    async fn record_accepted(&self, accepted: &AcceptedRecord<'_>) -> io::Result<()> {
        self.log.record_accepted(accepted).await
    }

    async fn record_finished(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        saved: &[SavedImage],
    ) -> io::Result<()> {
        self.log.record_finished(job, outcome, saved).await
    }

    async fn record_skipped(&self, prompt: &str, reason: &str) -> io::Result<()> {
        self.log.record_skipped(prompt, reason).await
    }

    async fn open_jobs(&self) -> io::Result<OpenJobs> {
        Ok(OpenJobs::from(self.jobs.clone()))
    }
}

impl From<Vec<UnfinishedJob>> for OpenJobs {
    /// Exactly `jobs` open, no bad lines: a log of jobs chosen elsewhere (a gateway's
    /// jobs taken over from one that died, say).
    fn from(jobs: Vec<UnfinishedJob>) -> Self {
        Self {
            jobs,
            bad_lines: Vec::new(),
        }
    }
}

/// A durable record of paid jobs; see the [module docs](self).
#[async_trait]
pub trait JobLog: Send + Sync + fmt::Debug {
    /// Where the log is, for messages: a file path, or a database URL without secrets.
    fn location(&self) -> String;

    /// Records, before a submission is sent, that the request may be charged for from
    /// now on: a process that dies between the provider's answer and
    /// [`record_accepted`](JobLog::record_accepted) leaves this behind, so whoever takes
    /// its request over knows it may have been paid for and does not send it again.
    /// Returns once durable; an error stops the run before anything is sent. The default
    /// records nothing (a journal file learns of a job when it is accepted); a log that
    /// wraps another passes it on.
    async fn record_submitting(&self, submitting: &SubmittingRecord<'_>) -> io::Result<()> {
        let _ = submitting;
        Ok(())
    }

    /// Records an accepted (paid) job; returns once it is durable.
    async fn record_accepted(&self, accepted: &AcceptedRecord<'_>) -> io::Result<()>;

    /// Records how `job` ended; `saved` are its images on disk (empty when it failed).
    async fn record_finished(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        saved: &[SavedImage],
    ) -> io::Result<()>;

    /// Records that a prompt was not submitted, and why.
    async fn record_skipped(&self, prompt: &str, reason: &str) -> io::Result<()>;

    /// Every job accepted and not finished.
    async fn open_jobs(&self) -> io::Result<OpenJobs>;
}

/// The key of a request: the same request (prompt, options, routing choices) into the
/// same directory has the same key, so a batch run again can tell which lines were saved.
/// A hex SHA-256 of the request's JSON and the directory.
///
/// ```
/// use imagegen::{CallOptions, GenerationRequest};
/// let fox = GenerationRequest::builder("a fox").build()?;
/// let call = CallOptions::default();
/// let key = imagegen::job_log::request_key(&fox, &call, "out".as_ref());
/// assert_eq!(key, imagegen::job_log::request_key(&fox, &call, "out".as_ref()));
/// assert_ne!(key, imagegen::job_log::request_key(&fox, &call, "elsewhere".as_ref()));
/// # Ok::<(), imagegen::InvalidInput>(())
/// ```
pub fn request_key(request: &GenerationRequest, call: &CallOptions, out_dir: &Path) -> String {
    let mut keyed = request_json(request, call).unwrap_or_default().into_bytes();
    keyed.push(0);
    keyed.extend_from_slice(out_dir.to_string_lossy().as_bytes());
    imagegen_ledger::digest::sha256_hex(&keyed)
}

/// The request and its routing choices as JSON (what the ledger keeps of a request).
pub fn request_json(request: &GenerationRequest, call: &CallOptions) -> Option<String> {
    serde_json::to_string(&serde_json::json!({"request": request, "call": call})).ok()
}

/// A shared log is a log: `client.resume(&journal, …)` takes an `Arc<Journal>` as it is.
#[async_trait]
impl<T: JobLog + ?Sized> JobLog for std::sync::Arc<T> {
    fn location(&self) -> String {
        (**self).location()
    }

    async fn record_submitting(&self, submitting: &SubmittingRecord<'_>) -> io::Result<()> {
        (**self).record_submitting(submitting).await
    }

    async fn record_accepted(&self, accepted: &AcceptedRecord<'_>) -> io::Result<()> {
        (**self).record_accepted(accepted).await
    }

    async fn record_finished(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        saved: &[SavedImage],
    ) -> io::Result<()> {
        (**self).record_finished(job, outcome, saved).await
    }

    async fn record_skipped(&self, prompt: &str, reason: &str) -> io::Result<()> {
        (**self).record_skipped(prompt, reason).await
    }

    async fn open_jobs(&self) -> io::Result<OpenJobs> {
        (**self).open_jobs().await
    }
}

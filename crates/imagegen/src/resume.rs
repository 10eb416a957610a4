//! Finishing what a crashed or interrupted run paid for: [`Client::resume`].
//!
//! Every job a journal records as accepted and not finished is waited on (Kolbo: its
//! status is polled; KoalaImages: its image URLs are fetched, which block until the images
//! exist) and its images are saved where the original run would have saved them. Nothing
//! is ever submitted again, so resuming costs no credits. A job that finishes is closed in
//! the journal; a job that failed for good is closed with its error; a job still running
//! stays open for the next `resume`.
//!
//! ```no_run
//! use imagegen::{Client, journal::Journal, NoProgress};
//! # async fn run() -> Result<(), imagegen::Error> {
//! let client = Client::from_env()?;
//! let journal = Journal::open("imagegen-out/imagegen-journal.jsonl")
//!     .map_err(|e| imagegen::Error::Io { context: "opening the journal", path: "imagegen-out".into(), source: e })?;
//! let report = client.resume(&journal, &NoProgress).await?;
//! println!("{} job(s) finished, {} image(s) saved", report.finished(), report.images_saved());
//! # Ok(()) }
//! ```

use futures_util::StreamExt;
use imagegen_core::{JobHandle, ProgressSink};

use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::generation::SavedImage;
use crate::journal::{Journal, Outcome, UnfinishedJob};

/// How many jobs are resumed at once.
const RESUME_CONCURRENCY: usize = 4;

/// One resumed job.
#[derive(Debug)]
#[non_exhaustive]
pub struct ResumedJob {
    /// The job.
    pub job: JobHandle,
    /// Its prompt.
    pub prompt: String,
    /// Images saved now.
    pub saved: Vec<SavedImage>,
    /// Why it is not finished, or why it failed.
    pub error: Option<Error>,
    /// Whether the journal now records it as finished (saved or failed for good).
    pub closed: bool,
}

/// What [`Client::resume`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ResumeReport {
    /// Every job that was open, in the order it was accepted.
    pub jobs: Vec<ResumedJob>,
}

impl ResumeReport {
    /// Jobs whose images are now all saved.
    pub fn finished(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| j.closed && j.error.is_none())
            .count()
    }

    /// Jobs still open (to resume again later).
    pub fn still_open(&self) -> usize {
        self.jobs.iter().filter(|j| !j.closed).count()
    }

    /// Images saved in all.
    pub fn images_saved(&self) -> usize {
        self.jobs.iter().map(|j| j.saved.len()).sum()
    }

    /// The most serious failure kind, `None` when every job finished.
    pub fn failure_kind(&self) -> Option<ErrorKind> {
        let kinds: Vec<ErrorKind> = self
            .jobs
            .iter()
            .filter_map(|j| j.error.as_ref().map(Error::kind))
            .collect();
        [
            ErrorKind::Refused,
            ErrorKind::GenerationFailed,
            ErrorKind::InvalidInput,
            ErrorKind::Other,
        ]
        .into_iter()
        .find(|k| kinds.contains(k))
    }
}

impl Client {
    /// Finishes every accepted-but-unfinished job of `journal`; see the
    /// [module docs](crate::resume). Fails only when the journal cannot be read.
    pub async fn resume(
        &self,
        journal: &Journal,
        progress: &dyn ProgressSink,
    ) -> Result<ResumeReport, Error> {
        let open = journal
            .unfinished()
            .map_err(|e| Error::io("reading the journal", journal.path(), e))?;
        let runs: Vec<_> = open
            .into_iter()
            .map(|job| self.resume_job(journal, job, progress))
            .collect();
        let jobs = futures_util::stream::iter(runs)
            .buffered(RESUME_CONCURRENCY)
            .collect()
            .await;
        Ok(ResumeReport { jobs })
    }

    async fn resume_job(
        &self,
        journal: &Journal,
        open: UnfinishedJob,
        progress: &dyn ProgressSink,
    ) -> ResumedJob {
        let UnfinishedJob {
            job,
            prompt,
            out_dir,
            ..
        } = open;
        let mut resumed = ResumedJob {
            job: job.clone(),
            prompt: prompt.clone(),
            saved: Vec::new(),
            error: None,
            closed: false,
        };
        let outcome = match self.wait_for_job(&job, &prompt, progress).await {
            Ok(generation) => {
                let (saved, failure) = generation.save_each(&out_dir).await;
                let complete = failure.is_none() && saved.len() == generation.images.len();
                let paths = saved.iter().map(|s| s.path.clone()).collect();
                resumed.saved = saved;
                resumed.error = failure;
                complete.then_some(Outcome::Saved { paths })
            }
            Err(error) => {
                // Failed for good: close it. Still running or unreachable: leave it open.
                let terminal = matches!(
                    &error,
                    Error::Provider(
                        imagegen_core::Error::GenerationFailed { .. }
                            | imagegen_core::Error::Cancelled { .. }
                    )
                );
                let outcome = terminal.then(|| Outcome::Failed {
                    error: error.to_string(),
                });
                resumed.error = Some(error);
                outcome
            }
        };
        if let Some(outcome) = outcome {
            match journal.finished(&job, outcome) {
                Ok(()) => resumed.closed = true,
                Err(e) => {
                    tracing::error!(job = %job.job_id, error = %e, "the journal could not record the end of a job");
                }
            }
        }
        resumed
    }
}

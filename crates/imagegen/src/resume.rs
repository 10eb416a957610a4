//! Finishing what a crashed or interrupted run paid for: [`Client::resume`].
//!
//! Every job a journal records as accepted and not finished is waited on (Kolbo: its
//! status is polled; KoalaImages: its image URLs are fetched, which block until the images
//! exist) and its images are saved where the original run would have saved them. Nothing
//! is ever submitted again, so resuming costs no credits. A job that finishes is closed in
//! the journal; a job that failed for good is closed with its error; a job still running
//! stays open for the next `resume`.
//!
//! Every wait is bounded (the poll schedule's and the downloader's deadlines), so a resume
//! always ends. An image whose host kept answering with an error status (a `404`, or
//! `5xx` until the downloader's deadline) failed for good: its job is closed as failed,
//! with the reason and the URL, instead of being waited on by every later resume. An image
//! that could not be reached at all (no connection, a timeout with no answer) or written
//! (a full disk) leaves its job open. Journal lines that cannot be read are skipped and
//! reported in [`ResumeReport::bad_lines`]; every other job is resumed.
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
use crate::job_log::JobLog;
use crate::journal::{BadLine, Outcome, UnfinishedJob};

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
    /// Journal lines that could not be read, skipped.
    pub bad_lines: Vec<BadLine>,
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
        journal: &dyn JobLog,
        progress: &dyn ProgressSink,
    ) -> Result<ResumeReport, Error> {
        let contents = journal
            .open_jobs()
            .await
            .map_err(|e| Error::io("reading the journal", journal.location(), e))?;
        for bad in &contents.bad_lines {
            tracing::warn!(journal = %journal.location(), "skipped {bad}");
        }
        // Each run numbered before it is streamed (no closure in the stream's type, so
        // the whole resume is `Send` for a caller that spawns it).
        let runs: Vec<_> = contents
            .jobs
            .into_iter()
            .enumerate()
            .map(|(order, job)| {
                let run = self.resume_job(journal, job, progress);
                async move { (order, run.await) }
            })
            .collect();
        // Unordered: a job that waits long holds only its own place.
        let mut jobs: Vec<(usize, ResumedJob)> = futures_util::stream::iter(runs)
            .buffer_unordered(RESUME_CONCURRENCY)
            .collect()
            .await;
        jobs.sort_by_key(|(order, _)| *order);
        Ok(ResumeReport {
            jobs: jobs.into_iter().map(|(_, job)| job).collect(),
            bad_lines: contents.bad_lines,
        })
    }

    async fn resume_job(
        &self,
        journal: &dyn JobLog,
        open: UnfinishedJob,
        progress: &dyn ProgressSink,
    ) -> ResumedJob {
        let UnfinishedJob {
            job,
            plan,
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
                let generation = generation.with_plan(plan.as_ref());
                let (saved, failure) = generation
                    .save_each(&out_dir, crate::layout::ImageLayout::Named)
                    .await;
                let complete = failure.is_none() && saved.len() == generation.images.len();
                let paths: Vec<_> = saved.iter().map(|s| s.path.clone()).collect();
                let outcome = match &failure {
                    None if complete => Some(Outcome::Saved { paths }),
                    Some(error) if failed_for_good(error) => Some(Outcome::Failed {
                        error: format!(
                            "{} of {} image(s) saved; {error}",
                            saved.len(),
                            generation.images.len()
                        ),
                    }),
                    _ => None,
                };
                resumed.saved = saved;
                resumed.error = failure;
                outcome
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
            match journal
                .record_finished(&job, &outcome, &resumed.saved)
                .await
            {
                Ok(()) => resumed.closed = true,
                Err(e) => {
                    tracing::error!(job = %job.job_id, error = %e, "the journal could not record the end of a job");
                }
            }
        }
        resumed
    }
}

/// Whether a download failure means the image will never come: the host answered with an
/// error status every time (a `404`, or `5xx` until the deadline), or what it served was
/// no usable image. Not reaching the host, or not being able to write the file, is not.
fn failed_for_good(error: &Error) -> bool {
    use imagegen_http::DownloadError as D;
    match error {
        Error::Download { error, .. } => match error {
            D::Status { .. } | D::UnsupportedFormat { .. } | D::TooLarge { .. } => true,
            D::AttemptsExhausted { .. } | D::DeadlineExceeded { .. } => {
                error.last_status().is_some()
            }
            _ => false,
        },
        _ => false,
    }
}

//! The journal: a durable record of every paid job, so nothing paid for is ever lost.
//!
//! A journal is a JSON Lines file. Before the first poll of an accepted job, an
//! [`JournalRecord::Accepted`] line is written and flushed to disk (`fsync`); when the job
//! ends, a [`JournalRecord::Finished`] line. After a crash, [`Journal::unfinished`] lists the
//! jobs that were accepted (and so paid for) but never finished, and `resume` completes them
//! by polling and downloading, never by submitting again.
//!
//! ```
//! use imagegen::journal::{Journal, JournalRecord, Outcome};
//! use imagegen_core::{Credits, JobHandle};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let journal = Journal::open(dir.path().join("run.jsonl"))?;
//! let job = JobHandle::new("kolbo", "gen_1", 1, 0);
//! journal.accepted(&job, "a fox", dir.path(), Credits::whole(8))?;
//! assert_eq!(journal.unfinished()?.len(), 1);
//! journal.finished(&job, Outcome::Saved { paths: vec!["a-fox-1.png".into()] })?;
//! assert!(journal.unfinished()?.is_empty());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use imagegen_core::provider::unix_millis;
use imagegen_core::{Credits, JobHandle, ProviderId, SharedClock, TokioClock};
use serde::{Deserialize, Serialize};

/// The journal format version written in every line.
pub const JOURNAL_VERSION: u32 = 1;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalRecord {
    /// A provider accepted a job: it is paid for.
    Accepted {
        /// Format version.
        v: u32,
        /// When it was written, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// The job, as needed to resume it.
        job: JobHandle,
        /// The prompt, for file names and sidecars.
        prompt: String,
        /// Where its images go.
        out_dir: PathBuf,
        /// Credits reserved for it from the run's budget.
        reserved_credits: Credits,
    },
    /// A job ended.
    Finished {
        /// Format version.
        v: u32,
        /// When it was written.
        at_ms: u64,
        /// The provider.
        provider: ProviderId,
        /// The provider's job id.
        job_id: String,
        /// How it ended.
        outcome: Outcome,
    },
    /// A request was not submitted (budget, cap, interruption).
    Skipped {
        /// Format version.
        v: u32,
        /// When it was written.
        at_ms: u64,
        /// The prompt.
        prompt: String,
        /// Why.
        reason: String,
    },
}

/// How a journaled job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Its images were saved.
    Saved {
        /// Where.
        paths: Vec<PathBuf>,
    },
    /// It failed for good (the message says why and whether it was refunded).
    Failed {
        /// Why.
        error: String,
    },
}

/// An accepted job with no outcome yet.
#[derive(Debug, Clone, PartialEq)]
pub struct UnfinishedJob {
    /// The job.
    pub job: JobHandle,
    /// Its prompt.
    pub prompt: String,
    /// Where its images go.
    pub out_dir: PathBuf,
    /// Credits reserved for it.
    pub reserved_credits: Credits,
}

/// An append-only, fsync'ed journal file. Cheap to share behind an `Arc`: writes are
/// serialized by an internal lock.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    clock: SharedClock,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` for appending.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
            clock: TokioClock::shared(),
        })
    }

    /// Stamps records with `clock`'s wall time (the real clock by default).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> u64 {
        unix_millis(self.clock.wall_time())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `job` was accepted, durably, before anything waits on it.
    pub fn accepted(
        &self,
        job: &JobHandle,
        prompt: &str,
        out_dir: &Path,
        reserved_credits: Credits,
    ) -> io::Result<()> {
        self.append(&JournalRecord::Accepted {
            v: JOURNAL_VERSION,
            at_ms: self.now_ms(),
            job: job.clone(),
            prompt: prompt.to_owned(),
            out_dir: out_dir.to_path_buf(),
            reserved_credits,
        })
    }

    /// Records how `job` ended.
    pub fn finished(&self, job: &JobHandle, outcome: Outcome) -> io::Result<()> {
        self.append(&JournalRecord::Finished {
            v: JOURNAL_VERSION,
            at_ms: self.now_ms(),
            provider: job.provider.clone(),
            job_id: job.job_id.clone(),
            outcome,
        })
    }

    /// Records that a prompt was not submitted, and why.
    pub fn skipped(&self, prompt: &str, reason: &str) -> io::Result<()> {
        self.append(&JournalRecord::Skipped {
            v: JOURNAL_VERSION,
            at_ms: self.now_ms(),
            prompt: prompt.to_owned(),
            reason: reason.to_owned(),
        })
    }

    /// Appends one record and flushes it to disk.
    pub fn append(&self, record: &JournalRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("journal lock poisoned"))?;
        let mut handle: &File = &file;
        handle.write_all(&line)?;
        handle.sync_data()
    }

    /// Every record in the file. A torn last line (a crash mid-write) is skipped; any other
    /// unreadable line is an error naming its line number.
    pub fn records(&self) -> io::Result<Vec<JournalRecord>> {
        read_records(&self.path)
    }

    /// Jobs accepted but not finished, in the order they were accepted.
    pub fn unfinished(&self) -> io::Result<Vec<UnfinishedJob>> {
        Ok(unfinished_of(&self.records()?))
    }
}

/// Reads every record of the journal at `path` (see [`Journal::records`]).
pub fn read_records(path: &Path) -> io::Result<Vec<JournalRecord>> {
    let reader = BufReader::new(File::open(path)?);
    let lines: Vec<String> = reader.lines().collect::<io::Result<_>>()?;
    let last = lines.len().saturating_sub(1);
    let mut records = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(_) if n == last => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} line {}: {e}", path.display(), n + 1),
                ));
            }
        }
    }
    Ok(records)
}

/// The accepted-but-unfinished jobs among `records`.
pub fn unfinished_of(records: &[JournalRecord]) -> Vec<UnfinishedJob> {
    let mut open: BTreeMap<(ProviderId, String), (usize, UnfinishedJob)> = BTreeMap::new();
    for (order, record) in records.iter().enumerate() {
        match record {
            JournalRecord::Accepted {
                job,
                prompt,
                out_dir,
                reserved_credits,
                ..
            } => {
                open.insert(
                    (job.provider.clone(), job.job_id.clone()),
                    (
                        order,
                        UnfinishedJob {
                            job: job.clone(),
                            prompt: prompt.clone(),
                            out_dir: out_dir.clone(),
                            reserved_credits: *reserved_credits,
                        },
                    ),
                );
            }
            JournalRecord::Finished {
                provider, job_id, ..
            } => {
                open.remove(&(provider.clone(), job_id.clone()));
            }
            JournalRecord::Skipped { .. } => {}
        }
    }
    let mut jobs: Vec<_> = open.into_values().collect();
    jobs.sort_by_key(|(order, _)| *order);
    jobs.into_iter().map(|(_, job)| job).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_line_is_skipped_but_middle_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let journal = Journal::open(&path).unwrap();
        let job = JobHandle::new("koala", "k1", 2, 0);
        journal
            .accepted(&job, "p", dir.path(), Credits::whole(2))
            .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"event\":\"fini");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(journal.unfinished().unwrap().len(), 1);
        text.push_str("\n{}\n");
        std::fs::write(&path, &text).unwrap();
        let err = journal.records().unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn finished_closes_only_its_own_job() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.jsonl")).unwrap();
        let a = JobHandle::new("kolbo", "same-id", 1, 0);
        let b = JobHandle::new("koala", "same-id", 1, 0);
        journal
            .accepted(&a, "a", dir.path(), Credits::ZERO)
            .unwrap();
        journal
            .accepted(&b, "b", dir.path(), Credits::ZERO)
            .unwrap();
        journal.skipped("c", "budget").unwrap();
        journal
            .finished(&a, Outcome::Failed { error: "x".into() })
            .unwrap();
        let open = journal.unfinished().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].job.provider, "koala");
        assert_eq!(open[0].prompt, "b");
    }
}

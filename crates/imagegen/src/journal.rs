//! The journal: a durable record of every paid job, so nothing paid for is ever lost.
//!
//! A journal is a JSON Lines file. Before the first poll of an accepted job, an
//! [`JournalRecord::Accepted`] line is written and flushed to disk (`fsync`); when the job
//! ends, a [`JournalRecord::Finished`] line. After a crash, [`Journal::unfinished`] lists the
//! jobs that were accepted (and so paid for) but never finished, and `resume` completes them
//! by polling and downloading, never by submitting again.
//!
//! A journal survives damage:
//!
//! - **writing**: a write that fails (a full disk) is an error the run reports loudly, and
//!   the next record starts on a fresh line, so a torn fragment never swallows the record
//!   after it; the same holds for the first record written to a journal whose last line
//!   was torn by a crash mid-write;
//! - **reading**: a line that cannot be read (torn, invalid UTF-8, an unknown event from a
//!   newer imagegen, garbage) is skipped and reported as a [`BadLine`] with its number and
//!   the start of its text, and every other line is still read: one bad line never hides
//!   the other jobs.
//!
//! ```
//! use imagegen::journal::{Journal, JournalRecord, Outcome};
//! use imagegen_core::{Credits, JobHandle};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let journal = Journal::open(dir.path().join("run.jsonl"))?;
//! let job = JobHandle::new("kolbo", "gen_1", 1, 0);
//! journal.accepted(&job, None, "a fox", dir.path(), Credits::whole(8))?;
//! assert_eq!(journal.unfinished()?.len(), 1);
//! journal.finished(&job, Outcome::Saved { paths: vec!["a-fox-1.png".into()] })?;
//! assert!(journal.unfinished()?.is_empty());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use imagegen_core::error::body_prefix;
use imagegen_core::provider::unix_millis;
use imagegen_core::{CallPlan, Credits, JobHandle, ProviderId, SharedClock, TokioClock};
use serde::{Deserialize, Serialize};

use crate::generation::SavedImage;
use crate::job_log::{AcceptedRecord, JobLog, OpenJobs};

/// The journal format version written in every line.
pub const JOURNAL_VERSION: u32 = 1;

/// The events this version writes and reads, as the `event` field names them.
const KNOWN_EVENTS: [&str; 3] = ["accepted", "finished", "skipped"];

/// How much of a bad line a [`BadLine`] shows.
const BAD_LINE_SHOWN: usize = 200;

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
        /// The call it was sent as (the sidecar's `sent`), when known; journals written
        /// before 0.1 have none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<Box<CallPlan>>,
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
    /// The call it was sent as, when the journal recorded it.
    pub plan: Option<CallPlan>,
    /// Its prompt.
    pub prompt: String,
    /// Where its images go.
    pub out_dir: PathBuf,
    /// Credits reserved for it.
    pub reserved_credits: Credits,
}

/// A journal line that could not be read, skipped so that every other line still is.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("j.jsonl");
/// std::fs::write(&path, "{\"event\":\"renamed\",\"v\":9}\n")?;
/// let read = imagegen::journal::read_journal(&path)?;
/// assert!(read.records.is_empty());
/// assert_eq!(read.bad_lines[0].line, 1);
/// assert!(read.bad_lines[0].reason.contains("unknown event"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BadLine {
    /// Its line number, from 1.
    pub line: usize,
    /// Why it could not be read.
    pub reason: String,
    /// The start of its text (invalid UTF-8 shown as U+FFFD), to find a job id by hand.
    pub text: String,
    /// Whether it is the last line and has no newline: a write cut short by a crash.
    pub torn: bool,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)?;
        if !self.text.is_empty() {
            write!(f, " (it starts {:?})", self.text)?;
        }
        Ok(())
    }
}

/// Everything read from a journal: the records, and the lines skipped.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JournalContents {
    /// Every readable record, in file order.
    pub records: Vec<JournalRecord>,
    /// Every line that could not be read.
    pub bad_lines: Vec<BadLine>,
}

impl JournalContents {
    /// The accepted-but-unfinished jobs among the records.
    pub fn unfinished(&self) -> Vec<UnfinishedJob> {
        unfinished_of(&self.records)
    }
}

/// An append-only, fsync'ed journal file. Cheap to share behind an `Arc`: writes are
/// serialized by an internal lock.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<JournalFile>,
    clock: SharedClock,
}

#[derive(Debug)]
struct JournalFile {
    file: File,
    /// A write failed part-way: the file may end in a fragment, so the next record
    /// starts on a line of its own.
    torn: bool,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` for appending. When the file ends
    /// in a torn line (a crash mid-write), the first record written starts on a new line,
    /// so the fragment stays a bad line of its own.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let torn = ends_in_torn_line(&file)?;
        Ok(Self {
            path,
            file: Mutex::new(JournalFile { file, torn }),
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

    /// Records that `job`, sent as `plan`, was accepted, durably, before anything waits on
    /// it.
    pub fn accepted(
        &self,
        job: &JobHandle,
        plan: Option<&CallPlan>,
        prompt: &str,
        out_dir: &Path,
        reserved_credits: Credits,
    ) -> io::Result<()> {
        self.append(&JournalRecord::Accepted {
            v: JOURNAL_VERSION,
            at_ms: self.now_ms(),
            job: job.clone(),
            plan: plan.cloned().map(Box::new),
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

    /// Appends one record and flushes it to disk. After a failed write, the next record
    /// starts on a new line, so the fragment stays one bad line of its own.
    pub fn append(&self, record: &JournalRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut state = self
            .file
            .lock()
            .map_err(|_| io::Error::other("journal lock poisoned"))?;
        if state.torn {
            line.insert(0, b'\n');
        }
        let JournalFile { file, torn } = &mut *state;
        let written = (&*file).write_all(&line).and_then(|()| file.sync_data());
        *torn = written.is_err();
        written
    }

    /// Every readable record, and the lines skipped; see [`read_journal`].
    pub fn read(&self) -> io::Result<JournalContents> {
        read_journal(&self.path)
    }

    /// Every readable record (bad lines are skipped: use [`Journal::read`] to see them).
    pub fn records(&self) -> io::Result<Vec<JournalRecord>> {
        Ok(self.read()?.records)
    }

    /// Jobs accepted but not finished, in the order they were accepted.
    pub fn unfinished(&self) -> io::Result<Vec<UnfinishedJob>> {
        Ok(self.read()?.unfinished())
    }
}

#[async_trait::async_trait]
impl JobLog for Journal {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn record_accepted(&self, accepted: &AcceptedRecord<'_>) -> io::Result<()> {
        self.accepted(
            accepted.job,
            accepted.plan,
            accepted.prompt,
            accepted.out_dir,
            accepted.reserved,
        )
    }

    async fn record_finished(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        _saved: &[SavedImage],
    ) -> io::Result<()> {
        self.finished(job, outcome.clone())
    }

    async fn record_skipped(&self, prompt: &str, reason: &str) -> io::Result<()> {
        self.skipped(prompt, reason)
    }

    async fn open_jobs(&self) -> io::Result<OpenJobs> {
        let contents = self.read()?;
        Ok(OpenJobs {
            jobs: contents.unfinished(),
            bad_lines: contents.bad_lines,
        })
    }
}

/// Whether `file` is not empty and its last byte is not a newline.
fn ends_in_torn_line(file: &File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut reader = file;
    reader.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    let read = reader.read(&mut last)?;
    Ok(read == 1 && last[0] != b'\n')
}

/// Reads the journal at `path`: every line that parses becomes a record; every other
/// line (torn, not UTF-8, an unknown event, not JSON) is skipped and reported in
/// [`JournalContents::bad_lines`]. Fails only when the file cannot be read at all.
pub fn read_journal(path: &Path) -> io::Result<JournalContents> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut contents = JournalContents::default();
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `split` yields an empty piece after a final newline.
    let count = if ends_with_newline {
        lines.len() - 1
    } else {
        lines.len()
    };
    for (n, raw) in lines.iter().take(count).enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let torn = n + 1 == count && !ends_with_newline;
        match parse_line(raw) {
            Ok(record) => contents.records.push(record),
            Err(reason) => contents.bad_lines.push(BadLine {
                line: n + 1,
                reason: if torn {
                    format!("the last line is cut short (a write that did not finish): {reason}")
                } else {
                    reason
                },
                text: body_prefix(&raw[..raw.len().min(BAD_LINE_SHOWN)]),
                torn,
            }),
        }
    }
    Ok(contents)
}

/// One line as a record, or why it is not one.
fn parse_line(raw: &[u8]) -> Result<JournalRecord, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("it is not UTF-8 ({e})"))?;
    match serde_json::from_str::<JournalRecord>(text) {
        Ok(record) => Ok(record),
        Err(error) => {
            let event = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned));
            Err(match event {
                Some(event) if !KNOWN_EVENTS.contains(&event.as_str()) => format!(
                    "unknown event `{event}` (written by a newer imagegen?); this version reads {}",
                    KNOWN_EVENTS.join(", ")
                ),
                _ => format!("it is not a journal record: {error}"),
            })
        }
    }
}

/// Reads every record of the journal at `path`, skipping bad lines (see [`read_journal`]
/// to see them).
pub fn read_records(path: &Path) -> io::Result<Vec<JournalRecord>> {
    Ok(read_journal(path)?.records)
}

/// The accepted-but-unfinished jobs among `records`.
pub fn unfinished_of(records: &[JournalRecord]) -> Vec<UnfinishedJob> {
    let mut open: BTreeMap<(ProviderId, String), (usize, UnfinishedJob)> = BTreeMap::new();
    for (order, record) in records.iter().enumerate() {
        match record {
            JournalRecord::Accepted {
                job,
                plan,
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
                            plan: plan.as_deref().cloned(),
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

    fn accepted_line(job_id: &str) -> String {
        let record = JournalRecord::Accepted {
            v: JOURNAL_VERSION,
            at_ms: 1,
            job: JobHandle::new("koala", job_id, 1, 0),
            plan: None,
            prompt: "a fox".into(),
            out_dir: "out".into(),
            reserved_credits: Credits::whole(2),
        };
        serde_json::to_string(&record).unwrap()
    }

    fn open_ids(path: &Path) -> Vec<String> {
        read_journal(path)
            .unwrap()
            .unfinished()
            .into_iter()
            .map(|j| j.job.job_id)
            .collect()
    }

    #[test]
    fn a_torn_last_line_is_reported_and_the_next_record_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let first = accepted_line("k1");
        let torn = &accepted_line("k2")[..40];
        std::fs::write(&path, format!("{first}\n{torn}")).unwrap();
        let journal = Journal::open(&path).unwrap();
        journal
            .accepted(
                &JobHandle::new("koala", "k3", 1, 0),
                None,
                "p",
                dir.path(),
                Credits::ZERO,
            )
            .unwrap();
        let read = journal.read().unwrap();
        assert_eq!(open_ids(&path), ["k1", "k3"]);
        assert_eq!(read.bad_lines.len(), 1, "{:?}", read.bad_lines);
        let bad = &read.bad_lines[0];
        assert_eq!(bad.line, 2);
        assert!(bad.text.contains("\"event\":\"accepted\""), "{bad}");
        // Sealed by the newline `open` wrote: no longer the last line.
        assert!(!bad.torn);
    }

    #[test]
    fn a_torn_line_at_the_end_is_marked_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(
            &path,
            format!("{}\n{{\"event\":\"fini", accepted_line("k1")),
        )
        .unwrap();
        let read = read_journal(&path).unwrap();
        assert_eq!(read.records.len(), 1);
        assert!(read.bad_lines[0].torn);
        assert!(
            read.bad_lines[0].reason.contains("cut short"),
            "{}",
            read.bad_lines[0]
        );
    }

    #[test]
    fn after_a_failed_write_the_next_record_starts_on_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let journal = Journal::open(&path).unwrap();
        {
            let mut state = journal.file.lock().unwrap();
            (&state.file).write_all(b"{\"event\":\"acc").unwrap();
            state.torn = true;
        }
        journal
            .accepted(
                &JobHandle::new("kolbo", "g1", 1, 0),
                None,
                "p",
                dir.path(),
                Credits::ZERO,
            )
            .unwrap();
        assert_eq!(open_ids(&path), ["g1"]);
        assert_eq!(journal.read().unwrap().bad_lines.len(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_to_a_full_disk_is_an_error() {
        let journal = Journal::open("/dev/full").unwrap();
        let err = journal
            .accepted(
                &JobHandle::new("kolbo", "g1", 1, 0),
                None,
                "p",
                Path::new("."),
                Credits::ZERO,
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    }

    #[test]
    fn bad_lines_anywhere_are_skipped_and_every_other_job_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(accepted_line("k1").as_bytes());
        bytes.push(b'\n');
        // A multi-byte character cut in half.
        bytes.extend_from_slice(&"{\"event\":\"skipped\",\"prompt\":\"caf\u{e9}".as_bytes()[..33]);
        bytes.push(b'\n');
        bytes.extend_from_slice(b"{\"event\":\"teleported\",\"v\":2}\n");
        bytes.extend_from_slice(accepted_line("k2").as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(b"not json at all\n");
        std::fs::write(&path, &bytes).unwrap();
        let read = read_journal(&path).unwrap();
        assert_eq!(open_ids(&path), ["k1", "k2"]);
        let lines: Vec<usize> = read.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, [2, 3, 5]);
        assert!(
            read.bad_lines[0].reason.contains("not UTF-8"),
            "{}",
            read.bad_lines[0]
        );
        assert!(
            read.bad_lines[1]
                .reason
                .contains("unknown event `teleported`"),
            "{}",
            read.bad_lines[1]
        );
        // The last line ends in a newline: bad, but not torn.
        assert!(!read.bad_lines[2].torn);
        assert!(read.bad_lines[2].reason.contains("not a journal record"));
    }

    #[test]
    fn finished_closes_only_its_own_job() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.jsonl")).unwrap();
        let a = JobHandle::new("kolbo", "same-id", 1, 0);
        let b = JobHandle::new("koala", "same-id", 1, 0);
        journal
            .accepted(&a, None, "a", dir.path(), Credits::ZERO)
            .unwrap();
        journal
            .accepted(&b, None, "b", dir.path(), Credits::ZERO)
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

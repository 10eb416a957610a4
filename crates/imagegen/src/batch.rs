//! Many prompts in one run: [`BatchItem`]s parsed from a file ([`parse_batch`]), run a few
//! at a time under one shared budget ([`Client::batch`]), journaled, and reported prompt by
//! prompt ([`BatchReport`]).
//!
//! Prompts do not wait on each other: each runs as soon as one of the `concurrency` places
//! is free, and [`Client::batch_stream`] yields each prompt's [`ItemReport`] the moment its
//! images are saved, in the order they finish. [`BatchOptions::events`] hears what happens
//! in between ([`BatchEvent`]: a prompt started, a job was accepted and paid for, a
//! submission is held by a rate limit, a job's progress), which is what a progress display
//! or a Ctrl-C summary needs.
//!
//! A batch file holds one prompt per line, or JSON Lines whose objects take the same
//! options as `imagegen generate` ([`RequestOptions`]); blank lines and lines starting with
//! `#` are skipped:
//!
//! ```text
//! a lighthouse at dusk, watercolor
//! {"prompt": "a fox in the snow", "count": 2, "aspect": "16:9", "max_credits": 5}
//! ```
//!
//! The run budget is the client's: every prompt reserves its worst case from it before
//! anything is sent, so the batch never spends past it. A prompt the budget (or a price
//! cap) cannot cover is skipped with nothing sent, and the batch goes on with the others;
//! [`BatchReport::skipped`] names each skipped prompt and why.
//!
//! ```no_run
//! use std::sync::Arc;
//! use imagegen::batch::{parse_batch, BatchOptions};
//! use imagegen::{Client, Credits, journal::Journal};
//! # async fn run() -> Result<(), imagegen::Error> {
//! let client = Client::from_env()?.with_policy(|p| p.run_budget(Credits::whole(40)))?;
//! let items = parse_batch("a red fox\na blue heron\n")?;
//! let journal = Arc::new(Journal::open("out/imagegen-journal.jsonl").map_err(|e| imagegen::Error::Io {
//!     context: "opening the journal", path: "out/imagegen-journal.jsonl".into(), source: e })?);
//! let report = client.batch(items, &BatchOptions::new("out").journal(journal)).await;
//! for skipped in report.skipped() {
//!     println!("skipped {:?}: {}", skipped.prompt, skipped.reason);
//! }
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use imagegen_core::{
    Credits, GenerationRequest, InvalidInput, JobHandle, ProgressEvent, ProgressSink, ProviderId,
};
use imagegen_router::CallOptions;

use crate::client::{Client, GenerateOptions};
use crate::error::{Error, ErrorKind};
use crate::job_log::JobLog;
use crate::request_options::RequestOptions;
use crate::run::{RunReport, RunSignal};

/// One prompt of a batch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchItem {
    /// Its line in the batch file, from 1.
    pub line: usize,
    /// The checked request.
    pub request: GenerationRequest,
    /// Its own routing choices (a provider, a model, a price cap, reshaping).
    pub call: CallOptions,
}

impl BatchItem {
    /// An item from its options, checked.
    pub fn new(line: usize, options: RequestOptions) -> Result<Self, InvalidInput> {
        let (request, call) = options.into_parts()?;
        Ok(Self {
            line,
            request,
            call,
        })
    }
}

/// The most prompts one batch takes: 10,000. A longer file is refused before anything
/// is parsed or sent ([`parse_batch`]): split it into several batches. The bound keeps a
/// mistake (a log file passed by accident) from costing memory first and credits next.
pub const MAX_BATCH_PROMPTS: usize = 10_000;

/// The most prompts a batch runs at once: 32. [`BatchOptions::concurrency`] keeps to it,
/// and the CLI's `--concurrency` refuses more: past it, prompts would mostly wait on the
/// providers' rate limits while holding memory and budget reservations.
pub const MAX_BATCH_CONCURRENCY: usize = 32;

/// Whether a batch file line holds a prompt (neither blank nor a `#` comment).
fn is_prompt_line(raw: &str) -> bool {
    let trimmed = raw.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// Parses a batch file; every line is checked before anything is sent, and the first bad
/// line is an error naming its line number. A leading byte-order mark (U+FEFF, as some
/// editors write) is dropped. A file of more than [`MAX_BATCH_PROMPTS`] prompts is an
/// error found by counting lines first, before any of them is parsed.
///
/// ```
/// let items = imagegen::batch::parse_batch("# prompts\na red fox\n\n{\"prompt\": \"a heron\", \"count\": 2}\n")?;
/// assert_eq!(items.len(), 2);
/// assert_eq!((items[1].line, items[1].request.count()), (4, 2));
/// let err = imagegen::batch::parse_batch("a fox\n{\"prompt\": \"x\", \"colour\": 1}\n").unwrap_err();
/// assert!(err.to_string().contains("line 2"));
/// let items = imagegen::batch::parse_batch("\u{feff}a red fox\n")?;
/// assert_eq!(items[0].request.prompt().as_str(), "a red fox");
/// # Ok::<(), imagegen::InvalidInput>(())
/// ```
pub fn parse_batch(text: &str) -> Result<Vec<BatchItem>, InvalidInput> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Counted without allocating, so a huge file fails at once and small.
    let prompts = text.lines().filter(|raw| is_prompt_line(raw)).count();
    if prompts > MAX_BATCH_PROMPTS {
        return Err(InvalidInput::new(
            "batch file",
            format!(
                "{prompts} prompts; a batch takes at most {MAX_BATCH_PROMPTS}: split the file into smaller batches"
            ),
        ));
    }
    let mut items = Vec::with_capacity(prompts);
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        if !is_prompt_line(raw) {
            continue;
        }
        let trimmed = raw.trim();
        let at_line = |e: &dyn std::fmt::Display| {
            InvalidInput::new("batch file", format!("line {line}: {e}"))
        };
        let options = if trimmed.starts_with('{') {
            serde_json::from_str::<RequestOptions>(trimmed).map_err(|e| at_line(&e))?
        } else {
            RequestOptions::new(trimmed)
        };
        items.push(BatchItem::new(line, options).map_err(|e| at_line(&e))?);
    }
    if items.is_empty() {
        return Err(InvalidInput::new(
            "batch file",
            "no prompt found: write one prompt per line, or JSON Lines with a \"prompt\" each",
        ));
    }
    Ok(items)
}

/// How a batch runs.
#[derive(Clone)]
#[non_exhaustive]
pub struct BatchOptions {
    /// Where images go.
    pub out_dir: PathBuf,
    /// How many prompts run at once (default 4).
    pub concurrency: usize,
    /// The journal (strongly recommended; the CLI always keeps one).
    pub journal: Option<Arc<dyn JobLog>>,
    /// Where progress events go.
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// Where batch events go (see [`BatchEvent`]).
    pub events: Option<Arc<dyn BatchSink>>,
}

impl std::fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("out_dir", &self.out_dir)
            .field("concurrency", &self.concurrency)
            .field("journal", &self.journal.as_ref().map(|j| j.location()))
            .finish_non_exhaustive()
    }
}

impl BatchOptions {
    /// Options saving into `out_dir`, four prompts at once, no journal.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            concurrency: 4,
            journal: None,
            progress: None,
            events: None,
        }
    }

    /// How many prompts run at once: 1 to [`MAX_BATCH_CONCURRENCY`] (a value outside is
    /// moved to the nearest end).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.clamp(1, MAX_BATCH_CONCURRENCY);
        self
    }

    /// Journals every accepted job in `journal`.
    #[must_use]
    pub fn journal(mut self, journal: Arc<dyn JobLog>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Sends progress to `sink`.
    #[must_use]
    pub fn progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Sends batch events to `sink` (a closure `Fn(BatchEvent)`, or
    /// [`progress::batch_channel`](crate::progress::batch_channel)).
    #[must_use]
    pub fn events(mut self, sink: Arc<dyn BatchSink>) -> Self {
        self.events = Some(sink);
        self
    }
}

/// Something a batch did, as it happened; see [`BatchOptions::events`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BatchEvent {
    /// A prompt started: its request goes to the router now.
    Started {
        /// Its line.
        line: usize,
        /// The prompt.
        prompt: String,
    },
    /// A provider accepted a job for a prompt: it is paid for, and journaled (when the
    /// batch has a journal) before this event is sent.
    Accepted {
        /// The prompt's line.
        line: usize,
        /// The job.
        job: JobHandle,
    },
    /// A submission for a prompt is held by the provider's rate limit for `wait`: a 429
    /// the router waits out before sending again, or Kolbo's pacer holding it before it is
    /// sent (see [`ClientBuilder::kolbo_pacing`](crate::ClientBuilder::kolbo_pacing)).
    RateLimited {
        /// The prompt's line.
        line: usize,
        /// The provider whose limit it is.
        provider: ProviderId,
        /// How long it waits.
        wait: Duration,
    },
    /// A job of a prompt reported progress.
    Progress {
        /// The prompt's line.
        line: usize,
        /// What the provider reported.
        event: ProgressEvent,
    },
}

/// Receives [`BatchEvent`]s. Closures `Fn(BatchEvent)` implement it.
pub trait BatchSink: Send + Sync {
    /// Called as each event happens, from the task running the prompt: keep it quick.
    fn event(&self, event: BatchEvent);
}

impl<F: Fn(BatchEvent) + Send + Sync> BatchSink for F {
    fn event(&self, event: BatchEvent) {
        self(event);
    }
}

/// A prompt's job progress, passed on to the batch's progress sink and, with the line,
/// to its events.
struct LineProgress {
    line: usize,
    progress: Option<Arc<dyn ProgressSink>>,
    events: Arc<dyn BatchSink>,
}

impl ProgressSink for LineProgress {
    fn report(&self, event: ProgressEvent) {
        if let Some(progress) = &self.progress {
            progress.report(event.clone());
        }
        self.events.event(BatchEvent::Progress {
            line: self.line,
            event,
        });
    }
}

/// Why a prompt was not submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipKind {
    /// The run budget or a price cap could not cover it.
    Budget,
    /// The run was stopped first.
    Interrupted,
}

/// A prompt that was not submitted, with nothing spent on it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Skipped {
    /// Its line.
    pub line: usize,
    /// The prompt.
    pub prompt: String,
    /// Why, in words.
    pub reason: String,
    /// Why.
    pub kind: SkipKind,
}

/// What happened to one prompt.
#[derive(Debug)]
#[non_exhaustive]
pub enum ItemOutcome {
    /// It ran (fully or partly: see the report's error).
    Ran(Box<RunReport>),
    /// It was not submitted.
    Skipped(Skipped),
}

/// One prompt's result.
#[derive(Debug)]
#[non_exhaustive]
pub struct ItemReport {
    /// The prompt's line.
    pub line: usize,
    /// The prompt.
    pub prompt: String,
    /// What happened.
    pub outcome: ItemOutcome,
}

/// What a batch did, prompt by prompt, in file order.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchReport {
    /// Every prompt.
    pub items: Vec<ItemReport>,
}

/// A report from the items of [`Client::batch_stream`], put back in file order.
impl FromIterator<ItemReport> for BatchReport {
    fn from_iter<I: IntoIterator<Item = ItemReport>>(iter: I) -> Self {
        let mut items: Vec<ItemReport> = iter.into_iter().collect();
        items.sort_by_key(|i| i.line);
        Self { items }
    }
}

impl BatchReport {
    /// The prompts that ran.
    pub fn ran(&self) -> impl Iterator<Item = &RunReport> {
        self.items.iter().filter_map(|i| match &i.outcome {
            ItemOutcome::Ran(r) => Some(&**r),
            ItemOutcome::Skipped(_) => None,
        })
    }

    /// The prompts not submitted.
    pub fn skipped(&self) -> impl Iterator<Item = &Skipped> {
        self.items.iter().filter_map(|i| match &i.outcome {
            ItemOutcome::Skipped(s) => Some(s),
            ItemOutcome::Ran(_) => None,
        })
    }

    /// Images saved in all.
    pub fn images_saved(&self) -> usize {
        self.ran().map(|r| r.saved.len()).sum()
    }

    /// Credits charged in all.
    pub fn credits_charged(&self) -> Credits {
        self.ran()
            .map(RunReport::credits_charged)
            .fold(Credits::ZERO, |a, b| a.checked_add(b).unwrap_or(a))
    }

    /// The most serious failure kind, in the order: refused, generation failed, input,
    /// other, budget, interrupted. `None` when every prompt succeeded.
    pub fn failure_kind(&self) -> Option<ErrorKind> {
        let mut kinds: Vec<ErrorKind> = self
            .ran()
            .filter_map(|r| r.error.as_ref().map(Error::kind))
            .collect();
        kinds.extend(self.skipped().map(|s| match s.kind {
            SkipKind::Budget => ErrorKind::OverBudget,
            SkipKind::Interrupted => ErrorKind::Interrupted,
        }));
        ErrorKind::most_serious(&kinds)
    }
}

impl Client {
    /// Runs `items`, `options.concurrency` at a time, under this client's run budget; see
    /// the [module docs](crate::batch). Once [`Client::stop_submitting`] is called, the
    /// prompts not yet started are skipped. The report is in file order; to hear of each
    /// prompt as it finishes, use [`Client::batch_stream`].
    pub async fn batch(&self, items: Vec<BatchItem>, options: &BatchOptions) -> BatchReport {
        self.batch_each(items, options, |_| {}).await
    }

    /// Runs `items` as [`Client::batch`] does, calling `on_done` with each prompt's report
    /// the moment it is done (its images saved), in the order prompts finish; the report
    /// that comes back is in file order. See also [`Client::batch_stream`].
    pub async fn batch_each(
        &self,
        items: Vec<BatchItem>,
        options: &BatchOptions,
        mut on_done: impl FnMut(&ItemReport) + Send,
    ) -> BatchReport {
        let mut done = std::pin::pin!(self.batch_stream(items, options));
        let mut reports = Vec::new();
        while let Some(item) = done.next().await {
            on_done(&item);
            reports.push(item);
        }
        reports.into_iter().collect()
    }

    /// Runs `items` as [`Client::batch`] does, yielding each prompt's report the moment it
    /// is done (its images saved), in the order prompts finish: a slow prompt holds up
    /// only its own place. Prompts start in file order as places free up. Collect the
    /// stream into a [`BatchReport`] for the file-order report.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn run(client: imagegen::Client, items: Vec<imagegen::BatchItem>) {
    /// let options = imagegen::BatchOptions::new("out");
    /// let mut done = std::pin::pin!(client.batch_stream(items, &options));
    /// while let Some(item) = done.next().await {
    ///     println!("line {} done", item.line);
    /// }
    /// # }
    /// ```
    pub fn batch_stream<'a>(
        &'a self,
        items: Vec<BatchItem>,
        options: &'a BatchOptions,
    ) -> impl Stream<Item = ItemReport> + Send + 'a {
        futures_util::stream::iter(items)
            .map(move |item| self.batch_item(item, options))
            .buffer_unordered(options.concurrency.clamp(1, MAX_BATCH_CONCURRENCY))
    }

    async fn batch_item(&self, item: BatchItem, options: &BatchOptions) -> ItemReport {
        let prompt = item.request.prompt().as_str().to_owned();
        let line = item.line;
        let skip = |kind: SkipKind, reason: String| {
            let prompt = prompt.clone();
            let journal = options.journal.clone();
            async move {
                if let Some(journal) = journal
                    && let Err(e) = journal.record_skipped(&prompt, &reason).await
                {
                    tracing::warn!(error = %e, "the journal could not record a skipped prompt");
                }
                ItemReport {
                    line,
                    prompt: prompt.clone(),
                    outcome: ItemOutcome::Skipped(Skipped {
                        line,
                        prompt,
                        reason,
                        kind,
                    }),
                }
            }
        };
        if self.is_stopped() {
            return skip(
                SkipKind::Interrupted,
                self.gate()
                    .stop_reason()
                    .unwrap_or_else(|| "the run was stopped before this prompt".into()),
            )
            .await;
        }
        let progress = match &options.events {
            Some(events) => {
                events.event(BatchEvent::Started {
                    line,
                    prompt: prompt.clone(),
                });
                Some(Arc::new(LineProgress {
                    line,
                    progress: options.progress.clone(),
                    events: Arc::clone(events),
                }) as Arc<dyn ProgressSink>)
            }
            None => options.progress.clone(),
        };
        let generate = GenerateOptions {
            progress,
            journal: options.journal.clone(),
            out_dir: Some(options.out_dir.clone()),
            call: item.call.clone(),
            request_key: None,
            layout: crate::layout::ImageLayout::Named,
            batch_line: u32::try_from(line).ok(),
        };
        let hook = options.events.as_ref().map(|events| {
            move |signal: RunSignal<'_>| {
                events.event(match signal {
                    RunSignal::Accepted(job) => BatchEvent::Accepted {
                        line,
                        job: job.clone(),
                    },
                    RunSignal::RateLimited { provider, wait } => BatchEvent::RateLimited {
                        line,
                        provider: provider.clone(),
                        wait,
                    },
                });
            }
        });
        let run = self.generate_to_dir_watched(
            &item.request,
            &options.out_dir,
            &generate,
            hook.as_ref()
                .map(|h| h as &(dyn Fn(RunSignal<'_>) + Send + Sync)),
        );
        // A submission held by Kolbo's pacer is a rate-limit wait of this line.
        let report = match &options.events {
            Some(events) => {
                let events = Arc::clone(events);
                let provider = ProviderId::from("kolbo");
                let held: crate::pacing::PacingHook = Arc::new(move |wait| {
                    events.event(BatchEvent::RateLimited {
                        line,
                        provider: provider.clone(),
                        wait,
                    });
                });
                crate::pacing::scoped(held, run).await
            }
            None => run.await,
        };
        let nothing_done = report.saved.is_empty() && report.unfinished.is_empty();
        match &report.error {
            Some(error) if nothing_done && error.kind() == ErrorKind::OverBudget => {
                skip(SkipKind::Budget, error.to_string()).await
            }
            Some(Error::Interrupted) if nothing_done => {
                skip(
                    SkipKind::Interrupted,
                    self.gate().stop_reason().unwrap_or_else(|| {
                        "the run was stopped before this prompt was submitted".into()
                    }),
                )
                .await
            }
            _ => ItemReport {
                line: item.line,
                prompt,
                outcome: ItemOutcome::Ran(Box::new(report)),
            },
        }
    }
}

#[cfg(test)]
mod parse_tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_million_lines_fail_at_once_naming_the_limit() {
        let text = "a fox\n".repeat(1_000_001);
        let started = Instant::now();
        let err = parse_batch(&text).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err.field(), "batch file");
        assert_eq!(
            err.message(),
            "1000001 prompts; a batch takes at most 10000: split the file into smaller batches"
        );
    }

    #[test]
    fn the_limit_counts_prompts_not_comments_or_blank_lines() {
        let mut text = "# a comment\n\n".repeat(50);
        text.push_str(&"a fox\n".repeat(MAX_BATCH_PROMPTS));
        assert_eq!(parse_batch(&text).unwrap().len(), MAX_BATCH_PROMPTS);
        text.push_str("one more\n");
        assert!(parse_batch(&text).is_err());
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_prompt() {
        let items = parse_batch("\u{feff}a red fox\r\n{\"prompt\": \"a heron\"}\r\n").unwrap();
        assert_eq!(items[0].request.prompt().as_str(), "a red fox");
        assert_eq!(items[0].line, 1);
        let items = parse_batch("\u{feff}{\"prompt\": \"a heron\"}\n").unwrap();
        assert_eq!(items[0].request.prompt().as_str(), "a heron");
        assert!(parse_batch("\u{feff}\n# only a comment\n").is_err());
    }

    #[test]
    fn concurrency_stays_within_its_bounds() {
        assert_eq!(BatchOptions::new("out").concurrency(0).concurrency, 1);
        assert_eq!(BatchOptions::new("out").concurrency(8).concurrency, 8);
        assert_eq!(
            BatchOptions::new("out").concurrency(1_000).concurrency,
            MAX_BATCH_CONCURRENCY
        );
    }
}

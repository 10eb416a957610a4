//! Many prompts in one run: [`BatchItem`]s parsed from a file ([`parse_batch`]), run a few
//! at a time under one shared budget ([`Client::batch`]), journaled, and reported prompt by
//! prompt ([`BatchReport`]).
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

use futures_util::StreamExt;
use imagegen_core::{Credits, GenerationRequest, InvalidInput, ProgressSink};
use imagegen_router::CallOptions;

use crate::client::{Client, GenerateOptions};
use crate::error::{Error, ErrorKind};
use crate::journal::Journal;
use crate::request_options::RequestOptions;
use crate::run::RunReport;

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

/// Parses a batch file; every line is checked before anything is sent, and the first bad
/// line is an error naming its line number.
///
/// ```
/// let items = imagegen::batch::parse_batch("# prompts\na red fox\n\n{\"prompt\": \"a heron\", \"count\": 2}\n")?;
/// assert_eq!(items.len(), 2);
/// assert_eq!((items[1].line, items[1].request.count()), (4, 2));
/// let err = imagegen::batch::parse_batch("a fox\n{\"prompt\": \"x\", \"colour\": 1}\n").unwrap_err();
/// assert!(err.to_string().contains("line 2"));
/// # Ok::<(), imagegen::InvalidInput>(())
/// ```
pub fn parse_batch(text: &str) -> Result<Vec<BatchItem>, InvalidInput> {
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
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
    pub journal: Option<Arc<Journal>>,
    /// Where progress events go.
    pub progress: Option<Arc<dyn ProgressSink>>,
}

impl std::fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("out_dir", &self.out_dir)
            .field("concurrency", &self.concurrency)
            .field("journal", &self.journal.as_ref().map(|j| j.path()))
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
        }
    }

    /// How many prompts run at once.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Journals every accepted job in `journal`.
    #[must_use]
    pub fn journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Sends progress to `sink`.
    #[must_use]
    pub fn progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
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
    /// prompts not yet started are skipped.
    pub async fn batch(&self, items: Vec<BatchItem>, options: &BatchOptions) -> BatchReport {
        let runs: Vec<_> = items
            .into_iter()
            .map(|item| self.batch_item(item, options))
            .collect();
        let reports: Vec<ItemReport> = futures_util::stream::iter(runs)
            .buffered(options.concurrency.max(1))
            .collect()
            .await;
        BatchReport { items: reports }
    }

    async fn batch_item(&self, item: BatchItem, options: &BatchOptions) -> ItemReport {
        let prompt = item.request.prompt().as_str().to_owned();
        let skip = |kind: SkipKind, reason: String| {
            if let Some(journal) = &options.journal
                && let Err(e) = journal.skipped(&prompt, &reason)
            {
                tracing::warn!(error = %e, "the journal could not record a skipped prompt");
            }
            ItemReport {
                line: item.line,
                prompt: prompt.clone(),
                outcome: ItemOutcome::Skipped(Skipped {
                    line: item.line,
                    prompt: prompt.clone(),
                    reason,
                    kind,
                }),
            }
        };
        if self.is_stopped() {
            return skip(
                SkipKind::Interrupted,
                "the run was stopped before this prompt".into(),
            );
        }
        let generate = GenerateOptions {
            progress: options.progress.clone(),
            journal: options.journal.clone(),
            out_dir: Some(options.out_dir.clone()),
            call: item.call.clone(),
        };
        let report = self
            .generate_to_dir(&item.request, &options.out_dir, &generate)
            .await;
        let nothing_done = report.saved.is_empty() && report.unfinished.is_empty();
        match &report.error {
            Some(error) if nothing_done && error.kind() == ErrorKind::OverBudget => {
                skip(SkipKind::Budget, error.to_string())
            }
            Some(Error::Interrupted) if nothing_done => skip(
                SkipKind::Interrupted,
                "the run was stopped before this prompt was submitted".into(),
            ),
            _ => ItemReport {
                line: item.line,
                prompt,
                outcome: ItemOutcome::Ran(Box::new(report)),
            },
        }
    }
}

//! What the user sees: human text (status on stderr, results on stdout) or one JSON object
//! on stdout; progress spinners on stderr only when it is a terminal; `-q`, `-v` and
//! `NO_COLOR` honoured.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imagegen::{Credits, JobState, ProgressEvent, ProgressSink};
use indicatif::{ProgressBar, ProgressStyle};

/// Where and how to print.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    json: bool,
    quiet: bool,
    color: bool,
    progress: bool,
}

const GREEN: &str = "\x1b[1;32m";
const YELLOW: &str = "\x1b[1;33m";
const RED: &str = "\x1b[1;31m";
const CYAN: &str = "\x1b[1;36m";
const RESET: &str = "\x1b[0m";

impl Output {
    pub(crate) fn new(json: bool, quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            json,
            quiet,
            color: tty && !no_color,
            progress: tty && !quiet && !json,
        }
    }

    pub(crate) fn json(&self) -> bool {
        self.json
    }

    fn paint(&self, color: &str, text: &str) -> String {
        if self.color {
            format!("{color}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// A cargo-style status line on stderr: a right-aligned verb and a message.
    pub(crate) fn status(&self, verb: &str, message: impl AsRef<str>) {
        if self.quiet || self.json {
            return;
        }
        let verb = self.paint(GREEN, &format!("{verb:>12}"));
        eprintln!("{verb} {}", message.as_ref());
    }

    /// A remark on stderr (hidden by `-q`).
    pub(crate) fn note(&self, message: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        eprintln!("{} {}", self.paint(CYAN, "note:"), message.as_ref());
    }

    /// A warning on stderr (hidden by `-q`).
    pub(crate) fn warn(&self, message: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        eprintln!("{} {}", self.paint(YELLOW, "warning:"), message.as_ref());
    }

    /// An indented detail line under a note or warning, on stderr (hidden by `-q`).
    pub(crate) fn detail(&self, message: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        eprintln!("  {}", message.as_ref());
    }

    /// An error on stderr (always shown).
    pub(crate) fn error(&self, message: impl AsRef<str>) {
        eprintln!("{} {}", self.paint(RED, "error:"), message.as_ref());
    }

    /// A line of results on stdout (human mode only).
    pub(crate) fn line(&self, text: impl AsRef<str>) {
        if self.json {
            return;
        }
        write_stdout(text.as_ref());
    }

    /// The one JSON object on stdout (JSON mode only).
    pub(crate) fn emit(&self, value: &serde_json::Value) {
        if self.json {
            write_stdout(&value.to_string());
        }
    }

    /// A spinner on stderr when it is a terminal (a hidden one otherwise).
    pub(crate) fn spinner(&self, message: impl Into<String>) -> Arc<Spinner> {
        let bar = if self.progress {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message(message.into());
            Some(bar)
        } else {
            None
        };
        Arc::new(Spinner { bar })
    }

    /// A batch's progress display: one bar on stderr when it is a terminal, nothing
    /// otherwise.
    pub(crate) fn batch_display(&self, total: usize) -> Arc<BatchDisplay> {
        let bar = self.progress.then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>3} {pos}/{len} done {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Arc::new(BatchDisplay {
            bar,
            state: Mutex::default(),
        })
    }
}

/// The one progress display of a batch: prompts done of all, credits spent so far, the
/// prompts in flight and any rate-limit wait holding a submission. Without a terminal it
/// shows nothing (the command prints plain lines instead).
#[derive(Debug)]
pub(crate) struct BatchDisplay {
    bar: Option<ProgressBar>,
    state: Mutex<DisplayState>,
}

#[derive(Debug, Default)]
struct DisplayState {
    spent: Credits,
    /// Line → (prompt, what its job is doing).
    in_flight: BTreeMap<usize, (String, String)>,
    /// Line → (provider, until when its submission is held).
    waits: BTreeMap<usize, (String, Instant)>,
}

/// How many prompts in flight the bar names (the rest are counted).
const SHOWN_IN_FLIGHT: usize = 3;

impl BatchDisplay {
    fn lock(&self) -> std::sync::MutexGuard<'_, DisplayState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a bar is shown (stderr is a terminal).
    pub(crate) fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// A line started (only a preview of its prompt is kept: the bar shows less).
    pub(crate) fn started(&self, line: usize, prompt: &str) {
        self.lock().in_flight.insert(
            line,
            (
                imagegen::core::prompt_preview(prompt).into_owned(),
                "starting".to_owned(),
            ),
        );
        self.refresh();
    }

    /// A line's job reported where it is.
    pub(crate) fn job_state(&self, line: usize, state: &str) {
        {
            let mut display = self.lock();
            display.waits.remove(&line);
            if let Some(entry) = display.in_flight.get_mut(&line) {
                state.clone_into(&mut entry.1);
            }
        }
        self.refresh();
    }

    /// A line's submission is held by `provider`'s rate limit for `wait`.
    pub(crate) fn rate_limited(&self, line: usize, provider: &str, wait: Duration) {
        self.lock()
            .waits
            .insert(line, (provider.to_owned(), Instant::now() + wait));
        self.refresh();
    }

    /// A line is done, having spent `credits`.
    pub(crate) fn done(&self, line: usize, credits: Credits) {
        {
            let mut display = self.lock();
            display.in_flight.remove(&line);
            display.waits.remove(&line);
            display.spent = display.spent.checked_add(credits).unwrap_or(display.spent);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.refresh();
    }

    /// Redraws the message (also for the rate-limit countdown).
    pub(crate) fn refresh(&self) {
        let Some(bar) = &self.bar else {
            return;
        };
        let message = {
            let mut display = self.lock();
            let now = Instant::now();
            display.waits.retain(|_, (_, until)| *until > now);
            let mut parts = vec![display.spent.with_unit().to_string()];
            if let Some((provider, until)) = display.waits.values().max_by_key(|(_, until)| *until)
            {
                parts.push(rate_limit_wait(
                    provider,
                    until.saturating_duration_since(now),
                ));
            }
            if !display.in_flight.is_empty() {
                let mut shown: Vec<String> = display
                    .in_flight
                    .iter()
                    .take(SHOWN_IN_FLIGHT)
                    .map(|(line, (prompt, state))| {
                        format!("line {line} {:?} {state}", shorten(prompt, 24))
                    })
                    .collect();
                if display.in_flight.len() > SHOWN_IN_FLIGHT {
                    shown.push(format!(
                        "{} more",
                        display.in_flight.len() - SHOWN_IN_FLIGHT
                    ));
                }
                parts.push(format!("in flight: {}", shown.join(", ")));
            }
            parts.join(" · ")
        };
        bar.set_message(message);
    }

    /// Runs `print` with the bar out of the way, so lines printed never tear it.
    pub(crate) fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Takes the bar away for good.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Whether the bar was taken away.
    pub(crate) fn is_finished(&self) -> bool {
        self.bar.as_ref().is_none_or(ProgressBar::is_finished)
    }
}

impl Drop for BatchDisplay {
    fn drop(&mut self) {
        self.finish();
    }
}

/// "waiting for Kolbo's rate limit (12 s)".
pub(crate) fn rate_limit_wait(provider: &str, left: Duration) -> String {
    let name = match provider {
        "kolbo" => "Kolbo",
        "koala" => "KoalaImages",
        other => other,
    };
    format!(
        "waiting for {name}'s rate limit ({} s)",
        left.as_secs_f64().ceil().max(1.0)
    )
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`imagegen ... | head -1`) is not an error worth a panic.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// A progress spinner fed by provider progress events.
#[derive(Debug)]
pub(crate) struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl ProgressSink for Spinner {
    fn report(&self, event: ProgressEvent) {
        tracing::debug!(provider = %event.provider, job = %event.job_id, state = %event.state, percent = ?event.percent, "progress");
        let Some(bar) = &self.bar else {
            return;
        };
        let state = match &event.state {
            JobState::Completed => "downloading".to_owned(),
            other => other.to_string(),
        };
        let percent = event.percent.map(|p| format!(" {p}%")).unwrap_or_default();
        bar.set_message(format!(
            "{} {}: {state}{percent}",
            event.provider, event.job_id
        ));
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.finish();
    }
}

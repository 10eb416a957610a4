//! What the user sees: human text (status on stderr, results on stdout) or one JSON object
//! on stdout; progress spinners on stderr only when it is a terminal; `-q`, `-v` and
//! `NO_COLOR` honoured.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use imagegen::{JobState, ProgressEvent, ProgressSink};
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

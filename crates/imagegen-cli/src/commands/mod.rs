//! One module per subcommand, and what they share: connecting (with the keyless
//! simulator), running a paid operation so that Ctrl-C never loses a job, and reporting
//! errors and saved images.

pub(crate) mod batch;
pub(crate) mod credits;
pub(crate) mod estimate;
pub(crate) mod generate;
pub(crate) mod library;
pub(crate) mod models;
pub(crate) mod resume;
pub(crate) mod sim;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegen::router::CatalogFailure;
use imagegen::{
    Attempt, Client, ClientConfig, Credits, Error, ErrorKind, Estimate, Exclusion, RouteError,
    RunReport, SavedImage,
};
use serde_json::json;

use crate::exit;
use crate::output::Output;

/// The journal file name inside the output directory.
pub(crate) const JOURNAL_FILE: &str = "imagegen-journal.jsonl";

/// The default output directory.
pub(crate) const DEFAULT_OUT: &str = "imagegen-out";

/// How long Ctrl-C waits for requests already sent to be answered and journaled.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A client from the environment; with no key at all and `simulator` allowed, a client
/// against the built-in simulator (said in one line on stderr).
pub(crate) async fn connect(out: &Output, simulator: bool) -> Result<Client, Error> {
    let config = ClientConfig::from_env()?;
    if config.has_provider() {
        return Client::builder().config(config).build();
    }
    if !simulator {
        return Err(Error::NoProvider);
    }
    out.note(
        "no API key set (KOLBO_API_KEY, KOALA_API_KEY): using the built-in simulator of both APIs",
    );
    Client::simulated().await
}

/// A client from the environment (see [`connect`]) whose run keeps to `budget`, when one
/// is given.
pub(crate) async fn connect_with_budget(
    out: &Output,
    simulator: bool,
    budget: Option<Credits>,
) -> Result<Client, Error> {
    let client = connect(out, simulator).await?;
    match budget {
        Some(limit) => client.with_policy(|policy| policy.run_budget(limit)),
        None => Ok(client),
    }
}

/// The exit code of failed catalogs: the most serious failure's (a refusal such as a bad
/// key before anything else), `None` when every catalog was fetched.
pub(crate) fn catalog_failure_code<'a>(
    failures: impl IntoIterator<Item = &'a CatalogFailure>,
) -> Option<u8> {
    let kinds: Vec<ErrorKind> = failures
        .into_iter()
        .map(|f| Error::Provider(f.error.clone()).kind())
        .collect();
    ErrorKind::most_serious(&kinds).map(exit::code)
}

/// One line per attempt of a run, in the provider's own words: the delivered generation's
/// route, or the attempts of the error when nothing was delivered.
pub(crate) fn route_lines(report: &RunReport) -> Vec<String> {
    if let Some(generation) = &report.generation {
        return generation.route_lines();
    }
    report
        .error
        .as_ref()
        .and_then(Error::route_error)
        .map(|error| match error {
            RouteError::AllAttemptsFailed { attempts, partial } if partial.attempts.is_empty() => {
                attempts.iter().map(Attempt::summary).collect()
            }
            other => other
                .partial()
                .map(|p| p.attempts.iter().map(Attempt::summary).collect())
                .unwrap_or_default(),
        })
        .unwrap_or_default()
}

/// Prints `error` and returns its exit code.
pub(crate) fn fail(out: &Output, error: &Error) -> u8 {
    let code = exit::code(error.kind());
    if out.json() {
        out.emit(&json!({ "error": error_json(error) }));
    }
    print_error(out, error);
    code
}

/// Prints `error` on stderr, with a hint when a flag would help.
pub(crate) fn print_error(out: &Output, error: &Error) {
    out.error(error.to_string());
    if let Some(RouteError::NoEligibleCandidate { estimate, .. }) = error.route_error() {
        reshape_hint(out, estimate);
    }
}

/// When a model was left out only because its nearest shape is far from the one asked,
/// says which flag uses it anyway.
pub(crate) fn reshape_hint(out: &Output, estimate: &Estimate) {
    let far = estimate.candidates.iter().any(|c| {
        !c.exclusions.is_empty()
            && c.exclusions
                .iter()
                .all(|e| matches!(e, Exclusion::ShapeTooFar { .. }))
    });
    if far {
        out.note("--allow-reshape uses a model whose nearest shape is far from the one asked");
    }
}

/// An error as JSON: kind, message, exit code.
pub(crate) fn error_json(error: &Error) -> serde_json::Value {
    json!({
        "kind": exit::kind_name(error.kind()),
        "message": error.to_string(),
        "exit_code": exit::code(error.kind()),
    })
}

/// A saved image as JSON (the shape `--json` promises), with `sent`: the library's
/// [`imagegen::CallPlan`] of the call that made it (`null` when not known, as after `resume`).
pub(crate) fn image_json(saved: &SavedImage) -> serde_json::Value {
    json!({
        "path": saved.path,
        "provider": saved.image.provider,
        "model": saved.image.model,
        "mime": saved.mime,
        "width": saved.width,
        "height": saved.height,
        "bytes": saved.bytes,
        "source_url": imagegen::generation::shown_url(&saved.image.url),
        "generation_id": saved.image.job_id,
        "credits": saved.image.credits,
        "alt": saved.image.alt,
        "sent": saved.image.sent,
        "sidecar": saved.sidecar,
    })
}

/// The journal to keep: the one asked for, else `<out>/imagegen-journal.jsonl` — except
/// against the in-process simulator, whose jobs die with the process.
pub(crate) fn journal_path(
    client: &Client,
    asked: Option<&Path>,
    out_dir: &Path,
) -> Option<PathBuf> {
    match asked {
        Some(path) => Some(path.to_path_buf()),
        None if client.is_simulated() => None,
        None => Some(out_dir.join(JOURNAL_FILE)),
    }
}

/// Opens a journal, as an input error when it cannot be.
pub(crate) fn open_journal(path: &Path) -> Result<imagegen::Journal, Error> {
    imagegen::Journal::open(path).map_err(|source| Error::Io {
        context: "opening the journal",
        path: path.to_path_buf(),
        source,
    })
}

/// The command that finishes the open jobs of `journal`.
pub(crate) fn resume_command(journal: &Path) -> String {
    let default = Path::new(DEFAULT_OUT).join(JOURNAL_FILE);
    if journal == default {
        "imagegen resume".to_owned()
    } else {
        format!(
            "imagegen resume --journal {}",
            shell_quote(&journal.display().to_string())
        )
    }
}

fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Runs `work` (which submits paid jobs) on its own task. On Ctrl-C: no new request is
/// sent, requests already on the wire are answered and journaled, the resume command is
/// printed, and `None` comes back (the task is left to the runtime's shutdown).
pub(crate) async fn interruptible<T: Send + 'static>(
    client: &Client,
    out: &Output,
    journal: Option<&Path>,
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let mut task = tokio::spawn(work);
    tokio::select! {
        result = &mut task => match result {
            Ok(value) => Some(value),
            Err(e) => {
                out.error(format!("the run stopped unexpectedly: {e}"));
                None
            }
        },
        _ = tokio::signal::ctrl_c() => {
            client.stop_submitting();
            out.warn("interrupted: no new request will be sent; waiting for requests already sent to be recorded (Ctrl-C again to quit now)");
            tokio::select! {
                () = client.submissions_settled() => {}
                () = tokio::time::sleep(SETTLE_TIMEOUT) => {
                    out.warn("a request is still unanswered: its job may have been charged without an id; check the provider's dashboard");
                }
                _ = tokio::signal::ctrl_c() => {
                    out.warn("quitting now: a request may have been charged without being recorded");
                }
            }
            match journal {
                Some(path) => out.note(format!(
                    "paid jobs are recorded in {}; finish them with: {}",
                    path.display(),
                    resume_command(path)
                )),
                None if client.is_simulated() => out.note("the built-in simulator stops with this process: there is nothing to resume"),
                None => {}
            }
            None
        }
    }
}

/// The exit code for an interrupted run.
pub(crate) fn interrupted_code() -> u8 {
    exit::code(ErrorKind::Interrupted)
}

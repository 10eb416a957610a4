//! One module per subcommand, and what they share: connecting (with the keyless
//! simulator), running a paid operation so that Ctrl-C never loses a job, and reporting
//! errors and saved images.

pub(crate) mod batch;
pub(crate) mod credits;
pub(crate) mod estimate;
pub(crate) mod generate;
pub(crate) mod history;
pub(crate) mod keys;
pub(crate) mod library;
pub(crate) mod mcp;
pub(crate) mod models;
pub(crate) mod resume;
pub(crate) mod serve;
pub(crate) mod sim;
pub(crate) mod spend;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use imagegen::ledger::Ledger;
use imagegen::ledger_log::LedgerLog;

use imagegen::router::CatalogFailure;
use imagegen::{
    Attempt, Client, ClientConfig, Credits, Error, ErrorKind, Estimate, Exclusion, RouteError,
    RunReport, SavedImage,
};
use serde_json::json;

use crate::exit;
use crate::output::Output;

/// The ledger at `db` (`--db` or `IMAGEGEN_DATABASE_URL`), or the SQLite file in the
/// user's data directory.
pub(crate) async fn open_ledger(db: Option<&str>) -> Result<Arc<dyn Ledger>, Error> {
    let url = match db {
        Some(url) => url.to_owned(),
        None => imagegen::ledger::default_sqlite_path()?
            .display()
            .to_string(),
    };
    Ok(imagegen::ledger::open(&url).await?)
}

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
    print_with_causes(out, error);
    if let Some(RouteError::NoEligibleCandidate { estimate, .. }) = error.route_error() {
        reshape_hint(out, estimate);
    }
}

/// Prints `error`, then the causes its message does not already say (a database
/// driver's "connection refused" under "could not open the ledger").
pub(crate) fn print_with_causes(out: &Output, error: &dyn std::error::Error) {
    let mut said = error.to_string();
    out.error(&said);
    let mut cause = error.source();
    while let Some(source) = cause {
        let text = source.to_string();
        if !said.contains(&text) {
            out.detail(format!("caused by: {text}"));
            said = text;
        }
        cause = source.source();
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

/// Where a run records its paid jobs, for the messages that name it.
#[derive(Debug, Clone)]
pub(crate) struct RecordedIn {
    /// The ledger's location (a path, or a database URL without its password).
    pub(crate) location: String,
    /// The command that finishes its open jobs.
    pub(crate) resume: String,
}

/// The log a run records its paid jobs in: the ledger (`--db`, or the default SQLite
/// file). The built-in simulator's jobs vanish with the process, so they are recorded
/// only when a ledger is asked for explicitly.
pub(crate) async fn run_log(
    client: &Client,
    db: Option<&str>,
) -> Result<Option<(Arc<LedgerLog>, RecordedIn)>, Error> {
    if client.is_simulated() && db.is_none() {
        return Ok(None);
    }
    let ledger = open_ledger(db).await?;
    let recorded = RecordedIn {
        location: ledger.url().to_owned(),
        resume: resume_command(db),
    };
    Ok(Some((Arc::new(LedgerLog::new(ledger)), recorded)))
}

/// The command that finishes the open jobs of the ledger at `db`.
pub(crate) fn resume_command(db: Option<&str>) -> String {
    match db {
        None => "imagegen resume".to_owned(),
        Some(url) => format!(
            "imagegen resume --db {}",
            shell_quote(&imagegen::ledger::redact_url(url))
        ),
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
    recorded: Option<&RecordedIn>,
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
            match recorded {
                Some(recorded) => out.note(format!(
                    "paid jobs are recorded in {}; finish them with: {}",
                    recorded.location, recorded.resume
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

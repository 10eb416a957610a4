//! `imagegen batch FILE`: many prompts under one budget, recorded in the ledger; a file
//! run again skips the lines already saved.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use imagegen::batch::{
    BatchEvent, BatchOptions, ItemOutcome, ItemReport, SkipKind, Skipped, parse_batch,
};
use imagegen::core::prompt_preview;
use imagegen::ledger_log::LedgerLog;
use imagegen::{CallOptions, Error, InvalidInput, JobState};
use serde_json::json;

use super::{
    RecordedIn, connect_with_budget, error_json, fail, image_json, interruptible, run_log,
};
use crate::args::BatchArgs;
use crate::exit;
use crate::output::{BatchDisplay, Output, rate_limit_wait};

/// The largest batch file read: 64 MiB, refused before it is read whole. It holds the
/// most prompts a batch takes ([`imagegen::batch::MAX_BATCH_PROMPTS`]) at several
/// thousand characters each; a larger file is not a batch of prompts (a log, an image)
/// or should be split.
pub(crate) const MAX_BATCH_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The text of the batch file at `path`; an input error when it cannot be read, is not
/// UTF-8, or is larger than [`MAX_BATCH_FILE_BYTES`] (checked on its size first, then
/// while reading, for a file that grows or a pipe with no size).
fn read_batch_file(path: &Path) -> Result<String, InvalidInput> {
    let cannot = |why: &dyn std::fmt::Display| {
        InvalidInput::new("FILE", format!("cannot read {}: {why}", path.display()))
    };
    let too_big = || {
        InvalidInput::new(
            "FILE",
            format!(
                "{} is larger than {} MiB, the most a batch file may be: split it into smaller batches",
                path.display(),
                MAX_BATCH_FILE_BYTES / (1024 * 1024)
            ),
        )
    };
    let file = File::open(path).map_err(|e| cannot(&e))?;
    if file.metadata().map_err(|e| cannot(&e))?.len() > MAX_BATCH_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(MAX_BATCH_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(&e))?;
    if bytes.len() as u64 > MAX_BATCH_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|_| cannot(&"it is not UTF-8 text"))
}

pub(crate) async fn run(args: BatchArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let text = match read_batch_file(&args.file) {
        Ok(text) => text,
        Err(e) => return fail(&out, &Error::InvalidInput(e)),
    };
    let mut items = match parse_batch(&text) {
        Ok(items) => items,
        Err(e) => return fail(&out, &Error::InvalidInput(e)),
    };
    drop(text);
    let client = match connect_with_budget(&out, true, args.budget).await {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    // Each line's own routing choices, within the command line's; checked before anything
    // is sent.
    for item in &mut items {
        let checked =
            within_flags(&mut item.call, &args).and_then(|()| match &item.call.provider {
                Some(provider) if !client.has_provider(provider.as_str()) => Err(format!(
                    "{provider} is not configured (set {}_API_KEY)",
                    provider.as_str().to_ascii_uppercase()
                )),
                _ => Ok(()),
            });
        if let Err(why) = checked {
            let error = Error::InvalidInput(InvalidInput::new(
                "batch file",
                format!("line {}: {why}", item.line),
            ));
            return fail(&out, &error);
        }
    }
    // The catalogs, fetched once for the whole run: when none the run may use can be had
    // (a wrong key, a host that cannot be reached), nothing runs.
    match client.models().await {
        Ok(catalog) => {
            for failure in &catalog.failures {
                if args.provider.as_ref() == Some(&failure.provider) {
                    return fail(&out, &Error::Provider(failure.error.clone()));
                }
                out.warn(format!(
                    "{} is left out: its catalog could not be fetched: {}",
                    failure.provider, failure.message
                ));
            }
        }
        Err(error) => return fail(&out, &error),
    }
    let (log, recorded) = match run_log(&client, db).await {
        Ok(Some((log, recorded))) => (Some(log), Some(recorded)),
        Ok(None) => (None, None),
        Err(error) => return fail(&out, &error),
    };
    // A line already saved into this directory (by any earlier run) is not paid again.
    let mut already_saved = Vec::new();
    if let Some(log) = &log
        && !args.rerun
    {
        match saved_before(log.ledger().as_ref(), &mut items, &args.out).await {
            Ok(saved) => already_saved = saved,
            Err(error) => return fail(&out, &error),
        }
        for saved in &already_saved {
            out.status(
                "Skipped",
                format!(
                    "line {} {:?}: already saved as {} (--rerun to generate it again)",
                    saved.line,
                    prompt_preview(&saved.prompt),
                    saved
                        .paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if items.is_empty() {
            out.status(
                "Finished",
                format!("every line of {} is already saved", args.file.display()),
            );
            out.emit(&json!({
                "items": [],
                "already_saved": already_saved,
                "images_saved": 0,
                "credits_charged": imagegen::Credits::ZERO,
                "skipped": [],
                "ledger": recorded.as_ref().map(|r| &r.location),
                "exit_code": exit::OK,
            }));
            return exit::OK;
        }
    }
    let log = log.map(|log| {
        let key = std::fs::canonicalize(&args.file).unwrap_or_else(|_| args.file.clone());
        Arc::new(LedgerLog::new(Arc::clone(log.ledger())).in_batch(key.display().to_string()))
    });
    let total = items.len();
    out.status(
        "Running",
        format!(
            "{total} prompt(s), {} at a time{}{}",
            args.concurrency,
            args.budget
                .map(|b| format!(", budget {b} credits"))
                .unwrap_or_default(),
            recorded
                .as_ref()
                .map(|r| format!(", ledger {}", r.location))
                .unwrap_or_default()
        ),
    );
    let prompts: BTreeMap<usize, String> = items
        .iter()
        .map(|i| (i.line, i.request.prompt().as_str().to_owned()))
        .collect();
    let ledger = Arc::new(Mutex::new(LineStates::default()));
    let display = out.batch_display(total);
    let mut options = BatchOptions::new(&args.out)
        .concurrency(args.concurrency)
        .events(Arc::new(watcher(&out, &display, &ledger)));
    if let Some(log) = log {
        options = options.journal(log);
    }
    if display.is_shown() {
        // The rate-limit countdown moves even when nothing else happens.
        let display = Arc::clone(&display);
        tokio::spawn(async move {
            while !display.is_finished() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                display.refresh();
            }
        });
    }
    let started = Instant::now();
    let work = {
        let (client, out, display, ledger) = (
            client.clone(),
            out.clone(),
            Arc::clone(&display),
            Arc::clone(&ledger),
        );
        async move {
            // Each prompt is printed the moment its images are saved, in the order they
            // finish.
            client
                .batch_each(items, &options, |item| {
                    print_item(&out, &display, &ledger, item);
                })
                .await
        }
    };
    let Some(report) = interruptible(&client, &out, recorded.as_ref(), work).await else {
        display.finish();
        interrupted_summary(&out, &prompts, &ledger, recorded.as_ref());
        return super::interrupted_code();
    };
    display.finish();

    let mut rows = Vec::new();
    for item in &report.items {
        match &item.outcome {
            ItemOutcome::Ran(run) => {
                rows.push(json!({
                    "line": item.line,
                    "prompt": item.prompt,
                    "status": if run.error.is_none() { "saved" } else { "failed" },
                    "images": run.saved.iter().map(image_json).collect::<Vec<_>>(),
                    "credits_charged": run.credits_charged(),
                    "unfinished_jobs": run.unfinished.iter().map(|j| json!({"provider": j.provider, "job_id": j.job_id})).collect::<Vec<_>>(),
                    "error": run.error.as_ref().map(error_json),
                }));
            }
            ItemOutcome::Skipped(skipped) => {
                rows.push(json!({
                    "line": item.line,
                    "prompt": item.prompt,
                    "status": "skipped",
                    "reason": skipped.reason,
                }));
            }
            _ => {}
        }
    }
    let skipped: Vec<_> = report.skipped().collect();
    // Budget skips were named as they happened; a prompt the run stopped before is named
    // here.
    for s in skipped.iter().filter(|s| s.kind != SkipKind::Budget) {
        out.warn(skip_message(s));
    }
    let status = client.budget();
    out.status(
        "Finished",
        format!(
            "{} of {total} prompt(s), {} image(s), {}{} in {:.1}s; {} skipped",
            total - skipped.len(),
            report.images_saved(),
            report.credits_charged().with_unit(),
            status
                .limit
                .map(|l| format!(" of a {l}-credit budget"))
                .unwrap_or_default(),
            started.elapsed().as_secs_f64(),
            skipped.len()
        ),
    );
    let open: usize = report.ran().map(|r| r.unfinished.len()).sum();
    if open > 0
        && let Some(recorded) = &recorded
    {
        out.note(format!(
            "{open} paid job(s) did not finish here; finish them with: {}",
            recorded.resume
        ));
    }
    let code = report.failure_kind().map_or(exit::OK, exit::code);
    out.emit(&json!({
        "items": rows,
        "images_saved": report.images_saved(),
        "credits_charged": report.credits_charged(),
        "skipped": skipped.iter().map(|s| json!({"line": s.line, "prompt": s.prompt, "reason": s.reason})).collect::<Vec<_>>(),
        "budget": status,
        "already_saved": already_saved,
        "ledger": recorded.as_ref().map(|r| &r.location),
        "exit_code": code,
    }));
    code
}

/// A line the ledger shows as saved into the output directory by an earlier run.
#[derive(Debug, serde::Serialize)]
struct AlreadySaved {
    line: usize,
    prompt: String,
    paths: Vec<PathBuf>,
}

/// Takes out of `items` the lines whose very request (prompt, options, routing choices)
/// an earlier run saved into `out_dir`, as the ledger records it.
async fn saved_before(
    ledger: &dyn imagegen::ledger::Ledger,
    items: &mut Vec<imagegen::BatchItem>,
    out_dir: &Path,
) -> Result<Vec<AlreadySaved>, Error> {
    let mut saved = Vec::new();
    let mut kept = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        let key = imagegen::job_log::request_key(&item.request, &item.call, out_dir);
        let jobs = ledger.saved_jobs(&key).await?;
        let paths: Vec<PathBuf> = jobs
            .iter()
            .flat_map(|job| job.images.iter().map(|image| image.path.clone()))
            .filter(|path| path.exists())
            .collect();
        if paths.is_empty() {
            kept.push(item);
        } else {
            saved.push(AlreadySaved {
                line: item.line,
                prompt: item.request.prompt().as_str().to_owned(),
                paths,
            });
        }
    }
    *items = kept;
    Ok(saved)
}

/// What each line has come to, for the Ctrl-C summary.
#[derive(Debug, Default)]
struct LineStates {
    /// Lines a provider accepted a job for (paid).
    accepted: BTreeSet<usize>,
    /// Lines done, with the images saved (none when it failed).
    done: BTreeMap<usize, Vec<PathBuf>>,
    /// Lines done without being sent.
    not_sent: BTreeSet<usize>,
}

fn lock(ledger: &Mutex<LineStates>) -> std::sync::MutexGuard<'_, LineStates> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The batch's events, fed to the progress display (a terminal) or printed as plain lines
/// (rate-limit waits), and kept for the Ctrl-C summary.
fn watcher(
    out: &Output,
    display: &Arc<BatchDisplay>,
    ledger: &Arc<Mutex<LineStates>>,
) -> impl Fn(BatchEvent) + Send + Sync + 'static {
    let (out, display, ledger) = (out.clone(), Arc::clone(display), Arc::clone(ledger));
    move |event| match event {
        BatchEvent::Started { line, prompt } => display.started(line, &prompt),
        BatchEvent::Accepted { line, .. } => {
            lock(&ledger).accepted.insert(line);
            display.job_state(line, "accepted");
        }
        BatchEvent::RateLimited {
            line,
            provider,
            wait,
        } => {
            if display.is_shown() {
                display.rate_limited(line, provider.as_str(), wait);
            } else {
                out.status(
                    "Waiting",
                    format!("line {line}: {}", rate_limit_wait(provider.as_str(), wait)),
                );
            }
        }
        BatchEvent::Progress { line, event } => {
            let state = match &event.state {
                JobState::Completed => "downloading".to_owned(),
                other => other.to_string(),
            };
            let percent = event.percent.map(|p| format!(" {p}%")).unwrap_or_default();
            display.job_state(line, &format!("{state}{percent}"));
        }
        _ => {}
    }
}

/// Prints one prompt the moment it is done: its paths on stdout, its status on stderr.
fn print_item(out: &Output, display: &BatchDisplay, ledger: &Mutex<LineStates>, item: &ItemReport) {
    let credits = match &item.outcome {
        ItemOutcome::Ran(run) => run.credits_charged(),
        _ => imagegen::Credits::ZERO,
    };
    {
        let mut ledger = lock(ledger);
        match &item.outcome {
            ItemOutcome::Ran(run) => {
                ledger.done.insert(
                    item.line,
                    run.saved.iter().map(|s| s.path.clone()).collect(),
                );
            }
            ItemOutcome::Skipped(s) if s.kind == SkipKind::Interrupted => {
                ledger.not_sent.insert(item.line);
            }
            _ => {
                ledger.done.insert(item.line, Vec::new());
            }
        }
    }
    display.suspend(|| match &item.outcome {
        ItemOutcome::Ran(run) => {
            for saved in &run.saved {
                out.line(saved.path.display().to_string());
            }
            match &run.error {
                None => out.status(
                    "Saved",
                    format!(
                        "line {}: {} image(s) for {}: {:?}",
                        item.line,
                        run.saved.len(),
                        run.credits_charged().with_unit(),
                        prompt_preview(&item.prompt)
                    ),
                ),
                Some(error) => out.error(format!(
                    "line {} {:?}: {error}",
                    item.line,
                    prompt_preview(&item.prompt)
                )),
            }
        }
        ItemOutcome::Skipped(s) if s.kind == SkipKind::Budget => out.warn(skip_message(s)),
        _ => {}
    });
    display.done(item.line, credits);
}

fn skip_message(s: &Skipped) -> String {
    format!(
        "skipped line {} {:?}: {}",
        s.line,
        prompt_preview(&s.prompt),
        s.reason
    )
}

/// After Ctrl-C (and once every request already sent is recorded): what was saved, what
/// was paid for and is still running, and which lines were never sent.
fn interrupted_summary(
    out: &Output,
    prompts: &BTreeMap<usize, String>,
    ledger: &Mutex<LineStates>,
    recorded: Option<&RecordedIn>,
) {
    let ledger = lock(ledger);
    let saved: Vec<(usize, &Vec<PathBuf>)> = ledger
        .done
        .iter()
        .filter(|(_, paths)| !paths.is_empty())
        .map(|(line, paths)| (*line, paths))
        .collect();
    let running: Vec<usize> = ledger
        .accepted
        .iter()
        .copied()
        .filter(|line| !ledger.done.contains_key(line))
        .collect();
    let not_sent: Vec<usize> = prompts
        .keys()
        .copied()
        .filter(|line| {
            ledger.not_sent.contains(line)
                || !(ledger.done.contains_key(line) || ledger.accepted.contains(line))
        })
        .collect();
    let prompt = |line: usize| prompts.get(&line).map_or("", String::as_str);
    if out.json() {
        out.emit(&json!({
            "interrupted": {
                "saved": saved.iter().map(|(line, paths)| json!({"line": line, "prompt": prompt(*line), "paths": paths})).collect::<Vec<_>>(),
                "paid_not_saved": running.iter().map(|line| json!({"line": line, "prompt": prompt(*line)})).collect::<Vec<_>>(),
                "never_sent": not_sent.iter().map(|line| json!({"line": line, "prompt": prompt(*line)})).collect::<Vec<_>>(),
            },
            "ledger": recorded.map(|r| &r.location),
            "error": error_json(&Error::Interrupted),
        }));
    }
    out.note(format!(
        "saved before the interrupt: {} of {} line(s)",
        saved.len(),
        prompts.len()
    ));
    for (line, paths) in &saved {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        out.detail(format!(
            "line {line} {:?}: {}",
            prompt_preview(prompt(*line)),
            paths.join(", ")
        ));
    }
    if !running.is_empty() {
        out.note(format!(
            "sent and paid, not saved yet: {} line(s){}",
            running.len(),
            if recorded.is_some() {
                " (resume finishes them)"
            } else {
                ""
            }
        ));
        for line in &running {
            out.detail(format!("line {line} {:?}", prompt_preview(prompt(*line))));
        }
    }
    if !not_sent.is_empty() {
        out.note(format!(
            "never sent, nothing spent: {} line(s)",
            not_sent.len()
        ));
        for line in &not_sent {
            out.detail(format!("line {line} {:?}", prompt_preview(prompt(*line))));
        }
    }
}

/// Puts a line's routing choices within the command line's: the flags' provider and model
/// where the line names none (naming another is an error), the lower price cap, and
/// reshaping when either allows it.
fn within_flags(call: &mut CallOptions, args: &BatchArgs) -> Result<(), String> {
    if let Some(flag) = &args.provider {
        match &call.provider {
            Some(own) if own != flag => {
                return Err(format!(
                    "it asks for provider {own}, but --provider {flag} was given"
                ));
            }
            _ => call.provider = Some(flag.clone()),
        }
    }
    if let Some(flag) = &args.model {
        let flag_call = CallOptions::default().model(flag.clone());
        let own = match (&call.model, call.wants_provider_pick()) {
            (_, true) => Some(imagegen::router::AUTO_MODEL.to_owned()),
            (Some(own), false) => Some(own.to_string()),
            (None, false) => None,
        };
        let wanted = match (&flag_call.model, flag_call.provider_picks) {
            (_, true) => imagegen::router::AUTO_MODEL.to_owned(),
            (Some(model), false) => model.to_string(),
            (None, false) => flag.to_string(),
        };
        match own {
            Some(own) if !own.eq_ignore_ascii_case(&wanted) => {
                return Err(format!(
                    "it asks for model {own}, but --model {flag} was given"
                ));
            }
            _ => {
                call.model = flag_call.model;
                call.provider_picks = flag_call.provider_picks;
            }
        }
    }
    if let Some(flag) = args.max_credits {
        call.max_credits_per_image =
            Some(call.max_credits_per_image.map_or(flag, |own| own.min(flag)));
    }
    call.allow_reshape |= args.allow_reshape;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;
    use imagegen::batch::parse_batch;

    use super::*;
    use crate::args::{Cli, Command};

    fn batch_args(flags: &[&str]) -> BatchArgs {
        let cli = Cli::try_parse_from([&["imagegen", "batch", "p.txt"], flags].concat()).unwrap();
        match cli.command {
            Command::Batch(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_line_keeps_within_the_flags() {
        let args = batch_args(&[
            "--provider",
            "koala",
            "--max-credits",
            "3",
            "--allow-reshape",
        ]);
        let items = parse_batch(
            "a fox\n{\"prompt\": \"a heron\", \"max_credits\": 1}\n{\"prompt\": \"a koi\", \"max_credits\": 5}\n{\"prompt\": \"x\", \"provider\": \"kolbo\"}\n",
        )
        .unwrap();
        let mut calls: Vec<CallOptions> = items.into_iter().map(|i| i.call).collect();
        let caps: Vec<String> = calls[..3]
            .iter_mut()
            .map(|call| {
                within_flags(call, &args).unwrap();
                assert_eq!(call.provider.as_ref().map(|p| p.as_str()), Some("koala"));
                assert!(call.allow_reshape);
                call.max_credits_per_image.unwrap().to_string()
            })
            .collect();
        assert_eq!(caps, ["3", "1", "3"]);
        let err = within_flags(&mut calls[3], &args).unwrap_err();
        assert!(err.contains("--provider koala"), "{err}");
    }
}

//! `imagegen batch FILE`: many prompts under one budget, journaled.

use std::sync::Arc;
use std::time::Instant;

use imagegen::batch::{BatchOptions, ItemOutcome, parse_batch, parse_credits};
use imagegen::{Error, InvalidInput};
use serde_json::json;

use super::{connect, error_json, fail, image_json, interruptible, journal_path, open_journal};
use crate::args::BatchArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: BatchArgs, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(e) => {
            let error = Error::InvalidInput(InvalidInput::new(
                "FILE",
                format!("cannot read {}: {e}", args.file.display()),
            ));
            return fail(&out, &error);
        }
    };
    let items = match parse_batch(&text) {
        Ok(items) => items,
        Err(e) => return fail(&out, &Error::InvalidInput(e)),
    };
    let caps = (|| -> Result<_, InvalidInput> {
        let budget = args
            .budget
            .as_deref()
            .map(|t| parse_credits("budget", t))
            .transpose()?;
        let max = args
            .max_credits
            .as_deref()
            .map(|t| parse_credits("max_credits", t))
            .transpose()?;
        Ok((budget, max))
    })();
    let (budget, max_credits) = match caps {
        Ok(caps) => caps,
        Err(e) => return fail(&out, &Error::InvalidInput(e)),
    };
    if args.concurrency == 0 {
        let error = Error::InvalidInput(InvalidInput::new(
            "concurrency",
            "0 prompts at once runs nothing: use 1 or more",
        ));
        return fail(&out, &error);
    }
    let client = match connect(&out, true).await {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    let routing = match client.routing(
        args.provider.map(|p| p.id()),
        args.model.as_deref(),
        max_credits,
    ) {
        Ok(routing) => routing,
        Err(e) => return fail(&out, &Error::InvalidInput(e)),
    };
    let client = match client.with_policy(|policy| {
        let policy = routing.apply(policy);
        match budget {
            Some(limit) => policy.run_budget(limit),
            None => policy,
        }
    }) {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    // Check each line's own provider before anything is sent.
    for item in &items {
        let provider = item.spec.provider().ok().flatten();
        if let Err(e) = client.routing(provider, None, None) {
            let error = Error::InvalidInput(InvalidInput::new(
                "batch file",
                format!("line {}: {e}", item.line),
            ));
            return fail(&out, &error);
        }
    }
    let journal_file = journal_path(&client, args.journal.as_deref(), &args.out);
    let journal = match journal_file.as_deref().map(open_journal).transpose() {
        Ok(journal) => journal.map(Arc::new),
        Err(error) => return fail(&out, &error),
    };
    let total = items.len();
    out.status(
        "Running",
        format!(
            "{total} prompt(s), {} at a time{}{}",
            args.concurrency,
            budget
                .map(|b| format!(", budget {b} credits"))
                .unwrap_or_default(),
            journal_file
                .as_ref()
                .map(|p| format!(", journal {}", p.display()))
                .unwrap_or_default()
        ),
    );
    let spinner = out.spinner(format!("{total} prompt(s)"));
    let mut options = BatchOptions::new(&args.out)
        .concurrency(args.concurrency)
        .progress(spinner.clone());
    if let Some(journal) = journal {
        options = options.journal(journal);
    }
    let started = Instant::now();
    let work = {
        let client = client.clone();
        async move { client.batch(items, &options).await }
    };
    let Some(report) = interruptible(&client, &out, journal_file.as_deref(), work).await else {
        spinner.finish();
        return super::interrupted_code();
    };
    spinner.finish();

    let mut rows = Vec::new();
    for item in &report.items {
        match &item.outcome {
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
                            item.prompt
                        ),
                    ),
                    Some(error) => {
                        out.error(format!("line {} {:?}: {error}", item.line, item.prompt))
                    }
                }
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
    for s in &skipped {
        out.warn(format!(
            "skipped line {} {:?}: {}",
            s.line, s.prompt, s.reason
        ));
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
        && let Some(path) = &journal_file
    {
        out.note(format!(
            "{open} paid job(s) did not finish here; finish them with: {}",
            super::resume_command(path)
        ));
    }
    let code = report.failure_kind().map_or(exit::OK, exit::code);
    out.emit(&json!({
        "items": rows,
        "images_saved": report.images_saved(),
        "credits_charged": report.credits_charged(),
        "skipped": skipped.iter().map(|s| json!({"line": s.line, "prompt": s.prompt, "reason": s.reason})).collect::<Vec<_>>(),
        "budget": status,
        "journal": journal_file,
        "exit_code": code,
    }));
    code
}

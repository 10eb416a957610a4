//! `imagegen batch FILE`: many prompts under one budget, journaled.

use std::sync::Arc;
use std::time::Instant;

use imagegen::batch::{BatchOptions, ItemOutcome, parse_batch};
use imagegen::{CallOptions, Error, InvalidInput};
use serde_json::json;

use super::{
    connect_with_budget, error_json, fail, image_json, interruptible, journal_path, open_journal,
};
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
    let mut items = match parse_batch(&text) {
        Ok(items) => items,
        Err(e) => return fail(&out, &Error::InvalidInput(e)),
    };
    if args.concurrency == 0 {
        let error = Error::InvalidInput(InvalidInput::new(
            "concurrency",
            "0 prompts at once runs nothing: use 1 or more",
        ));
        return fail(&out, &error);
    }
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
            args.budget
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

//! `imagegen generate PROMPT`: generate, save with sidecars, journal, report.

use std::time::Instant;

use imagegen::{CallOptions, Client, Error, GenerateOptions, GenerationRequest, RunReport};
use serde_json::json;

use super::estimate::{plan_line, relevant_failures, show_estimate};
use super::{
    RecordedIn, connect_with_budget, error_json, fail, image_json, interruptible, print_error,
    route_lines, run_log,
};
use crate::args::{GenerateArgs, RequestArgs};
use crate::exit;
use crate::output::Output;

/// The request, its own routing choices, and a client whose run keeps to the command
/// line's budget; every option is checked before anything is sent.
pub(crate) async fn prepare(
    args: &RequestArgs,
    out: &Output,
) -> Result<(Client, GenerationRequest, CallOptions), Error> {
    let (request, call) = args.options().into_parts()?;
    let client = connect_with_budget(out, true, args.budget).await?;
    Ok((client, request, call))
}

pub(crate) async fn run(args: GenerateArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(args.request.json, quiet);
    let (client, request, call) = match prepare(&args.request, &out).await {
        Ok(prepared) => prepared,
        Err(error) => return fail(&out, &error),
    };
    if args.dry_run {
        let code = show_estimate(&out, &client, &request, &call).await;
        out.note("dry run: nothing was sent");
        return code;
    }
    let estimate = match client.estimate_with(&request, &call).await {
        Ok(estimate) => estimate,
        Err(error) => return fail(&out, &error),
    };
    for failure in relevant_failures(&estimate, &call) {
        out.warn(format!(
            "{} is left out: its catalog could not be fetched: {}",
            failure.provider, failure.message
        ));
    }
    if let Some(line) = plan_line(&estimate) {
        out.status("Generating", line);
    }
    let (log, recorded) = match run_log(&client, db).await {
        Ok(Some((log, recorded))) => (Some(log), Some(recorded)),
        Ok(None) => (None, None),
        Err(error) => return fail(&out, &error),
    };
    let spinner = out.spinner("submitting");
    let mut options = GenerateOptions::default()
        .progress(spinner.clone())
        .out_dir(&args.out)
        .call(call);
    if let Some(log) = log {
        options = options.journal(log);
    }
    let started = Instant::now();
    let work = {
        let client = client.clone();
        let dir = args.out.clone();
        async move { client.generate_to_dir(&request, &dir, &options).await }
    };
    let Some(report) = interruptible(&client, &out, recorded.as_ref(), work).await else {
        spinner.finish();
        return super::interrupted_code();
    };
    spinner.finish();
    report_run(&out, &report, recorded.as_ref(), started)
}

/// Prints what a run did and returns its exit code.
fn report_run(
    out: &Output,
    report: &RunReport,
    recorded: Option<&RecordedIn>,
    started: Instant,
) -> u8 {
    for saved in &report.saved {
        out.line(saved.path.display().to_string());
    }
    if let Some(generation) = &report.generation {
        for warning in &generation.warnings {
            out.warn(warning);
        }
    }
    let credits = report.credits_charged();
    if !report.saved.is_empty() {
        out.status(
            "Saved",
            format!(
                "{} image(s) in {} for {} via {} ({:.1}s)",
                report.saved.len(),
                report.out_dir.display(),
                credits.with_unit(),
                via(report),
                started.elapsed().as_secs_f64()
            ),
        );
    }
    let code = report
        .error
        .as_ref()
        .map_or(exit::OK, |e| exit::code(e.kind()));
    if out.json() {
        out.emit(&json!({
            "images": report.saved.iter().map(image_json).collect::<Vec<_>>(),
            "credits_charged": credits,
            "route": route_lines(report),
            "warnings": report.generation.as_ref().map(|g| g.warnings.clone()).unwrap_or_default(),
            "ledger": recorded.map(|r| &r.location),
            "unfinished_jobs": report.unfinished.iter().map(|j| json!({"provider": j.provider, "job_id": j.job_id})).collect::<Vec<_>>(),
            "error": report.error.as_ref().map(error_json),
        }));
    }
    if let Some(error) = &report.error {
        print_error(out, error);
    }
    if !report.unfinished.is_empty() {
        match recorded {
            Some(recorded) => out.note(format!(
                "{} paid job(s) did not finish here; finish them with: {}",
                report.unfinished.len(),
                recorded.resume
            )),
            None => out.note(format!(
                "{} paid job(s) did not finish: {}",
                report.unfinished.len(),
                report
                    .unfinished
                    .iter()
                    .map(|j| format!("{} {}", j.provider, j.job_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    code
}

/// `kolbo/z-image/turbo`, or `kolbo/z-image/turbo (after koala/gpt-image-2: refused: insufficient credits)`.
pub(crate) fn via(report: &RunReport) -> String {
    let Some(generation) = &report.generation else {
        return report.route_summary();
    };
    let mut delivered: Vec<String> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for attempt in &generation.route {
        if matches!(attempt.outcome, imagegen::AttemptOutcome::Delivered { .. }) {
            if !delivered.contains(&attempt.label()) {
                delivered.push(attempt.label());
            }
        } else {
            others.push(attempt.summary());
        }
    }
    let mut text = delivered.join(" and ");
    if !others.is_empty() {
        text.push_str(&format!(" (after {})", others.join("; ")));
    }
    text
}

//! `imagegen generate PROMPT`: generate, save with sidecars, journal, report.

use std::sync::Arc;
use std::time::Instant;

use imagegen::batch::{RequestSpec, parse_credits};
use imagegen::{Client, Error, GenerateOptions, GenerationRequest, RunReport};
use serde_json::json;

use super::estimate::{plan_line, print_estimate};
use super::{connect, error_json, fail, image_json, interruptible, journal_path, open_journal};
use crate::args::{GenerateArgs, RequestArgs};
use crate::exit;
use crate::output::Output;

/// The request options of the command line.
pub(crate) fn spec_of(args: &RequestArgs) -> RequestSpec {
    RequestSpec {
        prompt: args.prompt.clone(),
        count: Some(args.count),
        aspect: args.aspect.clone(),
        size: args.size.clone(),
        style: args.style.clone(),
        quality: args.quality.clone(),
        refs: args.refs.clone(),
        provider: args.provider.map(|p| p.id().to_owned()),
        model: args.model.clone(),
        max_credits: args.max_credits.clone(),
        no_enhance: args.no_enhance,
    }
}

/// The request and a client with the command line's routing options and budget; every
/// option is checked before anything is sent.
pub(crate) async fn prepare(
    args: &RequestArgs,
    out: &Output,
) -> Result<(Client, GenerationRequest), Error> {
    let spec = spec_of(args);
    let request = spec.request()?;
    let max_credits = spec.max_credits()?;
    let budget = args
        .budget
        .as_deref()
        .map(|text| parse_credits("budget", text))
        .transpose()?;
    let client = connect(out, true).await?;
    let routing = client.routing(spec.provider()?, spec.model.as_deref(), max_credits)?;
    let client = client.with_policy(|policy| {
        let policy = routing.apply(policy);
        match budget {
            Some(limit) => policy.run_budget(limit),
            None => policy,
        }
    })?;
    Ok((client, request))
}

pub(crate) async fn run(args: GenerateArgs, quiet: bool) -> u8 {
    let out = Output::new(args.request.json, quiet);
    let (client, request) = match prepare(&args.request, &out).await {
        Ok(prepared) => prepared,
        Err(error) => return fail(&out, &error),
    };
    if args.dry_run {
        return match client.estimate(&request).await {
            Ok(estimate) => {
                let code = print_estimate(&out, &estimate);
                out.note("dry run: nothing was sent");
                code
            }
            Err(error) => fail(&out, &error),
        };
    }
    let estimate = match client.estimate(&request).await {
        Ok(estimate) => estimate,
        Err(error) => return fail(&out, &error),
    };
    if let Some(line) = plan_line(&estimate) {
        out.status("Generating", line);
    }
    let journal_file = journal_path(&client, None, &args.out);
    let journal = match journal_file.as_deref().map(open_journal).transpose() {
        Ok(journal) => journal.map(Arc::new),
        Err(error) => return fail(&out, &error),
    };
    let spinner = out.spinner("submitting");
    let mut options = GenerateOptions::default()
        .progress(spinner.clone())
        .out_dir(&args.out);
    if let Some(journal) = journal {
        options = options.journal(journal);
    }
    let started = Instant::now();
    let work = {
        let client = client.clone();
        let dir = args.out.clone();
        async move { client.generate_to_dir(&request, &dir, &options).await }
    };
    let Some(report) = interruptible(&client, &out, journal_file.as_deref(), work).await else {
        spinner.finish();
        return super::interrupted_code();
    };
    spinner.finish();
    report_run(&out, &report, journal_file.as_deref(), started)
}

/// Prints what a run did and returns its exit code.
fn report_run(
    out: &Output,
    report: &RunReport,
    journal: Option<&std::path::Path>,
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
            "route": report.generation.as_ref().map(|g| g.route_lines()).unwrap_or_default(),
            "warnings": report.generation.as_ref().map(|g| g.warnings.clone()).unwrap_or_default(),
            "journal": journal,
            "unfinished_jobs": report.unfinished.iter().map(|j| json!({"provider": j.provider, "job_id": j.job_id})).collect::<Vec<_>>(),
            "error": report.error.as_ref().map(error_json),
        }));
    }
    if let Some(error) = &report.error {
        out.error(error.to_string());
    }
    if !report.unfinished.is_empty() {
        match journal {
            Some(path) => out.note(format!(
                "{} paid job(s) did not finish here; finish them with: {}",
                report.unfinished.len(),
                super::resume_command(path)
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

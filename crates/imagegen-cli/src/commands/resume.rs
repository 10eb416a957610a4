//! `imagegen resume [--journal PATH]`: finish every paid job a journal left open, by
//! polling and downloading, never by submitting again.

use std::path::PathBuf;

use imagegen::{Error, InvalidInput};
use serde_json::json;

use super::{DEFAULT_OUT, JOURNAL_FILE, connect, error_json, fail, image_json, open_journal};
use crate::args::ResumeArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: ResumeArgs, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let path = args
        .journal
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT).join(JOURNAL_FILE));
    if !path.is_file() {
        let error = Error::InvalidInput(InvalidInput::new(
            "journal",
            format!(
                "there is no journal at {}: give its path with --journal",
                path.display()
            ),
        ));
        return fail(&out, &error);
    }
    let journal = match open_journal(&path) {
        Ok(journal) => journal,
        Err(error) => return fail(&out, &error),
    };
    let contents = match journal.read() {
        Ok(contents) => contents,
        Err(e) => {
            return fail(
                &out,
                &Error::Io {
                    context: "reading the journal",
                    path: path.clone(),
                    source: e,
                },
            );
        }
    };
    for bad in &contents.bad_lines {
        out.warn(format!("{}: skipped {bad}", path.display()));
    }
    let open = contents.unfinished();
    if open.is_empty() {
        out.status(
            "Finished",
            format!(
                "nothing to resume: every job in {} is finished",
                path.display()
            ),
        );
        out.emit(
            &json!({"jobs": [], "images": [], "journal": path, "bad_lines": contents.bad_lines}),
        );
        return exit::OK;
    }
    let client = match connect(&out, false).await {
        Ok(client) => client,
        Err(Error::NoProvider) => {
            out.error(format!(
                "{} job(s) are open, but no provider is configured: set the API keys (and base URLs) the run used, then resume",
                open.len()
            ));
            return exit::OTHER;
        }
        Err(error) => return fail(&out, &error),
    };
    out.status(
        "Resuming",
        format!("{} paid job(s) from {}", open.len(), path.display()),
    );
    let spinner = out.spinner("waiting");
    let report = match client.resume(&journal, spinner.as_ref()).await {
        Ok(report) => report,
        Err(error) => return fail(&out, &error),
    };
    spinner.finish();
    let mut rows = Vec::new();
    for job in &report.jobs {
        for saved in &job.saved {
            out.line(saved.path.display().to_string());
        }
        match &job.error {
            None => out.status(
                "Saved",
                format!(
                    "{} job {}: {} image(s): {:?}",
                    job.job.provider,
                    job.job.job_id,
                    job.saved.len(),
                    imagegen::core::prompt_preview(&job.prompt)
                ),
            ),
            Some(error) if job.closed => out.error(format!(
                "{} job {} failed: {error}",
                job.job.provider, job.job.job_id
            )),
            Some(error) => out.warn(format!(
                "{} job {} is still open: {error}",
                job.job.provider, job.job.job_id
            )),
        }
        rows.push(json!({
            "provider": job.job.provider,
            "job_id": job.job.job_id,
            "prompt": job.prompt,
            "images": job.saved.iter().map(image_json).collect::<Vec<_>>(),
            "closed": job.closed,
            "error": job.error.as_ref().map(error_json),
        }));
    }
    out.status(
        "Finished",
        format!(
            "{} job(s), {} image(s) saved, {} still open",
            report.finished(),
            report.images_saved(),
            report.still_open()
        ),
    );
    if report.still_open() > 0 {
        out.note(format!(
            "run `{}` again later for the jobs still open",
            super::resume_command(&path)
        ));
    }
    let code = report.failure_kind().map_or(exit::OK, exit::code);
    out.emit(
        &json!({"jobs": rows, "journal": path, "bad_lines": report.bad_lines, "exit_code": code}),
    );
    code
}

//! `imagegen resume [--journal PATH]`: finish every paid job the ledger holds open, from
//! any run, by polling and downloading, never by submitting again. `--journal` first
//! imports a JSON Lines journal of an earlier version into the ledger.

use std::sync::Arc;

use imagegen::job_log::JobLog;
use imagegen::ledger_log::{LedgerLog, import_journal};
use imagegen::{Error, InvalidInput};
use serde_json::json;

use super::{connect, error_json, fail, image_json, open_ledger, resume_command};
use crate::args::ResumeArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: ResumeArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let ledger = match open_ledger(db).await {
        Ok(ledger) => ledger,
        Err(error) => return fail(&out, &error),
    };
    let mut imported = None;
    let mut bad_lines = Vec::new();
    if let Some(path) = &args.journal {
        if !path.is_file() {
            let error = Error::InvalidInput(InvalidInput::new(
                "journal",
                format!("there is no journal at {}", path.display()),
            ));
            return fail(&out, &error);
        }
        match import_journal(ledger.as_ref(), path).await {
            Ok(import) => {
                for bad in &import.bad_lines {
                    out.warn(format!("{}: skipped {bad}", path.display()));
                }
                out.status(
                    "Imported",
                    format!(
                        "{} paid job(s) from {} ({} finished there, {} already known)",
                        import.report.accepted,
                        path.display(),
                        import.report.finished,
                        import.report.already_known
                    ),
                );
                imported = Some(import.report);
                bad_lines = import.bad_lines;
            }
            Err(error) => return fail(&out, &error),
        }
    }
    let log = LedgerLog::new(Arc::clone(&ledger));
    let open = match log.open_jobs().await {
        Ok(open) => open.jobs,
        Err(e) => {
            return fail(
                &out,
                &Error::Io {
                    context: "reading the ledger",
                    path: ledger.url().into(),
                    source: e,
                },
            );
        }
    };
    if open.is_empty() {
        out.status(
            "Finished",
            format!(
                "nothing to resume: every paid job in {} is finished",
                ledger.url()
            ),
        );
        out.emit(&json!({"jobs": [], "images": [], "ledger": ledger.url(), "imported": imported, "bad_lines": bad_lines}));
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
        format!("{} paid job(s) from {}", open.len(), ledger.url()),
    );
    let spinner = out.spinner("waiting");
    let report = match client.resume(&log, spinner.as_ref()).await {
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
            resume_command(db)
        ));
    }
    let code = report.failure_kind().map_or(exit::OK, exit::code);
    out.emit(&json!({
        "jobs": rows,
        "ledger": ledger.url(),
        "imported": imported,
        "bad_lines": bad_lines,
        "exit_code": code,
    }));
    code
}

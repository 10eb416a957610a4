//! `get_generation`: one job by its id. A job still open in the ledger is finished as
//! `imagegen resume` would finish it (waited on, its images saved and recorded; never
//! submitted again), or, when this server is already waiting on it, that wait is
//! joined; a finished job's images are read from the ledger.

use std::sync::Arc;

use imagegen::job_log::{ChosenJobs, JobLog};
use imagegen::journal::UnfinishedJob;
use imagegen::ledger_log::LedgerLog;
use imagegen::{Credits, NoProgress};
use imagegen_ledger::{ImageKey, JobRecord, JobState};
use rmcp::model::CallToolResult;
use serde_json::json;
use tokio::sync::watch;

use super::access::Access;
use super::generate::{absolute, pending};
use super::output::{GenerationOutput, ImageOutput, JobOutput, Status, number, tool_error};
use super::params::GetGenerationParams;
use super::running::wait_done;
use super::{Shared, Surface};
use crate::store_log::StoreLog;

/// The most images one job is looked up for.
const MAX_JOB_IMAGES: u32 = 64;

/// Runs one `get_generation` call; see the [module docs](self).
pub(crate) async fn get(
    shared: &Arc<Shared>,
    access: &Access,
    params: GetGenerationParams,
) -> CallToolResult {
    let (provider, job_id) = match (params.provider, params.job_id.split_once(':')) {
        (None, Some((provider, id))) => (Some(provider.trim().to_owned()), id.trim().to_owned()),
        (provider, _) => (provider, params.job_id.trim().to_owned()),
    };
    let record = match find(shared, access, provider.as_deref(), &job_id).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            return tool_error(
                "not_found",
                format!(
                    "No job `{job_id}` in the ledger{}: give a job_id that generate_image returned (list_history shows past ones).",
                    provider
                        .map(|p| format!(" for provider {p}"))
                        .unwrap_or_default()
                ),
                json!({"job_id": job_id}),
            );
        }
        Err(e) => return tool_error("ledger_error", format!("the ledger: {e}"), json!({})),
    };
    if record.state == JobState::Accepted {
        let provider = record.provider.to_string();
        let done = match shared.running.get(&provider, &record.job_id) {
            Some(done) => wait_done(done, shared.wait_limit).await,
            None if leased_elsewhere(shared, &record) => false,
            None => finish(shared, record.clone()).await,
        };
        if !done {
            return pending(shared, std::slice::from_ref(&record.handle), None)
                .into_result()
                .await;
        }
    }
    match shared.ledger.job(&record.provider, &record.job_id).await {
        Ok(Some(record)) => output_of(shared, access, &record).await.into_result().await,
        Ok(None) => tool_error(
            "not_found",
            format!("the job `{job_id}` is no longer in the ledger"),
            json!({}),
        ),
        Err(e) => tool_error("ledger_error", format!("the ledger: {e}"), json!({})),
    }
}

/// The job `job_id` of `provider` (or of any configured provider), if the caller may
/// see it: a gateway key sees only the jobs it paid for.
async fn find(
    shared: &Shared,
    access: &Access,
    provider: Option<&str>,
    job_id: &str,
) -> Result<Option<JobRecord>, imagegen_ledger::LedgerError> {
    let providers = match provider {
        Some(name) => vec![imagegen::ProviderId::from(name)],
        None => shared.client.providers(),
    };
    for provider in providers {
        if let Some(record) = shared.ledger.job(&provider, job_id).await? {
            let visible = access.key().is_none_or(|key| record.api_key == Some(key));
            return Ok(visible.then_some(record));
        }
    }
    Ok(None)
}

/// Whether another gateway holds a live lease on the job (it is finishing it).
fn leased_elsewhere(shared: &Shared, record: &JobRecord) -> bool {
    let Surface::Http(state) = &shared.surface else {
        return false;
    };
    record
        .lease
        .as_ref()
        .is_some_and(|lease| lease.owner != state.instance && lease.until_ms > state.now_ms())
}

/// Finishes the open job `record` on a task of its own (as `imagegen resume` would);
/// waits at most the wait limit: whether it ended.
async fn finish(shared: &Arc<Shared>, record: JobRecord) -> bool {
    let provider = record.provider.to_string();
    let job_id = record.job_id.clone();
    let (done_tx, done_rx) = watch::channel(false);
    if !shared.running.claim(&provider, &job_id, done_rx.clone()) {
        // Another call started finishing it a moment ago: wait for that one.
        return match shared.running.get(&provider, &job_id) {
            Some(done) => wait_done(done, shared.wait_limit).await,
            None => true,
        };
    }
    let mut job = UnfinishedJob::from(record);
    let (log, guard): (Arc<dyn JobLog>, _) = match &shared.surface {
        Surface::Stdio { .. } => (Arc::new(LedgerLog::new(Arc::clone(&shared.ledger))), None),
        Surface::Http(state) => {
            job.out_dir = state
                .store
                .incoming_dir(&format!("mcp-{provider}-{job_id}"));
            let log = StoreLog::new(
                LedgerLog::new(Arc::clone(&state.ledger)).with_clock(Arc::clone(&state.clock)),
                state.store.clone(),
            );
            (log, Some(state.inflight.enter()))
        }
    };
    tracing::info!(%provider, job = %job_id, "finishing an open job");
    let shared_for_task = Arc::clone(shared);
    tokio::spawn(async move {
        let _in_flight = guard;
        let out_dir = job.out_dir.clone();
        let one = ChosenJobs::new(log, vec![job]);
        match shared_for_task.client.resume(&one, &NoProgress).await {
            Ok(report) => tracing::info!(
                finished = report.finished(),
                still_open = report.still_open(),
                images = report.images_saved(),
                "an open job was resumed"
            ),
            Err(e) => tracing::warn!(error = %e, "an open job could not be resumed"),
        }
        if matches!(shared_for_task.surface, Surface::Http(_)) {
            let _ = tokio::fs::remove_dir(&out_dir).await;
        }
        let _ = done_tx.send(true);
        shared_for_task
            .running
            .remove([(provider.as_str(), job_id.as_str())]);
    });
    wait_done(done_rx, shared.wait_limit).await
}

/// A job as the ledger has it now: its images (done), why it failed, or still open.
async fn output_of(shared: &Shared, access: &Access, record: &JobRecord) -> GenerationOutput {
    let mut images = Vec::new();
    for index in 0..MAX_JOB_IMAGES {
        let key = ImageKey::new(record.provider.clone(), record.job_id.clone(), index);
        match shared.ledger.image(&key).await {
            Ok(Some(entry)) => images.push(entry.image),
            Ok(None) if index >= record.handle.images_requested => break,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "an image record could not be read");
                break;
            }
        }
    }
    let charged = record.charged.unwrap_or(Credits::ZERO);
    let per_image = (!images.is_empty()).then(|| number(charged) / images.len() as f64);
    let http = matches!(shared.surface, Surface::Http(_));
    let images: Vec<ImageOutput> = images
        .into_iter()
        .map(|image| {
            let name = image
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            ImageOutput {
                path: (!http).then(|| absolute(&image.path)),
                url: if http { access.file_url(&name) } else { None },
                provider: record.provider.to_string(),
                model: record.model.as_ref().map(ToString::to_string),
                credits: per_image,
                job_id: record.job_id.clone(),
                mime: image.mime.clone(),
                width: image.width,
                height: image.height,
                bytes: image.bytes,
                alt: image.alt_text.clone(),
                inline: false,
                file: Some(image.path),
            }
        })
        .collect();
    let (status, message) = match record.state {
        JobState::Done => (
            Status::Done,
            format!(
                "{} image(s) of {} job {} ({}), for {}: \"{}\".",
                images.len(),
                record.provider,
                record.job_id,
                record.model.as_ref().map_or("its model", |m| m.as_str()),
                charged.with_unit(),
                imagegen::core::prompt_preview(&record.prompt)
            ),
        ),
        JobState::Failed => (
            Status::Failed,
            format!(
                "{} job {} failed: {}",
                record.provider,
                record.job_id,
                record.error.as_deref().unwrap_or("no reason recorded")
            ),
        ),
        JobState::Accepted => (
            Status::Pending,
            format!(
                "{} job {} is paid and still running: call get_generation again in a while (never generate it again).",
                record.provider, record.job_id
            ),
        ),
    };
    GenerationOutput {
        status,
        message,
        jobs: vec![JobOutput {
            provider: record.provider.to_string(),
            job_id: record.job_id.clone(),
            state: status,
            credits: record.charged.map(number),
            error: record.error.clone(),
        }],
        images,
        credits: number(charged),
        usd: None,
        warnings: Vec::new(),
        simulated: shared.client.is_simulated(),
        generation_id: None,
    }
}

//! `generate_image`: the request checked and routed, its worst case held on the budget,
//! then run on a task of its own through the facade's
//! [`Client::generate_to_dir`](imagegen::Client::generate_to_dir) with the ledger as its
//! journal (every paid job committed before it is waited on; on the gateway, images
//! moved into its store). The call waits at most the wait limit: past it, the task keeps
//! going and the answer is `status: "pending"` with the job ids, paid for, which
//! `get_generation` fetches.
//!
//! On the gateway (`/mcp`) a call is a gateway generation like an API request's: its
//! hold is [`budget::reserve_for`] (leased to this gateway, naming the call's id), and
//! its generation is recorded with [`Jobs::start`](crate::jobs::Jobs::start), naming the
//! request key the facade writes its write-ahead under, before anything is sent (a
//! failure to record refuses the call and gives the hold back). The keeper renews both
//! with the call's jobs; if the gateway dies, another resolves the hold from what was
//! sent and answers the generation ([`crate::leases`]). When the run ends (not when the
//! call answers: past the wait limit it runs on) the hold settles and the generation is
//! closed with [`Jobs::finish`](crate::jobs::Jobs::finish): its answer is the tool's
//! structured result with the HTTP status the API would give the same run, which
//! `GET /v1/generations/{id}` shows to the same caller (the id is the answer's
//! `generation_id`, also when it answers "pending"). Over stdio there is no gateway and
//! no keeper: the hold is [`budget::reserve`], unleased, and no generation is recorded;
//! only that process ends the hold.

use std::io;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use imagegen::job_log::{AcceptedRecord, JobLog, OpenJobs, SubmittingRecord};
use imagegen::journal::Outcome;
use imagegen::ledger_log::LedgerLog;
use imagegen::{
    CallOptions, Credits, GenerateOptions, GenerationRequest, JobHandle, ProgressEvent,
    ProgressSink, RunReport, SavedImage, Usd,
};
use rmcp::model::CallToolResult;
use serde_json::json;
use tokio::sync::watch;

use super::access::Access;
use super::output::{GenerationOutput, ImageOutput, JobOutput, Status, number, tool_error};
use super::params::ImageParams;
use super::progress::{Progress, Requested};
use super::{ImagegenMcp, Shared, Surface};
use crate::budget;
use crate::error_map::api_error;
use crate::idempotency::Recorded;
use crate::openai_error::ApiError;
use crate::store_log::StoreLog;

/// Runs one `generate_image` call; see the [module docs](self).
pub(crate) async fn run(
    server: &ImagegenMcp,
    access: &Access,
    params: ImageParams,
    progress: Option<Requested>,
) -> CallToolResult {
    let shared = &server.shared;
    let (request, call) = match routed(shared, params).await {
        Ok(routed) => routed,
        Err(refused) => return refused,
    };
    let mut call = call;
    let slot = match access.slot(shared) {
        Ok(slot) => slot,
        Err(error) => return api_tool_error(&error),
    };
    // On the gateway: the gateway and the caller its generation is recorded for.
    let gateway = match (&shared.surface, access.caller()) {
        (Surface::Http(state), Some(caller)) => Some((state, caller)),
        _ => None,
    };
    let id = server.next_id();
    let hold = match access.budget(shared).await {
        Ok(Some(name)) => {
            let held = match gateway {
                // Leased to this gateway and naming the generation: if it dies, another
                // resolves the hold from what was sent.
                Some((state, _)) => {
                    budget::reserve_for(state, &id, &name, &request, &mut call).await
                }
                // stdio: no gateway, no keeper to renew a lease; only this process ends it.
                None => {
                    budget::reserve(&shared.ledger, &shared.client, &name, &request, &mut call)
                        .await
                }
            };
            match held {
                Ok(hold) => Some(hold),
                Err(error) => return refusal(shared, &name, &request, &call, &error).await,
            }
        }
        Ok(None) => None,
        Err(refused) => return refused,
    };
    tracing::info!(call = %id, caller = %access.label(), images = request.count(), "generate_image");
    let (dir, log, store_log) = journal(shared, access, &id);
    // The key the facade records the request under before its first submission (the
    // write-ahead): the call's own folder makes it this call's alone.
    let request_key = imagegen::job_log::request_key(&request, &call, &dir);
    // On the gateway the generation is recorded, naming its request, before anything is
    // sent: a hold whose gateway dies is resolved from it.
    let followers = match gateway {
        Some((state, caller)) => {
            match state
                .jobs
                .start(state, &id, caller, request_key.clone(), false)
                .await
            {
                Ok(sink) => Some(sink),
                Err(start) => {
                    // Nothing was sent: the hold is given back, not settled in full on drop.
                    if let Some(hold) = hold {
                        hold.settle(Credits::ZERO, false).await;
                    }
                    tracing::error!(call = %id, error = %start.error.message(), "generate_image refused: its generation could not be recorded");
                    return api_tool_error(&start.error);
                }
            }
        }
        None => None,
    };
    let gateway = gateway.map(|(state, _)| Arc::clone(state));
    // The answer names the generation an agent can read it back by (gateway only).
    let generation_id = gateway.is_some().then(|| id.clone());
    let (done_tx, done_rx) = watch::channel(false);
    let (accepted_tx, mut accepted_rx) = watch::channel(Vec::<JobHandle>::new());
    let progress = Progress::start(progress, request.count());
    let _stop_progress = progress.stop_on_drop();
    let watch_log = Arc::new(WatchLog {
        inner: log,
        accepted: accepted_tx,
        done: done_rx,
        running: Arc::clone(&shared.running),
        progress: progress.clone(),
    });
    let mut options = GenerateOptions::default()
        .journal(watch_log.clone())
        .out_dir(&dir)
        .request_key(request_key)
        .call(call);
    // Progress to the generation's followers (gateway) and to the call's
    // `notifications/progress` (when it carries a token).
    let notify = progress.is_on().then(|| progress.clone());
    let sink: Option<Arc<dyn ProgressSink>> = match (followers, notify) {
        (Some(followers), Some(notify)) => Some(Arc::new(move |event: ProgressEvent| {
            followers.report(event.clone());
            notify.report(event);
        })),
        (Some(followers), None) => Some(followers),
        (None, Some(notify)) => Some(Arc::new(notify)),
        (None, None) => None,
    };
    if let Some(sink) = sink {
        options = options.progress(sink);
    }
    let guard = gateway.as_ref().map(|state| state.inflight.enter());
    let mut task = {
        let shared = Arc::clone(shared);
        let access = access.clone();
        let gateway = gateway.clone();
        let id = id.clone();
        let generation_id = generation_id.clone();
        tokio::spawn(async move {
            let _in_flight = (guard, slot);
            let report = shared
                .client
                .generate_to_dir(&request, &dir, &options)
                .await;
            let images = images_of(&access, &report, store_log.as_deref()).await;
            if let Some(hold) = hold {
                hold.settle(report.credits_charged(), !report.unfinished.is_empty())
                    .await;
            }
            if gateway.is_some()
                && let Err(e) = tokio::fs::remove_dir(&dir).await
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::debug!(dir = %dir.display(), error = %e, "an incoming folder was kept");
            }
            let output = render(&shared, &report, images, generation_id);
            if let Some(state) = &gateway {
                // Before the call answers: the answer an agent hears is in the ledger.
                state
                    .jobs
                    .finish(state, &id, answer_of(&report, &output))
                    .await;
            }
            let _ = done_tx.send(true);
            let accepted = watch_log.accepted.borrow().clone();
            shared.running.remove(
                accepted
                    .iter()
                    .map(|j| (j.provider.as_str(), j.job_id.as_str())),
            );
            output
        })
    };
    let finished = tokio::select! {
        result = &mut task => Some(result),
        () = tokio::time::sleep(shared.wait_limit) => None,
    };
    let finished = match finished {
        Some(result) => Some(result),
        // Past the limit: a job is paid once accepted, so wait until one is known (its id
        // is what the agent fetches it by) or the run ends.
        None => tokio::select! {
            result = &mut task => Some(result),
            _ = accepted_rx.wait_for(|jobs| !jobs.is_empty()) => None,
        },
    };
    let finished = match finished {
        // No job known and the journal gone: the run has ended.
        None if accepted_rx.borrow().is_empty() => Some((&mut task).await),
        other => other,
    };
    match finished {
        Some(Ok(output)) => {
            progress.finish(end_of(output.status)).await;
            output.into_result().await
        }
        Some(Err(e)) => {
            if let Some(state) = &gateway {
                crate::jobs::close_stopped(state, &id, &e);
            }
            progress.finish(Some("failed")).await;
            tool_error(
                "internal_error",
                format!(
                    "the generation stopped unexpectedly ({e}); any paid job is recorded in the ledger: see list_history, and fetch it with get_generation"
                ),
                json!({}),
            )
        }
        None => {
            // The run goes on without the call; its generation is closed when it ends
            // (above), or here if its task stops unexpectedly.
            if let Some(state) = gateway {
                tokio::spawn(async move {
                    if let Err(e) = task.await {
                        crate::jobs::close_stopped(&state, &id, &e);
                    }
                });
            }
            progress.finish(None).await;
            let jobs = accepted_rx.borrow().clone();
            pending(shared, &jobs, generation_id).into_result().await
        }
    }
}

/// What a gateway call's generation is closed with when its run ends (see
/// [`crate::jobs`]): the tool's structured answer, and the HTTP status the API answers
/// for the same run (200, or the status of its failure).
fn answer_of(report: &RunReport, output: &GenerationOutput) -> Recorded {
    let status = report
        .error
        .as_ref()
        .map_or(StatusCode::OK, |error| api_error(error).status());
    let body = serde_json::to_value(output)
        .unwrap_or_else(|e| json!({"message": format!("the answer could not be kept: {e}")}));
    Recorded {
        status,
        body,
        inline: false,
    }
}

/// The last progress message of a run that answers `status`: none while it is pending.
fn end_of(status: Status) -> Option<&'static str> {
    match status {
        Status::Done => Some("done"),
        Status::Failed => Some("failed"),
        Status::Pending => None,
    }
}

/// The request and its routing choices, `model` checked against the catalog, or the
/// tool error that refuses them.
pub(crate) async fn routed(
    shared: &Shared,
    params: ImageParams,
) -> Result<(GenerationRequest, CallOptions), CallToolResult> {
    let (request, call, model) = params
        .into_parts()
        .map_err(|message| tool_error("invalid_request", message, json!({})))?;
    let catalog = shared
        .client
        .models()
        .await
        .map_err(|e| tool_error("provider_error", e.to_string(), json!({})))?;
    crate::model_choice::apply(model.as_deref(), &catalog, &shared.client.providers(), call)
        .map(|call| (request, call))
        .map_err(|e| api_tool_error(&e))
}

/// A gateway error as a tool error: its code and message.
pub(crate) fn api_tool_error(error: &ApiError) -> CallToolResult {
    let body = error.body();
    let code = body["error"]["code"]
        .as_str()
        .or_else(|| body["error"]["type"].as_str())
        .unwrap_or("error")
        .to_owned();
    tool_error(
        &code,
        error.message(),
        json!({"param": body["error"]["param"]}),
    )
}

/// The tool error for a request the budget cannot hold: what is left, and what the
/// request needs at least.
async fn refusal(
    shared: &Shared,
    budget: &str,
    request: &GenerationRequest,
    call: &CallOptions,
    error: &ApiError,
) -> CallToolResult {
    if error.status() != axum::http::StatusCode::PAYMENT_REQUIRED {
        return api_tool_error(error);
    }
    let remaining = shared
        .ledger
        .budget(budget)
        .await
        .ok()
        .flatten()
        .and_then(|status| status.remaining);
    let needs = shared
        .client
        .estimate_with(request, call)
        .await
        .ok()
        .and_then(|estimate| estimate.eligible().filter_map(|c| c.total_credits).min());
    let left = remaining.map_or_else(|| "unknown".to_owned(), |r| r.with_unit().to_string());
    let need = needs.map_or_else(|| "more".to_owned(), |n| n.with_unit().to_string());
    tool_error(
        "budget_exceeded",
        format!(
            "Refused, nothing was sent or charged: the budget has {left} left and this request needs at least {need}. Ask for fewer images, a cheaper model (see estimate_cost) or a lower max_credits, or have the budget raised."
        ),
        json!({
            "budget": budget,
            "remaining_credits": remaining.map(number),
            "needed_credits": needs.map(number),
        }),
    )
}

/// Where a call saves and records: its folder, its journal, and (on the gateway) the
/// store log that moves its images into the store.
fn journal(
    shared: &Shared,
    access: &Access,
    id: &str,
) -> (std::path::PathBuf, Arc<dyn JobLog>, Option<Arc<StoreLog>>) {
    match &shared.surface {
        Surface::Stdio { out_dir, .. } => (
            out_dir.clone(),
            Arc::new(LedgerLog::new(Arc::clone(&shared.ledger))),
            None,
        ),
        Surface::Http(state) => {
            // Leased to this gateway, as the API's jobs: if it dies, another finishes them.
            let mut ledger_log = LedgerLog::new(Arc::clone(&state.ledger))
                .with_clock(Arc::clone(&state.clock))
                .leased_to(state.instance.clone(), state.job_lease);
            if let Some(key) = access.key() {
                ledger_log = ledger_log.paid_by(key);
            }
            let log = StoreLog::new(ledger_log, state.store.clone());
            (state.store.incoming_dir(id), log.clone(), Some(log))
        }
    }
}

/// The images a run saved, named for the caller (a path, or the gateway's URL).
async fn images_of(
    access: &Access,
    report: &RunReport,
    store_log: Option<&StoreLog>,
) -> Vec<ImageOutput> {
    let Some(store_log) = store_log else {
        return report
            .saved
            .iter()
            .map(|saved| image_output(saved, Some(absolute(&saved.path)), None, saved.path.clone()))
            .collect();
    };
    let stored = store_log.stored(&report.saved).await;
    report
        .saved
        .iter()
        .zip(stored)
        .filter_map(|(saved, stored)| match stored {
            Ok(stored) => Some(image_output(
                saved,
                None,
                access.file_url(&stored.file_name),
                stored.path,
            )),
            Err(e) => {
                tracing::error!(path = %saved.path.display(), error = %e, "an image could not be stored");
                None
            }
        })
        .collect()
}

fn image_output(
    saved: &SavedImage,
    path: Option<String>,
    url: Option<String>,
    file: std::path::PathBuf,
) -> ImageOutput {
    ImageOutput {
        path,
        url,
        provider: saved.image.provider.to_string(),
        model: saved.image.model.as_ref().map(ToString::to_string),
        credits: saved.image.credits.map(number),
        job_id: saved.image.job_id.clone(),
        mime: Some(saved.mime.to_owned()),
        width: saved.width,
        height: saved.height,
        bytes: Some(saved.bytes),
        alt: saved.image.alt.clone(),
        inline: false,
        file: Some(file),
    }
}

/// `path` made absolute against the working directory (an agent may run elsewhere).
pub(crate) fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The answer to a run that ended.
fn render(
    shared: &Shared,
    report: &RunReport,
    images: Vec<ImageOutput>,
    generation_id: Option<String>,
) -> GenerationOutput {
    let attempts = report.attempts();
    let mut jobs: Vec<JobOutput> = Vec::new();
    for attempt in &attempts {
        let Some(job_id) = &attempt.job_id else {
            continue;
        };
        let open = report
            .unfinished
            .iter()
            .any(|j| &j.job_id == job_id && j.provider == attempt.provider);
        let saved = images.iter().any(|i| &i.job_id == job_id);
        jobs.push(JobOutput {
            provider: attempt.provider.to_string(),
            job_id: job_id.clone(),
            state: if open {
                Status::Pending
            } else if saved {
                Status::Done
            } else {
                Status::Failed
            },
            credits: Some(number(attempt.credits_charged)),
            error: attempt.message.clone().filter(|_| !open && !saved),
        });
    }
    for job in &report.unfinished {
        if !jobs.iter().any(|j| j.job_id == job.job_id) {
            jobs.push(JobOutput {
                provider: job.provider.to_string(),
                job_id: job.job_id.clone(),
                state: Status::Pending,
                credits: job.credits_charged.map(number),
                error: None,
            });
        }
    }
    let credits = report.credits_charged();
    let (status, message) = match &report.error {
        None => (
            Status::Done,
            format!(
                "Generated {} image(s) for {} via {}.",
                images.len(),
                credits.with_unit(),
                report.route_summary()
            ),
        ),
        Some(error) if !report.unfinished.is_empty() => (
            Status::Pending,
            format!(
                "{error}. Paid jobs are still open: fetch them with get_generation (never generate again)."
            ),
        ),
        Some(error) => (Status::Failed, error.to_string()),
    };
    GenerationOutput {
        status,
        message,
        images,
        jobs,
        credits: number(credits),
        usd: report.usd_charged(shared.client.policy()).map(Usd::to_f64),
        warnings: report
            .generation
            .as_ref()
            .map(|g| g.warnings.clone())
            .unwrap_or_default(),
        simulated: shared.client.is_simulated(),
        generation_id,
    }
}

/// The answer when the wait limit passed: the jobs, paid, to fetch later.
pub(crate) fn pending(
    shared: &Shared,
    jobs: &[JobHandle],
    generation_id: Option<String>,
) -> GenerationOutput {
    let ids: Vec<String> = jobs
        .iter()
        .map(|j| format!("{} {}", j.provider, j.job_id))
        .collect();
    GenerationOutput {
        status: Status::Pending,
        message: format!(
            "Still generating after {}s: {} job(s) ({}) are accepted and paid, recorded in the ledger, and keep running. Fetch the images with get_generation and each job_id, in a while. Do not call generate_image again for this request: that would pay a second time.",
            shared.wait_limit.as_secs_f64(),
            jobs.len(),
            ids.join(", ")
        ),
        images: Vec::new(),
        jobs: jobs
            .iter()
            .map(|j| JobOutput {
                provider: j.provider.to_string(),
                job_id: j.job_id.clone(),
                state: Status::Pending,
                credits: j.credits_charged.map(number),
                error: None,
            })
            .collect(),
        credits: number(
            Credits::checked_sum(jobs.iter().filter_map(|j| j.credits_charged))
                .unwrap_or(Credits::ZERO),
        ),
        usd: None,
        warnings: Vec::new(),
        simulated: shared.client.is_simulated(),
        generation_id,
    }
}

/// The run's journal, which also tells the call each job the moment it is recorded,
/// and registers it as waited on by this run.
#[derive(Debug)]
struct WatchLog {
    inner: Arc<dyn JobLog>,
    accepted: watch::Sender<Vec<JobHandle>>,
    done: watch::Receiver<bool>,
    running: Arc<super::running::Running>,
    /// The call's progress notifications (a no-op without a progress token).
    progress: Progress,
}

#[async_trait]
impl JobLog for WatchLog {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn record_submitting(&self, submitting: &SubmittingRecord<'_>) -> io::Result<()> {
        let recorded = self.inner.record_submitting(submitting).await;
        if recorded.is_ok() {
            self.progress.submitting(submitting.plan);
        }
        recorded
    }

    async fn record_accepted(&self, accepted: &AcceptedRecord<'_>) -> io::Result<()> {
        let recorded = self.inner.record_accepted(accepted).await;
        // Known only once durable: the id an agent is given is always in the ledger.
        if recorded.is_ok() {
            self.running.insert(accepted.job, self.done.clone());
            // Before the call hears of it: a `pending` answer follows this notification.
            self.progress.accepted(accepted.job, accepted.plan);
            self.accepted
                .send_modify(|jobs| jobs.push(accepted.job.clone()));
        }
        recorded
    }

    async fn record_finished(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        saved: &[SavedImage],
    ) -> io::Result<()> {
        let recorded = self.inner.record_finished(job, outcome, saved).await;
        self.progress.saved(saved.len());
        recorded
    }

    async fn record_skipped(&self, prompt: &str, reason: &str) -> io::Result<()> {
        self.inner.record_skipped(prompt, reason).await
    }

    async fn open_jobs(&self) -> io::Result<OpenJobs> {
        self.inner.open_jobs().await
    }
}

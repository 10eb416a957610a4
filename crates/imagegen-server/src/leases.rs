//! Leases: what this gateway holds in the ledger while it lives, and what it takes over
//! from a gateway that died.
//!
//! Every job this gateway waits on, and every background generation it runs, is leased
//! to its instance id ([`instance_id`]) for the configured job lease
//! ([`ServerConfig::with_job_lease`](crate::ServerConfig::with_job_lease)). A keeper task
//! renews those leases a third of the way through, and each time it also:
//!
//! - claims open jobs whose lease ran out (their gateway died: a `kill -9`, a lost
//!   machine) and finishes them as `imagegen resume` would: waits on them, keeps their
//!   images in the store and records them in the ledger. Nothing is submitted again. A
//!   job recorded without a lease (by the CLI) is never claimed.
//! - shares cooldowns: those this gateway learned go to the ledger, those the others
//!   learned rest here too;
//! - claims running background generations whose lease ran out, and answers each once
//!   none of its jobs is open any more: with the images its jobs saved, or, when it had
//!   paid for nothing, an error saying so.
//! - resolves the budget holds of a gateway that died (each names the generation it was
//!   held for, [`budget::reserve_for`](crate::budget::reserve_for)), from what the
//!   ledger knows was sent
//!   ([`Ledger::resolve_expired_holds`](imagegen_ledger::Ledger::resolve_expired_holds)):
//!   once its generation's jobs are finished (taken over above), settled at what they
//!   were charged; with its request recorded and no job (sent, maybe charged, its answer
//!   lost), settled in full and logged, never given back blindly; with nothing
//!   recorded, released, so the key's budget is whole again.
//!
//! A graceful stop releases this gateway's leases once its own work is recorded, so what
//! it leaves open (a job whose images could not be fetched) is taken over at once.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use imagegen::NoProgress;
use imagegen::job_log::ChosenJobs;
use imagegen::journal::UnfinishedJob;
use imagegen::ledger_log::LedgerLog;
use imagegen_ledger::{GenerationRecord, HoldOutcome, JobState, Lease};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::openai_error::ApiError;
use crate::state::AppState;
use crate::store_log::StoreLog;

/// How many expired jobs or generations one tick claims at most.
const CLAIM_BATCH: u32 = 16;

/// A new instance id: `gw-` and 16 hex digits from the process's random hasher seed,
/// unique among the gateways sharing a ledger.
pub(crate) fn instance_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("gw-{:016x}", hasher.finish())
}

/// The generations this gateway took over from one that died, until it answers them.
#[derive(Debug, Default)]
pub(crate) struct Adopted {
    ids: Mutex<HashSet<String>>,
}

impl Adopted {
    fn insert(&self, id: String) {
        self.lock().insert(id);
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn list(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// This gateway's lease from now.
pub(crate) fn lease(state: &AppState) -> Lease {
    let ms = u64::try_from(state.job_lease.as_millis()).unwrap_or(u64::MAX);
    Lease::new(state.instance.clone(), state.now_ms().saturating_add(ms))
}

/// Keeps this gateway's leases and takes over expired ones, every third of a lease,
/// until `stopping` turns true.
pub(crate) fn spawn(state: Arc<AppState>, mut stopping: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = (state.job_lease / 3).max(Duration::from_millis(100));
        loop {
            tick(&state).await;
            tokio::select! {
                () = state.clock.sleep(every) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    })
}

/// One round: renew, take over, answer adopted generations.
pub(crate) async fn tick(state: &Arc<AppState>) {
    let ledger = &state.ledger;
    if let Err(e) = ledger
        .renew_leases(&state.instance, lease(state).until_ms)
        .await
    {
        tracing::warn!(error = %e, "the gateway's leases could not be renewed");
    }
    match ledger.claim_expired_jobs(&lease(state), CLAIM_BATCH).await {
        Ok(jobs) if !jobs.is_empty() => {
            tracing::info!(jobs = jobs.len(), "taking over jobs whose gateway stopped");
            let state_for_task = Arc::clone(state);
            let guard = state.inflight.enter();
            let jobs: Vec<UnfinishedJob> = jobs.into_iter().map(UnfinishedJob::from).collect();
            tokio::spawn(async move {
                let _in_flight = guard;
                finish_jobs(&state_for_task, jobs).await;
            });
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "expired job leases could not be claimed"),
    }
    match ledger
        .claim_expired_generations(&lease(state), CLAIM_BATCH)
        .await
    {
        Ok(generations) => {
            for generation in generations {
                tracing::info!(generation = %generation.id, "taking over a generation whose gateway stopped");
                state.adopted.insert(generation.id);
            }
        }
        Err(e) => tracing::warn!(error = %e, "expired generation leases could not be claimed"),
    }
    resolve_holds(state).await;
    share_cooldowns(state).await;
    for id in state.adopted.list() {
        match answer_adopted(state, &id).await {
            Ok(true) => state.adopted.remove(&id),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(generation = %id, error = %e, "a generation taken over could not be answered yet")
            }
        }
    }
}

/// Resolves the budget holds of gateways that died; see the [module docs](self).
async fn resolve_holds(state: &AppState) {
    let resolved = match state
        .ledger
        .resolve_expired_holds(&lease(state), CLAIM_BATCH)
        .await
    {
        Ok(resolved) => resolved,
        Err(e) => {
            tracing::warn!(error = %e, "budget holds whose gateway stopped could not be resolved");
            return;
        }
    };
    for hold in resolved {
        let generation = hold.generation_id.as_deref().unwrap_or("");
        let (budget, amount, owner) = (&hold.budget, hold.amount, &hold.owner);
        match &hold.outcome {
            HoldOutcome::Released => tracing::info!(
                %budget, %amount, %owner, %generation,
                "a hold whose gateway stopped before sending anything was released"
            ),
            HoldOutcome::Settled(settlement) => tracing::info!(
                %budget, %amount, %owner, %generation, charged = %settlement.charged,
                "a hold whose gateway stopped was settled at its jobs' charges"
            ),
            HoldOutcome::SettledInFull(_) => tracing::warn!(
                %budget, %amount, %owner, %generation,
                "a hold whose gateway stopped after sending, with no job recorded, was settled in full: the provider may have charged"
            ),
            HoldOutcome::Waiting => tracing::debug!(
                %budget, %owner, %generation,
                "a hold whose gateway stopped waits for its jobs to finish"
            ),
            other => tracing::warn!(%budget, %owner, ?other, "a hold whose gateway stopped"),
        }
    }
}

/// Cooldowns learned here go to the ledger, and those learned by the other gateways on
/// it rest here too: a provider that keeps failing is skipped by all of them.
async fn share_cooldowns(state: &AppState) {
    let now = state.now_ms();
    for resting in state.client.cooldowns().active() {
        let until =
            now.saturating_add(u64::try_from(resting.remaining.as_millis()).unwrap_or(u64::MAX));
        if let Err(e) = state
            .ledger
            .set_cooldown(&resting.provider, resting.model.as_ref(), until)
            .await
        {
            tracing::debug!(error = %e, "a cooldown could not be shared");
        }
    }
    match state.ledger.cooldowns(now).await {
        Ok(shared) => {
            for cooldown in shared {
                let left = Duration::from_millis(cooldown.until_ms.saturating_sub(now));
                state
                    .client
                    .cooldowns()
                    .rest(&cooldown.provider, cooldown.model.as_ref(), left);
            }
        }
        Err(e) => tracing::debug!(error = %e, "shared cooldowns could not be read"),
    }
}

/// Waits on `jobs` (taken over) and keeps their images, as `imagegen resume` does.
async fn finish_jobs(state: &AppState, jobs: Vec<UnfinishedJob>) {
    // Saved here, whatever folder the gateway that died was saving into.
    let jobs = jobs
        .into_iter()
        .map(|mut job| {
            job.out_dir = state
                .store
                .incoming_dir(&format!("taken-{}-{}", job.job.provider, job.job.job_id));
            job
        })
        .collect();
    let store_log = StoreLog::new(
        LedgerLog::new(Arc::clone(&state.ledger)).with_clock(Arc::clone(&state.clock)),
        state.store.clone(),
    );
    let log = ChosenJobs::new(store_log, jobs);
    match state.client.resume(&log, &NoProgress).await {
        Ok(report) => tracing::info!(
            finished = report.finished(),
            still_open = report.still_open(),
            images = report.images_saved(),
            "jobs taken over"
        ),
        Err(e) => tracing::warn!(error = %e, "jobs taken over could not be finished"),
    }
    for job in log.jobs() {
        let _ = tokio::fs::remove_dir(&job.out_dir).await;
    }
}

/// Answers generation `id`, taken over, once none of its jobs is open: `Ok(true)` when
/// it is answered (or was already).
async fn answer_adopted(state: &AppState, id: &str) -> Result<bool, imagegen_ledger::LedgerError> {
    let Some(generation) = state.ledger.generation(id).await? else {
        return Ok(true);
    };
    if generation.finished_at_ms.is_some() {
        return Ok(true);
    }
    let jobs = match &generation.request_key {
        Some(key) => state.ledger.request_jobs(key).await?,
        None => Vec::new(),
    };
    if jobs.iter().any(|j| j.job.state == JobState::Accepted) {
        return Ok(false);
    }
    // Its request is recorded before anything is sent: without it, nothing was.
    let sent = match &generation.request_key {
        Some(key) => state.ledger.request_recorded(key).await?,
        None => false,
    };
    let (status, body) = taken_over_answer(state, &generation, &jobs, sent);
    let recorded = crate::idempotency::Recorded {
        status,
        body,
        inline: false,
    };
    state
        .ledger
        .finish_generation(id, status.as_u16(), &recorded.to_text())
        .await?;
    Ok(true)
}

/// The answer of a generation taken over: OpenAI's success with the images its jobs
/// saved, or an error saying what happened. `sent`: its request was recorded, so a
/// submission may have gone out (and been charged) even with no job recorded.
fn taken_over_answer(
    state: &AppState,
    generation: &GenerationRecord,
    jobs: &[imagegen_ledger::SavedJob],
    sent: bool,
) -> (StatusCode, serde_json::Value) {
    let base = state.base_url(&axum::http::HeaderMap::new());
    let mut data = Vec::new();
    for job in jobs {
        for image in &job.images {
            if let Some(name) = image.path.file_name().and_then(|n| n.to_str()) {
                data.push(json!({"url": format!("{base}v1/files/{name}"), "revised_prompt": job.job.prompt}));
            }
        }
    }
    let jobs_shown: Vec<_> = jobs
        .iter()
        .map(|j| {
            json!({
                "provider": j.job.provider.as_str(),
                "model": j.job.model.as_ref().map(|m| m.as_str()),
                "generation_id": j.job.job_id,
                "state": j.job.state,
                "credits": j.job.charged.map(|c| c.to_string()),
                "error": j.job.error,
            })
        })
        .collect();
    let note = "the gateway running this generation stopped; another gateway finished what it had paid for";
    if data.is_empty() {
        // Every job failed at its provider: the answer the stopped gateway would have
        // given, the provider's reason included.
        let failures: Vec<&str> = jobs
            .iter()
            .filter(|j| j.job.state == JobState::Failed)
            .filter_map(|j| j.job.error.as_deref())
            .collect();
        let nothing_sent = jobs.is_empty() && !sent;
        let (status, code, message) = if nothing_sent {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_stopped",
                format!(
                    "{note}: nothing had been sent to a provider, so nothing was charged. Send the request again."
                ),
            )
        } else if jobs.is_empty() {
            (
                StatusCode::BAD_GATEWAY,
                "generation_failed",
                format!(
                    "{note}: it had sent the request to a provider and stopped before the answer was recorded, so the provider may have charged for it. It is not sent again, which could charge twice: check the provider's account before repeating it with a new Idempotency-Key."
                ),
            )
        } else if failures.len() == jobs.len() {
            (
                StatusCode::BAD_GATEWAY,
                "generation_failed",
                format!(
                    "{note}; the provider failed the generation: {}",
                    failures.join("; ")
                ),
            )
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_stopped",
                format!(
                    "{note}, but no image could be saved: see `imagegen history` for each job's error."
                ),
            )
        };
        let mut body = ApiError::new(status, crate::openai_error::SERVER, message)
            .code(code)
            .body();
        body["imagegen"] =
            json!({"taken_over": true, "nothing_sent": nothing_sent, "jobs": jobs_shown});
        return (status, body);
    }
    let created = generation.created_at_ms / 1000;
    (
        StatusCode::OK,
        json!({
            "created": created,
            "data": data,
            "imagegen": {"taken_over": true, "note": note, "jobs": jobs_shown},
        }),
    )
}

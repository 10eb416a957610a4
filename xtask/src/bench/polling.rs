//! Benchmark 3: how soon the client learns a finished image is ready, and at what cost in
//! polls, for our waiter (the model's `estimated_duration_seconds` plan, refined by the
//! `progress` of each answer) against the Kolbo docs' loop (sleep 3 s, poll, repeat).
//!
//! Everything runs on [`VirtualClock`] time, so the generation times are the simulator's
//! realistic ones (seconds, with its seeded spread) and the result does not depend on the
//! machine. The simulator reports progress as a service that cannot see the work must,
//! from the time run over the model's estimate (it cannot know the real end); a second
//! run of our waiter has it report the share of the real run done
//! ([`KolboProgress::Work`]), what Kolbo would report if its numbers tracked the
//! upstream's steps (its docs do not say). It says afterwards when each job really ended
//! ([`SimHandle::kolbo_job_ends_at`]), which no client could read.

use std::sync::Arc;
use std::time::Duration;

use imagegen_core::{Clock, NoProgress};
use imagegen_sim::{ImageSize, KolboProgress, SimConfig, SimHandle};
use kolbo_api::KolboClient;
use kolbo_api::poll::WaitOptions;
use kolbo_api::types::{GenerateImageRequest, ModelsQuery};

use super::clock::{Task, VirtualClock, drive};
use super::measure::{mean, quantile};

const SEED: u64 = 0xB0B5_1E55;
const DOCS_INTERVAL: Duration = Duration::from_secs(3);

/// One policy's figures.
#[derive(Debug, Clone)]
pub(crate) struct PolicyStats {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) mean: f64,
    pub(crate) polls_per_job: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct PollingResult {
    pub(crate) jobs: usize,
    /// Our waiter, the simulator's progress measuring time against the estimate.
    pub(crate) ours: PolicyStats,
    /// Our waiter, the simulator's progress measuring the work done
    /// ([`KolboProgress::Work`]): what the prediction gains if Kolbo's numbers track it.
    pub(crate) ours_work: PolicyStats,
    pub(crate) docs: PolicyStats,
}

struct Setup {
    clock: VirtualClock,
    sim: SimHandle,
    client: KolboClient,
    /// (generation id, model estimate, poll hint), in submission order.
    jobs: Vec<(String, Duration, Option<Duration>)>,
}

/// A fresh simulator on virtual time with `n` jobs submitted at time zero, in order.
async fn setup(n: usize, progress: KolboProgress) -> Result<Setup, String> {
    let clock = VirtualClock::new();
    let mut config = SimConfig::default();
    config.kolbo.progress = progress;
    let sim = imagegen_sim::start(
        config
            .with_seed(SEED)
            .with_clock(Arc::new(clock.clone()))
            .with_image_size(ImageSize::MaxSide(16))
            .without_rate_limits(),
    )
    .await
    .map_err(|e| e.to_string())?;
    sim.set_kolbo_credits(sim.kolbo_api_key(), 1e12);
    let client = KolboClient::builder(sim.kolbo_api_key())
        .base_url(sim.kolbo_base_url())
        .clock(Arc::new(clock.clone()))
        .build()
        .map_err(|e| e.to_string())?;
    let models: Vec<(String, Duration)> = client
        .list_models(&ModelsQuery::images())
        .await
        .map_err(|e| e.to_string())?
        .models
        .into_iter()
        .filter(|m| !kolbo_api::types::is_smart_select(&m.identifier))
        .filter_map(|m| Some((m.identifier.clone(), m.estimated_duration()?)))
        .collect();
    if models.is_empty() {
        return Err("the simulator lists no model with an estimate".into());
    }
    let mut jobs = Vec::with_capacity(n);
    for i in 0..n {
        let (model, estimate) = &models[i % models.len()];
        let started = client
            .generate_image(&GenerateImageRequest::new("a lighthouse at dusk").model(model.clone()))
            .await
            .map_err(|e| e.to_string())?;
        jobs.push((
            started.generation_id.clone(),
            *estimate,
            started.poll_interval(),
        ));
    }
    Ok(Setup {
        clock,
        sim,
        client,
        jobs,
    })
}

/// (time the client knew, polls, time the job ended) per job, for our waiter or the docs'
/// loop.
async fn run_policy(
    n: usize,
    ours: bool,
    progress: KolboProgress,
) -> Result<Vec<(Duration, u32, Duration)>, String> {
    let s = setup(n, progress).await?;
    let ends = s
        .jobs
        .iter()
        .map(|(id, _, _)| {
            s.sim
                .kolbo_job_ends_at(id)
                .ok_or_else(|| format!("the simulator lost {id}"))
        })
        .collect::<Result<Vec<Duration>, String>>()?;
    let tasks: Vec<Task<Result<(Duration, u32), String>>> = s
        .jobs
        .iter()
        .cloned()
        .map(|(id, estimate, hint)| {
            let (client, clock) = (s.client.clone(), s.clock.clone());
            Box::pin(async move {
                if ours {
                    let options = WaitOptions::default()
                        .poll_interval_hint(hint)
                        .estimated_duration(Some(estimate));
                    let done = client
                        .wait_for_generation(&id, &options, &NoProgress)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok((clock.now(), done.polls))
                } else {
                    let mut polls = 0;
                    for _ in 0..10_000 {
                        clock.sleep(DOCS_INTERVAL).await;
                        polls += 1;
                        let status = client
                            .generation_status(&id)
                            .await
                            .map_err(|e| e.to_string())?;
                        if status.state.is_terminal() {
                            return Ok((clock.now(), polls));
                        }
                    }
                    Err(format!("{id} never finished"))
                }
            }) as Task<_>
        })
        .collect();
    let out = drive(&s.clock, tasks, Duration::from_secs(300)).await?;
    s.sim.shutdown().await;
    out.into_iter()
        .zip(ends)
        .map(|(known, end)| known.map(|(at, polls)| (at, polls, end)))
        .collect()
}

fn stats(known: &[(Duration, u32, Duration)]) -> PolicyStats {
    let latency: Vec<f64> = known
        .iter()
        .map(|(at, _, ready)| at.saturating_sub(*ready).as_secs_f64())
        .collect();
    let polls: Vec<f64> = known.iter().map(|(_, p, _)| f64::from(*p)).collect();
    PolicyStats {
        p50: quantile(&latency, 0.5),
        p99: quantile(&latency, 0.99),
        mean: mean(&latency),
        polls_per_job: mean(&polls),
    }
}

pub(crate) async fn run(jobs: usize) -> Result<PollingResult, String> {
    let ours = run_policy(jobs, true, KolboProgress::Estimate).await?;
    let ours_work = run_policy(jobs, true, KolboProgress::Work).await?;
    let docs = run_policy(jobs, false, KolboProgress::Estimate).await?;
    Ok(PollingResult {
        jobs,
        ours: stats(&ours),
        ours_work: stats(&ours_work),
        docs: stats(&docs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn our_waiter_learns_sooner_without_more_polls() {
        let result = run(21).await.unwrap();
        assert!(result.ours.mean < result.docs.mean, "{result:?}");
        // Progress that tracks the work predicts the end: sooner still, no more polls.
        assert!(result.ours_work.p50 < result.ours.p50, "{result:?}");
        assert!(
            result.ours_work.polls_per_job <= result.docs.polls_per_job + 1e-9,
            "{result:?}"
        );
        assert!(
            result.ours.polls_per_job <= result.docs.polls_per_job + 1e-9,
            "{result:?}"
        );
        // The docs' loop learns within one interval of the image being ready.
        assert!(result.docs.p99 <= 3.01, "{result:?}");
    }
}

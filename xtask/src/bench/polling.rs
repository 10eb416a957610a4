//! Benchmark 3: how soon the client learns a finished image is ready, and at what cost in
//! polls, for our waiter (the model's `estimated_duration_seconds` schedule) against the
//! Kolbo docs' loop (sleep 3 s, poll, repeat).
//!
//! Everything runs on [`VirtualClock`] time, so the generation times are the simulator's
//! realistic ones (seconds, with its seeded spread) and the result does not depend on the
//! machine. A twin simulator with the same seed and the same submissions gives each job's
//! exact generation time: it is polled every 5 ms of clock time around its end.

use std::sync::Arc;
use std::time::Duration;

use imagegen_core::{Clock, NoProgress};
use imagegen_sim::{ImageSize, SimConfig, SimHandle};
use kolbo_api::KolboClient;
use kolbo_api::poll::WaitOptions;
use kolbo_api::types::{GenerateImageRequest, GenerationState, ModelsQuery};

use super::clock::{Task, VirtualClock, drive};
use super::measure::{mean, quantile};

const SEED: u64 = 0xB0B5_1E55;
const DOCS_INTERVAL: Duration = Duration::from_secs(3);
/// The oracle's resolution.
const STEP: Duration = Duration::from_millis(5);

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
    pub(crate) ours: PolicyStats,
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
async fn setup(n: usize) -> Result<Setup, String> {
    let clock = VirtualClock::new();
    let sim = imagegen_sim::start(
        SimConfig::default()
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

/// Each job's generation time, to within [`STEP`], from a twin simulator.
async fn ready_times(n: usize) -> Result<Vec<Duration>, String> {
    let s = setup(n).await?;
    let mut lower: Vec<Duration> = s.jobs.iter().map(|(_, e, _)| e.mul_f64(0.5)).collect();
    let mut last: Vec<Duration> = vec![Duration::ZERO; n];
    let mut ready: Vec<Option<Duration>> = vec![None; n];
    let mut next: Vec<Duration> = lower.clone();
    for _round in 0..2_000_000 {
        let Some(t) = (0..n)
            .filter(|i| ready[*i].is_none())
            .map(|i| next[i])
            .min()
        else {
            break;
        };
        s.clock.advance_to(t);
        let due: Vec<usize> = (0..n)
            .filter(|i| ready[*i].is_none() && next[*i] <= t)
            .collect();
        for i in due {
            let status = s
                .client
                .generation_status(&s.jobs[i].0)
                .await
                .map_err(|e| e.to_string())?;
            if status.state.is_terminal() {
                ready[i] = Some(last[i] + (t - last[i]) / 2);
                continue;
            }
            let secs = t.as_secs_f64();
            let bound = match (&status.state, status.progress) {
                (GenerationState::Pending, _) => secs * 10.0,
                (_, Some(p)) if (1.0..99.0).contains(&p) => 100.0 * secs / (p.floor() + 1.0),
                _ => secs,
            };
            lower[i] = lower[i].max(Duration::from_secs_f64(bound));
            last[i] = t;
            next[i] = (t + STEP).max(lower[i]);
        }
    }
    s.sim.shutdown().await;
    ready
        .into_iter()
        .map(|r| r.ok_or_else(|| "a job never finished in the oracle".to_owned()))
        .collect()
}

/// (time the client knew, polls) per job, for our waiter or the docs' loop.
async fn run_policy(n: usize, ours: bool) -> Result<Vec<(Duration, u32)>, String> {
    let s = setup(n).await?;
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
    out.into_iter().collect()
}

fn stats(known: &[(Duration, u32)], ready: &[Duration]) -> PolicyStats {
    let latency: Vec<f64> = known
        .iter()
        .zip(ready)
        .map(|((at, _), r)| at.saturating_sub(*r).as_secs_f64())
        .collect();
    let polls: Vec<f64> = known.iter().map(|(_, p)| f64::from(*p)).collect();
    PolicyStats {
        p50: quantile(&latency, 0.5),
        p99: quantile(&latency, 0.99),
        mean: mean(&latency),
        polls_per_job: mean(&polls),
    }
}

pub(crate) async fn run(jobs: usize) -> Result<PollingResult, String> {
    let ready = ready_times(jobs).await?;
    let ours = run_policy(jobs, true).await?;
    let docs = run_policy(jobs, false).await?;
    Ok(PollingResult {
        jobs,
        ours: stats(&ours, &ready),
        docs: stats(&docs, &ready),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn our_waiter_learns_sooner_without_more_polls() {
        let result = run(21).await.unwrap();
        assert!(result.ours.mean < result.docs.mean, "{result:?}");
        assert!(
            result.ours.polls_per_job <= result.docs.polls_per_job + 1e-9,
            "{result:?}"
        );
        // The docs' loop learns within one interval of the image being ready.
        assert!(result.docs.p99 <= 3.01, "{result:?}");
    }
}

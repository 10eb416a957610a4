//! Benchmark 4: a batch under Kolbo's rate limit (10 generation starts per minute per key,
//! a sliding minute), in compressed time: the simulator and the client share a
//! [`ScaledClock`] running 60 times faster than real time. With the `SubmitPacer` the
//! client should reach the limit's full rate without a single 429; without it, each 429
//! fails its start (the client never repeats a paid POST; the router, not used here, is
//! what waits a rate limit out).

use std::sync::Arc;
use std::time::Duration;

use imagegen_core::{CallPlan, ModelChoice, NoProgress, Prompt, Provider};
use imagegen_sim::ImageSize;
use imagegen_sim::SimConfig;
use kolbo_api::{KolboClient, KolboProvider, SubmitPacer};

use super::clock::ScaledClock;

const FACTOR: f64 = 60.0;
const MODEL: &str = "flux-2/flash";
const LIMIT_PER_MINUTE: f64 = 10.0;

#[derive(Debug, Clone)]
pub(crate) struct BatchResult {
    pub(crate) paced: bool,
    pub(crate) generations: usize,
    pub(crate) accepted: usize,
    pub(crate) failed: usize,
    pub(crate) rate_limited: usize,
    /// Accepted starts per minute over the batch, as a fraction of the limit.
    pub(crate) fraction_of_bound: f64,
    /// Clock seconds from the first accepted start to the last.
    pub(crate) span_secs: f64,
}

/// `generations` jobs started at once and waited for, paced or not.
pub(crate) async fn run(generations: usize, paced: bool) -> Result<BatchResult, String> {
    let clock = ScaledClock::shared(FACTOR);
    let sim = imagegen_sim::start(
        SimConfig::default()
            .with_clock(Arc::clone(&clock))
            .with_image_size(ImageSize::MaxSide(16)),
    )
    .await
    .map_err(|e| e.to_string())?;
    sim.set_kolbo_credits(sim.kolbo_api_key(), 1e12);
    let mut builder = KolboClient::builder(sim.kolbo_api_key())
        .base_url(sim.kolbo_base_url())
        .clock(Arc::clone(&clock));
    if paced {
        builder = builder.submit_pacer(SubmitPacer::kolbo_generate());
    }
    let provider = Arc::new(KolboProvider::new(
        builder.build().map_err(|e| e.to_string())?,
    ));
    provider.catalog().await.map_err(|e| e.to_string())?;
    let tasks: Vec<_> = (0..generations)
        .map(|i| {
            let (provider, clock) = (Arc::clone(&provider), Arc::clone(&clock));
            tokio::spawn(async move {
                let prompt =
                    Prompt::new(format!("lighthouse number {i}")).map_err(|e| e.to_string())?;
                let call = CallPlan::new("kolbo", ModelChoice::Exact(MODEL.into()), prompt, 1);
                let job = provider.submit(&call).await.map_err(|e| e.to_string())?;
                let accepted_at = clock.now();
                provider
                    .wait(&job, &NoProgress)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<Duration, String>(accepted_at)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut failed = 0;
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(120), task).await {
            Ok(Ok(Ok(at))) => accepted.push(at),
            _ => failed += 1,
        }
    }
    let rate_limited = sim
        .request_log()
        .entries()
        .iter()
        .filter(|e| e.status == Some(429))
        .count();
    sim.shutdown().await;
    let first = accepted.iter().min().copied().unwrap_or_default();
    let last = accepted.iter().max().copied().unwrap_or_default();
    let span = last.saturating_sub(first).as_secs_f64();
    let per_minute = accepted.len() as f64 * 60.0 / (span + 60.0);
    Ok(BatchResult {
        paced,
        generations,
        accepted: accepted.len(),
        failed,
        rate_limited,
        fraction_of_bound: per_minute / LIMIT_PER_MINUTE,
        span_secs: span,
    })
}

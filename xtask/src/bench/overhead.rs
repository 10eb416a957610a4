//! Benchmark 1: the CPU and wall time one generation costs through our Kolbo path
//! (`KolboProvider` submit and wait, `ImageDownloader` without credentials) against a
//! minimal hand-written reqwest loop making the same HTTP calls, against a simulator whose
//! generations finish at once.
//!
//! The simulator runs on its own runtime threads; the client runs on a current-thread
//! runtime on this thread, whose CPU time (`/proc/thread-self/schedstat`) is the client's
//! alone. The two paths alternate in rounds so drift on a noisy machine hits both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imagegen_core::{
    GenerationRequest, ManualClock, ModelChoice, NoProgress, Provider, Submission,
};
use imagegen_sim::{ImageSize, SimConfig};
use koala_api::ImageDownloader;
use koala_api::download::CountingSink;
use kolbo_api::{KolboClient, KolboProvider};
use serde_json::{Value, json};

use super::measure::thread_cpu;

#[derive(Debug, Clone)]
pub(crate) struct OverheadResult {
    pub(crate) generations: usize,
    /// Per generation: (CPU, wall) in microseconds.
    pub(crate) ours: (f64, f64),
    /// Our submit and wait, with the hand loop's plain download.
    pub(crate) ours_plain_download: (f64, f64),
    pub(crate) hand: (f64, f64),
    /// Per round, side by side: (ours, ours with the plain download, hand), each (CPU,
    /// wall) in seconds. Ratios are medians over rounds, so one noisy round cannot move
    /// them.
    pub(crate) rounds: Vec<[(f64, f64); 3]>,
}

impl OverheadResult {
    fn median_ratio(&self, path: usize, pick: fn((f64, f64)) -> f64) -> f64 {
        let mut ratios: Vec<f64> = self
            .rounds
            .iter()
            .map(|r| pick(r[path]) / pick(r[2]).max(1e-12))
            .collect();
        ratios.sort_by(f64::total_cmp);
        match ratios.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => ratios[n / 2],
            n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        }
    }

    /// Median over rounds of our CPU time over the hand loop's.
    pub(crate) fn cpu_ratio(&self) -> f64 {
        self.median_ratio(0, |(cpu, _)| cpu)
    }

    /// Median over rounds of our wall time over the hand loop's.
    pub(crate) fn wall_ratio(&self) -> f64 {
        self.median_ratio(0, |(_, wall)| wall)
    }

    /// The same two for our submit and wait with the plain download.
    pub(crate) fn plain_ratios(&self) -> (f64, f64) {
        (
            self.median_ratio(1, |(cpu, _)| cpu),
            self.median_ratio(1, |(_, wall)| wall),
        )
    }
}

const PROMPT: &str = "a lighthouse at dusk, watercolor";

struct Ours {
    provider: KolboProvider,
    downloader: ImageDownloader,
    /// Set: download with this plain client instead of the downloader (to split the cost).
    plain_download: Option<reqwest::Client>,
}

impl Ours {
    async fn generation(&self) -> Result<u64, String> {
        let request = GenerationRequest::builder(PROMPT)
            .build()
            .map_err(|e| e.to_string())?;
        let job = self
            .provider
            .submit(&Submission::new(ModelChoice::ProviderDefault, request))
            .await
            .map_err(|e| e.to_string())?;
        let output = self
            .provider
            .wait(&job, &NoProgress)
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes = 0;
        for image in &output.images {
            if let Some(plain) = &self.plain_download {
                let e = |e: reqwest::Error| e.to_string();
                let body = plain
                    .get(image.url.clone())
                    .send()
                    .await
                    .map_err(e)?
                    .bytes()
                    .await
                    .map_err(e)?;
                bytes += body.len() as u64;
                continue;
            }
            let mut sink = CountingSink::default();
            self.downloader
                .download_to_writer(&image.url, &mut sink)
                .await
                .map_err(|e| e.to_string())?;
            bytes += sink.bytes;
        }
        Ok(bytes)
    }
}

/// The loop a user would write from the docs, minus the 3-second sleep.
struct Hand {
    api: reqwest::Client,
    cdn: reqwest::Client,
    base: String,
    key: String,
}

impl Hand {
    async fn generation(&self) -> Result<u64, String> {
        let e = |e: reqwest::Error| e.to_string();
        let started: Value = self
            .api
            .post(format!("{}/v1/generate/image", self.base))
            .header("x-api-key", &self.key)
            .json(&json!({ "prompt": PROMPT }))
            .send()
            .await
            .map_err(e)?
            .json()
            .await
            .map_err(e)?;
        let id = started["generation_id"]
            .as_str()
            .ok_or("no generation_id")?;
        for _ in 0..100 {
            let status: Value = self
                .api
                .get(format!("{}/v1/generate/{id}/status", self.base))
                .header("x-api-key", &self.key)
                .send()
                .await
                .map_err(e)?
                .json()
                .await
                .map_err(e)?;
            if status["state"] == "completed" {
                let mut bytes = 0;
                for url in status["result"]["urls"].as_array().into_iter().flatten() {
                    let url = url.as_str().ok_or("a URL is not a string")?;
                    let body = self
                        .cdn
                        .get(url)
                        .send()
                        .await
                        .map_err(e)?
                        .bytes()
                        .await
                        .map_err(e)?;
                    bytes += body.len() as u64;
                }
                return Ok(bytes);
            }
        }
        Err(format!("{id} did not complete"))
    }
}

pub(crate) fn run(generations: usize) -> Result<OverheadResult, String> {
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let sim = sim_rt
        .block_on(imagegen_sim::start(
            SimConfig::default()
                .with_speed(0.0)
                .with_image_size(ImageSize::MaxSide(256))
                .with_max_jobs(1_000_000)
                .without_rate_limits(),
        ))
        .map_err(|e| e.to_string())?;
    sim.set_kolbo_credits(sim.kolbo_api_key(), 1e12);
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let clock = ManualClock::new().shared();
    let result = client_rt.block_on(async {
        let client = KolboClient::builder(sim.kolbo_api_key())
            .base_url(sim.kolbo_base_url())
            .clock(Arc::clone(&clock))
            .build()
            .map_err(|e| e.to_string())?;
        let plain = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .map_err(|e| e.to_string())
        };
        let downloader = ImageDownloader::builder()
            .clock(Arc::clone(&clock))
            .build()
            .map_err(|e| e.to_string())?;
        let ours = Ours {
            provider: KolboProvider::new(client.clone()),
            downloader: downloader.clone(),
            plain_download: None,
        };
        let ours_plain = Ours {
            provider: KolboProvider::new(client),
            downloader,
            plain_download: Some(plain()?),
        };
        let hand = Hand {
            api: plain()?,
            cdn: plain()?,
            base: sim.kolbo_base_url(),
            key: sim.kolbo_api_key().to_owned(),
        };
        // Warm up all three (connections, allocator, caches).
        for _ in 0..20 {
            ours.generation().await?;
            ours_plain.generation().await?;
            hand.generation().await?;
        }
        let rounds = 20;
        let per_round = generations.div_ceil(rounds).max(1);
        let mut totals = [(Duration::ZERO, Duration::ZERO); 3];
        let mut per_round_times = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut this_round = [(0.0, 0.0); 3];
            // Rotate the order each round so drift hits every path alike.
            for k in 0..3 {
                let path = (round + k) % 3;
                let (cpu0, wall0) = (thread_cpu().unwrap_or_default(), Instant::now());
                for _ in 0..per_round {
                    match path {
                        0 => ours.generation().await?,
                        1 => ours_plain.generation().await?,
                        _ => hand.generation().await?,
                    };
                }
                let cpu = thread_cpu().unwrap_or_default().saturating_sub(cpu0);
                let wall = wall0.elapsed();
                totals[path].0 += cpu;
                totals[path].1 += wall;
                this_round[path] = (cpu.as_secs_f64(), wall.as_secs_f64());
            }
            per_round_times.push(this_round);
        }
        let n = (per_round * rounds) as f64;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n;
        Ok::<_, String>(OverheadResult {
            generations: per_round * rounds,
            ours: (per(totals[0].0), per(totals[0].1)),
            ours_plain_download: (per(totals[1].0), per(totals[1].1)),
            hand: (per(totals[2].0), per(totals[2].1)),
            rounds: per_round_times,
        })
    });
    sim_rt.block_on(sim.shutdown());
    result
}

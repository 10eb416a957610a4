//! Benchmark 1: the CPU and wall time one generation costs through our Kolbo path
//! (`KolboProvider` submit and wait, `ImageDownloader` without credentials) against a
//! minimal hand-written reqwest loop making the same HTTP calls, against a simulator whose
//! generations finish at once.
//!
//! The simulator runs on its own runtime threads; the client runs on a current-thread
//! runtime on this thread, whose CPU time (`CLOCK_THREAD_CPUTIME_ID`) is the client's
//! alone. The paths take turns one generation at a time, in an order shuffled every
//! round, each generation timed on its own, and the figures are medians, so a burst of
//! noise on a shared machine moves a few samples rather than a whole path. Two rows split our cost by layer (the plain download,
//! the bare `KolboClient`), and a second, identical hand loop measures the method's own
//! error (its ratio should be 1.00).

use std::sync::Arc;
use std::time::Instant;

use cpu_time::ThreadTime;
use imagegen_core::{CallPlan, ManualClock, ModelChoice, NoProgress, Prompt, Provider};
use imagegen_http::ImageDownloader;
use imagegen_http::download::CountingSink;
use imagegen_sim::{ImageSize, SimConfig};
use kolbo_api::types::{GenerateImageRequest, GenerationState};
use kolbo_api::{KolboClient, KolboProvider};
use serde_json::{Value, json};

use super::measure::{mean, quantile};

/// One way of making a generation (submit, poll until done, download every image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Path {
    /// `KolboProvider` submit and wait, then `ImageDownloader`: what the facade runs.
    Ours,
    /// `KolboProvider` submit and wait, then a plain reqwest GET.
    OursPlainDownload,
    /// The bare `KolboClient` (`generate_image`, `generation_status`), then a plain GET.
    ClientOnly,
    /// The hand-written reqwest loop.
    Hand,
    /// A second, identical hand-written loop: the method's own error.
    HandAgain,
}

impl Path {
    pub(crate) const ALL: [Path; 5] = [
        Path::Ours,
        Path::OursPlainDownload,
        Path::ClientOnly,
        Path::Hand,
        Path::HandAgain,
    ];

    fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Path::Ours => "imagegen (`KolboProvider` + waiter + `ImageDownloader`)",
            Path::OursPlainDownload => "imagegen submit + wait, plain reqwest download",
            Path::ClientOnly => "bare `KolboClient` (+ its timeout), plain reqwest download",
            Path::Hand => "hand-written reqwest loop",
            Path::HandAgain => "the same hand-written loop again (A/A: the method's error)",
        }
    }
}

/// The median CPU cost of reading the two clocks around a sample, in microseconds.
fn reading_cost_us() -> f64 {
    let samples: Vec<f64> = (0..2_000)
        .map(|_| {
            let (cpu0, wall0) = (ThreadTime::now(), Instant::now());
            let _ = wall0.elapsed();
            cpu0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    quantile(&samples, 0.5)
}

/// Per-generation samples of one path, in microseconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathSamples {
    pub(crate) cpu: Vec<f64>,
    pub(crate) wall: Vec<f64>,
}

impl PathSamples {
    pub(crate) fn is_empty(&self) -> bool {
        self.cpu.is_empty()
    }

    pub(crate) fn cpu_median(&self) -> f64 {
        quantile(&self.cpu, 0.5)
    }

    pub(crate) fn cpu_mean(&self) -> f64 {
        mean(&self.cpu)
    }

    pub(crate) fn wall_median(&self) -> f64 {
        quantile(&self.wall, 0.5)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OverheadResult {
    /// Generations per path.
    pub(crate) generations: usize,
    /// Indexed by [`Path`]; empty for a path that did not run.
    pub(crate) samples: [PathSamples; 5],
    /// What one pair of clock readings costs, subtracted from every sample (µs of CPU).
    pub(crate) reading_cost_us: f64,
}

impl OverheadResult {
    pub(crate) fn path(&self, path: Path) -> &PathSamples {
        &self.samples[path.index()]
    }

    /// `path`'s figure over the hand loop's (NaN when either did not run).
    pub(crate) fn ratio(&self, path: Path, pick: fn(&PathSamples) -> f64) -> f64 {
        let (ours, hand) = (self.path(path), self.path(Path::Hand));
        if ours.is_empty() || hand.is_empty() {
            return f64::NAN;
        }
        pick(ours) / pick(hand).max(1e-12)
    }

    /// Our median CPU time per generation over the hand loop's.
    pub(crate) fn cpu_ratio(&self) -> f64 {
        self.ratio(Path::Ours, PathSamples::cpu_median)
    }

    /// Our median wall time per generation over the hand loop's.
    pub(crate) fn wall_ratio(&self) -> f64 {
        self.ratio(Path::Ours, PathSamples::wall_median)
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
        let prompt = Prompt::new(PROMPT).map_err(|e| e.to_string())?;
        let call = CallPlan::new("kolbo", ModelChoice::ProviderDefault, prompt, 1);
        let job = self
            .provider
            .submit(&call)
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
                bytes += plain_get(plain, image.url.clone()).await?;
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
                    bytes += plain_get(&self.cdn, url).await?;
                }
                return Ok(bytes);
            }
        }
        Err(format!("{id} did not complete"))
    }
}

/// The bare wire client, as a user of `kolbo-api` alone would drive it.
struct ClientOnly {
    client: KolboClient,
    cdn: reqwest::Client,
}

impl ClientOnly {
    async fn generation(&self) -> Result<u64, String> {
        let e = |e: kolbo_api::KolboError| e.to_string();
        let started = self
            .client
            .generate_image(&GenerateImageRequest::new(PROMPT))
            .await
            .map_err(e)?;
        for _ in 0..100 {
            let status = self
                .client
                .generation_status(&started.generation_id)
                .await
                .map_err(e)?;
            if status.state == GenerationState::Completed {
                let mut bytes = 0;
                for url in status.result.iter().flat_map(|r| r.urls.iter()) {
                    bytes += plain_get(&self.cdn, url).await?;
                }
                return Ok(bytes);
            }
        }
        Err(format!("{} did not complete", started.generation_id))
    }
}

/// A GET with a plain client, the whole body read: the byte count.
async fn plain_get(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> Result<u64, String> {
    let e = |e: reqwest::Error| e.to_string();
    let body = client
        .get(url)
        .send()
        .await
        .map_err(e)?
        .bytes()
        .await
        .map_err(e)?;
    Ok(body.len() as u64)
}

/// Every path, ready to run.
struct Contenders {
    ours: Ours,
    ours_plain: Ours,
    client_only: ClientOnly,
    hand: Hand,
    hand_again: Hand,
}

impl Contenders {
    async fn generation(&self, path: Path) -> Result<u64, String> {
        match path {
            Path::Ours => self.ours.generation().await,
            Path::OursPlainDownload => self.ours_plain.generation().await,
            Path::ClientOnly => self.client_only.generation().await,
            Path::Hand => self.hand.generation().await,
            Path::HandAgain => self.hand_again.generation().await,
        }
    }
}

/// Runs every path `generations` times, taking turns; with `only`, that path alone (for
/// a profiler: `valgrind --tool=callgrind`, `perf`, `strace -c`).
pub(crate) fn run(generations: usize, only: Option<Path>) -> Result<OverheadResult, String> {
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
    let result = client_rt.block_on(async {
        let contenders = contenders(&sim)?;
        let paths: Vec<Path> = match only {
            Some(path) => vec![path],
            None => Path::ALL.to_vec(),
        };
        // Warm up the paths that will run (connections, allocator, caches); a profiler
        // run of one path sees nothing of the others.
        for _ in 0..20 {
            for &path in &paths {
                contenders.generation(path).await?;
            }
        }
        let reading_cost_us = reading_cost_us();
        let mut samples: [PathSamples; 5] = Default::default();
        // One generation per path at a time, each timed on its own: a burst of noise on
        // this shared machine spoils a few samples, not a whole path, and the medians
        // ignore it. The order is shuffled every round (seeded, so runs repeat), so no
        // path always follows the same one: a path run after itself finds warmer caches.
        let mut order = paths.clone();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..generations {
            shuffle(&mut order, &mut seed);
            for &path in &order {
                let (cpu0, wall0) = (ThreadTime::now(), Instant::now());
                contenders.generation(path).await?;
                let cpu = cpu0.elapsed().as_secs_f64() * 1e6 - reading_cost_us;
                let wall = wall0.elapsed().as_secs_f64() * 1e6;
                samples[path.index()].cpu.push(cpu.max(0.0));
                samples[path.index()].wall.push(wall);
            }
        }
        Ok::<_, String>(OverheadResult {
            generations,
            samples,
            reading_cost_us,
        })
    });
    sim_rt.block_on(sim.shutdown());
    result
}

/// Fisher–Yates with a xorshift generator: deterministic for a given seed.
fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = (*seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn contenders(sim: &imagegen_sim::SimHandle) -> Result<Contenders, String> {
    let e = |e: kolbo_api::KolboError| e.to_string();
    // The provider's waiter sleeps on an auto-advancing clock: no real time is spent
    // waiting, as in the hand loop, which does not sleep.
    let clock = ManualClock::new().shared();
    let client = KolboClient::builder(sim.kolbo_api_key())
        .base_url(sim.kolbo_base_url())
        .clock(Arc::clone(&clock))
        .build()
        .map_err(e)?;
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
    let hand = || -> Result<Hand, String> {
        Ok(Hand {
            api: plain()?,
            cdn: plain()?,
            base: sim.kolbo_base_url(),
            key: sim.kolbo_api_key().to_owned(),
        })
    };
    Ok(Contenders {
        ours: Ours {
            provider: KolboProvider::new(client.clone()),
            downloader: downloader.clone(),
            plain_download: None,
        },
        ours_plain: Ours {
            provider: KolboProvider::new(client.clone()),
            downloader,
            plain_download: Some(plain()?),
        },
        client_only: ClientOnly {
            client: KolboClient::builder(sim.kolbo_api_key())
                .base_url(sim.kolbo_base_url())
                .build()
                .map_err(e)?,
            cdn: plain()?,
        },
        hand: hand()?,
        hand_again: hand()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_repeatable_permutation_that_varies_by_round() {
        let mut seed = 7;
        let mut rounds = Vec::new();
        for _ in 0..20 {
            let mut order = Path::ALL.to_vec();
            shuffle(&mut order, &mut seed);
            let mut sorted: Vec<usize> = order.iter().map(|p| p.index()).collect();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
            rounds.push(order);
        }
        assert!(rounds.iter().any(|r| r != &rounds[0]));
        // Which path comes first varies: no path always leads.
        let leaders: std::collections::HashSet<usize> =
            rounds.iter().map(|r| r[0].index()).collect();
        assert!(leaders.len() > 2);
        let mut again = 7;
        let mut first = Path::ALL.to_vec();
        shuffle(&mut first, &mut again);
        assert_eq!(first, rounds[0]);
    }
}

//! Benchmark 2: generations per second and peak memory with 1, 64, 1,000 and 10,000
//! generations in flight. The simulator runs in this process; each scale's client runs in a
//! child process (this binary, `bench-scale-child`), so each peak (`VmHWM`) is that
//! client's alone. The client keeps at most `kolbo_api::DEFAULT_MAX_OPEN_REQUESTS` requests
//! open to the API at once, so 10,000 in flight hold a few hundred sockets, not 20,000.
//!
//! Time is compressed: the simulator runs at `speed` (a 20 s model takes 0.4 s at 0.02) and
//! the client's clock runs `1 / speed` times faster, so the poll schedule scales alike.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imagegen_core::{CallPlan, ModelChoice, NoProgress, Prompt, Provider};
use imagegen_http::ImageDownloader;
use imagegen_http::download::CountingSink;
use imagegen_sim::{ImageSize, SimConfig};
use kolbo_api::{KolboClient, KolboProvider};
use serde::{Deserialize, Serialize};

use super::clock::ScaledClock;
use super::measure::peak_rss_kib;

const KEY_ENV: &str = "IMAGEGEN_BENCH_KOLBO_KEY";
const MODEL: &str = "nano-banana-2";

/// Options of the hidden `bench-scale-child` command.
#[derive(Debug, clap::Args)]
pub(crate) struct ChildArgs {
    /// Generations kept in flight.
    #[arg(long)]
    in_flight: usize,
    /// Generations in all.
    #[arg(long)]
    total: usize,
    /// The simulator's Kolbo base URL.
    #[arg(long)]
    base: String,
    /// How much faster than real time the client's clock runs.
    #[arg(long)]
    factor: f64,
}

/// What a child reports on its last stdout line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScaleResult {
    pub(crate) in_flight: usize,
    pub(crate) generations: usize,
    pub(crate) failures: usize,
    pub(crate) seconds: f64,
    pub(crate) peak_rss_kib: u64,
    /// Peak memory before any generation (runtime, clients, catalog).
    pub(crate) baseline_rss_kib: u64,
}

impl ScaleResult {
    pub(crate) fn per_second(&self) -> f64 {
        self.generations as f64 / self.seconds.max(1e-9)
    }
}

/// The child: `total` generations, `in_flight` at a time, through `KolboProvider` and the
/// downloader; prints a [`ScaleResult`] as JSON.
pub(crate) fn child(args: &ChildArgs) -> Result<(), String> {
    let key = std::env::var(KEY_ENV).map_err(|_| format!("{KEY_ENV} is not set"))?;
    let runtime = crate::runtime()?;
    let result = runtime.block_on(async {
        let clock = ScaledClock::shared(args.factor);
        let client = KolboClient::builder(key)
            .base_url(&args.base)
            .clock(Arc::clone(&clock))
            .build()
            .map_err(|e| e.to_string())?;
        let provider = Arc::new(KolboProvider::new(client));
        provider.catalog().await.map_err(|e| e.to_string())?;
        let downloader = ImageDownloader::builder()
            .clock(Arc::clone(&clock))
            .build()
            .map_err(|e| e.to_string())?;
        let baseline = peak_rss_kib().unwrap_or(0);
        let next = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..args.in_flight.max(1))
            .map(|_| {
                let (provider, downloader) = (Arc::clone(&provider), downloader.clone());
                let (next, failures, total) =
                    (Arc::clone(&next), Arc::clone(&failures), args.total);
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        if let Err(error) = generation(&provider, &downloader).await
                            && failures.fetch_add(1, Ordering::Relaxed) < 3
                        {
                            eprintln!("bench-scale-child: a generation failed: {error}");
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(ScaleResult {
            in_flight: args.in_flight,
            generations: args.total,
            failures: failures.load(Ordering::Relaxed),
            seconds: started.elapsed().as_secs_f64(),
            peak_rss_kib: peak_rss_kib().unwrap_or(0),
            baseline_rss_kib: baseline,
        })
    })?;
    println!(
        "{}",
        serde_json::to_string(&result).map_err(|e| e.to_string())?
    );
    Ok(())
}

async fn generation(provider: &KolboProvider, downloader: &ImageDownloader) -> Result<(), String> {
    let prompt = Prompt::new("a lighthouse at dusk").map_err(|e| e.to_string())?;
    let call = CallPlan::new("kolbo", ModelChoice::Exact(MODEL.into()), prompt, 1);
    let job = provider.submit(&call).await.map_err(|e| e.to_string())?;
    let output = provider
        .wait(&job, &NoProgress)
        .await
        .map_err(|e| e.to_string())?;
    for image in &output.images {
        downloader
            .download_to_writer(&image.url, &mut CountingSink::default())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One scale: a fresh simulator here, the client in a child process.
pub(crate) fn run(in_flight: usize, total: usize, speed: f64) -> Result<ScaleResult, String> {
    let runtime = crate::runtime()?;
    let sim = runtime
        .block_on(imagegen_sim::start(
            SimConfig::default()
                .with_speed(speed)
                .with_image_size(ImageSize::MaxSide(64))
                .with_max_jobs(1_000_000)
                .without_rate_limits(),
        ))
        .map_err(|e| e.to_string())?;
    sim.set_kolbo_credits(sim.kolbo_api_key(), 1e12);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([
            "bench-scale-child",
            "--in-flight",
            &in_flight.to_string(),
            "--total",
            &total.to_string(),
            "--base",
            &sim.kolbo_base_url(),
            "--factor",
            &(1.0 / speed).to_string(),
        ])
        .env(KEY_ENV, sim.kolbo_api_key())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the scale child: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the scale child ({in_flight} in flight) ran over 300 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).map_err(|e| e.to_string())?;
    }
    runtime.block_on(sim.shutdown());
    if !status.success() {
        return Err(format!(
            "the scale child ({in_flight} in flight) failed: {status}"
        ));
    }
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("cannot read the child's result {line:?}: {e}"))
}

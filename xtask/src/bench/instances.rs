//! Benchmark 5 (`--only instances`): several `imagegen serve --db postgres://…` processes as
//! one gateway (issue #16). Real processes (the release `imagegen` binary, built first), a
//! throwaway PostgreSQL (`imagegen_ledger::testing`), the simulator in this process on the
//! real clock.
//!
//! - **Shared Kolbo pacing.** The simulator limits Kolbo generation starts to
//!   [`LIMIT`] per [`WINDOW`] (sliding); 1 or 3 gateways get the same
//!   `--kolbo-rate-limit`, and [`PACED_REQUESTS`] requests go to them at once, round-robin.
//!   The fraction of the bound is `starts × W / (last start − first start + W) / L`, from
//!   the simulator's own log, as in benchmark 4; and the 429s it answered.
//! - **Throughput.** No rate limit, KoalaImages (answers synchronously), speed 0, tiny
//!   images: [`THROUGHPUT_REQUESTS`] requests, [`CONCURRENCY`] at a time, through 1 and
//!   through 3 gateways; requests per second.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imagegen_core::Clock as _;
use imagegen_sim::{ImageSize, KolboRateLimits, Route, SimConfig, SimHandle};
use serde_json::json;

/// Kolbo generation starts allowed per [`WINDOW`] in the paced runs.
const LIMIT: u32 = 10;
/// The short window of the paced runs.
const WINDOW: Duration = Duration::from_secs(2);
/// Requests in each paced run (six windows' worth).
const PACED_REQUESTS: usize = 60;
/// Requests in each throughput run.
const THROUGHPUT_REQUESTS: usize = 600;
/// Requests in flight at once in the throughput runs.
const CONCURRENCY: usize = 32;
const KOLBO_MODEL: &str = "kolbo/z-image/turbo";
const KOALA_MODEL: &str = "koala/gpt-image-2";

/// One paced run.
#[derive(Debug, Clone)]
pub(crate) struct PacedResult {
    pub(crate) instances: usize,
    pub(crate) requests: usize,
    pub(crate) succeeded: usize,
    /// Generation starts the simulator accepted.
    pub(crate) starts: usize,
    /// Generation starts it answered 429.
    pub(crate) rate_limited: usize,
    /// Seconds from the first accepted start to the last (simulator clock).
    pub(crate) span_secs: f64,
    pub(crate) fraction_of_bound: f64,
}

/// One throughput run.
#[derive(Debug, Clone)]
pub(crate) struct ThroughputResult {
    pub(crate) instances: usize,
    pub(crate) requests: usize,
    pub(crate) failed: usize,
    pub(crate) seconds: f64,
}

impl ThroughputResult {
    pub(crate) fn per_second(&self) -> f64 {
        (self.requests - self.failed) as f64 / self.seconds.max(1e-9)
    }
}

/// Everything benchmark 5 measured.
#[derive(Debug, Clone)]
pub(crate) struct InstancesResult {
    pub(crate) paced: Vec<PacedResult>,
    pub(crate) throughput: Vec<ThroughputResult>,
}

/// Builds the release `imagegen` binary, then runs the four measurements.
pub(crate) fn run(quick: bool) -> Result<InstancesResult, String> {
    let binary = build_imagegen()?;
    let runtime = crate::runtime()?;
    let requests = if quick { 200 } else { THROUGHPUT_REQUESTS };
    runtime.block_on(async {
        let (url, name) = imagegen_ledger::testing::fresh_database().await;
        let mut paced = Vec::new();
        let mut throughput = Vec::new();
        for instances in [1, 3] {
            eprintln!(
                "bench 5: {PACED_REQUESTS} Kolbo requests through {instances} gateway(s) under {LIMIT}/{}s",
                WINDOW.as_secs()
            );
            paced.push(paced_run(&binary, &url, instances).await?);
        }
        for instances in [1, 3] {
            eprintln!(
                "bench 5: {requests} KoalaImages requests through {instances} gateway(s), {CONCURRENCY} at a time"
            );
            throughput.push(throughput_run(&binary, &url, instances, requests).await?);
        }
        imagegen_ledger::testing::drop_database(&name).await;
        Ok(InstancesResult { paced, throughput })
    })
}

/// `cargo build --release -p imagegen-cli`; the binary beside this one.
pub(crate) fn build_imagegen() -> Result<PathBuf, String> {
    eprintln!("bench: building the release imagegen binary");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "imagegen-cli",
            "--bin",
            "imagegen",
        ])
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building imagegen failed: {status}"));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let binary = exe
        .parent()
        .map(|dir| dir.join("imagegen"))
        .ok_or("no folder for the xtask binary")?;
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("no binary at {}", binary.display()))
    }
}

async fn start_sim(config: SimConfig) -> Result<SimHandle, String> {
    let sim = imagegen_sim::start(config.with_image_size(ImageSize::MaxSide(16)))
        .await
        .map_err(|e| e.to_string())?;
    sim.set_kolbo_credits(sim.kolbo_api_key(), 1e12);
    sim.set_koala_credits(sim.koala_api_key(), u64::MAX / 4);
    Ok(sim)
}

/// A running `imagegen serve`; killed when dropped.
pub(crate) struct Gateway {
    child: Child,
    pub(crate) url: String,
}

impl Gateway {
    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: the process ends at once, whatever it was doing.
    pub(crate) fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -TERM`, then waits up to `patience` for it to stop (gracefully: requests in
    /// flight answered, paid jobs recorded), then `kill -9`. Whether it stopped by itself.
    pub(crate) fn stop(&mut self, patience: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + patience;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_hard();
        false
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `n` gateways on `db` and the simulator, sharing one image folder under `dir`.
fn start_gateways(
    binary: &Path,
    sim: &SimHandle,
    db: &str,
    dir: &Path,
    n: usize,
    extra: &[&str],
) -> Result<Vec<Gateway>, String> {
    (0..n)
        .map(|i| start_gateway(binary, sim, db, dir, &format!("gateway-{i}"), extra, &[]))
        .collect()
}

/// The URL of a just-started `imagegen serve`: its first stdout line, `listening on
/// URL`, within 30 s (the rest of its stdout is drained); else an error with its stderr
/// from `stderr_path`.
pub(crate) fn listening_url(
    child: &mut Child,
    stderr_path: &Path,
    name: &str,
) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tell, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tell.send(lines.next().and_then(Result::ok).unwrap_or_default());
        for _ in lines.by_ref() {}
    });
    let line = heard
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    line.strip_prefix("listening on ")
        .map(str::to_owned)
        .ok_or_else(|| {
            let log = std::fs::read_to_string(stderr_path).unwrap_or_default();
            format!("{name} did not start: {line:?}\n{log}")
        })
}

/// `imagegen` in `dir` against the simulator: its keys and URLs, a fast fixed poll, a
/// data folder of its own, and no ledger or log settings inherited from this process.
pub(crate) fn imagegen_command(binary: &Path, sim: &SimHandle, dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .env_remove("IMAGEGEN_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("KOLBO_API_KEY", sim.kolbo_api_key())
        .env("KOALA_API_KEY", sim.koala_api_key())
        .env("KOLBO_BASE_URL", sim.kolbo_base_url())
        .env("KOALA_BASE_URL", sim.koala_base_url())
        .env("IMAGEGEN_POLL_INTERVAL_MS", "50");
    command
}

/// Starts one `imagegen serve` on `db` and the simulator, with the image folder
/// `dir/images`, its stderr in `dir/<name>.stderr`, `extra` arguments and `env`
/// variables; waits for its `listening on` line.
pub(crate) fn start_gateway(
    binary: &Path,
    sim: &SimHandle,
    db: &str,
    dir: &Path,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<Gateway, String> {
    let images = dir.join("images");
    let stderr_path = dir.join(format!("{name}.stderr"));
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
    let mut child = imagegen_command(binary, sim, dir)
        .envs(env.iter().copied())
        .args(["--db", db, "serve", "--listen", "127.0.0.1:0"])
        .arg("--image-dir")
        .arg(&images)
        .args(["--max-in-flight-per-key", "100000"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let listening = listening_url(&mut child, &stderr_path, name);
    let mut gateway = Gateway {
        child,
        url: String::new(),
    };
    gateway.url = listening?;
    Ok(gateway)
}

fn http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(1024)
        .build()
        .map_err(|e| e.to_string())
}

/// Sends `requests` generations with `model`, `concurrency` at a time, round-robin over
/// `gateways`; returns how many failed.
async fn send(
    gateways: &[Gateway],
    model: &'static str,
    requests: usize,
    concurrency: usize,
) -> Result<usize, String> {
    let http = http()?;
    let urls: Arc<Vec<String>> = Arc::new(
        gateways
            .iter()
            .map(|g| format!("{}/v1/images/generations", g.url))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency.min(requests))
        .map(|_| {
            let (http, urls) = (http.clone(), Arc::clone(&urls));
            let (next, failed) = (Arc::clone(&next), Arc::clone(&failed));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let body = json!({"prompt": format!("bench request {i}"), "model": model});
                    let ok = http
                        .post(&urls[i % urls.len()])
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.map_err(|e| e.to_string())?;
    }
    Ok(failed.load(Ordering::Relaxed))
}

async fn paced_run(binary: &Path, db: &str, instances: usize) -> Result<PacedResult, String> {
    let limits = KolboRateLimits::default()
        .with_generate(Some(LIMIT))
        .with_window(WINDOW);
    let sim = start_sim(
        SimConfig::default()
            .with_speed(0.0)
            .with_kolbo_rate_limits(limits),
    )
    .await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rate = format!("{LIMIT}/{}s", WINDOW.as_secs());
    let gateways = start_gateways(
        binary,
        &sim,
        db,
        dir.path(),
        instances,
        &["--kolbo-rate-limit", &rate],
    )?;
    // The window of the previous run (same ledger, same key) must have passed.
    tokio::time::sleep(WINDOW).await;
    sim.request_log().clear();
    let failed = send(&gateways, KOLBO_MODEL, PACED_REQUESTS, PACED_REQUESTS).await?;
    drop(gateways);
    let log = sim.request_log().for_route(Route::KolboGenerate);
    let accepted: Vec<Duration> = log
        .iter()
        .filter(|r| r.status == Some(200))
        .map(|r| r.at)
        .collect();
    let rate_limited = log.iter().filter(|r| r.status == Some(429)).count();
    sim.shutdown().await;
    let first = accepted.iter().min().copied().unwrap_or_default();
    let last = accepted.iter().max().copied().unwrap_or_default();
    let span = last.saturating_sub(first).as_secs_f64();
    let window = WINDOW.as_secs_f64();
    let per_window = accepted.len() as f64 * window / (span + window);
    Ok(PacedResult {
        instances,
        requests: PACED_REQUESTS,
        succeeded: PACED_REQUESTS - failed,
        starts: accepted.len(),
        rate_limited,
        span_secs: span,
        fraction_of_bound: per_window / f64::from(LIMIT),
    })
}

async fn throughput_run(
    binary: &Path,
    db: &str,
    instances: usize,
    requests: usize,
) -> Result<ThroughputResult, String> {
    let sim = start_sim(SimConfig::default().with_speed(0.0).without_rate_limits()).await?;
    // Kept after the run (see `run_dir`): removing it would slow the next run's gateways.
    let wall = imagegen_core::TokioClock::new();
    let dir = super::run_dir::create(&format!("instances-{instances}"), wall.wall_time())?;
    let gateways = start_gateways(binary, &sim, db, &dir, instances, &[])?;
    // Warm-up: a connection and a first generation on each gateway.
    send(&gateways, KOALA_MODEL, instances, instances).await?;
    let started = Instant::now();
    let failed = send(&gateways, KOALA_MODEL, requests, CONCURRENCY).await?;
    let seconds = started.elapsed().as_secs_f64();
    drop(gateways);
    sim.shutdown().await;
    super::run_dir::remove_old(&dir, wall.wall_time());
    Ok(ThroughputResult {
        instances,
        requests,
        failed,
        seconds,
    })
}

/// The benchmark's table.
pub(crate) fn table(r: &InstancesResult) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "### 5. Several gateways on one PostgreSQL ledger (`imagegen serve --db postgres://…`)\n"
    );
    let _ = writeln!(
        t,
        "Kolbo limited to {LIMIT} generation starts per {} s (sliding), the gateways given \
         `--kolbo-rate-limit {LIMIT}/{}s`, {PACED_REQUESTS} requests at once, round-robin:\n",
        WINDOW.as_secs(),
        WINDOW.as_secs()
    );
    let _ = writeln!(
        t,
        "| gateways | requests | succeeded | starts | 429s | span (s) | fraction of the bound |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|");
    for p in &r.paced {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {:.2} | {:.1} % |",
            p.instances,
            p.requests,
            p.succeeded,
            p.starts,
            p.rate_limited,
            p.span_secs,
            p.fraction_of_bound * 100.0
        );
    }
    let _ = writeln!(
        t,
        "\nNo rate limit, KoalaImages at speed 0, {CONCURRENCY} requests in flight:\n"
    );
    let _ = writeln!(
        t,
        "| gateways | requests | failed | seconds | requests/s | ratio |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|");
    let base = r
        .throughput
        .first()
        .map_or(1.0, ThroughputResult::per_second);
    for x in &r.throughput {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.2} | {:.1} | ×{:.2} |",
            x.instances,
            x.requests,
            x.failed,
            x.seconds,
            x.per_second(),
            x.per_second() / base.max(1e-9)
        );
    }
    let ok = r
        .paced
        .iter()
        .all(|p| p.fraction_of_bound >= 0.95 && p.rate_limited == 0 && p.succeeded == p.requests);
    let _ = writeln!(
        t,
        "\nGoal (≥ 95 % of the bound, no 429, every request served, through 1 and 3 gateways): {}",
        if ok { "met" } else { "**not met**" }
    );
    t
}

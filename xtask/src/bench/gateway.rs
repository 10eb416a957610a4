//! Benchmark 6 (`--only gateway`): the latency `imagegen serve` adds and the requests per
//! second it serves, against LiteLLM's proxy in the same run (issue #19).
//!
//! Four targets, all on 127.0.0.1:
//!
//! - **simulator, direct**: the provider work the gateway does for one request, done by
//!   hand: KoalaImages' `POST /api/image-generation/` (answered synchronously, speed 0,
//!   16 px images), then `GET` of the image URL it answers.
//! - **`imagegen serve`** (the release binary, its own process, a SQLite ledger in a
//!   folder of its own, kept after the run: see [`super::run_dir`]) in front of that
//!   simulator: `POST /v1/images/generations` with `koala/gpt-image-2`, `n: 1`,
//!   `response_format: "url"`.
//! - **fake upstream, direct**: a tiny hyper server in this process answering OpenAI's
//!   `POST /v1/images/generations` with a fixed-shape body (one `url`).
//! - **LiteLLM's proxy** (`litellm[proxy]` from PyPI, in `target/bench-venv`, one
//!   worker, no database, no callbacks) in front of that fake upstream: the same request.
//!
//! For each: (a) **open loop**, requests sent on a fixed timetable ([`RATE`] a second for
//! [`OPEN_SECONDS`]), each one's latency measured from its *scheduled* send time, so a
//! stall that delays the following sends is counted (no coordinated omission); p50 and
//! p99, and the latency added = through the gateway − direct, at the same rate. A gateway
//! whose closed-loop maximum is below 1.5 × [`RATE`] is also measured at a rate it can
//! sustain (half that maximum), and its upstream again at that rate. (b) **closed loop**, [`CONCURRENCY`]
//! connections each sending its next request when the last is answered, for
//! [`CLOSED_SECONDS`]: requests per second, and the gateway's CPU seconds over the window
//! (utime + stime of its process and its children, from `/proc`), so requests per CPU
//! second = requests per second per core.
//!
//! The simulator and the fake upstream run on one runtime thread of this process, the
//! load generator on another; the gateway under test is its own process. All share the
//! machine's two cores, as they would on one host.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use imagegen_core::Clock as _;
use imagegen_sim::{ImageSize, SimConfig, SimHandle};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use super::measure::quantile;

/// Requests per second of the open-loop runs.
const RATE: u32 = 1_000;
/// Seconds of each open-loop run.
const OPEN_SECONDS: f64 = 10.0;
/// Connections of the open-loop load generator (each sends one request at a time; a
/// request waits for a free one, and that wait counts in its latency).
const OPEN_CONNECTIONS: usize = 64;
/// Connections in the closed-loop runs.
const CONCURRENCY: usize = 32;
/// Seconds of each closed-loop run.
const CLOSED_SECONDS: f64 = 10.0;
/// Seconds of closed-loop warm-up before each target's first run.
const WARM_UP_SECONDS: f64 = 1.5;
/// Past this, requests of an open-loop run still unanswered are given up.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// Past this, a request is a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long LiteLLM may take to start answering.
const LITELLM_START_LIMIT: Duration = Duration::from_secs(180);
/// How long installing LiteLLM may take.
const PIP_LIMIT: Duration = Duration::from_secs(900);
/// Goal: latency added at p99, at [`RATE`] requests a second.
const GOAL_ADDED_P99_MS: f64 = 2.0;
/// Goal: our requests per CPU second over LiteLLM's.
const GOAL_PER_CORE_RATIO: f64 = 10.0;
/// The model LiteLLM's config names.
const LITELLM_MODEL: &str = "bench-image";
/// The key the fake upstream is given (it checks nothing).
const FAKE_KEY: &str = "sk-bench-not-a-key";

/// One target of the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// KoalaImages on the simulator: POST, then GET the image.
    SimDirect,
    /// `imagegen serve` in front of the simulator.
    Ours,
    /// The fake OpenAI-images upstream.
    FakeDirect,
    /// LiteLLM's proxy in front of the fake upstream.
    LiteLlm,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Self::SimDirect => "simulator, direct (Koala POST + image GET)",
            Self::Ours => "`imagegen serve` → simulator",
            Self::FakeDirect => "fake OpenAI upstream, direct (POST)",
            Self::LiteLlm => "LiteLLM proxy → fake upstream",
        }
    }
}

/// Where a target listens and what one request to it is.
#[derive(Debug, Clone)]
struct Endpoint {
    target: Target,
    addr: SocketAddr,
    /// The process whose CPU time is counted (a gateway).
    pid: Option<u32>,
    /// `Authorization`, when the target needs one.
    auth: Option<String>,
}

/// An open-loop run.
#[derive(Debug, Clone)]
pub(crate) struct OpenRun {
    pub(crate) target: Target,
    pub(crate) rate: u32,
    pub(crate) requests: usize,
    pub(crate) failed: usize,
    /// Requests not answered within [`DRAIN_LIMIT`] after the last was due.
    pub(crate) unanswered: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// The gateway's CPU over the run, in cores (CPU seconds / seconds).
    pub(crate) gateway_cores: Option<f64>,
}

/// A closed-loop run.
#[derive(Debug, Clone)]
pub(crate) struct ClosedRun {
    pub(crate) target: Target,
    pub(crate) requests: usize,
    pub(crate) failed: usize,
    pub(crate) seconds: f64,
    /// The gateway's CPU seconds over the run.
    pub(crate) gateway_cpu: Option<f64>,
}

impl ClosedRun {
    pub(crate) fn per_second(&self) -> f64 {
        (self.requests - self.failed) as f64 / self.seconds.max(1e-9)
    }

    /// Requests answered per CPU second of the gateway.
    pub(crate) fn per_cpu_second(&self) -> Option<f64> {
        self.gateway_cpu
            .map(|cpu| (self.requests - self.failed) as f64 / cpu.max(1e-9))
    }
}

/// Everything benchmark 6 measured.
#[derive(Debug, Clone)]
pub(crate) struct GatewayResult {
    pub(crate) open: Vec<OpenRun>,
    pub(crate) closed: Vec<ClosedRun>,
    /// LiteLLM's version, or why it did not run.
    pub(crate) litellm: Result<String, String>,
    pub(crate) open_seconds: f64,
    pub(crate) closed_seconds: f64,
}

impl GatewayResult {
    fn closed(&self, target: Target) -> Option<&ClosedRun> {
        self.closed.iter().find(|r| r.target == target)
    }

    /// The open-loop run of `target` at `rate`.
    fn open(&self, target: Target, rate: u32) -> Option<&OpenRun> {
        self.open
            .iter()
            .find(|r| r.target == target && r.rate == rate)
    }

    /// The direct run a gateway's open-loop run is compared with.
    fn baseline(&self, run: &OpenRun) -> Option<&OpenRun> {
        match run.target {
            Target::Ours => self.open(Target::SimDirect, run.rate),
            Target::LiteLlm => self.open(Target::FakeDirect, run.rate),
            _ => None,
        }
    }
}

/// Which runs, how long.
#[derive(Debug, Clone, Copy)]
struct Plan {
    open_seconds: f64,
    closed_seconds: f64,
}

/// Builds the release `imagegen`, installs LiteLLM when missing (unless `without_litellm`),
/// then measures.
pub(crate) fn run(quick: bool, without_litellm: bool) -> Result<GatewayResult, String> {
    let plan = if quick {
        Plan {
            open_seconds: 3.0,
            closed_seconds: 3.0,
        }
    } else {
        Plan {
            open_seconds: OPEN_SECONDS,
            closed_seconds: CLOSED_SECONDS,
        }
    };
    let binary = super::instances::build_imagegen()?;
    let litellm = if without_litellm {
        Err("skipped (--without-litellm)".to_owned())
    } else {
        install_litellm()
    };
    // Kept after the run (see `run_dir`): removing it would slow the next run's gateway.
    let wall = imagegen_core::TokioClock::new();
    let work = super::run_dir::create("gateway", wall.wall_time())?;
    // The simulator and the fake upstream: one thread of their own.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-servers")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // The load generator: this thread.
    let load = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let sim = servers.block_on(start_sim())?;
    let fake = servers.block_on(start_fake())?;
    let ticks = clock_ticks();
    let mut open = Vec::new();
    let mut closed = Vec::new();

    // Ours, and the simulator direct.
    {
        let gateway = start_gateway(&binary, &sim, &work)?;
        let sim_addr = addr_of(sim.api_origin())?;
        let direct = Endpoint {
            target: Target::SimDirect,
            addr: sim_addr,
            pid: None,
            auth: Some(format!("Bearer {}", sim.koala_api_key())),
        };
        let ours = Endpoint {
            target: Target::Ours,
            addr: gateway.addr,
            pid: Some(gateway.child.id()),
            auth: None,
        };
        load.block_on(async {
            for endpoint in [&direct, &ours] {
                eprintln!("bench 6: warming up {}", endpoint.target.label());
                closed_loop(endpoint, CONCURRENCY, WARM_UP_SECONDS, ticks).await?;
            }
            for endpoint in [&direct, &ours] {
                eprintln!(
                    "bench 6: closed loop, {CONCURRENCY} connections, {}: {} s",
                    endpoint.target.label(),
                    plan.closed_seconds
                );
                closed.push(closed_loop(endpoint, CONCURRENCY, plan.closed_seconds, ticks).await?);
            }
            // At RATE; and, when the gateway cannot sustain it, also at a rate it can.
            let max = closed
                .iter()
                .find(|r| r.target == Target::Ours)
                .map_or(0.0, ClosedRun::per_second);
            let mut rates = vec![RATE];
            if sustainable_rate(max) != RATE {
                rates.push(sustainable_rate(max));
            }
            for rate in rates {
                for endpoint in [&direct, &ours] {
                    eprintln!(
                        "bench 6: open loop, {rate}/s, {}: {} s",
                        endpoint.target.label(),
                        plan.open_seconds
                    );
                    open.push(open_loop(endpoint, rate, plan.open_seconds, ticks).await?);
                }
            }
            Ok::<_, String>(())
        })?;
        drop(gateway);
    }
    servers.block_on(sim.shutdown());

    // LiteLLM, and the fake upstream direct.
    let litellm = match litellm {
        Ok((venv, version)) => {
            let fake_direct = Endpoint {
                target: Target::FakeDirect,
                addr: fake,
                pid: None,
                auth: Some(format!("Bearer {FAKE_KEY}")),
            };
            eprintln!("bench 6: starting LiteLLM {version}");
            let proxy = load.block_on(start_litellm(&venv, fake, &work))?;
            let proxied = Endpoint {
                target: Target::LiteLlm,
                addr: proxy.addr,
                pid: Some(proxy.child.id()),
                auth: None,
            };
            load.block_on(async {
                for endpoint in [&fake_direct, &proxied] {
                    eprintln!("bench 6: warming up {}", endpoint.target.label());
                    closed_loop(endpoint, CONCURRENCY, WARM_UP_SECONDS, ticks).await?;
                }
                for endpoint in [&fake_direct, &proxied] {
                    eprintln!(
                        "bench 6: closed loop, {CONCURRENCY} connections, {}: {} s",
                        endpoint.target.label(),
                        plan.closed_seconds
                    );
                    closed.push(
                        closed_loop(endpoint, CONCURRENCY, plan.closed_seconds, ticks).await?,
                    );
                }
                let max = closed
                    .iter()
                    .find(|r| r.target == Target::LiteLlm)
                    .map_or(0.0, ClosedRun::per_second);
                let rate = sustainable_rate(max);
                let mut rates = vec![RATE];
                if rate != RATE {
                    rates.push(rate);
                }
                for r in rates {
                    eprintln!(
                        "bench 6: open loop, {r}/s, {}: {} s",
                        fake_direct.target.label(),
                        plan.open_seconds
                    );
                    open.push(open_loop(&fake_direct, r, plan.open_seconds, ticks).await?);
                }
                eprintln!(
                    "bench 6: open loop, {rate}/s, {}: {} s",
                    proxied.target.label(),
                    plan.open_seconds
                );
                open.push(open_loop(&proxied, rate, plan.open_seconds, ticks).await?);
                Ok::<_, String>(())
            })?;
            drop(proxy);
            Ok(version)
        }
        Err(reason) => {
            eprintln!("bench 6: LiteLLM not measured: {reason}");
            Err(reason)
        }
    };
    servers.shutdown_timeout(Duration::from_secs(5));
    super::run_dir::remove_old(&work, wall.wall_time());
    eprintln!(
        "bench 6: this run's ledger and images are kept in {}",
        work.display()
    );
    Ok(GatewayResult {
        open,
        closed,
        litellm,
        open_seconds: plan.open_seconds,
        closed_seconds: plan.closed_seconds,
    })
}

/// [`RATE`] when the closed-loop maximum is comfortably above it; else half that
/// maximum (rounded down to 10), where queueing stays moderate.
fn sustainable_rate(max_per_second: f64) -> u32 {
    if max_per_second >= 1.5 * f64::from(RATE) {
        RATE
    } else {
        let half = (max_per_second / 2.0 / 10.0).floor() * 10.0;
        (half as u32).clamp(10, RATE)
    }
}

fn addr_of(origin: &str) -> Result<SocketAddr, String> {
    let url = url::Url::parse(origin).map_err(|e| format!("{origin}: {e}"))?;
    url.socket_addrs(|| None)
        .map_err(|e| format!("{origin}: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{origin}: no address"))
}

// ---------------------------------------------------------------------------------------
// The servers in this process.

async fn start_sim() -> Result<SimHandle, String> {
    let config = SimConfig::default()
        .with_speed(0.0)
        .without_rate_limits()
        .with_max_jobs(2_000_000)
        .with_image_size(ImageSize::MaxSide(16));
    let sim = imagegen_sim::start(config)
        .await
        .map_err(|e| e.to_string())?;
    sim.set_koala_credits(sim.koala_api_key(), u64::MAX / 4);
    Ok(sim)
}

/// Starts the fake OpenAI-images upstream on 127.0.0.1; it lives as long as the runtime.
async fn start_fake() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| fake_answer(r, addr));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// The `created` of the fake upstream's answers (2026-01-01).
const FAKE_CREATED: u64 = 1_767_225_600;

/// Images the fake upstream has answered, for their URLs.
static FAKE_IMAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A 16-pixel JPEG's worth of bytes, for `b64_json` answers.
const FAKE_IMAGE_B64: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAAQABABAREA/8QAFQABAQAAAAAAAAAAAAAAAAAAAAf/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/9oACAEBAAA/AKp//9k=";

/// OpenAI's `POST /v1/images/generations`, answered at once: `n` images (1 to 10), each a
/// `url` (or `b64_json` when asked), with the prompt as `revised_prompt`.
async fn fake_answer(
    request: Request<Incoming>,
    addr: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Vec<u8>| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    };
    let error = |status: StatusCode, message: &str| {
        let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
        reply(status, body.to_string().into_bytes())
    };
    if request.method() != Method::POST || request.uri().path() != "/v1/images/generations" {
        return error(StatusCode::NOT_FOUND, "Unknown route.");
    }
    let Ok(body) = request.into_body().collect().await else {
        return error(StatusCode::BAD_REQUEST, "The body could not be read.");
    };
    let Ok(Value::Object(asked)) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return error(StatusCode::BAD_REQUEST, "The body is not a JSON object.");
    };
    let Some(prompt) = asked.get("prompt").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "`prompt` is required.");
    };
    let n = asked
        .get("n")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 10);
    let b64 = asked.get("response_format").and_then(Value::as_str) == Some("b64_json");
    // A fixed time (a fake needs no clock); each image a URL of its own.
    let created = FAKE_CREATED;
    let first = FAKE_IMAGES.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    let data: Vec<Value> = (0..n)
        .map(|i| {
            if b64 {
                json!({"b64_json": FAKE_IMAGE_B64, "revised_prompt": prompt})
            } else {
                json!({"url": format!("http://{addr}/images/{}.jpg", first + i), "revised_prompt": prompt})
            }
        })
        .collect();
    let body = json!({"created": created, "data": data});
    reply(StatusCode::OK, body.to_string().into_bytes())
}

// ---------------------------------------------------------------------------------------
// The processes under test.

/// A process this benchmark started, in a process group of its own; the group is killed
/// when dropped.
struct Spawned {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // The whole group: LiteLLM may run helpers of its own.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `imagegen serve` on 127.0.0.1 in front of `sim`, its SQLite ledger and images in `dir`.
fn start_gateway(binary: &Path, sim: &SimHandle, dir: &Path) -> Result<Spawned, String> {
    let ledger = dir.join("ledger.sqlite3");
    let stderr_path = dir.join("gateway.stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(binary)
        .current_dir(dir)
        .env_remove("IMAGEGEN_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("KOLBO_API_KEY")
        .env_remove("KOLBO_BASE_URL")
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("KOALA_API_KEY", sim.koala_api_key())
        .env("KOALA_BASE_URL", sim.koala_base_url())
        .arg("--db")
        .arg(&ledger)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--image-dir")
        .arg(dir.join("images"))
        .args(["--max-in-flight-per-key", "100000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let listening = super::instances::listening_url(&mut child, &stderr_path, "the gateway");
    let mut spawned = Spawned {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let url = listening?;
    spawned.addr = addr_of(&url)?;
    Ok(spawned)
}

/// The venv LiteLLM runs from: `target/bench-venv`.
fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-venv")
}

/// Creates `target/bench-venv` and installs `litellm[proxy]` in it, unless done before;
/// returns the venv and LiteLLM's version.
fn install_litellm() -> Result<(PathBuf, String), String> {
    let venv = venv_dir();
    let marker = venv.join(".litellm-proxy-installed");
    let python = venv.join("bin/python");
    if !marker.is_file() {
        if !python.is_file() {
            eprintln!("bench 6: creating {}", venv.display());
            if !run_quiet(Command::new("python3").args(["-m", "venv"]).arg(&venv))? {
                // Debian's python3 needs python3-venv for `-m venv`.
                eprintln!("bench 6: python3 -m venv failed; installing python3-venv");
                let _ = run_quiet(Command::new("apt-get").args(["install", "-y", "python3-venv"]));
                if !run_quiet(Command::new("python3").args(["-m", "venv"]).arg(&venv))? {
                    return Err("python3 -m venv failed (is python3 with venv installed?)".into());
                }
            }
        }
        eprintln!(
            "bench 6: installing litellm[proxy] into {} (once)",
            venv.display()
        );
        let mut pip = Command::new(&python);
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "litellm[proxy]",
        ]);
        if !run_bounded(&mut pip, PIP_LIMIT)? {
            return Err("pip install 'litellm[proxy]' failed".into());
        }
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    }
    let output = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || version.is_empty() {
        return Err("litellm is not importable from the bench venv".into());
    }
    Ok((venv, version))
}

fn run_quiet(command: &mut Command) -> Result<bool, String> {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .map_err(|e| format!("cannot start {command:?}: {e}"))
}

/// Runs `command` (its output passed through), killed after `limit`.
fn run_bounded(command: &mut Command, limit: Duration) -> Result<bool, String> {
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status.success());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{command:?} took longer than {} s",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// LiteLLM's proxy with one worker, no database, no callbacks, routing [`LITELLM_MODEL`]
/// to the fake upstream at `upstream`; returns once it answers.
async fn start_litellm(venv: &Path, upstream: SocketAddr, dir: &Path) -> Result<Spawned, String> {
    let config = dir.join("litellm.yaml");
    let yaml = format!(
        "model_list:
  - model_name: {LITELLM_MODEL}
    litellm_params:
      model: openai/dall-e-2
      api_base: http://{upstream}/v1
      api_key: {FAKE_KEY}
    model_info:
      mode: image_generation
litellm_settings:
  telemetry: false
  set_verbose: false
  json_logs: false
  turn_off_message_logging: true
  request_timeout: 30
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
  disable_adding_master_key_hash_to_db: true
  allow_requests_on_db_unavailable: true
"
    );
    std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let log_path = dir.join("litellm.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let child = Command::new(venv.join("bin/litellm"))
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("LITELLM_MASTER_KEY")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        // No master key: requests are not authenticated, as the gateway on loopback without
        // keys; LiteLLM refuses to start so unless told this is meant.
        .env(
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY",
            "true",
        )
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_DONT_SHOW_FEEDBACK_BOX", "true")
        .env("DISABLE_SCHEMA_UPDATE", "true")
        .env("NO_DOCS", "True")
        .env("NO_REDOC", "True")
        .env("HF_HUB_OFFLINE", "1")
        .env("TIKTOKEN_CACHE_DIR", dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--num_workers", "1"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start litellm: {e}"))?;
    let mut spawned = Spawned {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = spawned.child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("litellm exited ({status}):\n{}", tail(&log, 3000)));
        }
        if started.elapsed() > LITELLM_START_LIMIT {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "litellm did not answer within {} s:\n{}",
                LITELLM_START_LIMIT.as_secs(),
                tail(&log, 3000)
            ));
        }
        if let Ok(mut connection) = Connection::open(spawned.addr).await
            && let Ok((StatusCode::OK, _)) = connection
                .send(Method::GET, "/health/liveliness", None, None)
                .await
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The route under test, once, so a misconfiguration fails here and not as a table of
    // failures.
    let mut connection = Connection::open(spawned.addr).await?;
    let (status, body) = connection
        .send(
            Method::POST,
            "/v1/images/generations",
            None,
            Some(request_body(Target::LiteLlm, 0)),
        )
        .await?;
    if status != StatusCode::OK {
        return Err(format!(
            "litellm answered {status} to an image request: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(spawned)
}

fn tail(text: &str, chars: usize) -> &str {
    let start = text.len().saturating_sub(chars);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

// ---------------------------------------------------------------------------------------
// CPU time of a process and its children, from /proc.

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `(ppid, utime + stime + cutime + cstime)` of one process, in ticks.
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += fields.get(i)?.parse::<u64>().ok()?;
    }
    Some((ppid, ticks))
}

/// CPU seconds so far of `root` and every process descending from it.
fn tree_cpu_seconds(root: u32, ticks_per_second: f64) -> f64 {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
                && let Some((ppid, ticks)) = stat_of(pid)
            {
                parents.push((pid, ppid, ticks));
            }
        }
    }
    let mut tree = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for &(pid, ppid, _) in &parents {
            if tree.contains(&ppid) && !tree.contains(&pid) {
                tree.push(pid);
                grew = true;
            }
        }
    }
    let ticks: u64 = parents
        .iter()
        .filter(|(pid, _, _)| tree.contains(pid))
        .map(|(_, _, t)| t)
        .sum();
    ticks as f64 / ticks_per_second
}

// ---------------------------------------------------------------------------------------
// The load generator: one HTTP/1.1 connection per worker, hyper's bare client.

/// One keep-alive connection to a target.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// One request; the status and the whole body.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host);
        if let Some(auth) = auth {
            builder = builder.header(AUTHORIZATION, auth);
        }
        let request = match body {
            Some(body) => builder
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body))),
            None => builder.body(Full::new(Bytes::new())),
        }
        .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

/// The JSON body of request `i` to `target`.
fn request_body(target: Target, i: usize) -> Vec<u8> {
    let prompt = format!("bench request {i}, a lighthouse at dusk");
    let body = match target {
        Target::SimDirect => json!({"prompt": prompt, "model": "gpt-image-2", "numImages": 1}),
        Target::Ours => json!({
            "model": "koala/gpt-image-2",
            "prompt": prompt,
            "n": 1,
            "size": "1024x1024",
            "response_format": "url",
        }),
        Target::FakeDirect => json!({
            "model": "dall-e-2",
            "prompt": prompt,
            "n": 1,
            "size": "1024x1024",
            "response_format": "url",
        }),
        Target::LiteLlm => json!({
            "model": LITELLM_MODEL,
            "prompt": prompt,
            "n": 1,
            "size": "1024x1024",
            "response_format": "url",
        }),
    };
    body.to_string().into_bytes()
}

/// One request to `endpoint` (for the simulator direct, the POST and the image GET);
/// whether it succeeded.
async fn one_request(connection: &mut Connection, endpoint: &Endpoint, i: usize) -> bool {
    let auth = endpoint.auth.as_deref();
    let path = match endpoint.target {
        Target::SimDirect => "/api/image-generation/",
        _ => "/v1/images/generations",
    };
    let body = request_body(endpoint.target, i);
    let Ok(Ok((status, answer))) = tokio::time::timeout(
        REQUEST_TIMEOUT,
        connection.send(Method::POST, path, auth, Some(body)),
    )
    .await
    else {
        return false;
    };
    if status != StatusCode::OK {
        return false;
    }
    if endpoint.target != Target::SimDirect {
        return true;
    }
    // Koala answers `[{"url", "alt"}]`: fetch each image, as the gateway does.
    let Ok(Value::Array(images)) = serde_json::from_slice::<Value>(&answer) else {
        return false;
    };
    for image in images {
        let Some(path) = image
            .get("url")
            .and_then(Value::as_str)
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| u.path().to_owned())
        else {
            return false;
        };
        let got = tokio::time::timeout(
            REQUEST_TIMEOUT,
            connection.send(Method::GET, &path, None, None),
        )
        .await;
        if !matches!(got, Ok(Ok((StatusCode::OK, ref bytes))) if !bytes.is_empty()) {
            return false;
        }
    }
    true
}

/// A worker's connection, opened again after a failure.
async fn reconnect(
    connection: &mut Option<Connection>,
    addr: SocketAddr,
) -> Option<&mut Connection> {
    if connection.is_none() {
        *connection = Connection::open(addr).await.ok();
    }
    connection.as_mut()
}

/// `concurrency` connections, each sending its next request as soon as the last is
/// answered, for `seconds`.
async fn closed_loop(
    endpoint: &Endpoint,
    concurrency: usize,
    seconds: f64,
    ticks: f64,
) -> Result<ClosedRun, String> {
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        connections.push(Connection::open(endpoint.addr).await?);
    }
    let cpu_before = endpoint.pid.map(|pid| tree_cpu_seconds(pid, ticks));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let mut workers = Vec::with_capacity(concurrency);
    for connection in connections {
        let endpoint = endpoint.clone();
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut connection = Some(connection);
            let (mut done, mut failed) = (0usize, 0usize);
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let ok = match reconnect(&mut connection, endpoint.addr).await {
                    Some(c) => one_request(c, &endpoint, i).await,
                    None => false,
                };
                done += 1;
                if !ok {
                    failed += 1;
                    connection = None;
                }
            }
            (done, failed)
        }));
    }
    let (mut requests, mut failed) = (0, 0);
    for worker in workers {
        let (d, f) = worker.await.map_err(|e| e.to_string())?;
        requests += d;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let gateway_cpu = endpoint
        .pid
        .zip(cpu_before)
        .map(|(pid, before)| tree_cpu_seconds(pid, ticks) - before);
    Ok(ClosedRun {
        target: endpoint.target,
        requests,
        failed,
        seconds: elapsed,
        gateway_cpu,
    })
}

/// `rate` requests a second for `seconds`, on a fixed timetable kept by a thread of its
/// own; each request's latency is measured from when it was due.
async fn open_loop(
    endpoint: &Endpoint,
    rate: u32,
    seconds: f64,
    ticks: f64,
) -> Result<OpenRun, String> {
    let total = (f64::from(rate) * seconds).round() as usize;
    let mut connections = Vec::with_capacity(OPEN_CONNECTIONS);
    for _ in 0..OPEN_CONNECTIONS {
        connections.push(Connection::open(endpoint.addr).await?);
    }
    let (due_tx, due_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let due_rx = Arc::new(Mutex::new(due_rx));
    // Each answer as it comes: a run cut short at the drain limit keeps what it measured.
    let answered = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(OPEN_CONNECTIONS);
    for connection in connections {
        let endpoint = endpoint.clone();
        let due_rx = Arc::clone(&due_rx);
        let (answered, failures) = (Arc::clone(&answered), Arc::clone(&failures));
        workers.push(tokio::spawn(async move {
            let mut connection = Some(connection);
            loop {
                let next = due_rx.lock().await.recv().await;
                let Some((i, due)) = next else { break };
                let ok = match reconnect(&mut connection, endpoint.addr).await {
                    Some(c) => one_request(c, &endpoint, i).await,
                    None => false,
                };
                if ok {
                    let latency = due.elapsed().as_secs_f64() * 1e3;
                    answered
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(latency);
                } else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    connection = None;
                }
            }
        }));
    }
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let cpu_before = endpoint.pid.map(|pid| tree_cpu_seconds(pid, ticks));
    let start = Instant::now() + Duration::from_millis(20);
    // The timetable: a plain thread sleeping to each due time (finer than Tokio's 1 ms
    // timer wheel); a late wake-up only delays the send, and the latency still counts
    // from the due time.
    let timetable = std::thread::spawn(move || {
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if due_tx.send((i, due)).is_err() {
                break;
            }
        }
    });
    let last_due = start + interval.mul_f64(total as f64);
    let drain_deadline = tokio::time::Instant::from_std(last_due + DRAIN_LIMIT);
    for mut worker in workers {
        match tokio::time::timeout_at(drain_deadline, &mut worker).await {
            Ok(joined) => joined.map_err(|e| e.to_string())?,
            // Past the drain limit: what is still queued or in flight is unanswered.
            Err(_) => worker.abort(),
        }
    }
    let gateway_cores = endpoint.pid.zip(cpu_before).map(|(pid, before)| {
        (tree_cpu_seconds(pid, ticks) - before) / start.elapsed().as_secs_f64().max(1e-9)
    });
    let _ = tokio::task::spawn_blocking(move || timetable.join()).await;
    let latencies = std::mem::take(
        &mut *answered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    let unanswered = total.saturating_sub(latencies.len() + failed);
    Ok(OpenRun {
        target: endpoint.target,
        rate,
        requests: total,
        failed,
        unanswered,
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
        max_ms: quantile(&latencies, 1.0),
        gateway_cores,
    })
}

// ---------------------------------------------------------------------------------------
// The report.

/// The benchmark's tables and verdicts.
pub(crate) fn table(r: &GatewayResult) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "### 6. Gateway against LiteLLM (`imagegen serve` and LiteLLM's proxy, each in front of a local upstream)\n"
    );
    match &r.litellm {
        Ok(version) => {
            let _ = writeln!(t, "LiteLLM {version}, one worker, no database.\n");
        }
        Err(reason) => {
            let _ = writeln!(t, "LiteLLM not measured: {reason}.\n");
        }
    }
    let _ = writeln!(
        t,
        "**Open loop** ({:.0} s per run, latency from each request's scheduled send time):\n",
        r.open_seconds
    );
    let _ = writeln!(
        t,
        "| target | rate /s | requests | failed | p50 ms | p99 ms | max ms | added p50 ms | added p99 ms | gateway CPU (cores) |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in &r.open {
        let (added50, added99) = match r.baseline(run) {
            Some(base) => (
                format!("{:.2}", run.p50_ms - base.p50_ms),
                format!("**{:.2}**", run.p99_ms - base.p99_ms),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        let failed = if run.unanswered > 0 {
            format!("{} (+{} unanswered)", run.failed, run.unanswered)
        } else {
            run.failed.to_string()
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {} | {} | {} |",
            run.target.label(),
            run.rate,
            run.requests,
            failed,
            run.p50_ms,
            run.p99_ms,
            run.max_ms,
            added50,
            added99,
            run.gateway_cores
                .map_or("–".to_owned(), |c| format!("{c:.2}")),
        );
    }
    let _ = writeln!(
        t,
        "\n**Closed loop** ({CONCURRENCY} connections, {:.0} s per run):\n",
        r.closed_seconds
    );
    let _ = writeln!(
        t,
        "| target | requests | failed | requests/s | gateway CPU s | requests per gateway CPU second |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
    for run in &r.closed {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.0} | {} | {} |",
            run.target.label(),
            run.requests,
            run.failed,
            run.per_second(),
            run.gateway_cpu
                .map_or("–".to_owned(), |c| format!("{c:.2}")),
            run.per_cpu_second()
                .map_or("–".to_owned(), |c| format!("**{c:.0}**")),
        );
    }
    t.push('\n');
    t.push_str(&verdicts(r));
    t
}

fn verdicts(r: &GatewayResult) -> String {
    let mark = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut v = String::new();
    match (r.open(Target::Ours, RATE), r.open(Target::SimDirect, RATE)) {
        (Some(ours), Some(base)) => {
            let added = ours.p99_ms - base.p99_ms;
            let clean = ours.failed == 0 && ours.unanswered == 0;
            let _ = writeln!(
                v,
                "- Goal: p99 added ≤ {GOAL_ADDED_P99_MS} ms at {RATE} requests/s: {} ({added:.2} ms added at p99, {:.2} ms at p50{}).",
                mark(added <= GOAL_ADDED_P99_MS && clean),
                ours.p50_ms - base.p50_ms,
                if clean { "" } else { "; some requests failed" },
            );
        }
        _ => {
            let _ = writeln!(v, "- Goal: p99 added: not measured.");
        }
    }
    if let Some(ours) = r
        .open
        .iter()
        .find(|o| o.target == Target::Ours && o.rate != RATE)
        && let Some(base) = r.baseline(ours)
    {
        let _ = writeln!(
            v,
            "- `imagegen serve` cannot sustain {RATE} requests/s here (its closed-loop maximum is below {:.0}); at {} requests/s, half that maximum, it adds {:.2} ms at p50 and {:.2} ms at p99.",
            1.5 * f64::from(RATE),
            ours.rate,
            ours.p50_ms - base.p50_ms,
            ours.p99_ms - base.p99_ms,
        );
    }
    if let Some(lite) = r.open.iter().find(|o| o.target == Target::LiteLlm)
        && lite.rate != RATE
    {
        let _ = writeln!(
            v,
            "- LiteLLM cannot sustain {RATE} requests/s here (its closed-loop maximum is below {:.0}): its open-loop figures are at {} requests/s, half that maximum, against its upstream at the same rate.",
            1.5 * f64::from(RATE),
            lite.rate
        );
    }
    let ours = r.closed(Target::Ours);
    let lite = r.closed(Target::LiteLlm);
    match (
        ours.and_then(ClosedRun::per_cpu_second),
        lite.and_then(ClosedRun::per_cpu_second),
    ) {
        (Some(o), Some(l)) => {
            let ratio = o / l.max(1e-9);
            let raw = ours.map_or(0.0, ClosedRun::per_second)
                / lite.map_or(1.0, ClosedRun::per_second).max(1e-9);
            let _ = writeln!(
                v,
                "- Goal: at least {GOAL_PER_CORE_RATIO:.0}× LiteLLM's requests per second per core: {} (×{ratio:.1}: {o:.0} against {l:.0} requests per CPU second; raw requests/s ×{raw:.1}).",
                mark(ratio >= GOAL_PER_CORE_RATIO),
            );
        }
        _ => {
            let _ = writeln!(
                v,
                "- Goal: requests per core against LiteLLM: not measured."
            );
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_litellm_can_sustain() {
        assert_eq!(sustainable_rate(5_000.0), RATE);
        assert_eq!(sustainable_rate(1_499.0), 740);
        assert_eq!(sustainable_rate(385.0), 190);
        assert_eq!(sustainable_rate(3.0), 10);
    }

    #[test]
    fn proc_stat_of_this_process() {
        if cfg!(target_os = "linux") {
            let (ppid, _) = stat_of(std::process::id()).unwrap_or_default();
            assert!(ppid > 0);
            assert!(tree_cpu_seconds(std::process::id(), clock_ticks()) >= 0.0);
        }
    }

    #[test]
    fn tails_on_char_boundaries() {
        assert_eq!(tail("abc", 2), "bc");
        assert_eq!(tail("é", 1), "");
        assert_eq!(tail("ab", 10), "ab");
    }
}

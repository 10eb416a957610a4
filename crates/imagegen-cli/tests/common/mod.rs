//! Helpers shared by the CLI's integration tests: a simulator on its own runtime, the
//! `imagegen` binary pointed at it (or at nothing), and a finished run's output.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use imagegen::sim::{ImageSize, Route, SimConfig, SimHandle};
use serde_json::Value;

/// A simulator running on its own runtime for the whole test.
pub struct Sim {
    handle: Option<SimHandle>,
    _runtime: tokio::runtime::Runtime,
}

impl Sim {
    pub fn start(config: SimConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.block_on(imagegen::sim::start(config)).unwrap();
        Self {
            handle: Some(handle),
            _runtime: runtime,
        }
    }

    pub fn instant() -> Self {
        Self::start(
            SimConfig::default()
                .with_speed(0.0)
                .with_image_size(ImageSize::MaxSide(64)),
        )
    }

    pub fn sim(&self) -> &SimHandle {
        self.handle.as_ref().unwrap()
    }

    pub fn keys(&self) -> [String; 2] {
        [
            self.sim().kolbo_api_key().to_owned(),
            self.sim().koala_api_key().to_owned(),
        ]
    }

    pub fn posts(&self) -> usize {
        self.sim().request_log().count(Route::KolboGenerate)
            + self.sim().request_log().count(Route::KoalaGenerate)
    }

    /// The CLI in `dir`, pointed at this simulator with both keys.
    pub fn cmd(&self, dir: &Path) -> Command {
        let mut cmd = bare_cmd(dir);
        cmd.env("KOLBO_API_KEY", self.sim().kolbo_api_key())
            .env("KOALA_API_KEY", self.sim().koala_api_key())
            .env("KOLBO_BASE_URL", self.sim().kolbo_base_url())
            .env("KOALA_BASE_URL", self.sim().koala_base_url())
            .env("IMAGEGEN_POLL_INTERVAL_MS", "50");
        cmd
    }
}

impl Sim {
    /// The CLI in `dir`, pointed at this simulator, as a plain process with piped output
    /// and no terminal: for tests that read its output as it comes, or send it signals.
    pub fn streaming_cmd(&self, dir: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("imagegen"));
        cmd.current_dir(dir).env("NO_COLOR", "1");
        for var in VARS {
            cmd.env_remove(var);
        }
        cmd.env("XDG_DATA_HOME", data_home(dir));
        cmd.env("KOLBO_API_KEY", self.sim().kolbo_api_key())
            .env("KOALA_API_KEY", self.sim().koala_api_key())
            .env("KOLBO_BASE_URL", self.sim().kolbo_base_url())
            .env("KOALA_BASE_URL", self.sim().koala_base_url())
            .env("IMAGEGEN_POLL_INTERVAL_MS", "50")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        drop(self.handle.take());
    }
}

pub const VARS: [&str; 10] = [
    "IMAGEGEN_DATABASE_URL",
    "KOLBO_API_KEY",
    "KOALA_API_KEY",
    "KOLBO_BASE_URL",
    "KOALA_BASE_URL",
    "KOALA_PLAN",
    "KOLBO_CREDIT_USD",
    "KOALA_CREDIT_USD",
    "IMAGEGEN_POLL_INTERVAL_MS",
    "RUST_LOG",
];

/// Where the CLI run in `dir` keeps its default ledger (`XDG_DATA_HOME`).
pub fn data_home(dir: &Path) -> std::path::PathBuf {
    dir.join(".data")
}

/// The ledger file the CLI run in `dir` uses by default.
pub fn ledger_path(dir: &Path) -> std::path::PathBuf {
    data_home(dir).join("imagegen").join("ledger.sqlite3")
}

/// The CLI in `dir` with none of imagegen's variables set.
pub fn bare_cmd(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("imagegen").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1");
    for var in VARS {
        cmd.env_remove(var);
    }
    // The ledger's default place is inside the test's own directory.
    cmd.env("XDG_DATA_HOME", data_home(dir));
    cmd.timeout(Duration::from_secs(60));
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", self.stdout))
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let output = cmd.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The output of a plain process run to its end.
pub fn run_streaming(cmd: &mut std::process::Command) -> Run {
    let output = cmd.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `f` on the ledger the CLI run in `dir` used by default; `None` when it has none yet.
fn with_ledger<T>(
    dir: &Path,
    f: impl AsyncFnOnce(&dyn imagegen::ledger::Ledger) -> T,
) -> Option<T> {
    let path = ledger_path(dir);
    if !path.exists() {
        return None;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ledger = imagegen::ledger::open(&path.display().to_string())
            .await
            .unwrap();
        let value = f(ledger.as_ref()).await;
        ledger.close().await;
        Some(value)
    })
}

/// Every job the default ledger of `dir` records, newest first.
pub fn ledger_history(dir: &Path) -> Vec<imagegen::ledger::HistoryEntry> {
    with_ledger(dir, async |ledger| {
        ledger
            .history(&imagegen::ledger::HistoryQuery::newest(10_000))
            .await
            .unwrap()
    })
    .unwrap_or_default()
}

/// The jobs the default ledger of `dir` holds open.
pub fn ledger_open_jobs(dir: &Path) -> Vec<imagegen::ledger::JobRecord> {
    with_ledger(dir, async |ledger| ledger.open_jobs().await.unwrap()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Several `imagegen serve` processes on one PostgreSQL ledger (tests/instances.rs).

/// A fresh database on the throwaway PostgreSQL server (`imagegen_ledger::testing`); the
/// test fails, saying how to install PostgreSQL, when there is none.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

impl PgDatabase {
    pub async fn fresh() -> Self {
        let (url, name) = imagegen_ledger::testing::fresh_database().await;
        Self { url, name }
    }

    /// Opens the ledger on it, as a gateway does.
    pub async fn open(&self) -> std::sync::Arc<dyn imagegen_ledger::Ledger> {
        imagegen_ledger::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("could not open the test ledger: {e:?}"))
    }

    /// Drops it (cutting the connections of any gateway still running).
    pub async fn drop_database(self) {
        imagegen_ledger::testing::drop_database(&self.name).await;
    }
}

/// Creates a gateway key on the ledger at `db` (`imagegen --db URL keys create …`); returns
/// the key.
pub fn create_gateway_key(home: &Path, db: &str, name: &str, budget: &str) -> String {
    let created = run(bare_cmd(home).args([
        "--db", db, "keys", "create", "--name", name, "--budget", budget, "--period", "total",
    ]));
    assert_eq!(created.code, 0, "keys create failed: {}", created.stderr);
    let key = created.stdout.trim().to_owned();
    assert!(key.starts_with("igk_"), "not a key: {key:?}");
    key
}

/// One `imagegen serve` process, killed (SIGKILL) when dropped.
pub struct Gateway {
    child: Option<std::process::Child>,
    /// `http://127.0.0.1:PORT`, from its first stdout line.
    pub url: String,
    stderr: std::path::PathBuf,
}

/// How to start gateways: the simulator they talk to, the ledger, the image folder they
/// share, and a folder of their own for `XDG_DATA_HOME` and their stderr.
pub struct GatewaySetup<'a> {
    pub sim: &'a imagegen_sim::SimHandle,
    pub db: &'a str,
    pub image_dir: &'a Path,
    pub home: &'a Path,
}

impl GatewaySetup<'_> {
    /// Starts `n` gateways with `extra` arguments and waits (30 s at most) until each
    /// prints `listening on http://…`.
    pub fn start(&self, n: usize, extra: &[&str]) -> Vec<Gateway> {
        let mut starting = Vec::new();
        for i in 0..n {
            let stderr = self.home.join(format!("gateway-{i}.stderr"));
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("imagegen"));
            cmd.current_dir(self.home).env("NO_COLOR", "1");
            for var in VARS {
                cmd.env_remove(var);
            }
            let child = cmd
                .env("XDG_DATA_HOME", data_home(self.home))
                .env("KOLBO_API_KEY", self.sim.kolbo_api_key())
                .env("KOALA_API_KEY", self.sim.koala_api_key())
                .env("KOLBO_BASE_URL", self.sim.kolbo_base_url())
                .env("KOALA_BASE_URL", self.sim.koala_base_url())
                .env("IMAGEGEN_POLL_INTERVAL_MS", "50")
                .args([
                    "--db",
                    self.db,
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--image-dir",
                ])
                .arg(self.image_dir)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&stderr).unwrap())
                .spawn()
                .unwrap();
            starting.push((child, stderr));
        }
        let started = || {
            starting
                .into_iter()
                .map(|(mut child, stderr)| {
                    let url = first_line(&mut child, &stderr)
                        .strip_prefix("listening on ")
                        .map(str::to_owned);
                    let gateway = Gateway {
                        child: Some(child),
                        url: url.clone().unwrap_or_default(),
                        stderr,
                    };
                    assert!(
                        url.is_some_and(|u| u.starts_with("http://127.0.0.1:")),
                        "the gateway's first line is not `listening on http://…`; stderr:\n{}",
                        gateway.stderr()
                    );
                    gateway
                })
                .collect()
        };
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(started),
            Err(_) => started(),
        }
    }
}

/// The first stdout line of `child` (30 s at most); the rest is drained by a thread.
fn first_line(child: &mut std::process::Child, stderr: &Path) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tell, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tell.send(lines.next().and_then(Result::ok).unwrap_or_default());
        for _ in lines.by_ref() {}
    });
    heard
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "the gateway printed nothing in 30 s; stderr:\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            )
        })
}

impl Gateway {
    /// Kills it with SIGKILL (no shutdown, nothing flushed) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A JSON answer from a gateway.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// POSTs `body` to `url`, with `key` as bearer when given.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> Answer {
    let mut request = http.post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// GETs `url` as JSON, with `key` as bearer when given.
pub async fn get_json(http: &reqwest::Client, url: &str, key: Option<&str>) -> Answer {
    let mut request = http.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// The price per image of `model` (`provider/model`) as `GET /v1/models` lists it.
pub async fn credits_per_image(
    http: &reqwest::Client,
    gateway: &str,
    key: Option<&str>,
    model: &str,
) -> f64 {
    let models = get_json(http, &format!("{gateway}/v1/models"), key).await;
    assert_eq!(models.status, 200, "{:?}", models.body);
    models.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == model)
        .unwrap_or_else(|| panic!("{model} is not in /v1/models: {}", models.body))["imagegen"]
        ["credits_per_image"]
        .as_f64()
        .unwrap()
}

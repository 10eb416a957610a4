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

//! Test support, not for production use: a throwaway PostgreSQL server and fresh databases
//! on it, for the tests of this crate and of the crates built on it (the gateway's
//! multi-instance tests, the benchmarks). Enabled by the `testing` feature.
//!
//! The server is the one [`URL_ENV`] (`IMAGEGEN_TEST_POSTGRES_URL`) names, or else one this
//! process starts on loopback from the installed binaries (`initdb` and `postgres`, found
//! on `PATH` or in `/usr/lib/postgresql/*/bin`; as root they run as the `postgres` user).
//! That server lives in a temporary folder and stops, and the folder is removed, when this
//! process exits. Without either, [`fresh_database`] panics saying how to install one:
//! tests that need PostgreSQL fail rather than skip.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (url, name) = imagegen_ledger::testing::fresh_database().await;
//! let ledger = imagegen_ledger::open(&url).await.expect("a fresh database opens");
//! // ...
//! ledger.close().await;
//! imagegen_ledger::testing::drop_database(&name).await;
//! # }
//! ```
//!
//! Its functions panic on failure (they are for tests).
#![allow(clippy::expect_used)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// The environment variable naming an existing server (a URL to a database the tests may
/// create databases from, such as `postgres://postgres@127.0.0.1:5432/postgres`).
pub const URL_ENV: &str = "IMAGEGEN_TEST_POSTGRES_URL";

const INSTALL_HINT: &str = "the PostgreSQL tests need a PostgreSQL server: install one \
     with `apt-get install -y postgresql` (its initdb and postgres binaries, found on PATH \
     or in /usr/lib/postgresql/*/bin, start a throwaway server), or set \
     IMAGEGEN_TEST_POSTGRES_URL to a server's URL";

/// A server this process started.
struct Server {
    admin_url: String,
    log: PathBuf,
    /// Holding the write end of its shell's stdin: when this process exits, the pipe
    /// closes, and the shell stops the server and removes its folder.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// A URL to a server's maintenance database, and its log when this process started it.
fn admin() -> (String, Option<PathBuf>) {
    if let Ok(url) = std::env::var(URL_ENV)
        && !url.trim().is_empty()
    {
        return (url, None);
    }
    match SERVER.get_or_init(start) {
        Ok(server) => (server.admin_url.clone(), Some(server.log.clone())),
        Err(message) => panic!("{message}"),
    }
}

/// A fresh, empty database for one test: its URL and its name (for [`drop_database`]).
///
/// # Panics
///
/// When there is no PostgreSQL server (the message says how to install one) or the
/// database cannot be made.
pub async fn fresh_database() -> (String, String) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (admin_url, log) = admin();
    let mut conn = connect_when_ready(&admin_url, log.as_deref()).await;
    let salt = RandomState::new().hash_one(std::process::id()) % 1_000_000;
    let name = format!(
        "imagegen_ledger_test_{}_{}_{salt}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("could not create a test database: {e}"));
    conn.close().await.ok();
    let mut url = url::Url::parse(&admin_url).expect("a PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

/// Drops a database made by [`fresh_database`] (its connections are cut).
///
/// # Panics
///
/// When the server cannot be reached or the database cannot be dropped.
pub async fn drop_database(name: &str) {
    let (admin_url, log) = admin();
    let mut conn = connect_when_ready(&admin_url, log.as_deref()).await;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("could not drop test database {name}: {e}"));
    conn.close().await.ok();
}

async fn connect_when_ready(url: &str, log: Option<&Path>) -> sqlx::PgConnection {
    let started = Instant::now();
    loop {
        match sqlx::PgConnection::connect(url).await {
            Ok(conn) => return conn,
            Err(error) if started.elapsed() < Duration::from_secs(30) && log.is_some() => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => {
                let log = log
                    .and_then(|log| std::fs::read_to_string(log).ok())
                    .unwrap_or_default();
                panic!(
                    "could not connect to the test PostgreSQL server {}: {error}\n{log}",
                    crate::redact_url(url)
                );
            }
        }
    }
}

/// Finds the server binaries, makes a cluster in a temporary folder and starts it on a
/// free loopback port, with its socket in that folder.
fn start() -> Result<Server, String> {
    let bin = find_bin_dir().ok_or_else(|| INSTALL_HINT.to_owned())?;
    let root = is_root();
    if root && !user_exists("postgres") {
        return Err(format!(
            "running as root, where initdb refuses to run, and there is no `postgres` user to run it as; {INSTALL_HINT}"
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("imagegen-ledger-pg-")
        .tempdir()
        .map_err(|e| format!("could not make a folder for PostgreSQL: {e}"))?
        .keep();
    if root {
        run(Command::new("chown").arg("postgres:").arg(&dir))?;
    }
    let data = dir.join("data");
    let as_server_user = |program: &Path| {
        if root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    };
    run(as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?
        .port();
    let log = dir.join("postgres.log");
    // The shell runs the server in the background and waits for its stdin to close (this
    // process exiting), then stops it and removes the folder.
    let script = r#""$1" -D "$2" -p "$3" -k "$4" -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >"$4/postgres.log" 2>&1 &
pid=$!
cat >/dev/null
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$4""#;
    let mut child = as_server_user(Path::new("sh"))
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(bin.join("postgres"))
        .arg(&data)
        .arg(port.to_string())
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start PostgreSQL: {e}"))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or("no stdin for the server's shell")?;
    stdin.flush().ok();
    Ok(Server {
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        log,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    })
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("could not run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The folder holding `initdb` and `postgres`: from PATH (following symlinks), else the
/// newest `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let from_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter_map(|dir| std::fs::canonicalize(dir.join("initdb")).ok())
            .filter_map(|initdb| initdb.parent().map(Path::to_path_buf))
            .find(|dir| complete(dir))
    });
    from_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .filter(|(_, dir)| complete(dir))
            .collect();
        versions.sort();
        versions.pop().map(|(_, dir)| dir)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

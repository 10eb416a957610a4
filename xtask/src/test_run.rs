//! `cargo xtask test`: the README's test command. Makes sure what the tests need is on
//! the machine (PostgreSQL's server programs, for the ledger's tests, which start a
//! throwaway server on loopback), then runs `cargo test --workspace`.
//!
//! PostgreSQL comes from Debian's packages (`apt-get install postgresql`) when it is
//! missing and this runs as root; otherwise the task says what to install and fails. It
//! never skips a test: a ledger suite that cannot reach PostgreSQL fails.

use std::path::Path;
use std::process::Command;

/// Where Debian installs PostgreSQL's server programs.
const POSTGRES_BIN_GLOB_ROOT: &str = "/usr/lib/postgresql";

/// Runs the workspace's tests with `args` passed on to `cargo test`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    ensure_postgres()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["test", "--workspace"])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}

/// Whether PostgreSQL's `postgres` server program is installed where Debian puts it, or
/// on the `PATH`.
fn postgres_installed() -> bool {
    let debian = std::fs::read_dir(POSTGRES_BIN_GLOB_ROOT)
        .map(|versions| {
            versions
                .flatten()
                .any(|v| v.path().join("bin").join("postgres").is_file())
        })
        .unwrap_or(false);
    debian
        || std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join("postgres").is_file())
        })
}

fn ensure_postgres() -> Result<(), String> {
    if std::env::var_os("IMAGEGEN_TEST_POSTGRES_URL").is_some() || postgres_installed() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root || !Path::new("/usr/bin/apt-get").exists() {
        return Err(
            "the ledger's tests need PostgreSQL's server programs: install them (Debian: `apt-get install postgresql`), or set IMAGEGEN_TEST_POSTGRES_URL to a server to use"
                .into(),
        );
    }
    println!("xtask: installing PostgreSQL for the ledger's tests (apt-get install postgresql)");
    for args in [
        &["update", "-qq"][..],
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "postgresql",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("apt-get {} failed ({status})", args.join(" ")));
        }
    }
    if postgres_installed() {
        Ok(())
    } else {
        Err("PostgreSQL was installed but its `postgres` program cannot be found".into())
    }
}

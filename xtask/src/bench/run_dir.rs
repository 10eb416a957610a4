//! The folder a benchmark run's gateways write to (`target/bench-runs/<name>-<time>-<pid>`:
//! benchmark 6, and benchmark 5's throughput runs), kept after the run; each run removes the
//! folders of runs over an hour old, after it has measured.
//!
//! Why not a temporary folder removed at the run's end: the removal slowed the next run.
//! On this machine's ext4 (no journal), allocating an inode skips, one at a time, every
//! inode of the block group freed in the last few minutes (the kernel's
//! `find_inode_bit` → `recently_deleted`). A gateway run writes one file per image, and in
//! a run that began minutes after another's thousands of images were removed, that scan
//! took 23 % of the gateway's CPU (`perf record`); the gateway was measuring the
//! benchmark's own clean-up. Removing folders only once they are an hour old, after
//! measuring, keeps that out of back-to-back runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Folders of earlier runs older than this are removed.
const KEEP_FOR: Duration = Duration::from_secs(3600);

/// Where run folders go: `target/bench-runs`.
fn parent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-runs")
}

/// Creates a new, empty folder for this run of `name`, started at `now`.
pub(crate) fn create(name: &str, now: SystemTime) -> Result<PathBuf, String> {
    create_in(&parent(), name, now)
}

/// Removes the run folders (other than `current`) last changed over an hour ago.
/// Failures are reported, not fatal: the figures are taken by then.
pub(crate) fn remove_old(current: &Path, now: SystemTime) {
    remove_old_in(&parent(), current, now, KEEP_FOR);
}

fn create_in(parent: &Path, name: &str, now: SystemTime) -> Result<PathBuf, String> {
    let since_epoch = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let dir = parent.join(format!("{name}-{since_epoch}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn remove_old_in(parent: &Path, current: &Path, now: SystemTime, keep_for: Duration) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|changed| now.duration_since(changed).ok())
            .is_some_and(|age| age > keep_for);
        if old
            && path != current
            && path.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&path)
        {
            eprintln!("bench: cannot remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_of_runs_older_than_the_limit_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let old = create_in(parent.path(), "gateway", now).unwrap();
        std::fs::write(old.join("ledger.sqlite3"), b"x").unwrap();
        let an_hour_ago = now - Duration::from_secs(3700);
        std::fs::File::open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let recent = parent.path().join("gateway-1-1");
        std::fs::create_dir(&recent).unwrap();
        std::fs::File::open(&recent)
            .unwrap()
            .set_modified(now - Duration::from_secs(60))
            .unwrap();
        let current = parent.path().join("gateway-2-2");
        std::fs::create_dir(&current).unwrap();
        std::fs::File::open(&current)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        remove_old_in(parent.path(), &current, now, KEEP_FOR);
        assert!(!old.exists(), "an old run's folder goes, with its files");
        assert!(recent.is_dir(), "a recent run's folder stays");
        assert!(
            current.is_dir(),
            "this run's folder stays, whatever its age"
        );
    }
}

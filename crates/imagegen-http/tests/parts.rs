//! Temporary `.part` files: one per image, locked while held, and swept once abandoned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use common::png_bytes;
use imagegen_core::ManualClock;
use imagegen_http::download::STALE_PART_AGE;
use imagegen_http::{ImageDownloader, sweep_stale_parts};
use url::Url;

/// Long ago, as a modification time.
fn long_ago() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000)
}

/// Creates `path` (empty) last modified long ago.
fn old_file(path: &Path) {
    let file = File::create(path).unwrap();
    file.set_modified(long_ago()).unwrap();
}

fn set_old(path: &Path) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(long_ago())
        .unwrap();
}

/// Locks `file` as another process would (a separate open file description conflicts
/// even within one process).
// std's file locks are stable since Rust 1.89.
fn lock(file: &File) {
    file.try_lock().unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_sweep_removes_an_abandoned_part_and_keeps_a_locked_or_newborn_one() {
    assert_eq!(STALE_PART_AGE, Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    old_file(&d.join(".imagegen-abandoned.part"));
    old_file(&d.join(".imagegen-download-older.part"));
    old_file(&d.join(".imagegen-locked.part"));
    let holder = File::open(d.join(".imagegen-locked.part")).unwrap();
    lock(&holder);
    // A part is locked from birth: an unlocked one is abandoned, however fresh.
    File::create(d.join(".imagegen-fresh.part")).unwrap();
    // Created a moment ago under its newborn name: possibly between creation and lock.
    File::create(d.join(".imagegen-new-born.tmp")).unwrap();
    old_file(&d.join(".imagegen-new-orphan.tmp"));
    // Not part files, or not in this directory.
    old_file(&d.join("fox-1.png"));
    old_file(&d.join("imagegen-x.part"));
    std::fs::create_dir(d.join(".imagegen-dir.part")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    old_file(&d.join("sub/.imagegen-nested.part"));

    let mut removed = sweep_stale_parts(d).unwrap();
    removed.sort();
    assert_eq!(
        removed,
        [
            d.join(".imagegen-abandoned.part"),
            d.join(".imagegen-download-older.part"),
            d.join(".imagegen-fresh.part"),
            d.join(".imagegen-new-orphan.tmp"),
        ]
    );
    assert_eq!(
        names(d),
        [
            ".imagegen-dir.part",
            ".imagegen-locked.part",
            ".imagegen-new-born.tmp",
            "fox-1.png",
            "imagegen-x.part",
            "sub"
        ]
    );
    assert!(d.join("sub/.imagegen-nested.part").exists());

    // Once its holder is gone, the locked one goes too.
    drop(holder);
    assert_eq!(
        sweep_stale_parts(d).unwrap(),
        [d.join(".imagegen-locked.part")]
    );
    assert!(sweep_stale_parts(d).unwrap().is_empty());
    assert!(sweep_stale_parts(&d.join("missing")).is_err());
}

#[tokio::test]
async fn a_downloaded_part_is_one_locked_file_that_moves_without_replacing() {
    let mut server = mockito::Server::new_async().await;
    let _image = server
        .mock("GET", "/a.png")
        .with_body(png_bytes())
        .create_async()
        .await;
    let url = Url::parse(&format!("{}/a.png", server.url())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let downloader = ImageDownloader::builder()
        .clock(ManualClock::new().shared())
        .build()
        .unwrap();
    let (part, image) = downloader.download_to_part(&url, d).await.unwrap();
    assert_eq!(image.path, None);
    assert_eq!(part.path().parent(), Some(d));
    let name = part
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        name.starts_with(".imagegen-") && name.ends_with(".part"),
        "{name}"
    );
    assert_eq!(names(d), [name], "one temporary file per image");
    assert_eq!(std::fs::read(part.path()).unwrap(), png_bytes());

    // However old it looks, a sweep leaves a part this process holds alone.
    set_old(part.path());
    assert!(sweep_stale_parts(d).unwrap().is_empty());

    // Never onto an existing file; the part comes back, still held.
    let taken = d.join("fox-1.png");
    std::fs::write(&taken, b"an earlier image").unwrap();
    let err = part.persist_new(&taken).unwrap_err();
    assert_eq!(err.error.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(std::fs::read(&taken).unwrap(), b"an earlier image");
    let part = err.part;
    assert!(sweep_stale_parts(d).unwrap().is_empty());
    let target = d.join("fox-2.png");
    part.persist_new(&target).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), png_bytes());
    assert_eq!(names(d), ["fox-1.png", "fox-2.png"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o044, 0o044 & !umask(), "mode {mode:o}");
    }

    // A part dropped unpersisted is removed.
    let (part, _) = downloader.download_to_part(&url, d).await.unwrap();
    let path = part.path().to_path_buf();
    drop(part);
    assert!(!path.exists());
    assert_eq!(names(d), ["fox-1.png", "fox-2.png"]);
}

/// The process umask, read from /proc (0o022 when unreadable).
#[cfg(unix)]
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

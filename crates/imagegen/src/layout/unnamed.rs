//! A file written without a name, then linked into place: Linux's `O_TMPFILE`.
//!
//! [`write_new`] creates the file unnamed in the target's directory, writes and syncs it,
//! then gives it its name with `linkat`, which never replaces a file. Until the link, no
//! name exists: no reader sees a partial file, a crash leaves nothing behind to sweep, and
//! nothing needs a lock. It takes one directory change (the link) where a part file takes
//! three (its creation and two renames, see [`imagegen_http::PartFile`]) and an `flock`.
//!
//! Where `O_TMPFILE` is not available (another OS, a file system without it, no `/proc`),
//! [`write_new`] says so, having written nothing, and the caller uses a part file.

use std::io;
use std::path::Path;

/// What [`write_new`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WrittenNew {
    /// The file is at its name, synced.
    Written,
    /// A file already had the name; it was left as it is and nothing was linked.
    AlreadyThere,
    /// Unnamed files are not available here; nothing was written.
    Unsupported,
}

/// Writes `bytes` to a new file at `target` (in `dir`, mode 0644 less the umask), synced
/// before it gets its name; never replaces a file. Blocking.
#[cfg(target_os = "linux")]
pub(super) fn write_new(dir: &Path, target: &Path, bytes: &[u8]) -> io::Result<WrittenNew> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;

    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;

    // The unnamed file is reached through its descriptor's entry in /proc: linking it by
    // descriptor alone (`AT_EMPTY_PATH`) needs a capability a server rarely has. Without
    // /proc (checked once per process), nothing is written.
    static PROC_FDS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*PROC_FDS.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
        return Ok(WrittenNew::Unsupported);
    }
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(CWD, dir, flags, Mode::from_raw_mode(0o644)) {
        Ok(fd) => fd,
        // The file system has no unnamed files (EOPNOTSUPP), or the kernel predates them
        // (EISDIR, EINVAL).
        Err(e) if e == Errno::OPNOTSUPP || e == Errno::ISDIR || e == Errno::INVAL => {
            return Ok(WrittenNew::Unsupported);
        }
        Err(e) => return Err(e.into()),
    };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.sync_data()?;
    let by_descriptor = format!("/proc/self/fd/{}", file.as_raw_fd());
    match rustix::fs::linkat(
        CWD,
        by_descriptor.as_str(),
        CWD,
        target,
        AtFlags::SYMLINK_FOLLOW,
    ) {
        Ok(()) => Ok(WrittenNew::Written),
        Err(e) if e == Errno::EXIST => Ok(WrittenNew::AlreadyThere),
        Err(e) => Err(e.into()),
    }
}

/// Unnamed files are a Linux feature: elsewhere nothing is written.
#[cfg(not(target_os = "linux"))]
pub(super) fn write_new(_dir: &Path, _target: &Path, _bytes: &[u8]) -> io::Result<WrittenNew> {
    Ok(WrittenNew::Unsupported)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_appears_whole_under_its_name_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.gif");
        assert_eq!(
            write_new(dir.path(), &target, b"GIF89a one").unwrap(),
            WrittenNew::Written
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"GIF89a one");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.gif")]);
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.gif");
        std::fs::write(&target, b"first").unwrap();
        assert_eq!(
            write_new(dir.path(), &target, b"second").unwrap(),
            WrittenNew::AlreadyThere
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let error = write_new(&missing, &missing.join("a.gif"), b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}

//! Temporary `.part` files: one per image, locked while in use, swept when abandoned.
//!
//! A download to a file goes through a [`PartFile`] named `.imagegen-<random>.part` in the
//! target's directory (mode 0644, so the renamed image is an ordinary file), then is renamed
//! into place. The part is held under an exclusive OS advisory lock (`flock` on Unix,
//! `LockFileEx` on Windows) from right after its creation until the process is done with it
//! (renamed or removed); the lock belongs to the open file, so it survives the rename.
//!
//! A part is born locked: it is created as `.imagegen-new-<random>.tmp`, locked, and only
//! then renamed to its `.part` name, so a `.part` file nobody holds locked is abandoned,
//! whatever its age. A process that is killed cannot remove its part; [`sweep_stale_parts`]
//! does, at once: it removes every `.imagegen-*.part` of a directory that no live process
//! holds locked, and every `.imagegen-new-*.tmp` left in the instant between a creation and
//! its lock (unlocked, and older than [`STALE_PART_AGE`]).

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::NamedTempFile;

/// The name every part file starts with.
pub const PART_PREFIX: &str = ".imagegen-";
/// The name every part file ends with.
pub const PART_SUFFIX: &str = ".part";
/// How long an unlocked file being born (`.imagegen-new-*.tmp`, not yet locked and
/// renamed to its `.part` name) must have been left unmodified before
/// [`sweep_stale_parts`] removes it. A `.part` file needs no such wait: it is locked from
/// birth.
pub const STALE_PART_AGE: Duration = Duration::from_secs(60);

/// The name a part file has between its creation and its lock.
const NEWBORN_PREFIX: &str = ".imagegen-new-";
/// The suffix of a part file between its creation and its lock.
const NEWBORN_SUFFIX: &str = ".tmp";

/// A downloaded image in its temporary `.part` file (`.imagegen-<random>.part`, mode 0644),
/// from [`ImageDownloader::download_to_part`](super::ImageDownloader::download_to_part).
///
/// The file is held under an exclusive OS advisory lock (`flock` on Unix, `LockFileEx` on
/// Windows) from right after its creation until this value is gone, so
/// [`sweep_stale_parts`] in any process leaves it alone; the lock belongs to the open file
/// and survives the rename. Move it to its final name with [`PartFile::persist`] (replacing
/// whatever is there) or [`PartFile::persist_new`] (never replacing). Dropped without
/// either, the file is removed. Either way the lock goes only after the rename or the
/// removal.
#[derive(Debug)]
pub struct PartFile {
    /// The path (removed on drop unless persisted) before the open, locked file: fields
    /// drop in order, so an abandoned part is removed while still locked.
    inner: NamedTempFile<File>,
}

impl PartFile {
    /// Creates a new, empty part file in `dir`, born locked: created under a newborn
    /// name, locked, then renamed to its `.part` name. Blocking.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let mut part = imagegen_http::PartFile::create_in(dir.path())?;
    /// part.write_all_synced(b"GIF89a...")?;
    /// part.persist_new(&dir.path().join("a.gif")).map_err(|e| e.error)?;
    /// assert_eq!(std::fs::read(dir.path().join("a.gif"))?, b"GIF89a...");
    /// # Ok(()) }
    /// ```
    pub fn create_in(dir: &Path) -> io::Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(NEWBORN_PREFIX).suffix(NEWBORN_SUFFIX);
        // An image is an ordinary file: readable like any other the user creates (the
        // process umask still applies), not the private 0600 of a temporary file.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let newborn = builder.tempfile_in(dir)?;
        if let Err(e) = lock(newborn.as_file()) {
            // A file system without locks: a sweep cannot lock the part either, and skips
            // what it cannot lock.
            tracing::debug!(part = %newborn.path().display(), error = %e, "the part file cannot be locked");
        }
        let name = newborn
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(NEWBORN_PREFIX))
            .and_then(|n| n.strip_suffix(NEWBORN_SUFFIX))
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other("the temporary file has an unexpected name"))?;
        let part_path = dir.join(format!("{PART_PREFIX}{name}{PART_SUFFIX}"));
        // Renamed only once locked; dropped on failure, the newborn removes itself.
        let file = newborn.persist_noclobber(&part_path).map_err(|e| e.error)?;
        let path = tempfile::TempPath::try_from_path(&part_path).inspect_err(|_| {
            let _ = fs::remove_file(&part_path);
        })?;
        Ok(Self {
            inner: NamedTempFile::from_parts(file, path),
        })
    }

    /// Its pieces, to write the file through an async handle.
    pub(crate) fn into_parts(self) -> (File, tempfile::TempPath) {
        self.inner.into_parts()
    }

    /// Puts the pieces back together.
    pub(crate) fn from_parts(file: File, path: tempfile::TempPath) -> Self {
        Self {
            inner: NamedTempFile::from_parts(file, path),
        }
    }

    /// Writes `bytes` at the end of the file and syncs it to disk. Blocking.
    pub fn write_all_synced(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self.inner.as_file_mut();
        io::Write::write_all(file, bytes)?;
        file.sync_data()
    }

    /// Where the part file is now.
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// Renames the part file to `target`, replacing any file there (like a rename does).
    /// On failure the part is handed back, still locked, in the error.
    pub fn persist(self, target: &Path) -> Result<(), PersistPartError> {
        self.rename(target, true)
    }

    /// Renames the part file to `target` unless a file is already there (atomically: an
    /// existing file is never replaced; the error is then [`io::ErrorKind::AlreadyExists`]).
    /// On failure the part is handed back, still locked, in the error.
    pub fn persist_new(self, target: &Path) -> Result<(), PersistPartError> {
        self.rename(target, false)
    }

    fn rename(self, target: &Path, replace: bool) -> Result<(), PersistPartError> {
        let renamed = if replace {
            self.inner.persist(target)
        } else {
            self.inner.persist_noclobber(target)
        };
        match renamed {
            // The file closes (and its lock goes) only now, after the rename.
            Ok(file) => {
                drop(file);
                Ok(())
            }
            Err(e) => Err(PersistPartError {
                target: target.to_path_buf(),
                error: e.error,
                part: Self { inner: e.file },
            }),
        }
    }
}

/// A [`PartFile`] that could not be moved to its final name; the part is in `part`.
#[derive(Debug, thiserror::Error)]
#[error("the downloaded image could not be moved to {}", target.display())]
#[non_exhaustive]
pub struct PersistPartError {
    /// Where it was to go.
    pub target: PathBuf,
    /// Why it could not.
    #[source]
    pub error: io::Error,
    /// The part, still locked; dropping it removes the file.
    pub part: PartFile,
}

/// Takes an exclusive advisory lock on `file` without waiting: `Ok(false)` when another
/// open file holds it.
// std's file locks are stable since Rust 1.89, the workspace's `rust-version`.
fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

fn lock(file: &File) -> io::Result<()> {
    if try_lock(file)? {
        Ok(())
    } else {
        Err(io::Error::from(io::ErrorKind::WouldBlock))
    }
}

/// Whether `name` is a part file's (`.imagegen-*.part`, also the older
/// `.imagegen-download-*.part`).
fn is_part_name(name: &str) -> bool {
    name.len() > PART_PREFIX.len() + PART_SUFFIX.len()
        && name.starts_with(PART_PREFIX)
        && name.ends_with(PART_SUFFIX)
}

/// Whether `name` is a part file's before its lock (`.imagegen-new-*.tmp`).
fn is_newborn_name(name: &str) -> bool {
    name.len() > NEWBORN_PREFIX.len() + NEWBORN_SUFFIX.len()
        && name.starts_with(NEWBORN_PREFIX)
        && name.ends_with(NEWBORN_SUFFIX)
}

/// Removes the abandoned part files of `dir` (not its subdirectories): every
/// `.imagegen-*.part` that no live process holds locked (a part is locked from birth, so
/// an unlocked one is abandoned, at any age), and every `.imagegen-new-*.tmp` unlocked and
/// last modified more than [`STALE_PART_AGE`] ago. Returns the paths removed.
///
/// A part a running download holds is never touched, however old. A file that cannot be
/// inspected, locked or removed is skipped (logged at debug level); only a directory that
/// cannot be read is an error.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let removed = imagegen_http::sweep_stale_parts(dir.path())?;
/// assert!(removed.is_empty());
/// # Ok(()) }
/// ```
pub fn sweep_stale_parts(dir: &Path) -> io::Result<Vec<PathBuf>> {
    // File times are the system's, so they are compared with the system's time, not with
    // an injected clock that may be simulated.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "a directory entry could not be read");
                continue;
            }
        };
        let name = entry.file_name();
        let min_age = match name.to_str() {
            Some(name) if is_part_name(name) => Duration::ZERO,
            Some(name) if is_newborn_name(name) => STALE_PART_AGE,
            _ => continue,
        };
        let path = entry.path();
        match sweep_one(&path, now, min_age) {
            Ok(true) => removed.push(path),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(part = %path.display(), error = %e, "a part file was not swept");
            }
        }
    }
    Ok(removed)
}

/// Removes `path` if it is an unlocked part file unmodified for `min_age`; whether it did.
fn sweep_one(path: &Path, now: SystemTime, min_age: Duration) -> io::Result<bool> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() || !is_stale(meta.modified()?, now, min_age) {
        return Ok(false);
    }
    let file = File::open(path)?;
    if !try_lock(&file)? {
        tracing::debug!(part = %path.display(), "a part file in use was left alone");
        return Ok(false);
    }
    // Checked again under the lock: a write since the first look makes it fresh.
    if !is_stale(file.metadata()?.modified()?, now, min_age) {
        return Ok(false);
    }
    if cfg!(windows) {
        // Windows cannot remove a file open without shared delete access.
        drop(file);
        fs::remove_file(path)?;
    } else {
        // Removed while locked; the lock goes with the handle.
        fs::remove_file(path)?;
        drop(file);
    }
    Ok(true)
}

fn is_stale(modified: SystemTime, now: SystemTime, min_age: Duration) -> bool {
    min_age.is_zero() || now.duration_since(modified).is_ok_and(|age| age >= min_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert!(is_part_name(".imagegen-abc123.part"));
        assert!(is_part_name(".imagegen-download-abc123.part"));
        assert!(!is_part_name(".imagegen-.part"));
        assert!(!is_part_name("imagegen-abc.part"));
        assert!(!is_part_name(".imagegen-abc.png"));
        assert!(!is_part_name("fox-1.png"));
        assert!(is_newborn_name(".imagegen-new-abc123.tmp"));
        assert!(!is_newborn_name(".imagegen-abc123.part"));
    }

    #[test]
    fn a_part_is_locked_removed_when_dropped_and_kept_when_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let part = PartFile::create_in(dir.path()).unwrap();
        let path = part.path().to_path_buf();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(is_part_name(name), "{name}");
        // Another open file description cannot lock it.
        let other = File::open(&path).unwrap();
        assert!(!try_lock(&other).unwrap());
        drop(part);
        assert!(!path.exists());
        assert!(try_lock(&other).unwrap(), "the lock went with the part");

        let part = PartFile::create_in(dir.path()).unwrap();
        let target = dir.path().join("x.png");
        std::fs::write(&target, b"old").unwrap();
        let err = part.persist_new(&target).unwrap_err();
        assert_eq!(err.error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        let part = err.part;
        assert!(part.path().exists());
        part.persist(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

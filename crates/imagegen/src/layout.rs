//! [`ImageLayout`]: how a generation's images are named and kept in their folder.
//!
//! | layout | file names | sidecar | written |
//! |---|---|---|---|
//! | [`ImageLayout::Named`] (default, the CLI's) | `<prompt-slug>-<n>.<ext>`, the lowest free `n` | a JSON [`Sidecar`](crate::Sidecar) beside each | streamed into a locked part file, synced, renamed onto a placeholder |
//! | [`ImageLayout::ContentAddressed`] (the gateway's store) | `<sha256>.<ext>` | none: whoever keeps the folder keeps the facts | downloaded into memory, then written once, synced, and given its final name (unnamed until then where the system allows it); bytes already there are not written again |

use std::io;
use std::path::{Path, PathBuf};

use imagegen_http::PartFile;

use self::unnamed::WrittenNew;

mod unnamed;

/// How a generation's images are named and kept in their folder; see the
/// [module docs](self).
///
/// ```
/// use imagegen::{GenerateOptions, layout::ImageLayout};
/// let options = GenerateOptions::default().layout(ImageLayout::ContentAddressed);
/// assert_eq!(options.layout, ImageLayout::ContentAddressed);
/// assert_eq!(GenerateOptions::default().layout, ImageLayout::Named);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageLayout {
    /// `<prompt-slug>-<n>.<ext>` with the lowest free `n` (never replacing a file), each
    /// with a JSON sidecar.
    #[default]
    Named,
    /// `<sha256>.<ext>` and no sidecar: the same bytes are kept once, whatever asked for
    /// them. For a folder whose keeper records each image elsewhere (the gateway's ledger
    /// does). A stale part file left by a killed process is not swept at each save: the
    /// keeper sweeps the folder ([`imagegen_http::sweep_stale_parts`]) when it opens it.
    ContentAddressed,
}

/// An image kept by its content, from [`keep_by_content`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptImage {
    /// `<dir>/<sha256>.<ext>`.
    pub(crate) path: PathBuf,
    /// The SHA-256 of its bytes, lower-case hex.
    pub(crate) sha256: String,
}

/// Keeps `bytes` in `dir` as `<sha256>.<extension>`, synced before it has that name and
/// never replacing a file, so the name never holds a partial image; when the name is there
/// already, so are these bytes, and nothing is written. Written unnamed and then linked
/// where the system allows it ([`unnamed`]), else through a locked part file renamed into
/// place. Blocking.
pub(crate) fn keep_by_content(dir: &Path, bytes: &[u8], extension: &str) -> io::Result<KeptImage> {
    let sha256 = imagegen_ledger::digest::sha256_hex(bytes);
    let path = dir.join(format!("{sha256}.{extension}"));
    if !path.exists() {
        match unnamed::write_new(dir, &path, bytes)? {
            // Another request may have kept the same bytes first: then they are there.
            WrittenNew::Written | WrittenNew::AlreadyThere => {}
            WrittenNew::Unsupported => keep_through_part(dir, &path, bytes)?,
        }
    }
    Ok(KeptImage { path, sha256 })
}

/// Writes `bytes` to `path` through a locked part file in `dir`, synced, then renamed into
/// place unless a file is already there.
fn keep_through_part(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut part = PartFile::create_in(dir)?;
    part.write_all_synced(bytes)?;
    match part.persist_new(path) {
        Ok(()) => Ok(()),
        // Another request kept the same bytes first: the part goes.
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_are_written_once_under_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let first = keep_by_content(dir.path(), b"GIF89a one", "gif").unwrap();
        assert_eq!(first.path, dir.path().join(format!("{}.gif", first.sha256)));
        assert_eq!(std::fs::read(&first.path).unwrap(), b"GIF89a one");
        let again = keep_by_content(dir.path(), b"GIF89a one", "gif").unwrap();
        assert_eq!(again, first);
        let other = keep_by_content(dir.path(), b"GIF89a two", "gif").unwrap();
        assert_ne!(other.path, first.path);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no part file is left: {names:?}");
    }

    #[test]
    fn where_unnamed_files_are_missing_a_part_file_keeps_the_bytes_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gif");
        keep_through_part(dir.path(), &path, b"GIF89a one").unwrap();
        keep_through_part(dir.path(), &path, b"GIF89a two").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"GIF89a one",
            "never replaced"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no part file is left: {names:?}");
    }
}

//! [`ImageLayout`]: how a generation's images are named and kept in their folder.
//!
//! | layout | file names | sidecar | written |
//! |---|---|---|---|
//! | [`ImageLayout::Named`] (default, the CLI's) | `<prompt-slug>-<n>.<ext>`, the lowest free `n` | a JSON [`Sidecar`](crate::Sidecar) beside each | streamed into a locked part file, synced, renamed onto a placeholder |
//! | [`ImageLayout::ContentAddressed`] (the gateway's store) | `<sha256>.<ext>` | none: whoever keeps the folder keeps the facts | downloaded into memory, then written once, synced, under its final name; bytes already there are not written again |

use std::io;
use std::path::{Path, PathBuf};

use imagegen_http::PartFile;

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

/// Keeps `bytes` in `dir` as `<sha256>.<extension>`: written through a locked part file,
/// synced, then renamed into place without replacing anything, so the name never holds a
/// partial image; when the name is there already, so are these bytes, and nothing is
/// written. Blocking.
pub(crate) fn keep_by_content(dir: &Path, bytes: &[u8], extension: &str) -> io::Result<KeptImage> {
    let sha256 = imagegen_ledger::digest::sha256_hex(bytes);
    let path = dir.join(format!("{sha256}.{extension}"));
    if !path.exists() {
        let mut part = PartFile::create_in(dir)?;
        part.write_all_synced(bytes)?;
        match part.persist_new(&path) {
            Ok(()) => {}
            // Another request kept the same bytes first: the part goes.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.error),
        }
    }
    Ok(KeptImage { path, sha256 })
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
}

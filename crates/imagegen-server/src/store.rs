//! [`ImageStore`]: the gateway's images, content-addressed. Each image is kept once as
//! `<sha256>.<ext>` in one directory (by default `imagegen/images/` in the user's data
//! directory, beside the ledger), whatever request made it, so a URL the gateway gave out
//! keeps working as long as the file is there (a provider's own URL may expire within
//! the hour).
//!
//! A generation's images are written straight into the store, each once under its hash
//! (the facade's [`ImageLayout::ContentAddressed`]); jobs taken over from another
//! gateway are saved into a folder of their own under `.incoming/` (the same file
//! system, so moving an image into the store is a rename), then
//! [adopted](ImageStore::adopt).
//!
//! Only names of the form `<64 hex digits>.<ext>` are ever served, so nothing else in
//! the directory can be reached through the API.
//!
//! [`ImageLayout::ContentAddressed`]: imagegen::layout::ImageLayout::ContentAddressed

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The image types the store keeps: extension and MIME type.
const TYPES: [(&str, &str); 4] = [
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("webp", "image/webp"),
    ("gif", "image/gif"),
];

/// The folder, inside the store, where generations are saved before they are adopted.
const INCOMING: &str = ".incoming";

/// The directory of content-addressed images; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

/// An image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoredImage {
    /// The SHA-256 of its bytes, lower-case hex.
    pub sha256: String,
    /// Its file name: `<sha256>.<ext>`.
    pub file_name: String,
    /// Its MIME type.
    pub mime: &'static str,
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The default image directory: `imagegen/images` in the user's data directory (beside
/// the default ledger, `imagegen/ledger.sqlite3`).
///
/// ```
/// # fn main() -> Result<(), imagegen_ledger::LedgerError> {
/// let dir = imagegen_server::store::default_image_dir()?;
/// assert!(dir.ends_with("imagegen/images"));
/// # Ok(()) }
/// ```
pub fn default_image_dir() -> Result<PathBuf, imagegen_ledger::LedgerError> {
    let ledger = imagegen_ledger::default_sqlite_path()?;
    let data = ledger
        .parent()
        .map_or_else(|| PathBuf::from("imagegen"), Path::to_path_buf);
    Ok(data.join("images"))
}

impl ImageStore {
    /// The store in `dir`, created (with its folder for incoming generations) when missing.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join(INCOMING))?;
        // Generations write into the store itself, through part files: remove those a
        // killed process left (a live one holds its own locked).
        match imagegen::http::sweep_stale_parts(&dir) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(
                    removed = removed.len(),
                    "removed part files left in the image store"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "the image store's part files were not swept"),
        }
        Ok(Self { dir })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new folder for one generation's files before they are adopted: `.incoming/<id>`.
    pub(crate) fn incoming_dir(&self, id: &str) -> PathBuf {
        self.dir.join(INCOMING).join(id)
    }

    /// Moves the image `file` (of MIME type `mime`, or its extension's) into the store
    /// as `<sha256>.<ext>`; when the store already has those bytes, `file` is removed.
    /// Blocking: run it off the async workers.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let store = imagegen_server::ImageStore::open(dir.path().join("images"))?;
    /// let made = dir.path().join("a-fox-1.png");
    /// std::fs::write(&made, b"\x89PNG not really")?;
    /// let stored = store.adopt(&made, Some("image/png"))?;
    /// assert_eq!(stored.file_name, format!("{}.png", stored.sha256));
    /// assert!(!made.exists() && stored.path.exists());
    /// assert_eq!(store.locate(&stored.file_name), Some((stored.path.clone(), "image/png")));
    /// assert_eq!(store.locate("../ledger.sqlite3"), None);
    /// # Ok(()) }
    /// ```
    pub fn adopt(&self, file: &Path, mime: Option<&str>) -> io::Result<StoredImage> {
        let (extension, mime) = mime
            .and_then(type_of_mime)
            .or_else(|| {
                file.extension()
                    .and_then(|e| e.to_str())
                    .and_then(type_of_extension)
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a PNG, JPEG, WebP or GIF image", file.display()),
                )
            })?;
        let (sha256, bytes) = imagegen_ledger::digest::file_sha256(file)?;
        let file_name = format!("{sha256}.{extension}");
        let path = self.dir.join(&file_name);
        if path.exists() {
            std::fs::remove_file(file)?;
        } else {
            std::fs::rename(file, &path)?;
        }
        Ok(StoredImage {
            sha256,
            file_name,
            mime,
            path,
            bytes,
        })
    }

    /// The stored image `saved` is, when the facade saved it into this store by its
    /// hash ([`ImageLayout::ContentAddressed`]); `None` for any other saved image.
    ///
    /// [`ImageLayout::ContentAddressed`]: imagegen::layout::ImageLayout::ContentAddressed
    pub(crate) fn kept(&self, saved: &imagegen::SavedImage) -> Option<StoredImage> {
        let sha256 = saved.sha256.as_ref()?;
        let file_name = saved.path.file_name()?.to_str()?.to_owned();
        let (path, mime) = self.locate(&file_name)?;
        (path == saved.path && file_name.starts_with(sha256.as_str())).then(|| StoredImage {
            sha256: sha256.clone(),
            file_name,
            mime,
            path,
            bytes: saved.bytes,
        })
    }

    /// Where the image named `name` (`<sha256>.<ext>`) is kept, and its MIME type, when
    /// `name` is such a name (whether the file is there is for the caller to find when
    /// reading it); `None` for any other name.
    pub fn locate(&self, name: &str) -> Option<(PathBuf, &'static str)> {
        let (stem, extension) = name.split_once('.')?;
        let well_formed = stem.len() == 64
            && stem
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return None;
        }
        let (_, mime) = TYPES.iter().find(|(e, _)| *e == extension)?;
        Some((self.dir.join(name), *mime))
    }
}

/// The extension and MIME type of an image MIME type the store keeps.
fn type_of_mime(mime: &str) -> Option<(&'static str, &'static str)> {
    TYPES
        .iter()
        .copied()
        .find(|(_, m)| m.eq_ignore_ascii_case(mime))
}

/// The extension and MIME type of a file extension the store keeps.
fn type_of_extension(extension: &str) -> Option<(&'static str, &'static str)> {
    let extension = extension.to_ascii_lowercase();
    let extension = if extension == "jpeg" {
        "jpg"
    } else {
        &extension
    };
    TYPES.iter().copied().find(|(e, _)| *e == extension)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_are_kept_once_and_only_hashes_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let first = dir.path().join("one.jpeg");
        let second = dir.path().join("two.jpg");
        std::fs::write(&first, b"same bytes").unwrap();
        std::fs::write(&second, b"same bytes").unwrap();
        let a = store.adopt(&first, None).unwrap();
        let b = store.adopt(&second, Some("image/jpeg")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.mime, "image/jpeg");
        assert_eq!(a.bytes, 10);
        assert!(!first.exists() && !second.exists());
        assert_eq!(
            store.locate(&a.file_name),
            Some((a.path.clone(), "image/jpeg"))
        );

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"x").unwrap();
        assert!(store.adopt(&text, None).is_err());
        assert!(text.exists(), "what is not an image is left alone");

        for name in [
            "../ledger.sqlite3",
            ".incoming",
            "notes.txt",
            &format!("{}.exe", a.sha256),
            &format!("{}.png", a.sha256.to_uppercase()),
            &format!("{}.png", &a.sha256[..63]),
            &format!("{}.png/x", a.sha256),
        ] {
            assert_eq!(store.locate(name), None, "{name}");
        }
    }
}

//! File names for saved images: a slug of the prompt plus an index, never overwriting.

use std::io;
use std::path::{Path, PathBuf};

/// The longest slug taken from a prompt, in characters.
pub const MAX_SLUG_CHARS: usize = 60;

/// A file stem from a prompt: lower-case ASCII words joined by `-`, at most
/// [`MAX_SLUG_CHARS`] characters, cut at a word boundary; `image` when nothing is left.
///
/// ```
/// use imagegen::naming::prompt_slug;
/// assert_eq!(prompt_slug("A lighthouse at dusk, watercolor"), "a-lighthouse-at-dusk-watercolor");
/// assert_eq!(prompt_slug("Café «über» ★"), "cafe-uber");
/// assert_eq!(prompt_slug("!!!"), "image");
/// ```
pub fn prompt_slug(prompt: &str) -> String {
    let full = slug::slugify(prompt);
    let mut out = String::new();
    for word in full.split('-').filter(|w| !w.is_empty()) {
        let extra = if out.is_empty() {
            word.len()
        } else {
            word.len() + 1
        };
        if out.len() + extra > MAX_SLUG_CHARS {
            if out.is_empty() {
                out.push_str(&word[..MAX_SLUG_CHARS.min(word.len())]);
            }
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        "image".to_owned()
    } else {
        out
    }
}

/// Creates a new, empty file `dir/<stem>-<n>.<ext>` for the lowest `n ≥ first_index` whose
/// name is free, and returns its path. The file is created with `create_new`, so two
/// writers racing for a name never share a file and an existing file is never touched.
pub fn create_unique(
    dir: &Path,
    stem: &str,
    first_index: usize,
    ext: &str,
) -> io::Result<(PathBuf, std::fs::File)> {
    std::fs::create_dir_all(dir)?;
    let mut n = first_index.max(1);
    loop {
        let path = dir.join(format!("{stem}-{n}.{ext}"));
        let sidecar = sidecar_path(&path);
        if !sidecar.exists() {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        n += 1;
        if n > first_index.max(1) + 1_000_000 {
            return Err(io::Error::other(format!(
                "no free file name for {stem} in {}",
                dir.display()
            )));
        }
    }
}

/// The JSON sidecar path beside an image (`x-1.png` → `x-1.json`).
pub fn sidecar_path(image: &Path) -> PathBuf {
    image.with_extension("json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_bounded_at_word_boundaries() {
        let long = "word ".repeat(40);
        let s = prompt_slug(&long);
        assert!(s.len() <= MAX_SLUG_CHARS);
        assert!(s.ends_with("word"));
        let one = "x".repeat(100);
        assert_eq!(prompt_slug(&one).len(), MAX_SLUG_CHARS);
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fox-1.png"), b"old").unwrap();
        std::fs::write(dir.path().join("fox-2.json"), b"{}").unwrap();
        let (path, _f) = create_unique(dir.path(), "fox", 1, "png").unwrap();
        assert_eq!(path, dir.path().join("fox-3.png"));
        assert_eq!(std::fs::read(dir.path().join("fox-1.png")).unwrap(), b"old");
        let (next, _f) = create_unique(dir.path(), "fox", 1, "png").unwrap();
        assert_eq!(next, dir.path().join("fox-4.png"));
    }
}

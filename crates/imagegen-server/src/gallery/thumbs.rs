//! `GET /thumbs/<sha256>.jpg`: a stored image at most [`THUMB_SIDE`] px on its long side,
//! as JPEG. Made on first request off the async workers (decoding is CPU work), kept in
//! the store's folder under `thumbs/`, and cacheable for good (its name is its source's
//! hash). Like the images themselves, needs no key (the name is unguessable) but keeps
//! the host check.

use std::io;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::openai_error::ApiError;
use crate::state::AppState;
use crate::store::ImageStore;

/// The long side of a thumbnail, in pixels.
pub(crate) const THUMB_SIDE: u32 = 256;

/// The extensions a stored image may have, in the order they are looked for.
const SOURCES: [&str; 4] = ["png", "jpg", "webp", "gif"];

/// Where the thumbnail of the image with hash `sha256` is kept.
pub(crate) fn thumb_path(store: &ImageStore, sha256: &str) -> PathBuf {
    store.dir().join("thumbs").join(format!("{sha256}.jpg"))
}

/// The handler.
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    match thumbnail(&state, &name, &headers).await {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
                (
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
                (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            bytes,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn thumbnail(state: &AppState, name: &str, headers: &HeaderMap) -> Result<Vec<u8>, ApiError> {
    state.auth.check_host(headers)?;
    let not_found =
        || ApiError::not_found(format!("No such thumbnail: '{name}'.")).code("file_not_found");
    let sha = name.strip_suffix(".jpg").ok_or_else(not_found)?;
    // The store checks the hash's form: only its own names reach the disk.
    let source = SOURCES
        .iter()
        .filter_map(|ext| state.store.locate(&format!("{sha}.{ext}")))
        .map(|(path, _)| path)
        .find(|path| path.is_file())
        .ok_or_else(not_found)?;
    let cached = thumb_path(&state.store, sha);
    match tokio::fs::read(&cached).await {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ApiError::internal(format!(
                "a thumbnail could not be read: {e}"
            )));
        }
    }
    let made = tokio::task::spawn_blocking(move || make(&source, &cached))
        .await
        .map_err(|e| ApiError::internal(format!("the thumbnail task failed: {e}")))?;
    made.map_err(|e| ApiError::internal(format!("a thumbnail could not be made: {e}")))
}

/// Decodes `source`, scales it to fit [`THUMB_SIDE`], encodes it as JPEG and keeps it
/// at `cached` (written aside and renamed, so a reader never sees half a file).
fn make(source: &FsPath, cached: &FsPath) -> io::Result<Vec<u8>> {
    let bytes = std::fs::read(source)?;
    let image = image::load_from_memory(&bytes).map_err(io::Error::other)?;
    let small = if image.width() > THUMB_SIDE || image.height() > THUMB_SIDE {
        image.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        image
    };
    let rgb = small.to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 82)
        .encode_image(&rgb)
        .map_err(io::Error::other)?;
    if let Some(dir) = cached.parent() {
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        io::Write::write_all(&mut file, &jpeg)?;
        file.persist(cached).map_err(|e| e.error)?;
    }
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbnail_fits_the_long_side_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("big.png");
        image::RgbImage::from_pixel(600, 300, image::Rgb([200, 30, 30]))
            .save_with_format(&source, image::ImageFormat::Png)
            .unwrap();
        let cached = dir.path().join("thumbs").join("t.jpg");
        let jpeg = make(&source, &cached).unwrap();
        let thumb = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (256, 128));
        assert_eq!(std::fs::read(&cached).unwrap(), jpeg);
    }
}

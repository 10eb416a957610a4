//! Internal (feature `fuzzing`): how one KoalaImages answer (status and whole body) becomes
//! a result, exactly as the client decides it after reading the body, without HTTP; for
//! the fuzz targets in `fuzz/`. Not a public API.

use std::time::Duration;

use crate::client::{read_images, success_images};
use crate::error::KoalaError;
use crate::types::GeneratedImage;

/// The answer to a generation: an error status becomes [`KoalaError::Api`] with Koala's
/// message, a success body the image list (both passes), an empty list unreadable.
pub fn answer(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Vec<GeneratedImage>, KoalaError> {
    if !(200..300).contains(&status) {
        return Err(KoalaError::from_status(status, body, retry_after));
    }
    success_images(status, body)
}

/// A success body as the image list (both passes); the error is why it is unreadable.
pub fn read(body: &[u8]) -> Result<Vec<GeneratedImage>, String> {
    read_images(body)
}

//! Internal (feature `fuzzing`): the download's body inspection without HTTP, for the fuzz
//! targets in `fuzz/`. Not a public API.

use super::complete::EndCheck;
use super::inspect::{BodyInspector, Inspected, Release};
use super::{Attempt, Cause, ImageFormat};

/// What [`inspect_body`] made of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A whole image.
    Whole {
        /// Its format.
        format: ImageFormat,
        /// Its width and height, when the header gave them.
        size: Option<(u32, u32)>,
    },
    /// An image that ended early (the reason).
    Incomplete(String),
    /// No image: worth another GET (the reason).
    NotAnImage(String),
    /// Not worth another GET (the reason).
    Fatal(String),
}

/// Runs `chunks`, in order, through the checks a download runs on its body (the body
/// inspector and the end check, exactly as the download loop does, without a
/// `Content-Length`), and returns the verdict with the bytes the download would have
/// written (before the verdict; a whole image's bytes are all of them).
pub fn inspect_body(content_type: Option<&str>, chunks: &[&[u8]]) -> (Verdict, Vec<u8>) {
    let mut inspector = BodyInspector::new(content_type);
    let mut end = EndCheck::new();
    let mut written = Vec::new();
    for chunk in chunks {
        end.feed(chunk);
        match inspector.feed(chunk) {
            Ok(Release::Nothing) => {}
            Ok(Release::Chunk) => written.extend_from_slice(chunk),
            Ok(Release::Held(held)) => written.extend_from_slice(&held),
            Err(attempt) => return (verdict_of(attempt), written),
        }
    }
    let Inspected { format, size, held } = match inspector.finish() {
        Ok(inspected) => inspected,
        Err(attempt) => return (verdict_of(attempt), written),
    };
    if let Err(incomplete) = end.verdict(format) {
        return (Verdict::Incomplete(incomplete.to_string()), written);
    }
    written.extend_from_slice(&held);
    (Verdict::Whole { format, size }, written)
}

fn verdict_of(attempt: Attempt) -> Verdict {
    match attempt {
        Attempt::Retry {
            reason,
            cause: Cause::Incomplete,
            ..
        } => Verdict::Incomplete(reason),
        Attempt::Retry { reason, .. } => Verdict::NotAnImage(reason),
        Attempt::Fatal(error) => Verdict::Fatal(error.to_string()),
    }
}

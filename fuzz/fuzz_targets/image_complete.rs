//! The download's completeness inspector: arbitrary bytes, in arbitrary chunks, through
//! the body inspector and the end check exactly as a download streams them.
//!
//! Input: `[content type: u8][split count: u8][splits: u16 LE × count][body …]`; each split
//! is where a chunk ends (taken modulo the body's length), so the same body arrives in
//! many chunkings.
//! Invariants: never panics; the verdict (whole or not, format, size) does not depend on
//! the chunking; a whole image is written out byte for byte.
#![no_main]

use imagegen_http::download::fuzzing::{Verdict, inspect_body};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("image/png"),
    Some("image/jpeg"),
    Some("text/html; charset=utf-8"),
    Some("application/octet-stream"),
    Some("image/webp"),
];

fuzz_target!(|data: &[u8]| {
    let [content_type, count, rest @ ..] = data else {
        return;
    };
    let count = usize::from(*count % 32);
    if rest.len() < count * 2 {
        return;
    }
    let (splits, body) = rest.split_at(count * 2);
    let content_type = CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()];
    let mut ends: Vec<usize> = splits
        .chunks_exact(2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])) % (body.len() + 1))
        .collect();
    ends.push(body.len());
    ends.sort_unstable();
    let mut chunks = Vec::with_capacity(ends.len());
    let mut start = 0;
    for end in ends {
        // Empty chunks included: a stream may yield them.
        chunks.push(&body[start..end]);
        start = end;
    }

    let (chunked, written) = inspect_body(content_type, &chunks);
    let (whole, written_whole) = inspect_body(content_type, &[body]);
    assert_eq!(
        class(&chunked),
        class(&whole),
        "{chunked:?} vs {whole:?} for {} chunks",
        chunks.len()
    );
    if let Verdict::Whole { .. } = chunked {
        assert_eq!(chunked, whole);
        assert_eq!(written, body, "a whole image is written as it arrived");
        assert_eq!(written_whole, body);
    }
    // Whatever was written is a prefix of the body.
    assert!(body.starts_with(&written));
});

/// The verdict without its wording (which quotes the first bytes seen).
fn class(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Whole { format, size } => format!("whole {format} {size:?}"),
        Verdict::Incomplete(_) => "incomplete".into(),
        Verdict::NotAnImage(_) => "not an image".into(),
        Verdict::Fatal(reason) => format!("fatal {reason}"),
    }
}

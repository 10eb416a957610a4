//! KoalaImages: one answer (HTTP status, body) as the client reads it: an error status's
//! message, a success body's image list (both passes), and the error's conversion into the
//! core taxonomy.
//!
//! Input: `[status: u16 BE][body …]`.
//! Invariants: never panics; a read image list serializes and reads back to itself; a
//! success is never an empty list.
#![no_main]

use std::time::Duration;

use koala_api::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [s0, s1, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*s0, *s1]);
    let retry_after = (s0 & 0x80 != 0).then(|| Duration::from_millis(u64::from(*s1) * 100));
    match fuzzing::answer(status, retry_after, body) {
        Ok(images) => {
            assert!((200..300).contains(&status));
            assert!(!images.is_empty(), "a success lists at least one image");
            round_trip(&images);
        }
        Err(error) => {
            let _ = error.to_string();
            let _ = error.retry_after();
            let core: imagegen_core::Error = error.into();
            let _ = core.to_string();
        }
    }
    if let Ok(images) = fuzzing::read(body) {
        round_trip(&images);
    }
});

fn round_trip(images: &[koala_api::GeneratedImage]) {
    let json = serde_json::to_vec(images).expect("images serialize");
    let again = fuzzing::read(&json)
        .unwrap_or_else(|e| panic!("re-reading {} failed: {e}", String::from_utf8_lossy(&json)));
    assert_eq!(
        images,
        again.as_slice(),
        "round trip through {}",
        String::from_utf8_lossy(&json)
    );
}

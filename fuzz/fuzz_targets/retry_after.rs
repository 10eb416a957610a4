//! `Retry-After`: a header value (delta-seconds or an HTTP date) against an arbitrary now.
//!
//! Input: `[now: u64 BE seconds since the epoch][value …]`.
//! Invariants: never panics; the wait never exceeds `RetryAfter::MAX`; a value read from
//! headers equals the one parsed directly.
#![no_main]

use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use imagegen_http::RetryAfter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((now, value)) = data.split_first_chunk::<8>() else {
        return;
    };
    // Any now from 1970 to about the year 2500.
    let now =
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(*now) % 16_725_225_600);
    if let Ok(text) = std::str::from_utf8(value) {
        if let Some(parsed) = RetryAfter::parse(text, now) {
            assert!(
                parsed.wait() <= RetryAfter::MAX,
                "{text:?} waits {:?}",
                parsed.wait()
            );
        }
    }
    if let Ok(header) = HeaderValue::from_bytes(value) {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, header);
        let from_headers = RetryAfter::from_headers(&headers, now);
        if let Some(wait) = from_headers {
            assert!(wait.wait() <= RetryAfter::MAX);
            let text = std::str::from_utf8(value).expect("a readable header is UTF-8");
            assert_eq!(Some(wait), RetryAfter::parse(text, now));
        }
    }
});

//! Kolbo: one answer (route, HTTP status, body) as the client reads it: the error-envelope
//! probe, then both decoding passes into the route's type, the id salvage of a paid
//! generation, and the error's conversion into the core taxonomy.
//!
//! Input: `[route: u8][status: u16 BE][body …]`.
//! Invariants: never panics; a decoded answer serializes and decodes back to itself.
#![no_main]

use std::fmt::Debug;
use std::time::Duration;

use kolbo_api::KolboError;
use kolbo_api::fuzzing;
use kolbo_api::types::{
    AccountCreditsResponse, CancelResponse, ErrorBody, GenerationStatus, ModelsResponse,
    MoodboardList, MoodboardResponse, VisualDnaList, VisualDnaResponse,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    let [route, s0, s1, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*s0, *s1]);
    let retry_after = (route & 0x80 != 0).then(|| Duration::from_secs(u64::from(*s1)));
    match route % 11 {
        0 => generation(status, retry_after, body),
        1 => route_of::<GenerationStatus>(status, retry_after, body),
        2 => route_of::<CancelResponse>(status, retry_after, body),
        3 => route_of::<ModelsResponse>(status, retry_after, body),
        4 => route_of::<AccountCreditsResponse>(status, retry_after, body),
        5 => route_of::<MoodboardList>(status, retry_after, body),
        6 => route_of::<MoodboardResponse>(status, retry_after, body),
        7 => route_of::<VisualDnaList>(status, retry_after, body),
        8 => route_of::<VisualDnaResponse>(status, retry_after, body),
        9 => round_trip(fuzzing::decode::<ErrorBody>(body)),
        _ => {
            if let Some(id) = fuzzing::salvage_generation_id(body) {
                assert!(!id.trim().is_empty(), "a salvaged id is never blank");
            }
        }
    }
});

fn generation(status: u16, retry_after: Option<Duration>, body: &[u8]) {
    if let Some(result) = fuzzing::generation_answer(status, retry_after, body) {
        // The salvage may rebuild the answer from its id alone: check it reads back.
        round_trip(result);
    }
}

fn route_of<T>(status: u16, retry_after: Option<Duration>, body: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    for billable in [false, true] {
        if let Some(result) = fuzzing::answer::<T>(status, retry_after, body, billable) {
            round_trip(result);
        }
    }
    round_trip(fuzzing::decode::<T>(body));
}

/// A decoded answer written back as JSON decodes to the same value; an error converts.
fn round_trip<T>(result: Result<T, KolboError>)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    match result {
        Ok(decoded) => {
            let json = serde_json::to_vec(&decoded).expect("a decoded answer serializes");
            let again: T = fuzzing::decode(&json).unwrap_or_else(|e| {
                panic!("re-decoding {} failed: {e}", String::from_utf8_lossy(&json))
            });
            assert_eq!(
                decoded,
                again,
                "round trip through {}",
                String::from_utf8_lossy(&json)
            );
        }
        Err(error) => {
            let _ = error.to_string();
            let _ = (error.status(), error.code(), error.retry_after());
            let _ = (
                error.is_rate_limited(),
                error.is_transient(),
                error.refusal(),
            );
            let core: imagegen_core::Error = error.into();
            let _ = core.to_string();
        }
    }
}

//! Internal (feature `fuzzing`): how one Kolbo answer (status and whole body) becomes a
//! result, exactly as the client decides it after reading the body, without HTTP; for the
//! fuzz targets in `fuzz/`. Not a public API.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::client::classify;
use crate::error::KolboError;
use crate::types::GenerationStarted;

/// The answer to a call: sorted into success or error (the error envelope probe), then the
/// success body decoded as `T` (both passes). `None` when `status` is no HTTP status.
pub fn answer<T: DeserializeOwned>(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    billable: bool,
) -> Option<Result<T, KolboError>> {
    let status = StatusCode::from_u16(status).ok()?;
    Some(
        classify(status, retry_after, Bytes::copy_from_slice(body), billable)
            .and_then(|a| a.decode()),
    )
}

/// The answer to `POST /v1/generate/image`, with the generation id recovered from a body
/// that does not decode, as the client does. `None` when `status` is no HTTP status.
pub fn generation_answer(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Option<Result<GenerationStarted, KolboError>> {
    let status = StatusCode::from_u16(status).ok()?;
    let answer = match classify(status, retry_after, Bytes::copy_from_slice(body), true) {
        Ok(answer) => answer,
        Err(error) => return Some(Err(error)),
    };
    Some(match answer.decode::<GenerationStarted>() {
        Ok(started) => Ok(started),
        Err(error) => match salvage_generation_id(&answer.bytes) {
            Some(id) => Ok(GenerationStarted::with_id(id)),
            None => Err(error),
        },
    })
}

/// The body decoded as `T` (both passes), as a 200's.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, KolboError> {
    crate::decode::body(200, body)
}

/// The generation id found in a body cut short.
pub fn salvage_generation_id(body: &[u8]) -> Option<String> {
    crate::decode::salvage_generation_id(body)
}

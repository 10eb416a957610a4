//! `Idempotency-Key`: a generation sent again with the same key (by the same caller) is
//! answered with the first one's response, never paid for twice.
//!
//! The claim is the ledger's ([`Ledger::begin_idempotent`]), atomic across requests and
//! gateways. Its scope is the caller (`key:<id>` for a gateway key, `anonymous` without
//! one), its request hash the SHA-256 of the method, path and body.
//!
//! | the ledger holds | answer |
//! |---|---|
//! | nothing: this request claims it ([`Claim`]) | run it; record the response when anything was charged (or it succeeded), otherwise give the key back |
//! | the same request, still running | 409 `idempotency_in_progress` (the OpenAI clients retry a 409 after a pause) |
//! | the same request, done | its response again, with `idempotent-replayed: true` |
//! | another request under this key | 422 `idempotency_key_reused` |
//!
//! A response is recorded as OpenAI's body with image URLs (the images are in the store),
//! and the format asked; a `b64_json` answer is inlined again from the store when
//! replayed, so no image bytes go into the ledger.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use imagegen_ledger::idempotency::{IdempotencyBegin, request_hash};
use imagegen_ledger::{Ledger, NewGeneration};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::openai_error::{ApiError, INVALID_REQUEST};

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";

/// The longest key taken, in bytes.
const MAX_KEY_BYTES: usize = 255;

/// What the ledger says about a request's idempotency key.
#[derive(Debug)]
pub(crate) enum Begin {
    /// No key was sent.
    None,
    /// This request owns the key: run it, then resolve the claim.
    Claimed(Claim),
    /// A finished request's response: send it again.
    Replay(Recorded),
}

/// A response as recorded (and replayed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    /// Its HTTP status.
    pub(crate) status: StatusCode,
    /// Its body, image URLs and all.
    pub(crate) body: Value,
    /// Whether the images are to be inlined as `b64_json`.
    pub(crate) inline: bool,
}

impl Recorded {
    /// The answer that is `error`.
    pub(crate) fn error(error: &ApiError) -> Self {
        Self {
            status: error.status(),
            body: error.body(),
            inline: false,
        }
    }

    /// The text the ledger keeps.
    pub(crate) fn to_text(&self) -> String {
        json!({"v": 1, "inline": self.inline, "body": self.body}).to_string()
    }

    /// A recorded text read back.
    pub(crate) fn from_text(status: u16, text: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(text).ok()?;
        Some(Self {
            status: StatusCode::from_u16(status).ok()?,
            inline: value.get("inline")?.as_bool()?,
            body: value.get("body")?.clone(),
        })
    }
}

/// This request's claim on its key; resolve it with [`Claim::finish`] or
/// [`Claim::abandon`]. One dropped unresolved gives the key back (nothing was sent yet).
#[derive(Debug)]
pub(crate) struct Claim {
    owned: Option<Owned>,
    /// Whether the request's generation is in the ledger already (recorded before the
    /// key was claimed).
    generation_recorded: bool,
}

#[derive(Debug)]
struct Owned {
    ledger: Arc<dyn Ledger>,
    scope: String,
    key: String,
}

/// Looks the request's `Idempotency-Key` up for `caller`; see the [module docs](self).
///
/// With a key, `generation` is recorded first (leased to this gateway), then the key is
/// claimed naming it, in one statement: a repeat that finds the key running always finds
/// a generation to read, which another gateway answers if this one dies at any point
/// (before anything is sent: "nothing was charged", and the key is given back). A request
/// that does not get the key answers its generation at once (the replay, or the error).
pub(crate) async fn begin(
    ledger: &Arc<dyn Ledger>,
    headers: &HeaderMap,
    caller: &Caller,
    body: &[u8],
    generation: &NewGeneration,
    now_ms: u64,
) -> Result<Begin, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(Begin::None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_BYTES)
        .ok_or_else(|| {
            ApiError::invalid(
                None,
                format!(
                    "The Idempotency-Key header must be 1 to {MAX_KEY_BYTES} visible ASCII characters."
                ),
            )
            .code("invalid_idempotency_key")
        })?;
    let scope = match caller {
        Caller::Local => "anonymous".to_owned(),
        Caller::Key(record) => format!("key:{}", record.id.0),
    };
    let mut hashed = b"POST /v1/images/generations\n".to_vec();
    hashed.extend_from_slice(body);
    let hash = request_hash(&hashed);
    ledger
        .create_generation(generation)
        .await
        .map_err(|e| crate::jobs::not_recorded(&e))?;
    let begun = ledger
        .begin_idempotent(&scope, key, &hash, Some(&generation.id), now_ms)
        .await
        .map_err(|e| ApiError::internal(format!("the ledger: {e}")).code("ledger_error"));
    let outcome = match begun? {
        IdempotencyBegin::Started => {
            return Ok(Begin::Claimed(Claim {
                owned: Some(Owned {
                    ledger: Arc::clone(ledger),
                    scope,
                    key: key.to_owned(),
                }),
                generation_recorded: true,
            }));
        }
        IdempotencyBegin::Running => match taken_over_answer(ledger, &scope, key).await {
            Some(recorded) => Ok(Begin::Replay(recorded)),
            None => Err(still_running()),
        },
        IdempotencyBegin::Done { status, response } => Recorded::from_text(status, &response)
            .map(Begin::Replay)
            .ok_or_else(|| {
                ApiError::internal(
                    "The response recorded for this Idempotency-Key cannot be read.",
                )
                .code("ledger_error")
                .no_retry()
            }),
        IdempotencyBegin::Conflict => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            INVALID_REQUEST,
            "This Idempotency-Key was used for a different request: use a new key for a new request.",
        )
        .code("idempotency_key_reused")),
    };
    // This request's generation ends here, with the answer it gets.
    let answer = match &outcome {
        Ok(Begin::Replay(recorded)) => recorded.clone(),
        Ok(_) => return outcome,
        Err(error) => Recorded::error(error),
    };
    if let Err(e) = ledger
        .finish_generation(&generation.id, answer.status.as_u16(), &answer.to_text())
        .await
    {
        tracing::warn!(generation = %generation.id, error = %e, "a repeated request's generation could not be closed");
    }
    outcome
}

/// The answer of the generation a running key is linked to, when that generation has
/// finished although the key was never closed (its gateway died and another gateway
/// finished it): the key is closed with it, and the repeat gets it.
async fn taken_over_answer(ledger: &Arc<dyn Ledger>, scope: &str, key: &str) -> Option<Recorded> {
    let generation_id = ledger.idempotent_generation(scope, key).await.ok()??;
    let generation = ledger.generation(&generation_id).await.ok()??;
    let (status, text) = (generation.status?, generation.response?);
    let recorded = Recorded::from_text(status, &text)?;
    let nothing_sent = recorded.body["imagegen"]["taken_over"] == true
        && recorded.body["imagegen"]["nothing_sent"] == true;
    if nothing_sent {
        // Its gateway died before sending anything: the key is given back, and the
        // client's retry runs the request afresh.
        if let Err(e) = ledger.abandon_idempotent(scope, key).await {
            tracing::debug!(error = %e, "an idempotency key taken over could not be given back");
        }
        return None;
    }
    if let Err(e) = ledger.finish_idempotent(scope, key, status, &text).await {
        tracing::debug!(error = %e, "an idempotency key taken over could not be closed");
    }
    Some(recorded)
}

/// 409: the first request with the key is still running.
fn still_running() -> ApiError {
    ApiError::new(
            StatusCode::CONFLICT,
            INVALID_REQUEST,
            "A request with this Idempotency-Key is still running: try again in a moment to receive its response.",
        )
        .code("idempotency_in_progress")
        .retry_after(1)
}

impl Claim {
    /// No claim (the request sent no key).
    pub(crate) fn none() -> Self {
        Self {
            owned: None,
            generation_recorded: false,
        }
    }

    /// Whether the request's generation is in the ledger already: it is then named
    /// ([`Ledger::set_generation_request_key`]), not recorded again.
    pub(crate) fn generation_recorded(&self) -> bool {
        self.generation_recorded
    }

    /// Lets the key go without giving it back: another gateway took this request's
    /// generation over (this one stalled past its lease) and answers for the key.
    pub(crate) fn forget(mut self) {
        self.owned = None;
    }

    /// Records `response` for the key: later requests with it get it again.
    pub(crate) async fn finish(mut self, response: &Recorded) {
        let Some(owned) = self.owned.take() else {
            return;
        };
        let text = response.to_text();
        if let Err(e) = owned
            .ledger
            .finish_idempotent(&owned.scope, &owned.key, response.status.as_u16(), &text)
            .await
        {
            tracing::error!(scope = %owned.scope, error = %e, "the response of an idempotent request could not be recorded: its key stays running");
        }
    }

    /// Gives the key back: the request charged nothing, so a retry may run.
    pub(crate) async fn abandon(mut self) {
        if let Some(owned) = self.owned.take() {
            owned.abandon().await;
        }
    }
}

impl Owned {
    async fn abandon(self) {
        if let Err(e) = self.ledger.abandon_idempotent(&self.scope, &self.key).await {
            tracing::error!(scope = %self.scope, error = %e, "an idempotency key could not be given back: it stays running");
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(owned) = self.owned.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(owned.abandon());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_response_reads_back() {
        let recorded = Recorded {
            status: StatusCode::OK,
            body: json!({"created": 1, "data": [{"url": "http://x/v1/files/a.png"}]}),
            inline: true,
        };
        assert_eq!(
            Recorded::from_text(200, &recorded.to_text()),
            Some(recorded)
        );
        assert_eq!(Recorded::from_text(200, "not json"), None);
    }
}

//! Provider failures through the gateway: a 5xx in OpenAI's shape, with
//! `x-should-retry: false` whenever the job may have been charged (the official clients
//! would otherwise retry it twice, and pay again).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{error_of, start};
use imagegen::ledger::{HistoryQuery, JobState};
use imagegen::sim::{Fault, FaultRule, Route};
use serde_json::json;

/// Pinned to one Kolbo model, so no fallback hides the failure.
fn pinned() -> serde_json::Value {
    json!({"prompt": "a lighthouse", "model": "kolbo/z-image/turbo"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_and_refunded_generation_is_a_502_safe_to_retry() {
    let gateway = start().await;
    gateway.sim().faults().inject(FaultRule::always(
        Route::KolboGenerate,
        Fault::provider_failure(),
    ));
    let response = gateway.generate(&pinned()).await;
    assert_eq!(response.headers()["x-imagegen-credits"], "0");
    let (status, body, retry) = error_of(response).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["code"], "generation_failed");
    // Refunded: nothing was charged, so the client's own retry cannot pay twice.
    assert_eq!(retry, None, "{body}");
    // The accepted job is in the route and in the ledger, closed as failed.
    let generation_ids = body["imagegen"]["generation_ids"].as_array().unwrap();
    assert_eq!(generation_ids.len(), 1, "{body}");
    assert_eq!(
        body["imagegen"]["route"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    let history = gateway
        .server
        .ledger()
        .history(&HistoryQuery::newest(5))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, JobState::Failed);
    assert_eq!(json!(history[0].job_id), generation_ids[0]["id"]);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_may_have_been_charged_and_is_never_retried() {
    let gateway = start().await;
    gateway.sim().faults().inject(FaultRule::always(
        Route::KolboGenerate,
        Fault::ResetAfterProcessing,
    ));
    let response = gateway.generate(&pinned()).await;
    let credits = response.headers()["x-imagegen-credits"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body, retry) = error_of(response).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(retry.as_deref(), Some("false"), "{body}");
    assert_ne!(credits, "0", "what may have been charged is counted");
    // Sent once: the gateway did not try it again either.
    assert_eq!(gateway.sim().request_log().count(Route::KolboGenerate), 1);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_before_acceptance_charged_nothing_and_may_be_retried() {
    let gateway = start().await;
    gateway
        .sim()
        .faults()
        .inject(FaultRule::always(Route::KolboGenerate, Fault::status(503)));
    let (status, body, retry) = error_of(gateway.generate(&pinned()).await).await;
    assert!(status >= 500, "{status}: {body}");
    assert_ne!(retry.as_deref(), Some("false"), "{body}");
    assert_eq!(body["imagegen"]["credits"], 0, "{body}");
    assert!(
        gateway
            .server
            .ledger()
            .history(&HistoryQuery::newest(5))
            .await
            .unwrap()
            .is_empty()
    );
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_a_429_with_retry_after() {
    let gateway = start().await;
    gateway.sim().faults().inject(FaultRule::always(
        Route::KolboGenerate,
        Fault::Status {
            status: 429,
            retry_after: Some(7_200),
        },
    ));
    let response = gateway.generate(&pinned()).await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body, retry) = error_of(response).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(retry, None);
    assert_eq!(retry_after.as_deref(), Some("7200"));
    gateway.server.shutdown().await.unwrap();
}

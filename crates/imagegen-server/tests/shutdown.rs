//! Graceful shutdown: no new connections, and every generation in flight, also one whose
//! caller hung up, is recorded in the ledger and its images stored before `shutdown`
//! returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::start;
use imagegen::ledger::{HistoryQuery, JobState};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_paid_jobs_even_when_their_caller_hung_up() {
    let gateway = start().await;
    let request = gateway
        .http
        .post(gateway.url("/v1/images/generations"))
        .json(&json!({"prompt": "a mountain village", "model": "kolbo/z-image/turbo"}))
        .send();
    let caller = tokio::spawn(request);
    // The generation runs on the gateway's own task: wait until it has started (Kolbo's
    // first poll is 150 ms away, so it is still in flight).
    tokio::time::timeout(Duration::from_secs(30), async {
        while gateway.server.generations_in_flight() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the generation started");
    // The caller hangs up; the paid job goes on.
    caller.abort();
    let url = gateway.server.url();
    gateway.server.shutdown().await.unwrap();

    // Stopped: nothing listens any more.
    let refused = reqwest::Client::new()
        .get(format!("{url}/v1/models"))
        .send()
        .await;
    assert!(refused.is_err());
    // The job was recorded and finished, its image stored.
    let ledger = imagegen::ledger::open(&gateway.ledger_url).await.unwrap();
    let history = ledger.history(&HistoryQuery::newest(5)).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].state, JobState::Done);
    assert!(history[0].files[0].starts_with(&gateway.images));
    assert!(history[0].files[0].exists());
    assert!(ledger.open_jobs().await.unwrap().is_empty());
}

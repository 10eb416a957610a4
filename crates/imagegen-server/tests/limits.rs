//! The most generations one caller has in flight: one more is a 429 the client retries,
//! with nothing sent or charged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{error_of, json, start_with};
use imagegen::sim::Route;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_generation_past_the_limit_is_a_429_with_nothing_sent() {
    let gateway = start_with(common::sim(), |config| config.with_max_in_flight_per_key(1)).await;
    let body = json!({"prompt": "a slow fox", "model": "kolbo/z-image/turbo"});
    let first = tokio::spawn(
        gateway
            .http
            .post(gateway.url("/v1/images/generations"))
            .json(&body)
            .send(),
    );
    // Kolbo's first poll is 150 ms away: the first generation is still in flight.
    tokio::time::timeout(Duration::from_secs(30), async {
        while gateway.server.generations_in_flight() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first generation started");
    let refused = gateway.generate(&body).await;
    assert_eq!(refused.headers()["retry-after"], "1");
    let (status, error, retry) = error_of(refused).await;
    assert_eq!(status, 429, "{error}");
    assert_eq!(error["error"]["code"], "too_many_requests_in_flight");
    assert_eq!(error["error"]["type"], "requests");
    assert_eq!(retry, None, "nothing was charged: the client may retry");

    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    let log = gateway.sim().request_log();
    assert_eq!(
        log.count(Route::KolboGenerate),
        1,
        "the refused one sent nothing"
    );
    // The slot is free again.
    let again = gateway.generate(&body).await;
    assert_eq!(again.status(), 200, "{}", json(again).await);
    gateway.server.shutdown().await.unwrap();
}

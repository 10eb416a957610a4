//! `Idempotency-Key`: the same request sent again is answered with the first response and
//! paid for once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Gateway, error_of, json, start};
use imagegen::sim::Route;
use serde_json::{Value, json};

async fn post(gateway: &Gateway, key: &str, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/v1/images/generations"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn submissions(gateway: &Gateway) -> usize {
    let log = gateway.sim().request_log();
    log.count(Route::KolboGenerate) + log.count(Route::KoalaGenerate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_is_answered_again_and_paid_once() {
    let gateway = start().await;
    let body = json!({"prompt": "a heron at dawn", "n": 2});
    let first = post(&gateway, "retry-1", &body).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json(first).await;
    let again = post(&gateway, "retry-1", &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json(again).await, first);
    assert_eq!(submissions(&gateway), 1);

    // The same key for another request is refused; another key runs.
    let other = json!({"prompt": "a heron at dusk"});
    let (status, body, _) = error_of(post(&gateway, "retry-1", &other).await).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(post(&gateway, "retry-2", &other).await.status(), 200);
    assert_eq!(submissions(&gateway), 2);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b64_json_is_replayed_from_the_store() {
    let gateway = start().await;
    let body = json!({"prompt": "a koi", "response_format": "b64_json"});
    let first = json(post(&gateway, "b64", &body).await).await;
    let again = json(post(&gateway, "b64", &body).await).await;
    assert!(first["data"][0]["b64_json"].as_str().unwrap().len() > 100);
    assert_eq!(first, again);
    assert_eq!(submissions(&gateway), 1);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_request_charged_nothing_is_given_back() {
    let gateway = start().await;
    let bad = json!({"prompt": "a fox", "size": "banana"});
    assert_eq!(post(&gateway, "again", &bad).await.status(), 400);
    // Nothing was charged: the key is free for the corrected request.
    let good = json!({"prompt": "a fox"});
    assert_eq!(post(&gateway, "again", &good).await.status(), 200);
    assert_eq!(submissions(&gateway), 1);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_still_running_is_a_409_the_client_retries() {
    let gateway = start().await;
    let body = json!({"prompt": "a slow fox", "model": "kolbo/z-image/turbo"});
    let first = tokio::spawn(
        gateway
            .http
            .post(gateway.url("/v1/images/generations"))
            .header("idempotency-key", "busy")
            .json(&body)
            .send(),
    );
    // Kolbo's first poll is 150 ms away: the first request is still running.
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while gateway.server.generations_in_flight() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first request started");
    let busy = post(&gateway, "busy", &body).await;
    assert_eq!(busy.headers()["retry-after"], "1");
    let (status, error, retry) = error_of(busy).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["code"], "idempotency_in_progress");
    assert_eq!(retry, None, "the client's own retry gets the answer later");
    let first = json(first.await.unwrap().unwrap()).await;
    assert_eq!(json(post(&gateway, "busy", &body).await).await, first);
    assert_eq!(submissions(&gateway), 1);
    gateway.server.shutdown().await.unwrap();
}

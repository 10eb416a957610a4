//! `Idempotency-Key`: the same request sent again is answered with the first response and
//! paid for once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Gateway, error_of, json, start, start_with};
use imagegen::core::{Clock, ManualClock, unix_millis};
use imagegen::ledger::IdempotencyBegin;
use imagegen::ledger::idempotency::request_hash;
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
    assert_eq!(gateway.submissions(), 1);

    // The same key for another request is refused; another key runs.
    let other = json!({"prompt": "a heron at dusk"});
    let (status, body, _) = error_of(post(&gateway, "retry-1", &other).await).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(post(&gateway, "retry-2", &other).await.status(), 200);
    assert_eq!(gateway.submissions(), 2);
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
    assert_eq!(gateway.submissions(), 1);
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
    assert_eq!(gateway.submissions(), 1);
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
    assert_eq!(gateway.submissions(), 1);
    gateway.server.shutdown().await.unwrap();
}

/// Marks `body` under `key` as running since `at_ms`, as a gateway that crashed
/// mid-request leaves it.
async fn crashed_while_running(gateway: &Gateway, key: &str, body: &Value, at_ms: u64) {
    crashed_running_generation(gateway, key, body, None, at_ms).await;
}

/// [`crashed_while_running`], the key naming `generation`.
async fn crashed_running_generation(
    gateway: &Gateway,
    key: &str,
    body: &Value,
    generation: Option<&str>,
    at_ms: u64,
) {
    let mut hashed = b"POST /v1/images/generations\n".to_vec();
    hashed.extend_from_slice(&serde_json::to_vec(body).unwrap());
    let begun = gateway
        .server
        .ledger()
        .begin_idempotent("anonymous", key, &request_hash(&hashed), generation, at_ms)
        .await
        .unwrap();
    assert_eq!(begun, IdempotencyBegin::Started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_left_running_by_a_crash_is_pruned_after_a_day() {
    let clock = ManualClock::manual();
    let gateway = start_with(common::sim(), |config| config.with_clock(clock.shared())).await;
    let start_ms = unix_millis(clock.wall_time());
    let body = json!({"prompt": "a crane"});
    crashed_while_running(&gateway, "crashed", &body, start_ms).await;
    assert_eq!(post(&gateway, "crashed", &body).await.status(), 409);

    // A day and an hour later the hourly upkeep has pruned it: the key runs again.
    clock.advance(std::time::Duration::from_secs(25 * 60 * 60));
    let answered = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let response = post(&gateway, "crashed", &body).await;
            if response.status() != 409 {
                return response;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stale key was pruned");
    assert_eq!(answered.status(), 200);
    assert_eq!(gateway.submissions(), 1);
    gateway.server.shutdown().await.unwrap();

    // A gateway starting prunes before it listens.
    let body = json!({"prompt": "a stork"});
    let gateway = start().await;
    // Running since 1970: far older than a day on any clock.
    crashed_while_running(&gateway, "old", &body, 0).await;
    assert_eq!(post(&gateway, "old", &body).await.status(), 409);
    let ledger = gateway.ledger().await;
    gateway.server.shutdown().await.unwrap();
    let again = start_with(common::sim(), |config| config.with_ledger(ledger)).await;
    assert_eq!(post(&again, "old", &body).await.status(), 200);
    again.server.shutdown().await.unwrap();
}

/// A gateway that died after taking a key but before sending anything: another gateway
/// on the ledger takes its generation over, finds nothing was sent, and gives the key
/// back, so the client's retry runs the request afresh (charged once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_a_gateway_that_died_before_sending_runs_again() {
    let gateway = start_with(common::sim(), |config| {
        config.with_job_lease(std::time::Duration::from_secs(1))
    })
    .await;
    let ledger = gateway.server.ledger().clone();
    let body = json!({"prompt": "a heron"});
    crashed_running_generation(&gateway, "died", &body, Some("req_dead_1"), 1).await;
    ledger
        .create_generation(
            &imagegen_ledger::NewGeneration::new(
                "req_dead_1",
                "local",
                imagegen_ledger::Lease::new("gw-dead", 1),
            )
            .with_request_key("nothing-was-sent"),
        )
        .await
        .unwrap();
    assert_eq!(post(&gateway, "died", &body).await.status(), 409);

    // The keeper takes the generation over and answers it: nothing was sent.
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let answered = ledger.generation("req_dead_1").await.unwrap().unwrap();
            if answered.finished_at_ms.is_some() {
                assert_eq!(answered.status, Some(503));
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the generation was taken over");
    // The next try gives the key back; the one after runs it.
    let retried = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let response = post(&gateway, "died", &body).await;
            if response.status() != 409 {
                return response;
            }
        }
    })
    .await
    .expect("the key was given back");
    assert_eq!(retried.status(), 200);
    assert_eq!(gateway.submissions(), 1);
    gateway.server.shutdown().await.unwrap();
}

/// A gateway that died after recording its request (the write-ahead before a
/// submission) and before any job: the submission may have been charged, its answer
/// lost with the gateway. The gateway that takes it over says so (502, never "nothing
/// was sent"), keeps the key, and nothing is submitted again however often it is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_a_gateway_that_died_while_sending_is_never_sent_again() {
    let gateway = start_with(common::sim(), |config| {
        config.with_job_lease(std::time::Duration::from_secs(1))
    })
    .await;
    let ledger = gateway.server.ledger().clone();
    let body = json!({"prompt": "an egret"});
    ledger
        .create_generation(
            &imagegen_ledger::NewGeneration::new(
                "req_dead_2",
                "local",
                imagegen_ledger::Lease::new("gw-dead", 1),
            )
            .with_request_key("sent-then-died"),
        )
        .await
        .unwrap();
    crashed_running_generation(&gateway, "sending", &body, Some("req_dead_2"), 1).await;
    ledger
        .record_request(&imagegen_ledger::NewRequest::new(
            "an egret",
            "{}",
            std::path::Path::new("out"),
            "sent-then-died",
            1,
        ))
        .await
        .unwrap();

    let answered = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let response = post(&gateway, "sending", &body).await;
            if response.status() != 409 {
                return response;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the generation was taken over");
    let (status, error, retry) = error_of(answered).await;
    assert_eq!(status, 502, "{error}");
    assert_eq!(retry.as_deref(), Some("false"), "may have been charged");
    assert_eq!(error["error"]["code"], "generation_failed");
    assert_eq!(error["imagegen"]["nothing_sent"], false);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may have charged"),
        "{error}"
    );
    // Asked again: the same answer, and still nothing sent.
    let (status, _, _) = error_of(post(&gateway, "sending", &body).await).await;
    assert_eq!(status, 502);
    assert_eq!(gateway.submissions(), 0);
    gateway.server.shutdown().await.unwrap();
}

/// A gateway that died with its one job failed at the provider: the gateway that takes
/// the request over answers as the dead one would have, 502 `generation_failed` with the
/// provider's reason (not a generic "gateway stopped"), keeps the key, sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_jobs_all_failed_is_answered_with_the_providers_reason() {
    let gateway = start_with(common::sim(), |config| {
        config.with_job_lease(std::time::Duration::from_secs(1))
    })
    .await;
    let ledger = gateway.server.ledger().clone();
    let body = json!({"prompt": "a grebe"});
    ledger
        .create_generation(
            &imagegen_ledger::NewGeneration::new(
                "req_dead_3",
                "local",
                imagegen_ledger::Lease::new("gw-dead", 1),
            )
            .with_request_key("failed-then-died"),
        )
        .await
        .unwrap();
    crashed_running_generation(&gateway, "failed", &body, Some("req_dead_3"), 1).await;
    let request = ledger
        .record_request(&imagegen_ledger::NewRequest::new(
            "a grebe",
            "{}",
            std::path::Path::new("out"),
            "failed-then-died",
            1,
        ))
        .await
        .unwrap();
    let job = imagegen::core::JobHandle::new("kolbo", "gen-flagged", 1, 1);
    ledger
        .record_accepted(
            &imagegen_ledger::AcceptedJob::new(
                job.clone(),
                "a grebe",
                "out",
                imagegen::core::Credits::whole(1),
            )
            .with_request(request),
        )
        .await
        .unwrap();
    ledger
        .finish_job(
            &job.provider,
            &job.job_id,
            &imagegen_ledger::JobFinish::failed(2, "content flagged as sensitive"),
        )
        .await
        .unwrap();

    let answered = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let response = post(&gateway, "failed", &body).await;
            if response.status() != 409 {
                return response;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the generation was taken over");
    let (status, error, retry) = error_of(answered).await;
    assert_eq!(status, 502, "{error}");
    assert_eq!(retry.as_deref(), Some("false"));
    assert_eq!(error["error"]["code"], "generation_failed");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content flagged as sensitive"),
        "{error}"
    );
    assert_eq!(gateway.submissions(), 0);
    gateway.server.shutdown().await.unwrap();
}

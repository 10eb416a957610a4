//! imagegen's own endpoints beside OpenAI's: `POST /v1/estimate` and `GET /v1/spend`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Gateway, error_of, json, start};
use imagegen_ledger::api_keys::{ApiKey, ExposeSecret, NewApiKey};
use serde_json::{Value, json};

async fn estimate(gateway: &Gateway, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/v1/estimate"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn spend(gateway: &Gateway, query: &str) -> reqwest::Response {
    gateway
        .http
        .get(gateway.url(&format!("/v1/spend{query}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_estimate_ranks_priced_candidates_and_sends_nothing() {
    let gateway = start().await;
    let response = estimate(
        &gateway,
        &json!({"prompt": "a fox", "n": 2, "size": "1536x1024"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["images"], 2, "{body}");
    let candidates = body["candidates"].as_array().unwrap();
    assert!(!candidates.is_empty(), "{body}");
    assert_eq!(candidates[0]["eligible"], true, "{body}");
    assert!(!candidates[0]["total_credits"].is_null(), "{body}");
    assert!(candidates[0]["reason"].is_string(), "{body}");
    // A model named is the only one tried; the others say why not.
    let pinned = json(
        estimate(
            &gateway,
            &json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}),
        )
        .await,
    )
    .await;
    let eligible: Vec<&Value> = pinned["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["eligible"] == true)
        .collect();
    assert_eq!(eligible.len(), 1, "{pinned}");
    let excluded = pinned["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["eligible"] == false);
    assert!(
        excluded.is_some_and(|c| !c["exclusions"].as_array().unwrap().is_empty()),
        "{pinned}"
    );
    // Bad requests are the same 400s as a generation's.
    let (status, error, _) =
        error_of(estimate(&gateway, &json!({"prompt": "a fox", "size": "banana"})).await).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["param"], "size");
    assert_eq!(gateway.submissions(), 0, "an estimate sends no generation");
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_sums_the_ledger_by_provider_model_and_day() {
    let gateway = start().await;
    let empty = json(spend(&gateway, "").await).await;
    assert_eq!(empty["data"], json!([]), "{empty}");
    let made = gateway
        .generate(&json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}))
        .await;
    assert_eq!(made.status(), 200);
    let made = json(made).await;

    let by_provider = json(spend(&gateway, "?by=provider").await).await;
    assert_eq!(by_provider["by"], "provider");
    assert_eq!(
        by_provider["data"][0]["provider"], made["imagegen"]["provider"],
        "{by_provider}"
    );
    assert_eq!(by_provider["data"][0]["jobs"], 1);
    assert_eq!(
        by_provider["data"][0]["credits"],
        made["imagegen"]["credits"]
    );
    let by_model = json(spend(&gateway, "?by=model").await).await;
    assert_eq!(
        by_model["data"][0]["model"], made["imagegen"]["model"],
        "{by_model}"
    );
    let by_day = json(spend(&gateway, "?by=day").await).await;
    assert!(by_day["data"][0]["day"].is_string(), "{by_day}");
    let (status, error, _) = error_of(spend(&gateway, "?by=week").await).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["param"], "by");

    // Once keys are in use, a key holder sees what its own key paid for, not the ledger's.
    let key = ApiKey::generate().unwrap();
    gateway
        .server
        .ledger()
        .create_api_key(&NewApiKey::new("ci-bot", &key))
        .await
        .unwrap();
    let secret = key.secret().expose_secret().to_owned();
    let keyed = gateway
        .http
        .get(gateway.url("/v1/spend"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    let mine = json(keyed).await;
    assert_eq!(mine["scope"], "key", "{mine}");
    assert_eq!(mine["data"], json!([]), "this key paid for nothing: {mine}");
    assert_eq!(error_of(spend(&gateway, "").await).await.0, 401);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_generation_answers_202_and_its_id_reads_the_result() {
    let gateway = start().await;
    let started = gateway
        .http
        .post(gateway.url("/v1/generations"))
        .json(&json!({"prompt": "a fox", "response_format": "b64_json"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let started = json(started).await;
    assert_eq!(started["status"], "running", "{started}");
    let id = started["id"].as_str().unwrap().to_owned();

    let url = gateway.url(&format!("/v1/generations/{id}"));
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let body = json(gateway.http.get(&url).send().await.unwrap()).await;
            if body["status"] != "running" {
                return body;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the generation finished");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["http_status"], 200);
    let response = &done["response"];
    assert!(
        response["data"][0]["b64_json"].as_str().unwrap().len() > 100,
        "{done}"
    );
    assert!(response["imagegen"]["provider"].is_string(), "{done}");
    assert_eq!(gateway.submissions(), 1);

    let unknown = gateway
        .http
        .get(gateway.url("/v1/generations/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(unknown).await.0, 404);
    // A bad request is refused at once, as a waited one would be.
    let bad = gateway
        .http
        .post(gateway.url("/v1/generations"))
        .json(&json!({"prompt": "a fox", "size": "banana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(bad).await.0, 400);
    gateway.server.shutdown().await.unwrap();
}

/// The events of `GET /v1/generations/{id}/events` read to the stream's end, as
/// `(event, data)` pairs.
async fn read_events(response: reqwest::Response) -> Vec<(String, Value)> {
    use futures_util::StreamExt as _;
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    })
    .await
    .expect("the stream ended");
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(json) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(json).unwrap());
                }
            }
            Some((event?, data?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_generation_streams_its_events_to_its_caller_only() {
    let gateway = start().await;
    let mut secrets = Vec::new();
    for name in ["owner", "other"] {
        let key = ApiKey::generate().unwrap();
        gateway
            .server
            .ledger()
            .create_api_key(&NewApiKey::new(name, &key))
            .await
            .unwrap();
        secrets.push(key.secret().expose_secret().to_owned());
    }
    let started = gateway
        .http
        .post(gateway.url("/v1/generations"))
        .bearer_auth(&secrets[0])
        .json(&json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let id = json(started).await["id"].as_str().unwrap().to_owned();
    let url = gateway.url(&format!("/v1/generations/{id}/events"));

    let stream = gateway
        .http
        .get(&url)
        .bearer_auth(&secrets[0])
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = read_events(stream).await;
    let (last, done) = events.last().expect("at least the done event");
    assert_eq!(last, "done", "{events:?}");
    assert_eq!(done["id"], id.as_str(), "{done}");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["response"]["data"][0]["url"].is_string(), "{done}");
    for (name, data) in &events[..events.len() - 1] {
        assert_eq!(name, "progress", "{events:?}");
        assert!(data["provider"].is_string(), "{data}");
    }
    // Its answer is the GET's.
    let got = json(
        gateway
            .http
            .get(gateway.url(&format!("/v1/generations/{id}")))
            .bearer_auth(&secrets[0])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(&got, done);

    // Finished: the done event only.
    let again = gateway
        .http
        .get(&url)
        .bearer_auth(&secrets[0])
        .send()
        .await
        .unwrap();
    let again = read_events(again).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(&again[0].1, done);

    // Another caller's generation is unknown to it.
    let other = gateway
        .http
        .get(&url)
        .bearer_auth(&secrets[1])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(other).await.0, 404);
    gateway.server.shutdown().await.unwrap();
}

/// Two gateways on one ledger and one image folder: a generation started on one is
/// answered by the other, and followed there through the ledger; the one running it
/// streams its progress as it happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_started_on_one_gateway_is_answered_by_another() {
    // Slow enough that a follower hears progress before the end.
    let first = common::start_with(common::sim().with_speed(0.3), |config| config).await;
    let ledger_url = first.ledger_url.clone();
    let images = first.images.clone();
    let second = common::start_with(common::sim(), move |config| {
        config.with_ledger_url(ledger_url).with_image_dir(images)
    })
    .await;
    let started = first
        .http
        .post(first.url("/v1/generations"))
        .json(&json!({"prompt": "a slow fox", "model": "kolbo/z-image/turbo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let id = json(started).await["id"].as_str().unwrap().to_owned();
    let events_path = format!("/v1/generations/{id}/events");

    // Followed on both at once: here as it happens, there through the ledger.
    let here = first.http.get(first.url(&events_path)).send();
    let there = second.http.get(second.url(&events_path)).send();
    let (here, there) = tokio::join!(here, there);
    let (here, there) = tokio::join!(read_events(here.unwrap()), read_events(there.unwrap()));
    let progress = here.iter().filter(|(name, _)| name == "progress").count();
    assert!(
        progress >= 1,
        "the running gateway streams progress: {here:?}"
    );
    let (last_here, done_here) = here.last().unwrap();
    let (last_there, done_there) = there.last().unwrap();
    assert_eq!((last_here.as_str(), last_there.as_str()), ("done", "done"));
    assert_eq!(done_here["status"], "succeeded", "{done_here}");
    assert_eq!(done_here, done_there, "both gateways answer the same");

    let got = json(
        second
            .http
            .get(second.url(&format!("/v1/generations/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(&got, done_here);
    // Its image is served by the other gateway too (one image folder).
    let url = got["response"]["data"][0]["url"].as_str().unwrap();
    let file = url.rsplit('/').next().unwrap();
    let image = second
        .http
        .get(second.url(&format!("/v1/files/{file}")))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    assert!(
        error_of(
            second
                .http
                .get(second.url("/v1/generations/req_unknown"))
                .send()
                .await
                .unwrap()
        )
        .await
        .0 == 404
    );
    first.server.shutdown().await.unwrap();
    second.server.shutdown().await.unwrap();
}

/// A cooldown one gateway learned rests the provider on every gateway of its ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_learned_by_one_gateway_is_honoured_by_another() {
    let lease = std::time::Duration::from_secs(1);
    let first = common::start_with(common::sim(), move |config| config.with_job_lease(lease)).await;
    let ledger_url = first.ledger_url.clone();
    let second = common::start_with(common::sim(), move |config| {
        config.with_ledger_url(ledger_url).with_job_lease(lease)
    })
    .await;
    let kolbo = imagegen::ProviderId::new("kolbo");
    first
        .client
        .cooldowns()
        .rest(&kolbo, None, std::time::Duration::from_secs(120));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while second.client.cooldowns().remaining(&kolbo, None).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the second gateway never heard of the cooldown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let left = second.client.cooldowns().remaining(&kolbo, None).unwrap();
    assert!(left > std::time::Duration::from_secs(100), "{left:?}");
    // Routing there skips it: an estimate names the cooldown as the reason.
    let estimate = json(
        second
            .http
            .post(second.url("/v1/estimate"))
            .json(&json!({"prompt": "a fox", "model": "kolbo/z-image/turbo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(estimate.to_string().contains("cool"), "{estimate}");
    first.server.shutdown().await.unwrap();
    second.server.shutdown().await.unwrap();
}

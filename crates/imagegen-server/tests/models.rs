//! `GET /v1/models`: OpenAI's list shape, ids as `provider/model`, prices as an extension.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{error_of, json, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_in_openais_shape_with_prices() {
    let gateway = start().await;
    let response = gateway
        .http
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    assert!(data.len() > 5, "{body}");
    for model in data {
        let id = model["id"].as_str().unwrap();
        let owner = model["owned_by"].as_str().unwrap();
        assert!(id.starts_with(&format!("{owner}/")), "{model}");
        assert_eq!(model["object"], "model");
        assert!(model["created"].as_u64().is_some(), "{model}");
        assert!(
            model["imagegen"]["credits_per_image"].is_number(),
            "{model}"
        );
        assert_eq!(model["imagegen"]["provider"], owner);
    }
    let turbo = data
        .iter()
        .find(|m| m["id"] == "kolbo/z-image/turbo")
        .expect("the simulator's Kolbo catalog has it");
    assert_eq!(turbo["imagegen"]["credits_per_image"], 0.5);
    // Kolbo documents one credit as one cent.
    assert_eq!(turbo["imagegen"]["usd_per_image"], 0.005);
    assert!(data.iter().any(|m| m["owned_by"] == "koala"));

    // One model, by its id (slashes and all).
    let one = json(
        gateway
            .http
            .get(gateway.url("/v1/models/kolbo/z-image/turbo"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one["id"], "kolbo/z-image/turbo");
    let missing = gateway
        .http
        .get(gateway.url("/v1/models/kolbo/dall-e-3"))
        .send()
        .await
        .unwrap();
    let (status, body, _) = error_of(missing).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    gateway.server.shutdown().await.unwrap();
}

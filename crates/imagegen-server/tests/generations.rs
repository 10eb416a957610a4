//! `POST /v1/images/generations` and `GET /v1/files/…` against the in-process simulator,
//! as an OpenAI client calls them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::{error_of, is_png_or_jpeg, json, start};
use imagegen::ledger::{HistoryQuery, JobState};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_generation_is_stored_served_and_recorded() {
    let gateway = start().await;
    let response = gateway
        .generate(&json!({"prompt": "a lighthouse at dusk", "model": "auto"}))
        .await;
    assert_eq!(response.status(), 200);
    let credits = response.headers()["x-imagegen-credits"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(response.headers().get("x-request-id").is_some());
    assert!(
        response
            .headers()
            .get("x-imagegen-ignored-fields")
            .is_none()
    );
    let body = json(response).await;

    assert!(body["created"].as_u64().unwrap() > 1_700_000_000, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{body}");
    assert!(data[0].get("b64_json").is_none());
    assert!(data[0].get("revised_prompt").is_some());
    let url = data[0]["url"].as_str().unwrap();
    let prefix = format!("{}/v1/files/", gateway.server.url());
    assert!(url.starts_with(&prefix), "{url}");

    // The extension: where it went and what it cost.
    let extension = &body["imagegen"];
    assert_eq!(extension["credits"].to_string(), credits);
    assert!(extension["provider"].is_string(), "{extension}");
    assert!(extension["model"].is_string(), "{extension}");
    assert_eq!(
        extension["route"].as_array().unwrap().len(),
        1,
        "{extension}"
    );
    assert_eq!(extension["generation_ids"].as_array().unwrap().len(), 1);
    assert_eq!(extension["simulated"], true);
    let sha = extension["images"][0]["sha256"].as_str().unwrap();

    // The file: named by its content's hash, with its type.
    let file = gateway.http.get(url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    let mime = file.headers()["content-type"].to_str().unwrap().to_owned();
    let bytes = file.bytes().await.unwrap();
    assert!(is_png_or_jpeg(&bytes));
    let png = bytes.starts_with(b"\x89PNG");
    assert_eq!(mime, if png { "image/png" } else { "image/jpeg" });
    assert!(url.ends_with(if png { ".png" } else { ".jpg" }), "{url}");
    assert!(url.contains(sha));
    let stored = gateway.images.join(url.rsplit('/').next().unwrap());
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);

    // The ledger has the job, done, with the stored file.
    let history = gateway
        .server
        .ledger()
        .history(&HistoryQuery::newest(10))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].prompt, "a lighthouse at dusk");
    assert_eq!(history[0].state, JobState::Done);
    assert_eq!(history[0].files, vec![stored.clone()]);
    assert_eq!(
        history[0].charged.map(|c| c.to_string()),
        Some(credits.clone())
    );
    // Nothing is left behind but the stored image: no sidecar, no part file, nothing in
    // the incoming folder.
    let left: Vec<_> = std::fs::read_dir(gateway.images.join(".incoming"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mut in_store: Vec<String> = std::fs::read_dir(&gateway.images)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    in_store.sort();
    let stored_name = stored.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(in_store, [".incoming".to_owned(), stored_name]);
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b64_json_is_the_stored_bytes_and_n_two_makes_two() {
    let gateway = start().await;
    let response = gateway
        .generate(
            &json!({"prompt": "a red fox in the snow", "n": 2, "response_format": "b64_json"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{body}");
    for (item, image) in data
        .iter()
        .zip(body["imagegen"]["images"].as_array().unwrap())
    {
        assert!(item.get("url").is_none());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item["b64_json"].as_str().unwrap())
            .unwrap();
        assert!(is_png_or_jpeg(&bytes));
        let served = gateway
            .http
            .get(image["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes, served);
    }
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openais_sizes_map_onto_shapes_and_the_rest_is_a_400_on_size() {
    let gateway = start().await;
    let response = gateway
        .generate(&json!({"prompt": "a harbour", "size": "1536x1024", "quality": "auto"}))
        .await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    let image = &body["imagegen"]["images"][0];
    let (width, height) = (
        image["width"].as_u64().unwrap(),
        image["height"].as_u64().unwrap(),
    );
    assert!(width > height, "{image}");

    for size in ["banana", "0x1024", "4000x1000"] {
        let (status, body, _) = error_of(
            gateway
                .generate(&json!({"prompt": "a harbour", "size": size}))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{size}: {body}");
        assert_eq!(body["error"]["param"], "size", "{size}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    // Nothing was sent for them.
    assert_eq!(
        gateway
            .server
            .ledger()
            .history(&HistoryQuery::newest(10))
            .await
            .unwrap()
            .len(),
        1
    );
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_openai_errors_naming_the_param() {
    let gateway = start().await;
    let cases = [
        (json!({"n": 1}), 400, Some("prompt")),
        (json!({"prompt": ""}), 400, Some("prompt")),
        (json!({"prompt": "x".repeat(32_001)}), 400, Some("prompt")),
        (json!({"prompt": "a fox", "n": 11}), 400, Some("n")),
        (
            json!({"prompt": "a fox", "model": "dall-e-3"}),
            404,
            Some("model"),
        ),
        (
            json!({"prompt": "a fox", "model": "koala/z-image/turbo"}),
            404,
            Some("model"),
        ),
        (
            json!({"prompt": "a fox", "response_format": "png"}),
            400,
            Some("response_format"),
        ),
        (
            json!({"prompt": "a fox", "stream": true}),
            400,
            Some("stream"),
        ),
    ];
    for (body, want, param) in cases {
        let (status, error, retry) = error_of(gateway.generate(&body).await).await;
        assert_eq!(status, want, "{body}: {error}");
        assert_eq!(error["error"]["param"].as_str(), param, "{body}: {error}");
        assert_eq!(retry, None, "nothing was sent: {error}");
    }
    // Not JSON at all.
    let response = gateway
        .http
        .post(gateway.url("/v1/images/generations"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
    // Not sent as JSON: a web page cannot post it cross-origin.
    let response = gateway
        .http
        .post(gateway.url("/v1/images/generations"))
        .header("content-type", "text/plain")
        .body(r#"{"prompt":"a fox"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
    // Too large. The gateway answers before reading the body and closes that
    // connection, so this request gets a client of its own: the shared pool must not
    // pick the closed connection for the next request.
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/images/generations"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 413);
    // Unknown routes.
    let response = gateway
        .http
        .get(gateway.url("/v1/nothing"))
        .send()
        .await
        .unwrap();
    let (status, body, _) = error_of(response).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["message"], "Invalid URL (GET /v1/nothing)");
    let response = gateway
        .http
        .get(gateway.url("/v1/images/generations"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 405);
    // Nothing reached a provider.
    assert_eq!(
        gateway
            .sim()
            .request_log()
            .count(imagegen::sim::Route::KolboGenerate),
        0
    );
    assert_eq!(
        gateway
            .sim()
            .request_log()
            .count(imagegen::sim::Route::KoalaGenerate),
        0
    );
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_ignored_and_named() {
    let gateway = start().await;
    let response = gateway
        .generate(&json!({
            "prompt": "a koi pond",
            "model": "kolbo/z-image/turbo",
            "background": "transparent",
            "style": "vivid",
            "colour": "red",
            "user": "user-1",
        }))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-imagegen-ignored-fields"],
        "style, background, colour"
    );
    let body = json(response).await;
    assert_eq!(
        body["imagegen"]["ignored_fields"],
        json!(["style", "background", "colour"])
    );
    assert_eq!(body["imagegen"]["provider"], "kolbo");
    assert_eq!(body["imagegen"]["model"], "z-image/turbo");
    gateway.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_served_by_hash_only() {
    let gateway = start().await;
    let body = json(gateway.generate(&json!({"prompt": "a heron"})).await).await;
    let url = body["data"][0]["url"].as_str().unwrap().to_owned();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let (hash, _) = name.split_once('.').unwrap();

    let cached = gateway
        .http
        .get(&url)
        .header("if-none-match", format!("\"{hash}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    let missing = format!("{}.png", "0".repeat(64));
    for path in [
        format!("/v1/files/{missing}"),
        "/v1/files/ledger.sqlite3".to_owned(),
        "/v1/files/..%2Fledger.sqlite3".to_owned(),
        "/v1/files/.incoming".to_owned(),
    ] {
        let response = gateway.http.get(gateway.url(&path)).send().await.unwrap();
        assert_eq!(error_of(response).await.0, 404, "{path}");
    }
    gateway.server.shutdown().await.unwrap();
}

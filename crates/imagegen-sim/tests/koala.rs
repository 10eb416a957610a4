//! Every KoalaImages route and error through plain HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{dimensions, fetch, koala_generate, sim, until_logged};
use imagegen_sim::{
    Credential, Fault, FaultRule, KoalaAccount, KoalaErrorBody, KoalaPlan, ListenerKind, Route,
};
use serde_json::{Value, json};

fn image_id(url: &str) -> &str {
    url.rsplit('/')
        .next()
        .unwrap()
        .strip_suffix(".jpg")
        .unwrap()
}

fn is_documented_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 3
        && parts[0] == "v2"
        && parts[1..].iter().all(|p| {
            p.len() == 5
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[tokio::test]
async fn generation_answers_at_once_and_the_url_blocks_until_ready() {
    let (sim, clock) = sim(|c| c).await;
    let key = sim.koala_api_key().to_owned();
    let reply = koala_generate(&sim, &key, &json!({"prompt": "cat"})).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = reply.json();
    let images = body.as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(
        images[0]["alt"], "",
        "alt is always there, empty unless asked for"
    );
    let url = images[0]["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/image/", sim.koala_base_url())),
        "{url}"
    );
    assert!(is_documented_id(image_id(&url)), "{url}");
    assert_eq!(
        sim.koala_credits(&key),
        Some(999),
        "gpt-image-2 fast costs 1"
    );

    // The GET is held open until the image is ready (8-15 s at speed 1).
    let logged = sim.request_log().total();
    let get = tokio::spawn({
        let url = format!("{url}?fast=1");
        async move { fetch(&url).await }
    });
    until_logged(&sim, logged + 1).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!get.is_finished(), "the image is not ready yet");
    assert_eq!(sim.request_log().entries().last().unwrap().status, None);
    clock.advance(Duration::from_secs(60));
    let image = get.await.unwrap();
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/jpeg"));
    assert_eq!(dimensions(&image.body), (64, 64));
    // Once ready, it answers at once; the same bytes each time; no credentials needed.
    assert_eq!(fetch(&url).await.body, image.body);
    let gets = sim.request_log().for_route(Route::KoalaImage);
    assert!(
        gets.iter()
            .all(|r| r.auth.is_none() && r.listener == ListenerKind::Api)
    );
    assert_eq!(gets[0].query.as_deref(), Some("fast=1"));
    let head = common::client().head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn every_parameter_is_honoured() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.koala_api_key().to_owned();
    let body = json!({
        "prompt": "A majestic mountain landscape with a lake reflecting the sunrise",
        "style": "watercolor",
        "size": "1536x640",
        "numImages": 3,
        "model": "gpt-image-2",
        "quality": "medium",
        "enhancePrompt": "on",
        "generateAltText": true,
        "referenceImages": ["https://example.com/a.jpg"],
        "background": "transparent"
    });
    let images = koala_generate(&sim, &key, &body).await.json();
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), 3);
    assert_eq!(sim.koala_credits(&key), Some(1000 - 24), "8 credits × 3");
    let alt = images[0]["alt"].as_str().unwrap();
    assert!(
        alt.starts_with("A watercolor painting of A majestic mountain"),
        "{alt}"
    );
    let urls: Vec<&str> = images.iter().map(|i| i["url"].as_str().unwrap()).collect();
    assert_ne!(urls[0], urls[1]);
    clock.advance(Duration::from_secs(1));
    let first = fetch(urls[0]).await.body;
    // 1536x640 snaps to gpt-image-2's 1792x1008, served at 64 on the long side.
    assert_eq!(dimensions(&first), (64, 36));
    assert_ne!(first, fetch(urls[1]).await.body);

    // Other models take the listed sizes as they are.
    let ideo = koala_generate(
        &sim,
        &key,
        &json!({"prompt": "x", "model": "ideogram-3.0", "size": "1216x832"}),
    )
    .await
    .json();
    assert_eq!(
        dimensions(&fetch(ideo[0]["url"].as_str().unwrap()).await.body),
        (64, 44)
    );
    let portrait = koala_generate(
        &sim,
        &key,
        &json!({"prompt": "x", "model": "standard", "size": "portrait"}),
    )
    .await
    .json();
    assert_eq!(
        dimensions(&fetch(portrait[0]["url"].as_str().unwrap()).await.body),
        (44, 64)
    );
}

#[tokio::test]
async fn preserve_original_serves_png_behind_a_jpg_url() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.koala_api_key().to_owned();
    let raw = koala_generate(
        &sim,
        &key,
        &json!({"prompt": "cat", "preserveOriginal": true}),
    )
    .await
    .json();
    let url = raw[0]["url"].as_str().unwrap();
    assert!(url.ends_with(".jpg"));
    clock.advance(Duration::from_secs(1));
    let image = fetch(url).await;
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert!(image.body.starts_with(b"\x89PNG"));
    // Only gpt-image-2 honours it.
    let nano = koala_generate(
        &sim,
        &key,
        &json!({"prompt": "cat", "model": "nano-banana-2", "preserveOriginal": true}),
    )
    .await
    .json();
    let image = fetch(nano[0]["url"].as_str().unwrap()).await;
    assert_eq!(image.header("content-type"), Some("image/jpeg"));
}

#[tokio::test]
async fn same_prompt_same_bytes_and_references_steer_the_picture() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.koala_api_key().to_owned();
    let mut bodies = Vec::new();
    for body in [
        json!({"prompt": "a lighthouse"}),
        json!({"prompt": "a lighthouse"}),
        json!({"prompt": "a lighthouse", "referenceImages": ["https://example.com/r.jpg"]}),
    ] {
        let r = koala_generate(&sim, &key, &body).await.json();
        clock.advance(Duration::from_secs(1));
        bodies.push(fetch(r[0]["url"].as_str().unwrap()).await.body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_ne!(bodies[0], bodies[2]);
}

#[tokio::test]
async fn bad_requests_are_400_with_an_error_and_charge_nothing() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.koala_api_key().to_owned();
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "prompt"),
        (json!({"prompt": "  "}), "prompt"),
        (json!({"prompt": 5}), "prompt"),
        (json!({"prompt": "x", "numImages": 0}), "numImages"),
        (json!({"prompt": "x", "numImages": 5}), "numImages"),
        (json!({"prompt": "x", "numImages": 1.5}), "numImages"),
        (json!({"prompt": "x", "style": "oil"}), "style"),
        (json!({"prompt": "x", "model": "dall-e-3"}), "model"),
        (json!({"prompt": "x", "quality": "turbo"}), "quality"),
        (
            json!({"prompt": "x", "model": "ideogram-3.0", "quality": "high"}),
            "quality",
        ),
        (
            json!({"prompt": "x", "model": "ideogram-3.0", "size": "1792x1024"}),
            "size",
        ),
        (json!({"prompt": "x", "size": "huge"}), "size"),
        (
            json!({"prompt": "x", "enhancePrompt": true}),
            "enhancePrompt",
        ),
        (
            json!({"prompt": "x", "enhancePrompt": "maybe"}),
            "enhancePrompt",
        ),
        (
            json!({"prompt": "x", "referenceImages": ["a", "b", "c", "d", "e", "f"]}),
            "5 reference",
        ),
        (
            json!({"prompt": "x", "referenceImages": "https://e.x/a.jpg"}),
            "referenceImages",
        ),
        (
            json!({"prompt": "x", "generateAltText": "yes"}),
            "generateAltText",
        ),
        (
            json!({"prompt": "x", "preserveOriginal": 1}),
            "preserveOriginal",
        ),
        (json!("cat"), "format"),
    ];
    for (body, needle) in cases {
        let reply = koala_generate(&sim, &key, &body).await;
        assert_eq!(reply.status, 400, "{body}");
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "{body}: {error}");
    }
    assert_eq!(sim.koala_credits(&key), Some(1000));
    // Unknown keys are ignored, and a quality on a model without qualities is ignored.
    let ok = koala_generate(&sim, &key, &json!({"prompt": "x", "model": "nano-banana-2", "quality": "high", "output_format": "png"})).await;
    assert_eq!(ok.status, 200);
    assert_eq!(sim.koala_credits(&key), Some(995));
}

#[tokio::test]
async fn auth_plan_and_credit_errors() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.koala_api_key().to_owned();
    let missing = common::client()
        .post(format!("{}/image-generation/", sim.koala_base_url()))
        .json(&json!({"prompt": "cat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = koala_generate(
        &sim,
        "00000000-0000-4000-a000-000000000000",
        &json!({"prompt": "cat"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.json()["error"].is_string());
    let kolbo_key = sim.kolbo_api_key().to_owned();
    assert_eq!(
        koala_generate(&sim, &kolbo_key, &json!({"prompt": "cat"}))
            .await
            .status,
        401
    );
    let seen = sim.request_log().entries().pop().unwrap();
    assert_eq!(seen.auth.authorization, Some(Credential::KolboKey));

    let basic = "11111111-1111-4111-a111-111111111111";
    sim.add_koala_account(KoalaAccount::new(basic, KoalaPlan::Basic).with_credits(100));
    for body in [
        json!({"prompt": "cat", "quality": "medium"}),
        json!({"prompt": "cat", "quality": "high"}),
        json!({"prompt": "cat", "model": "ideogram-3.0"}),
        json!({"prompt": "cat", "model": "nano-banana-2"}),
        json!({"prompt": "cat", "model": "premium"}),
    ] {
        let reply = koala_generate(&sim, basic, &body).await;
        assert_eq!(reply.status, 403, "{body}");
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .contains("Professional")
        );
    }
    for body in [
        json!({"prompt": "cat"}),
        json!({"prompt": "cat", "quality": "fast"}),
        json!({"prompt": "cat", "model": "standard"}),
    ] {
        assert_eq!(
            koala_generate(&sim, basic, &body).await.status,
            200,
            "{body}"
        );
    }
    assert_eq!(sim.koala_credits(basic), Some(97));
    assert!(sim.set_koala_plan(basic, KoalaPlan::Professional));
    assert_eq!(
        koala_generate(&sim, basic, &json!({"prompt": "cat", "model": "premium"}))
            .await
            .status,
        200
    );

    // 402 when the whole request does not fit; nothing is taken.
    assert!(sim.set_koala_credits(&key, 79));
    let short = koala_generate(
        &sim,
        &key,
        &json!({"prompt": "cat", "quality": "high", "numImages": 4}),
    )
    .await;
    assert_eq!(short.status, 402);
    assert_eq!(sim.koala_credits(&key), Some(79));
    assert!(!sim.set_koala_credits("nobody", 1));
}

#[tokio::test]
async fn rate_limit_is_optional_and_sends_retry_after() {
    let (sim, clock) = sim(|mut c| {
        c.koala.generate_per_minute = Some(2);
        c
    })
    .await;
    let key = sim.koala_api_key().to_owned();
    for _ in 0..2 {
        assert_eq!(
            koala_generate(&sim, &key, &json!({"prompt": "cat"}))
                .await
                .status,
            200
        );
    }
    let limited = koala_generate(&sim, &key, &json!({"prompt": "cat"})).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert_eq!(sim.koala_credits(&key), Some(998));
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        koala_generate(&sim, &key, &json!({"prompt": "cat"}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn unknown_images_are_404_and_failed_ones_500_with_a_refund() {
    let (sim, clock) = sim(|c| c).await;
    let key = sim.koala_api_key().to_owned();
    let missing = fetch(&format!(
        "{}/image/v2-aaaaa-bbbbb.jpg",
        sim.koala_base_url()
    ))
    .await;
    assert_eq!(missing.status, 404);

    sim.faults().inject(FaultRule::nth(
        Route::KoalaGenerate,
        1,
        Fault::provider_failure(),
    ));
    let reply = koala_generate(&sim, &key, &json!({"prompt": "cat", "numImages": 2}))
        .await
        .json();
    assert_eq!(sim.koala_credits(&key), Some(998));
    clock.advance(Duration::from_secs(120));
    let failed = fetch(reply[0]["url"].as_str().unwrap()).await;
    assert_eq!(failed.status, 500);
    assert!(failed.json()["error"].is_string());
    assert_eq!(
        sim.koala_credits(&key),
        Some(1000),
        "refunded once the failure happened"
    );
}

#[tokio::test]
async fn zero_urls_fault_answers_an_empty_array() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.koala_api_key().to_owned();
    sim.faults()
        .inject(FaultRule::nth(Route::KoalaGenerate, 1, Fault::ZeroUrls));
    let reply = koala_generate(&sim, &key, &json!({"prompt": "cat"})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!([]));
}

#[tokio::test]
async fn errors_can_be_plain_text() {
    let (sim, _clock) = sim(|mut c| {
        c.koala.error_body = KoalaErrorBody::PlainText;
        c
    })
    .await;
    let reply = koala_generate(&sim, "nope", &json!({"prompt": "cat"})).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(reply.text(), "Invalid or missing API key");
    let missing = fetch(&format!(
        "{}/image/v2-aaaaa-bbbbb.jpg",
        sim.koala_base_url()
    ))
    .await;
    assert_eq!(missing.text(), "Image not found");
}

#[tokio::test]
async fn shutdown_answers_waiting_image_requests() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.koala_api_key().to_owned();
    let reply = koala_generate(&sim, &key, &json!({"prompt": "cat"}))
        .await
        .json();
    let url = reply[0]["url"].as_str().unwrap().to_owned();
    let logged = sim.request_log().total();
    let get = tokio::spawn(async move {
        common::client()
            .get(url)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    until_logged(&sim, logged + 1).await;
    sim.shutdown().await;
    let status = get.await.unwrap();
    // Either the waiting request got its 503, or the connection closed under it.
    assert!(matches!(status, Ok(503) | Err(_)), "{status:?}");
}

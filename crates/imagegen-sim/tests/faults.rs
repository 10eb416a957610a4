//! Every fault, through plain HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{client, koala_generate, kolbo_get, kolbo_post, sim, until_logged};
use imagegen_sim::{Credential, Fault, FaultRule, ListenerKind, Route, Trigger};
use serde_json::json;

#[tokio::test]
async fn status_on_the_nth_call_with_retry_after() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    let id = sim.faults().inject(FaultRule::nth(
        Route::KolboModels,
        2,
        Fault::Status {
            status: 503,
            retry_after: Some(7),
        },
    ));
    assert_eq!(kolbo_get(&sim, &key, "/v1/models").await.status, 200);
    let second = kolbo_get(&sim, &key, "/v1/models").await;
    assert_eq!(second.status, 503);
    assert_eq!(second.header("retry-after"), Some("7"));
    assert_eq!(second.json()["success"], false);
    assert_eq!(second.json()["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(kolbo_get(&sim, &key, "/v1/models").await.status, 200);
    assert_eq!(sim.faults().fired(id), 1);
    assert!(sim.faults().is_empty(), "a spent rule removes itself");
    let log = sim.request_log().for_route(Route::KolboModels);
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(200), Some(503), Some(200)]
    );
}

#[tokio::test]
async fn injected_429_uses_the_rate_limit_body_and_charges_nothing() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults().inject(FaultRule::next(
        Route::KolboGenerate,
        2,
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
    ));
    for _ in 0..2 {
        let r = kolbo_post(&sim, &key, "/v1/generate/image", &json!({"prompt": "x"})).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("3"));
        assert_eq!(
            r.json(),
            json!({"status": false, "message": "Too many requests, please try again later"})
        );
    }
    assert_eq!(sim.kolbo_credits(&key), Some(1500.0));
    assert_eq!(
        kolbo_post(&sim, &key, "/v1/generate/image", &json!({"prompt": "x"}))
            .await
            .status,
        200
    );
    // Without Retry-After when none is given.
    sim.faults()
        .inject(FaultRule::nth(Route::KolboGenerate, 1, Fault::status(429)));
    let r = kolbo_post(&sim, &key, "/v1/generate/image", &json!({"prompt": "x"})).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
    // KoalaImages' error body.
    sim.faults().inject(FaultRule::nth(
        Route::KoalaGenerate,
        1,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    ));
    let k = koala_generate(&sim, sim.koala_api_key(), &json!({"prompt": "x"})).await;
    assert_eq!(k.status, 500);
    assert!(k.json()["error"].is_string());
}

#[tokio::test]
async fn html_error_page() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults().inject(FaultRule::always(
        Route::KolboStatus,
        Fault::HtmlErrorPage { status: 502 },
    ));
    let r = kolbo_get(&sim, &key, "/v1/generate/abc/status").await;
    assert_eq!(r.status, 502);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("502 Bad Gateway"));
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
}

#[tokio::test]
async fn truncated_and_non_json_bodies_after_the_route_ran() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults().inject(FaultRule::nth(
        Route::KolboGenerate,
        1,
        Fault::TruncatedJson,
    ));
    let r = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "x", "model": "nano-banana-2"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    assert!(r.text().starts_with("{\"success\":true,\"generation_id\":"));
    assert_eq!(
        sim.kolbo_credits(&key),
        Some(1492.0),
        "the route ran and charged"
    );
    assert_eq!(sim.stored_jobs(), 1);

    sim.faults()
        .inject(FaultRule::nth(Route::KolboCredits, 1, Fault::NotJson));
    let r = kolbo_get(&sim, &key, "/v1/account/credits").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
}

#[tokio::test]
async fn slow_first_byte_waits_on_the_clock() {
    let (sim, clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults().inject(FaultRule::nth(
        Route::KolboModels,
        1,
        Fault::SlowFirstByte(Duration::from_secs(90)),
    ));
    let logged = sim.request_log().total();
    let url = format!("{}/v1/models", sim.kolbo_base_url());
    let get = tokio::spawn(async move {
        client()
            .get(url)
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    until_logged(&sim, logged + 1).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!get.is_finished());
    clock.advance(Duration::from_secs(90));
    assert_eq!(get.await.unwrap(), 200);
}

#[tokio::test]
async fn connection_reset_before_the_route_charges_nothing() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    let id = sim.faults().inject(FaultRule::nth(
        Route::KolboGenerate,
        1,
        Fault::ConnectionReset,
    ));
    let result = client()
        .post(format!("{}/v1/generate/image", sim.kolbo_base_url()))
        .header("X-API-Key", &key)
        .json(&json!({"prompt": "x"}))
        .send()
        .await;
    let err = result.expect_err("no response at all");
    assert!(!err.is_status(), "{err}");
    assert_eq!(sim.faults().fired(id), 1);
    assert_eq!(sim.kolbo_credits(&key), Some(1500.0));
    assert_eq!(sim.stored_jobs(), 0);
    let logged = sim.request_log().for_route(Route::KolboGenerate);
    assert_eq!(logged.len(), 1, "exactly one POST arrived");
    assert_eq!(logged[0].status, None, "and got no answer");
    // The next connection works.
    assert_eq!(
        kolbo_post(&sim, &key, "/v1/generate/image", &json!({"prompt": "x"}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn reset_after_processing_loses_a_paid_answer() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults().inject(FaultRule::nth(
        Route::KolboGenerate,
        1,
        Fault::ResetAfterProcessing,
    ));
    let result = client()
        .post(format!("{}/v1/generate/image", sim.kolbo_base_url()))
        .header("X-API-Key", &key)
        .json(&json!({"prompt": "x", "model": "nano-banana-2"}))
        .send()
        .await;
    assert!(result.is_err());
    assert_eq!(
        sim.kolbo_credits(&key),
        Some(1492.0),
        "charged although the answer was lost"
    );
    assert_eq!(sim.stored_jobs(), 1);
    // The same on KoalaImages.
    sim.faults().inject(FaultRule::nth(
        Route::KoalaGenerate,
        1,
        Fault::ResetAfterProcessing,
    ));
    let koala = sim.koala_api_key().to_owned();
    let result = client()
        .post(format!("{}/image-generation/", sim.koala_base_url()))
        .bearer_auth(&koala)
        .json(&json!({"prompt": "x"}))
        .send()
        .await;
    assert!(result.is_err());
    assert_eq!(sim.koala_credits(&koala), Some(999));
}

#[tokio::test]
async fn unknown_state_and_zero_urls() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults()
        .inject(FaultRule::nth(Route::KolboGenerate, 1, Fault::ZeroUrls));
    let started = kolbo_post(&sim, &key, "/v1/generate/image", &json!({"prompt": "x"}))
        .await
        .json();
    let poll = started["poll_url"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(1));
    sim.faults().inject(FaultRule::nth(
        Route::KolboStatus,
        1,
        Fault::UnknownState("upscaling".into()),
    ));
    let odd = kolbo_get(&sim, &key, &poll).await.json();
    assert_eq!(odd["state"], "upscaling");
    assert_eq!(odd["success"], true);
    let done = kolbo_get(&sim, &key, &poll).await.json();
    assert_eq!(done["state"], "completed");
    assert_eq!(done["result"]["urls"], json!([]));
    assert_eq!(
        done["credits_used"], 1.5,
        "an empty completion is still charged"
    );
}

#[tokio::test]
async fn redirect_to_another_origin_shows_where_keys_would_go() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults().inject(FaultRule::new(
        Some(Route::KolboStatus),
        Fault::RedirectToOtherOrigin,
        Trigger::Next(2),
    ));
    let r = kolbo_get(&sim, &key, "/v1/generate/abc/status?x=1").await;
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap();
    assert_eq!(
        location,
        format!("{}/api/v1/generate/abc/status?x=1", sim.cdn_origin())
    );
    assert!(
        sim.request_log()
            .entries()
            .iter()
            .all(|e| e.listener == ListenerKind::Api)
    );

    // A client that follows redirects carries X-API-Key across origins; the log catches it.
    let naive = reqwest::Client::new();
    let followed = naive
        .get(format!("{}/v1/generate/abc/status", sim.kolbo_base_url()))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 404);
    let leaked: Vec<_> = sim
        .request_log()
        .entries()
        .into_iter()
        .filter(|e| e.listener == ListenerKind::Cdn)
        .collect();
    assert_eq!(leaked.len(), 1);
    assert_eq!(leaked[0].auth.x_api_key, Some(Credential::KolboKey));
    assert!(leaked[0].auth.carries_known_key());
}

#[tokio::test]
async fn a_rule_without_a_route_hits_every_route_and_can_be_removed() {
    let (sim, _clock) =
        sim(|c| c.with_fault(FaultRule::new(None, Fault::status(500), Trigger::Always))).await;
    let key = sim.kolbo_api_key().to_owned();
    assert_eq!(kolbo_get(&sim, &key, "/v1/models").await.status, 500);
    assert_eq!(
        koala_generate(&sim, sim.koala_api_key(), &json!({"prompt": "x"}))
            .await
            .status,
        500
    );
    sim.faults().clear();
    assert_eq!(kolbo_get(&sim, &key, "/v1/models").await.status, 200);
    let id = sim
        .faults()
        .inject(FaultRule::always(Route::CdnImage, Fault::status(503)));
    let cdn = common::fetch(&format!("{}/images/x.png", sim.cdn_origin())).await;
    assert_eq!(cdn.status, 503);
    assert!(sim.faults().remove(id));
}

/// A whole image's end: PNG's `IEND` chunk or JPEG's end-of-image marker.
fn ends_whole(bytes: &[u8]) -> bool {
    bytes.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82])
        || bytes.ends_with(&[0xFF, 0xD9])
}

#[tokio::test]
async fn truncated_image_cuts_the_bytes_and_ends_cleanly() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    // KoalaImages: the image URL on the API listener.
    let raw = koala_generate(&sim, sim.koala_api_key(), &json!({"prompt": "cat"}))
        .await
        .json();
    let url = raw[0]["url"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(1));
    let whole = common::fetch(&url).await;
    assert_eq!(whole.status, 200);
    assert!(ends_whole(&whole.body));
    let id = sim
        .faults()
        .inject(FaultRule::nth(Route::KoalaImage, 1, Fault::TruncatedImage));
    // The body is read to its end without an error: the response ends cleanly.
    let cut = common::fetch(&url).await;
    assert_eq!(cut.status, 200);
    assert_eq!(cut.header("content-type"), whole.header("content-type"));
    assert_eq!(cut.body, whole.body[..whole.body.len() / 2]);
    let length = cut.body.len().to_string();
    assert_eq!(cut.header("content-length"), Some(length.as_str()));
    assert!(!ends_whole(&cut.body));
    assert_eq!(sim.faults().fired(id), 1);
    assert_eq!(
        common::fetch(&url).await.body,
        whole.body,
        "the next GET is whole"
    );

    // Kolbo: the result images on the CDN listener.
    let key = sim.kolbo_api_key().to_owned();
    let started = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "x", "model": "flux-2/flash"}),
    )
    .await
    .json();
    let poll = started["poll_url"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(1));
    let done = kolbo_get(&sim, &key, &poll).await.json();
    assert_eq!(done["state"], "completed");
    let url = done["result"]["urls"][0].as_str().unwrap().to_owned();
    sim.faults()
        .inject(FaultRule::new(None, Fault::TruncatedImage, Trigger::Always));
    let cut = common::fetch(&url).await;
    assert_eq!(cut.status, 200);
    assert!(cut.body.starts_with(b"\x89PNG"));
    assert!(!ends_whole(&cut.body), "a PNG without its IEND chunk");
    let length = cut.body.len().to_string();
    assert_eq!(cut.header("content-length"), Some(length.as_str()));
    // Routes that serve no image, and error answers, are left as they are.
    let models = kolbo_get(&sim, &key, "/v1/models").await;
    assert_eq!(models.status, 200);
    assert!(models.json()["success"].as_bool().unwrap());
    let missing = common::fetch(&format!("{}/images/none.png", sim.cdn_origin())).await;
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "Not Found")
    );
    sim.faults().clear();
    let whole = common::fetch(&url).await;
    assert_eq!(whole.body[..cut.body.len()], cut.body[..]);
    assert_eq!(whole.body.len() / 2, cut.body.len());
    assert!(ends_whole(&whole.body));
}

#[tokio::test]
async fn the_downloader_refuses_a_truncated_image_and_fetches_it_again() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let raw = koala_generate(&sim, sim.koala_api_key(), &json!({"prompt": "fox"}))
        .await
        .json();
    let url = reqwest::Url::parse(raw[0]["url"].as_str().unwrap()).unwrap();
    clock.advance(Duration::from_secs(1));
    let downloader = imagegen_http::ImageDownloader::builder()
        .clock(imagegen_core::ManualClock::new().shared())
        .max_attempts(3)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fox.jpg");
    sim.faults()
        .inject(FaultRule::nth(Route::KoalaImage, 1, Fault::TruncatedImage));
    let image = downloader.download_to_file(&url, &target).await.unwrap();
    assert_eq!(image.attempts, 2);
    assert!(ends_whole(&std::fs::read(&target).unwrap()));

    // Cut short every time: an error that says so, and nothing left on disk.
    sim.faults()
        .inject(FaultRule::always(Route::KoalaImage, Fault::TruncatedImage));
    let other = dir.path().join("again.jpg");
    let err = downloader.download_to_file(&url, &other).await.unwrap_err();
    assert!(err.is_incomplete_image(), "{err:?}");
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert_eq!(err.last_status(), None);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["fox.jpg"]);
}

//! Every Kolbo route and error through plain HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{dimensions, fetch, kolbo_get, kolbo_post, sim};
use imagegen_sim::{
    Credential, Fault, FaultRule, KolboAccount, KolboRateLimits, ListenerKind, PollUrlForm, Route,
    SimConfig,
};
use serde_json::json;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test]
async fn smart_select_runs_from_start_to_a_downloadable_image() {
    let (sim, clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    let before = sim.kolbo_credits(&key).unwrap();
    assert_eq!(before, 1500.0);

    let started = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "A futuristic cityscape at night"}),
    )
    .await;
    assert_eq!(started.status, 200);
    assert!(
        started
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = started.json();
    let id = body["generation_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 24);
    assert_eq!(body["success"], true);
    assert_eq!(body["type"], "image");
    assert_eq!(body["model"], "auto");
    assert_eq!(
        body["credits_charged"], 1.5,
        "Smart Select picked flux-2/flash"
    );
    assert_eq!(body["poll_url"], format!("/v1/generate/{id}/status"));
    assert_eq!(body["poll_interval_hint"], 3);
    assert_eq!(sim.kolbo_credits(&key).unwrap(), 1498.5);

    // The poll URL joins the base URL.
    let poll = body["poll_url"].as_str().unwrap().to_owned();
    // A plain image generation is never `pending` (Kolbo documents that state for Creative
    // Director only): it starts `processing`.
    let first = kolbo_get(&sim, &key, &poll).await.json();
    assert_eq!(first["state"], "processing");
    assert_eq!(first["progress"], 1);
    assert!(first.get("result").is_none());

    let mut last = 1;
    for _ in 0..3 {
        clock.advance(SECS(1));
        let status = kolbo_get(&sim, &key, &poll).await.json();
        assert_eq!(status["state"], "processing");
        let progress = status["progress"].as_u64().unwrap();
        assert!(progress > last && progress < 100, "{progress} after {last}");
        last = progress;
    }
    clock.advance(SECS(60));
    let done = kolbo_get(&sim, &key, &poll).await.json();
    assert_eq!(done["state"], "completed");
    assert_eq!(done["progress"], 100);
    let result = &done["result"];
    assert_eq!(result["model"], "flux-2/flash", "the model that ran");
    assert!(
        result["prompt_used"]
            .as_str()
            .unwrap()
            .starts_with("A futuristic cityscape at night, ")
    );
    let created = result["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 20);
    assert!(created.ends_with('Z') && created.as_bytes()[10] == b'T');
    assert_eq!(done["credits_used"], 1.5);
    assert_eq!(done["credits_breakdown"][0]["model"], "flux-2/flash");
    let urls = result["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 1);
    let url = urls[0].as_str().unwrap();
    assert!(
        url.starts_with(sim.cdn_origin()),
        "{url} is on the CDN origin"
    );
    assert_ne!(sim.cdn_origin(), sim.api_origin());

    let image = fetch(url).await;
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert_eq!(dimensions(&image.body), (64, 64));
    let thumb = fetch(result["thumbnail_url"].as_str().unwrap()).await;
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));

    // The key went to the API only; the CDN saw no credential.
    let log = sim.request_log().entries();
    assert!(
        log.iter()
            .filter(|r| r.listener == ListenerKind::Cdn)
            .all(|r| r.auth.is_none())
    );
    assert!(
        log.iter()
            .filter(|r| r.listener == ListenerKind::Api)
            .all(|r| r.auth.x_api_key == Some(Credential::KolboKey))
    );
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 1);
    let post = &sim.request_log().for_route(Route::KolboGenerate)[0];
    assert_eq!(
        post.body.as_ref().unwrap()["prompt"],
        "A futuristic cityscape at night"
    );
    assert_eq!(post.status, Some(200));
}

#[tokio::test]
async fn named_model_with_resolution_quality_and_count_is_priced_and_sized() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.kolbo_api_key().to_owned();
    let body = json!({
        "prompt": "Product photo of a sneaker on white background",
        "model": "nano-banana-2",
        "aspect_ratio": "16:9",
        "num_images": 2,
        "resolution": "2K",
        "quality": "high",
        "enhance_prompt": false,
        "visual_dna_ids": ["65f1a2b3c4d5e6f7a8b9c0d1"],
        "project_id": "p1",
        "enable_web_search": false
    });
    let started = kolbo_post(&sim, &key, "/v1/generate/image", &body)
        .await
        .json();
    // 8 credits × 1.5 (2K) × 1.5 (high) × 2 images.
    assert_eq!(started["credits_charged"], 36);
    assert_eq!(started["model"], "nano-banana-2");
    assert_eq!(started["project_id"], "p1");
    assert!(started["session_id"].as_str().unwrap().starts_with("sess_"));
    let id = started["generation_id"].as_str().unwrap();
    clock.advance(SECS(1));
    let done = kolbo_get(&sim, &key, &format!("/v1/generate/{id}/status"))
        .await
        .json();
    assert_eq!(done["state"], "completed");
    assert_eq!(
        done["result"]["prompt_used"],
        "Product photo of a sneaker on white background"
    );
    assert_eq!(done["credits_breakdown"][0]["base"], 8);
    assert_eq!(done["credits_breakdown"][0]["final"], 36);
    assert_eq!(done["credits_breakdown"][0]["resolution"], "2K");
    let urls = done["result"]["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 2);
    let a = fetch(urls[0].as_str().unwrap()).await.body;
    let b = fetch(urls[1].as_str().unwrap()).await.body;
    assert_eq!(
        dimensions(&a),
        (64, 36),
        "16:9 scaled to 64 on the long side"
    );
    assert_ne!(a, b, "each image of a batch differs");
}

#[tokio::test]
async fn fixed_output_model_returns_its_own_count() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.kolbo_api_key().to_owned();
    let started = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "a castle", "model": "midjourney-v7", "num_images": 1}),
    )
    .await
    .json();
    assert_eq!(started["credits_charged"], 12, "3 credits × 4 images");
    clock.advance(SECS(1));
    let id = started["generation_id"].as_str().unwrap();
    let done = kolbo_get(&sim, &key, &format!("/v1/generate/{id}/status"))
        .await
        .json();
    assert_eq!(done["result"]["urls"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn same_prompt_gives_the_same_bytes_across_runs() {
    let mut images = Vec::new();
    for _ in 0..2 {
        let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
        let key = sim.kolbo_api_key().to_owned();
        let started = kolbo_post(
            &sim,
            &key,
            "/v1/generate/image",
            &json!({"prompt": "a red fox in snow", "model": "z-image/turbo"}),
        )
        .await
        .json();
        clock.advance(SECS(1));
        let id = started["generation_id"].as_str().unwrap();
        let done = kolbo_get(&sim, &key, &format!("/v1/generate/{id}/status"))
            .await
            .json();
        images.push(
            fetch(done["result"]["urls"][0].as_str().unwrap())
                .await
                .body,
        );
    }
    assert_eq!(images[0], images[1]);
}

#[tokio::test]
async fn auth_errors_use_the_envelope() {
    let (sim, _clock) = sim(|c| c).await;
    for key in ["", "kolbo_live_0000000000000000000000000000000000000000"] {
        let reply = kolbo_post(&sim, key, "/v1/generate/image", &json!({"prompt": "x"})).await;
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.json(),
            json!({"success": false, "error": "Invalid or missing API key", "code": "INVALID_API_KEY"})
        );
    }
    // A KoalaImages key is not a Kolbo key, and the log says which key it was.
    let koala = sim.koala_api_key().to_owned();
    assert_eq!(kolbo_get(&sim, &koala, "/v1/models").await.status, 401);
    let last = sim.request_log().entries().pop().unwrap();
    assert_eq!(last.auth.x_api_key, Some(Credential::KoalaKey));
    assert_eq!(
        sim.kolbo_credits(sim.kolbo_api_key()),
        Some(1500.0),
        "nothing charged"
    );
}

#[tokio::test]
async fn validation_errors_are_400_and_charge_nothing() {
    let (sim, _clock) = sim(SimConfig::without_rate_limits).await;
    let key = sim.kolbo_api_key().to_owned();
    let cases = [
        (json!({"prompt": " "}), "MISSING_FIELDS", "prompt"),
        (json!({}), "MISSING_FIELDS", "prompt"),
        (json!({"prompt": 3}), "VALIDATION_ERROR", "prompt"),
        (
            json!({"prompt": "x", "model": "flux-9000"}),
            "MODEL_NOT_FOUND",
            "Model not found",
        ),
        (
            json!({"prompt": "x", "model": "gpt-image-2", "aspect_ratio": "16:9"}),
            "VALIDATION_ERROR",
            "aspect_ratio",
        ),
        (
            json!({"prompt": "x", "num_images": 5}),
            "VALIDATION_ERROR",
            "num_images",
        ),
        (
            json!({"prompt": "x", "num_images": "2"}),
            "VALIDATION_ERROR",
            "num_images",
        ),
        (
            json!({"prompt": "x", "enhance_prompt": "no"}),
            "VALIDATION_ERROR",
            "enhance_prompt",
        ),
        (
            json!({"prompt": "x", "model": "z-image/turbo", "reference_images": ["https://e.x/a.png"]}),
            "VALIDATION_ERROR",
            "reference",
        ),
        (
            json!({"prompt": "x", "model": "nano-banana-2", "reference_images": ["ftp://e.x/a.png"]}),
            "VALIDATION_ERROR",
            "http",
        ),
        (
            json!({"prompt": "x", "model": "z-image/turbo", "visual_dna_ids": ["65f1a2b3c4d5e6f7a8b9c0d1"]}),
            "VALIDATION_ERROR",
            "Visual DNA",
        ),
        (
            json!({"prompt": "x", "model": "nano-banana-2", "visual_dna_ids": ["ffffffffffffffffffffffff"]}),
            "NOT_FOUND",
            "Visual DNA",
        ),
        (
            json!({"prompt": "x", "moodboard_id": "nope"}),
            "NOT_FOUND",
            "Moodboard",
        ),
        (
            json!({"prompt": "x", "model": "nano-banana-2", "resolution": "8K"}),
            "VALIDATION_ERROR",
            "resolution",
        ),
        (
            json!({"prompt": "x", "model": "flux-2/flash", "quality": "high"}),
            "VALIDATION_ERROR",
            "quality",
        ),
        (
            json!({"prompt": "x".repeat(1001), "model": "z-image/turbo"}),
            "VALIDATION_ERROR",
            "longer",
        ),
        (json!(["not", "an", "object"]), "VALIDATION_ERROR", "object"),
    ];
    for (body, code, needle) in cases {
        let reply = kolbo_post(&sim, &key, "/v1/generate/image", &body).await;
        let answer = reply.json();
        assert!(
            matches!(reply.status, 400 | 404),
            "{body}: {}",
            reply.status
        );
        assert_eq!(answer["success"], false, "{body}");
        assert_eq!(answer["code"], code, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
    let raw = common::client()
        .post(format!("{}/v1/generate/image", sim.kolbo_base_url()))
        .header("X-API-Key", &key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(sim.kolbo_credits(&key), Some(1500.0));
}

#[tokio::test]
async fn insufficient_credits_is_400_by_default_and_402_on_request() {
    for status in [400u16, 402] {
        let (sim, _clock) = sim(|mut c| {
            c.kolbo.insufficient_credits_status = status;
            c
        })
        .await;
        let key = sim.kolbo_api_key().to_owned();
        assert!(sim.set_kolbo_credits(&key, 7.0));
        let reply = kolbo_post(
            &sim,
            &key,
            "/v1/generate/image",
            &json!({"prompt": "x", "model": "nano-banana-2"}),
        )
        .await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.json()["code"], "INSUFFICIENT_CREDITS");
        assert_eq!(sim.kolbo_credits(&key), Some(7.0));
        // Exactly enough works.
        let ok = kolbo_post(
            &sim,
            &key,
            "/v1/generate/image",
            &json!({"prompt": "x", "model": "z-image/turbo", "num_images": 4}),
        )
        .await;
        assert_eq!(ok.status, 200);
        assert_eq!(sim.kolbo_credits(&key), Some(5.0));
    }
}

#[tokio::test]
async fn a_rate_limit_window_can_be_shorter_than_a_minute() {
    let limits = KolboRateLimits::default()
        .with_generate(Some(2))
        .with_window(Duration::from_secs(3));
    let (sim, clock) = sim(move |c| c.with_kolbo_rate_limits(limits)).await;
    let key = sim.kolbo_api_key().to_owned();
    let start = |i: u32| {
        let (sim, key) = (&sim, &key);
        async move {
            kolbo_post(
                sim,
                key,
                "/v1/generate/image",
                &json!({"prompt": format!("w{i}"), "model": "z-image/turbo"}),
            )
            .await
        }
    };
    assert_eq!(start(0).await.status, 200);
    clock.advance(SECS(1));
    assert_eq!(start(1).await.status, 200);
    let limited = start(2).await;
    assert_eq!(limited.status, 429);
    // The first start was at t=0; the 3 s window frees at t=3s; now is t=1s.
    assert_eq!(limited.header("retry-after"), Some("2"));
    clock.advance(SECS(2));
    assert_eq!(
        start(3).await.status,
        200,
        "the first start left the window"
    );
    assert_eq!(start(4).await.status, 429);
    // The default stays Kolbo's documented minute.
    assert_eq!(KolboRateLimits::default().window, SECS(60));
}

#[tokio::test]
async fn rate_limits_answer_429_with_their_own_body_and_retry_after() {
    let (sim, clock) = sim(|mut c| {
        c.kolbo.rate_limits = KolboRateLimits::default();
        c.kolbo.rate_limits.status = Some(3);
        c
    })
    .await;
    let key = sim.kolbo_api_key().to_owned();
    for i in 0..10 {
        clock.advance(SECS(1));
        let r = kolbo_post(
            &sim,
            &key,
            "/v1/generate/image",
            &json!({"prompt": format!("p{i}"), "model": "z-image/turbo"}),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let limited = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "p", "model": "z-image/turbo"}),
    )
    .await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.json(),
        json!({"status": false, "message": "Too many requests, please try again later"})
    );
    // The first request was at t=1s; the window frees at t=61s; now is t=10s.
    assert_eq!(limited.header("retry-after"), Some("51"));
    assert_eq!(
        sim.kolbo_credits(&key),
        Some(1495.0),
        "ten half-credit images, the 429 cost nothing"
    );
    // Moodboards share the generation bucket.
    assert_eq!(kolbo_get(&sim, &key, "/v1/moodboards").await.status, 429);
    // Other keys have their own buckets.
    sim.add_kolbo_account(KolboAccount::new(
        "kolbo_live_1111111111111111111111111111111111111111",
    ));
    let other = kolbo_post(
        &sim,
        "kolbo_live_1111111111111111111111111111111111111111",
        "/v1/generate/image",
        &json!({"prompt": "p", "model": "z-image/turbo"}),
    )
    .await;
    assert_eq!(other.status, 200);
    clock.advance(SECS(51));
    let again = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "p", "model": "z-image/turbo"}),
    )
    .await;
    assert_eq!(again.status, 200);
    // Status polls have their own limit.
    for _ in 0..3 {
        assert_eq!(
            kolbo_get(&sim, &key, "/v1/generate/x/status").await.status,
            404
        );
    }
    assert_eq!(
        kolbo_get(&sim, &key, "/v1/generate/x/status").await.status,
        429
    );
}

#[tokio::test]
async fn failed_generation_reports_failure_and_refunds_when_it_fails() {
    let (sim, clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    sim.faults().inject(FaultRule::nth(
        Route::KolboGenerate,
        1,
        Fault::content_flagged(),
    ));
    let started = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "x", "model": "nano-banana-2"}),
    )
    .await
    .json();
    let poll = started["poll_url"].as_str().unwrap().to_owned();
    assert_eq!(sim.kolbo_credits(&key), Some(1492.0));
    clock.advance(SECS(5));
    assert_eq!(
        kolbo_get(&sim, &key, &poll).await.json()["state"],
        "processing"
    );
    assert_eq!(
        sim.kolbo_credits(&key),
        Some(1492.0),
        "no refund before the failure"
    );
    clock.advance(SECS(120));
    let failed = kolbo_get(&sim, &key, &poll).await.json();
    assert_eq!(failed["state"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("sensitive"));
    assert_eq!(failed["failure"]["code"], "CONTENT_FLAGGED_SENSITIVE");
    assert_eq!(failed["failure"]["category"], "content_policy");
    assert_eq!(failed["failure"]["retryable"], false);
    assert!(failed.get("result").is_none());
    assert_eq!(sim.kolbo_credits(&key), Some(1500.0), "refunded");
    let credits = kolbo_get(&sim, &key, "/v1/account/credits").await.json();
    assert_eq!(credits["credits"]["total"], 1500);
}

#[tokio::test]
async fn cancel_refunds_a_running_job_and_409s_a_finished_one() {
    let (sim, clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    let started = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "x", "model": "nano-banana-pro"}),
    )
    .await
    .json();
    let id = started["generation_id"].as_str().unwrap().to_owned();
    assert_eq!(sim.kolbo_credits(&key), Some(1485.0));
    clock.advance(SECS(5));
    let cancelled = kolbo_post(&sim, &key, &format!("/v1/generate/{id}/cancel"), &json!({})).await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(
        cancelled.json(),
        json!({"success": true, "generation_id": id, "state": "cancelled", "credits_refunded": 15})
    );
    assert_eq!(sim.kolbo_credits(&key), Some(1500.0));
    clock.advance(SECS(120));
    let status = kolbo_get(&sim, &key, &format!("/v1/generate/{id}/status"))
        .await
        .json();
    assert_eq!(status["state"], "cancelled");
    let again = kolbo_post(&sim, &key, &format!("/v1/generate/{id}/cancel"), &json!({})).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["success"], false);

    let done = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "y", "model": "z-image/turbo"}),
    )
    .await
    .json();
    let done_id = done["generation_id"].as_str().unwrap();
    clock.advance(SECS(120));
    let late = kolbo_post(
        &sim,
        &key,
        &format!("/v1/generate/{done_id}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(late.status, 409);
    assert!(late.json()["error"].as_str().unwrap().contains("completed"));
    assert_eq!(
        sim.kolbo_credits(&key),
        Some(1499.5),
        "a finished job is not refunded"
    );
    let unknown = kolbo_post(&sim, &key, "/v1/generate/nope/cancel", &json!({})).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "NOT_FOUND");
}

#[tokio::test]
async fn another_keys_generation_is_not_found() {
    let (sim, _clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.kolbo_api_key().to_owned();
    let other = "kolbo_live_2222222222222222222222222222222222222222";
    sim.add_kolbo_account(KolboAccount::new(other));
    let started = kolbo_post(&sim, &key, "/v1/generate/image", &json!({"prompt": "x"}))
        .await
        .json();
    let id = started["generation_id"].as_str().unwrap();
    assert_eq!(
        kolbo_get(&sim, other, &format!("/v1/generate/{id}/status"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn models_list_with_filters() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    let all = kolbo_get(&sim, &key, "/v1/models?type=image").await.json();
    assert_eq!(all["success"], true);
    let models = all["models"].as_array().unwrap();
    assert_eq!(all["count"], models.len());
    assert!(models.len() >= 6);
    let credit = |id: &str| {
        models
            .iter()
            .find(|m| m["identifier"] == id)
            .map(|m| m["credit"].clone())
    };
    assert_eq!(credit("nano-banana-2"), Some(json!(8.0)));
    assert_eq!(credit("nano-banana-pro"), Some(json!(15.0)));
    assert_eq!(credit("nano-banana-2/4k"), Some(json!(16.0)));
    assert_eq!(credit("z-image/turbo"), Some(json!(0.5)));
    let nb2 = models
        .iter()
        .find(|m| m["identifier"] == "nano-banana-2")
        .unwrap();
    for field in [
        "supported_aspect_ratios",
        "max_reference_images",
        "estimated_duration_seconds",
        "resolution_multipliers",
        "quality_multipliers",
        "supports_visual_dna",
        "max_visual_dna",
        "images_per_request",
        "default_aspect_ratio",
    ] {
        assert!(nb2.get(field).is_some(), "{field}");
    }
    assert!(
        models
            .iter()
            .all(|m| m["identifier"] != "kolbo_smart_select_router")
    );
    let video = kolbo_get(&sim, &key, "/v1/models?type=video").await.json();
    assert_eq!(video["count"], 0);
    let fal = kolbo_get(&sim, &key, "/v1/models?provider=fal")
        .await
        .json();
    assert!(
        fal["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["provider"] == "fal")
    );
    let avatar = nb2["avatar"].as_str().unwrap();
    assert_eq!(fetch(avatar).await.status, 200);

    let (listed, _c) = common::sim(|mut c| {
        c.kolbo.list_smart_select_router = true;
        c
    })
    .await;
    let key = listed.kolbo_api_key().to_owned();
    let body = kolbo_get(&listed, &key, "/v1/models").await.json();
    assert_eq!(body["models"][0]["identifier"], "kolbo_smart_select_router");
    assert_eq!(body["models"][0]["credit"], 0.0);
}

#[tokio::test]
async fn credits_moodboards_and_visual_dna() {
    let (sim, clock) = sim(|c| c.with_speed(0.0)).await;
    let key = sim.kolbo_api_key().to_owned();
    let credits = kolbo_get(&sim, &key, "/v1/account/credits").await.json();
    assert_eq!(
        credits,
        json!({"success": true, "credits": {"total": 1500, "plan_credits": 1000, "credit_pack": 400, "redemption": 100}})
    );

    let boards = kolbo_get(&sim, &key, "/v1/moodboards").await.json();
    assert_eq!(boards["count"], 3);
    let presets = kolbo_get(&sim, &key, "/v1/moodboards?scope=preset")
        .await
        .json();
    assert_eq!(presets["count"], 1);
    let id = boards["moodboards"][0]["id"].as_str().unwrap().to_owned();
    let one = kolbo_get(&sim, &key, &format!("/v1/moodboards/{id}"))
        .await
        .json();
    assert_eq!(one["moodboard"]["id"], id.as_str());
    let master = one["moodboard"]["master_prompt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fetch(one["moodboard"]["thumbnail_url"].as_str().unwrap())
            .await
            .status,
        200
    );
    assert_eq!(
        kolbo_get(&sim, &key, "/v1/moodboards/nope").await.status,
        404
    );

    let dnas = kolbo_get(&sim, &key, "/v1/visual-dna").await.json();
    assert_eq!(dnas["count"], 3);
    assert_eq!(dnas["has_more"], false);
    assert!(dnas["visual_dnas"][0].get("system_prompt").is_none());
    let global = kolbo_get(&sim, &key, "/v1/visual-dna?scope=global")
        .await
        .json();
    assert_eq!(global["count"], 1);
    let dna = kolbo_get(&sim, &key, "/v1/visual-dna/65f1a2b3c4d5e6f7a8b9c0d1")
        .await
        .json();
    assert!(dna["visual_dna"]["system_prompt"].is_string());
    assert_eq!(
        kolbo_get(&sim, &key, "/v1/visual-dna/nope").await.json()["code"],
        "NOT_FOUND"
    );

    // A moodboard's master prompt joins the prompt.
    let started = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "a sneaker", "moodboard_id": id, "enhance_prompt": false}),
    )
    .await
    .json();
    clock.advance(SECS(1));
    let gid = started["generation_id"].as_str().unwrap();
    let done = kolbo_get(&sim, &key, &format!("/v1/generate/{gid}/status"))
        .await
        .json();
    assert_eq!(
        done["result"]["prompt_used"],
        format!("a sneaker, {master}")
    );
}

#[tokio::test]
async fn poll_url_forms_and_smart_select_reporting_are_configurable() {
    let (sim, clock) = sim(|mut c| {
        c.kolbo.poll_url = PollUrlForm::OriginRelative;
        c.kolbo.smart_select_reports_model = false;
        c.with_speed(0.0)
    })
    .await;
    let key = sim.kolbo_api_key().to_owned();
    let started = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "x", "model": "auto"}),
    )
    .await
    .json();
    let poll = started["poll_url"].as_str().unwrap();
    assert!(poll.starts_with("/api/v1/generate/"));
    clock.advance(SECS(1));
    let done = fetch_with_key(&format!("{}{poll}", sim.api_origin()), &key).await;
    assert_eq!(done["result"]["model"], "auto");

    let (abs, _c) = common::sim(|mut c| {
        c.kolbo.poll_url = PollUrlForm::Absolute;
        c
    })
    .await;
    let key = abs.kolbo_api_key().to_owned();
    let started = kolbo_post(&abs, &key, "/v1/generate/image", &json!({"prompt": "x"}))
        .await
        .json();
    let poll = started["poll_url"].as_str().unwrap();
    assert!(poll.starts_with(abs.api_origin()));
    assert_eq!(fetch_with_key(poll, &key).await["state"], "processing");
}

/// The docs' own polling loops (`while state == "processing"`) stop on `pending`, so
/// queueing is opt-in: for every job (`queue_generations`) or for one (`Fault::Queued`).
#[tokio::test]
async fn queueing_is_opt_in_and_ends_in_processing() {
    let (plain, clock) = sim(|c| c).await;
    assert_eq!(states(&plain, &clock).await, ["processing", "completed"]);

    let (queued, clock) = sim(|mut c| {
        c.kolbo.queue_generations = true;
        c
    })
    .await;
    assert_eq!(
        states(&queued, &clock).await,
        ["pending", "processing", "completed"]
    );

    let (one, clock) = sim(|c| c).await;
    one.faults()
        .inject(FaultRule::nth(Route::KolboGenerate, 1, Fault::Queued));
    assert_eq!(
        states(&one, &clock).await,
        ["pending", "processing", "completed"]
    );
    assert_eq!(states(&one, &clock).await, ["processing", "completed"]);
}

/// The states one generation goes through, polled every half second of simulated time.
async fn states(sim: &imagegen_sim::SimHandle, clock: &imagegen_core::ManualClock) -> Vec<String> {
    let key = sim.kolbo_api_key().to_owned();
    let body = json!({"prompt": "A futuristic cityscape at night"});
    let started = kolbo_post(sim, &key, "/v1/generate/image", &body)
        .await
        .json();
    let poll = started["poll_url"].as_str().unwrap().to_owned();
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..200 {
        let status = kolbo_get(sim, &key, &poll).await.json();
        let state = status["state"].as_str().unwrap().to_owned();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "completed" {
            break;
        }
        clock.advance(Duration::from_millis(500));
    }
    seen
}

async fn fetch_with_key(url: &str, key: &str) -> serde_json::Value {
    common::client()
        .get(url)
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_envelope() {
    let (sim, _clock) = sim(|c| c).await;
    let key = sim.kolbo_api_key().to_owned();
    let reply = kolbo_get(&sim, &key, "/v1/nothing-here").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["code"], "NOT_FOUND");
}

#[tokio::test]
async fn finished_jobs_expire_and_the_store_stays_bounded() {
    let (sim, clock) = sim(|c| {
        c.with_speed(0.0)
            .with_job_ttl(SECS(30))
            .with_max_jobs(5)
            .without_rate_limits()
    })
    .await;
    let key = sim.kolbo_api_key().to_owned();
    let mut ids = Vec::new();
    for i in 0..40 {
        let r = kolbo_post(
            &sim,
            &key,
            "/v1/generate/image",
            &json!({"prompt": format!("p{i}"), "model": "z-image/turbo"}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(r.json()["generation_id"].as_str().unwrap().to_owned());
        clock.advance(SECS(1));
        assert!(sim.stored_jobs() <= 5, "{} jobs stored", sim.stored_jobs());
    }
    // The newest is still there; the oldest was dropped to make room.
    assert_eq!(
        kolbo_get(&sim, &key, &format!("/v1/generate/{}/status", ids[39]))
            .await
            .status,
        200
    );
    assert_eq!(
        kolbo_get(&sim, &key, &format!("/v1/generate/{}/status", ids[0]))
            .await
            .status,
        404
    );
    // Images are bounded too (library images + at most 4 per stored job slot, plus thumbnails).
    assert!(sim.stored_images() < 200, "{}", sim.stored_images());
    // After the TTL a finished job is gone even below the cap.
    let (ttl, clock) = common::sim(|c| {
        c.with_speed(0.0)
            .with_job_ttl(SECS(30))
            .without_rate_limits()
    })
    .await;
    let key = ttl.kolbo_api_key().to_owned();
    let started = kolbo_post(&ttl, &key, "/v1/generate/image", &json!({"prompt": "x"}))
        .await
        .json();
    let id = started["generation_id"].as_str().unwrap().to_owned();
    let url_status = format!("/v1/generate/{id}/status");
    clock.advance(SECS(1));
    let done = kolbo_get(&ttl, &key, &url_status).await.json();
    let image_url = done["result"]["urls"][0].as_str().unwrap().to_owned();
    clock.advance(SECS(31));
    assert_eq!(fetch(&image_url).await.status, 404, "the image expired");
    // Purging happens when new jobs arrive.
    for i in 0..256 {
        let _ = kolbo_post(
            &ttl,
            &key,
            "/v1/generate/image",
            &json!({"prompt": format!("q{i}"), "model": "z-image/turbo"}),
        )
        .await;
        if i % 10 == 0 {
            clock.advance(SECS(31));
        }
    }
    assert_eq!(kolbo_get(&ttl, &key, &url_status).await.status, 404);
}

#[tokio::test]
async fn store_full_of_running_jobs_refuses_with_503_and_charges_nothing() {
    let (sim, _clock) = sim(|c| c.with_max_jobs(2).without_rate_limits()).await;
    let key = sim.kolbo_api_key().to_owned();
    for _ in 0..2 {
        assert_eq!(
            kolbo_post(
                &sim,
                &key,
                "/v1/generate/image",
                &json!({"prompt": "x", "model": "z-image/turbo"})
            )
            .await
            .status,
            200
        );
    }
    let full = kolbo_post(
        &sim,
        &key,
        "/v1/generate/image",
        &json!({"prompt": "x", "model": "z-image/turbo"}),
    )
    .await;
    assert_eq!(full.status, 503);
    assert_eq!(full.json()["success"], false);
    assert_eq!(sim.kolbo_credits(&key), Some(1499.0));
}

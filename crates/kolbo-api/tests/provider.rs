//! `KolboProvider` as an `imagegen_core::Provider`: the priced catalog, the body each kind of
//! `CallPlan` makes, options, submit → wait → output, cancel, balance, and nothing sent on
//! bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use imagegen_core::clock::MANUAL_CLOCK_EPOCH_SECS;
use imagegen_core::{
    CallPlan, CreditWorth, Credits, Error, ImageShape, JobHandle, JobState, ManualClock,
    ModelChoice, NoProgress, Prompt, Provider, ProviderProfile, Quality, Refund, StyleDelivery,
    StyleSupport,
};
use kolbo_api::KolboProvider;
use kolbo_api::extras::KolboOptions;
use kolbo_api::request_body::request_body;
use mockito::{Matcher, Mock, ServerGuard};
use serde_json::json;

async fn models_mock(server: &mut ServerGuard, hits: usize) -> Mock {
    common::fixture_mock(server, &common::fixture("models.image"), hits)
        .create_async()
        .await
}

fn shape(text: &str) -> ImageShape {
    text.parse().unwrap()
}

#[tokio::test]
async fn catalog_prices_models_and_hides_smart_select() {
    let mut server = mockito::Server::new_async().await;
    let mock = models_mock(&mut server, 1).await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let catalog = provider.catalog().await.unwrap();
    let ids: Vec<&str> = catalog.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "fal-ai/flux/schnell",
            "nano-banana-2",
            "z-image/turbo",
            "midjourney-v7"
        ]
    );
    let nano = &catalog[1];
    assert_eq!(nano.price.per_image, Credits::whole(8));
    let high = nano
        .capabilities
        .select_quality(Some(&Quality::High))
        .unwrap()
        .unwrap();
    assert_eq!(high.per_image, Credits::whole(12));
    assert_eq!(
        nano.price.per_image(Some(high), Some("4K")).unwrap(),
        Credits::whole(24)
    );
    assert_eq!(catalog[2].price.per_image, "0.5".parse().unwrap());
    assert_eq!(catalog[3].capabilities.fixed_images_per_request, Some(4));
    // No style field: the style goes in the prompt. A moodboard on every model; visual DNA
    // only where the catalog says the model takes it (nano-banana-2: true; z-image: 0;
    // midjourney: null; flux: not said).
    for entry in &catalog {
        assert_eq!(entry.capabilities.styles, StyleSupport::InPrompt);
    }
    let options: Vec<(&str, &[String])> = catalog
        .iter()
        .map(|m| (m.id.as_str(), m.capabilities.options.as_slice()))
        .collect();
    assert_eq!(
        options,
        [
            ("fal-ai/flux/schnell", &["moodboard_id".to_owned()][..]),
            (
                "nano-banana-2",
                &["moodboard_id".to_owned(), "visual_dna_ids".to_owned()][..]
            ),
            ("z-image/turbo", &["moodboard_id".to_owned()][..]),
            ("midjourney-v7", &["moodboard_id".to_owned()][..]),
        ]
    );
    insta::assert_json_snapshot!("catalog", catalog);
    mock.assert_async().await;
}

#[tokio::test]
async fn catalog_is_cached_for_its_ttl_on_the_clock() {
    let mut server = mockito::Server::new_async().await;
    let mock = models_mock(&mut server, 2).await;
    let clock = ManualClock::new();
    let provider = KolboProvider::new(common::client(&server, &clock))
        .with_catalog_ttl(Duration::from_secs(60));
    provider.catalog().await.unwrap();
    clock.advance(Duration::from_secs(59));
    provider.catalog().await.unwrap();
    clock.advance(Duration::from_secs(1));
    provider.catalog().await.unwrap();
    mock.assert_async().await;
}

/// A plan for Kolbo, as the router makes them.
fn plan(model: ModelChoice, prompt: &str, images: u32) -> CallPlan {
    CallPlan::new("kolbo", model, Prompt::new(prompt).unwrap(), images)
}

fn exact(id: &str) -> ModelChoice {
    ModelChoice::Exact(id.into())
}

#[test]
fn request_bodies_for_each_kind_of_plan() {
    let options = KolboOptions::default()
        .visual_dna_id("65f1a2b3c4d5e6f7a8b9c0d1")
        .moodboard_id("6601a1b2c3d4e5f6a7b8c9d0")
        .raw_field("enable_web_search", false)
        .to_options();
    let mut with_options = plan(
        exact("nano-banana-2"),
        "The same character walking on a beach",
        1,
    )
    .with_shape(shape("9:16"))
    .with_quality("low")
    .with_resolution("2K")
    .with_reference_image("https://example.com/style-ref.jpg".parse().unwrap())
    .with_credits(Credits::whole(6));
    with_options.options = options;
    let cases: Vec<(&str, CallPlan)> = vec![
        (
            "smart_select_minimal",
            plan(
                ModelChoice::ProviderDefault,
                "A futuristic cityscape at night",
                1,
            ),
        ),
        (
            "smart_select_pixels_and_quality",
            plan(
                ModelChoice::ProviderDefault,
                "A mountain landscape at sunset",
                1,
            )
            .with_shape(shape("1920x1080"))
            .with_quality("high")
            .with_enhance_prompt(false),
        ),
        (
            "model_ratio_as_planned",
            plan(
                exact("nano-banana-2"),
                "Product photo of a sneaker on white background",
                2,
            )
            .with_shape(shape("16:9")),
        ),
        (
            "model_word_shape_and_style_in_prompt",
            plan(exact("nano-banana-2"), "A fox in the snow", 1)
                .with_shape(shape("portrait"))
                .with_style(StyleDelivery::InPrompt("watercolor".into())),
        ),
        (
            "model_shape_quality_resolution_style_and_options",
            with_options
                .clone()
                .with_style(StyleDelivery::InPrompt("film noir".into())),
        ),
        ("model_with_kolbo_options", with_options),
        (
            "fixed_output_model",
            plan(exact("midjourney-v7"), "A castle on a cliff", 4),
        ),
    ];
    for (name, call) in cases {
        let body = request_body(&call).unwrap();
        kolbo_api::validate::check_request(&body, None).unwrap();
        insta::assert_json_snapshot!(format!("body_{name}"), body);
    }
}

#[test]
fn provider_default_sends_no_model_and_a_style_goes_in_the_prompt() {
    let call = plan(ModelChoice::ProviderDefault, "a red fox", 1)
        .with_style(StyleDelivery::InPrompt("watercolor".into()));
    let body = serde_json::to_value(request_body(&call).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"prompt": "a red fox, in watercolor style", "num_images": 1})
    );
    let call = plan(exact("nano-banana-2"), "a red fox", 1)
        .with_style(StyleDelivery::Field("watercolor".into()));
    let error = request_body(&call).unwrap_err();
    assert_eq!(error.field(), "style");
    assert!(error.message().contains("no style field"), "{error}");
}

#[test]
fn required_options_name_documented_options_and_refuse_malformed_ones() {
    let provider = KolboProvider::new(
        kolbo_api::KolboClient::builder(common::TEST_KEY)
            .build()
            .unwrap(),
    );
    let options = |value: serde_json::Value| value.as_object().unwrap().clone();
    let asked = provider
        .required_options(&options(json!({
            "moodboard_id": "6601a1b2c3d4e5f6a7b8c9d0",
            "visual_dna_ids": ["65f1a2b3c4d5e6f7a8b9c0d1"],
            "enable_web_search": true,
            "project_id": "6601a1b2c3d4e5f6a7b8c9ff"
        })))
        .unwrap();
    assert_eq!(asked, ["moodboard_id", "visual_dna_ids"]);
    let raw_only = provider
        .required_options(&options(
            json!({"enable_web_search": true, "cinematic": {"camera": "c1"}}),
        ))
        .unwrap();
    assert!(raw_only.is_empty(), "{raw_only:?}");

    let error = provider
        .required_options(&options(json!({"visual_dna_ids": ["a", "b", "c", "d"]})))
        .unwrap_err();
    assert_eq!(error.field(), "kolbo.visual_dna_ids");
    assert_eq!(
        error.to_string(),
        "invalid kolbo.visual_dna_ids: 4 visual DNA ids: Kolbo takes at most 3 per request"
    );
    let error = provider
        .required_options(&options(json!({"moodboard_id": 42})))
        .unwrap_err();
    assert_eq!(error.field(), "kolbo.moodboard_id");
    assert_eq!(
        error.to_string(),
        "invalid kolbo.moodboard_id: a moodboard id is a string from GET /v1/moodboards, not a number"
    );
    for (value, field) in [
        (json!({"visual_dna_ids": ["a", ""]}), "kolbo.visual_dna_ids"),
        (json!({"quality": "high"}), "kolbo.quality"),
        (json!({"resolution": "2K"}), "kolbo.resolution"),
    ] {
        let error = provider.required_options(&options(value)).unwrap_err();
        assert_eq!(error.field(), field);
    }
}

#[tokio::test]
async fn submit_wait_and_output() {
    let mut server = mockito::Server::new_async().await;
    let _models = models_mock(&mut server, 1).await;
    let post = server
        .mock("POST", "/api/v1/generate/image")
        .match_header("x-api-key", common::TEST_KEY)
        .match_body(Matcher::Json(json!({
            "prompt": "Product photo of a sneaker on white background",
            "model": "nano-banana-2",
            "aspect_ratio": "16:9",
            "num_images": 2,
            "resolution": "2K"
        })))
        .with_body(
            common::fixture("generate_image.model")
                .response
                .body_bytes(),
        )
        .expect(1)
        .create_async()
        .await;
    let status = server
        .mock("GET", "/api/v1/generate/gen_nb2_001/status")
        .with_body(
            common::fixture("status.completed_with_credits")
                .response
                .body_bytes(),
        )
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let provider = KolboProvider::new(common::client(&server, &clock));
    // The router reads the catalog before it plans; submit itself never fetches it.
    provider.catalog().await.unwrap();
    let call = plan(
        exact("nano-banana-2"),
        "Product photo of a sneaker on white background",
        2,
    )
    .with_shape(shape("16:9"))
    .with_resolution("2K")
    .with_credits(Credits::whole(24));
    let job = provider.submit(&call).await.unwrap();
    assert_eq!(job.job_id, "gen_nb2_001");
    assert_eq!(job.credits_charged, Some(Credits::whole(8)));
    // Accepted at the client's clock: the manual clock's wall time, 2026-01-01.
    assert_eq!(job.accepted_at_ms, MANUAL_CLOCK_EPOCH_SECS * 1000);
    insta::assert_json_snapshot!("job_handle", job);
    // The handle survives a journal round trip.
    let job: JobHandle = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
    let output = provider.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 2);
    assert_eq!(output.credits_charged, Some(Credits::whole(12)));
    assert_eq!(output.model.as_ref().unwrap().as_str(), "nano-banana-2");
    // First poll at 60 % of the 18 s estimate the cached catalog gave.
    assert_eq!(clock.sleeps()[0], Duration::from_millis(10_800));
    insta::assert_json_snapshot!("job_output", output);
    post.assert_async().await;
    status.assert_async().await;
}

#[tokio::test]
async fn submit_sends_the_planned_shape_and_never_fetches_the_catalog() {
    let mut server = mockito::Server::new_async().await;
    let models = server
        .mock("GET", "/api/v1/models")
        .match_query(Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    // nano-banana-2 lists 16:9 but not 21:9 for text-to-image: neither is moved.
    let mut posts = Vec::new();
    for ratio in ["16:9", "21:9"] {
        posts.push(
            server
                .mock("POST", "/api/v1/generate/image")
                .match_body(Matcher::Json(json!({
                    "prompt": "A wide desert road",
                    "model": "nano-banana-2",
                    "aspect_ratio": ratio,
                    "num_images": 1
                })))
                .with_body(
                    common::fixture("generate_image.model")
                        .response
                        .body_bytes(),
                )
                .expect(1)
                .create_async()
                .await,
        );
    }
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    for ratio in ["16:9", "21:9"] {
        let call = plan(exact("nano-banana-2"), "A wide desert road", 1).with_shape(shape(ratio));
        let job = provider.submit(&call).await.unwrap();
        assert_eq!(job.model.as_ref().unwrap().as_str(), "nano-banana-2");
        assert_eq!(job.state.get("warnings"), None);
    }
    for post in posts {
        post.assert_async().await;
    }
    models.assert_async().await;
}

#[tokio::test]
async fn smart_select_omits_the_model_and_fetches_no_catalog() {
    let mut server = mockito::Server::new_async().await;
    let models = server
        .mock("GET", "/api/v1/models")
        .match_query(Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let post = server
        .mock("POST", "/api/v1/generate/image")
        .match_body(Matcher::Json(json!({
            "prompt": "A futuristic cityscape at night",
            "num_images": 1
        })))
        .with_body(
            common::fixture("generate_image.smart_select")
                .response
                .body_bytes(),
        )
        .expect(2)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    for choice in [
        ModelChoice::ProviderDefault,
        exact("kolbo_smart_select_router"),
    ] {
        let job = provider
            .submit(&plan(choice, "A futuristic cityscape at night", 1))
            .await
            .unwrap();
        assert_eq!(job.job_id, "abc123");
        assert_eq!(job.model, None); // "auto" is not a model
        assert_eq!(job.credits_charged, Some(Credits::whole(2)));
    }
    models.assert_async().await;
    post.assert_async().await;
}

#[tokio::test]
async fn an_unreported_charge_is_left_unknown() {
    let mut server = mockito::Server::new_async().await;
    let _post = server
        .mock("POST", "/api/v1/generate/image")
        .with_body(r#"{"success":true,"generation_id":"g-quiet","model":"nano-banana-2"}"#)
        .expect(1)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let call = plan(ModelChoice::ProviderDefault, "a red fox", 1).with_credits(Credits::whole(8));
    let job = provider.submit(&call).await.unwrap();
    assert_eq!(job.credits_charged, None);
    // Smart Select's choice, when the answer names it.
    assert_eq!(job.model.as_ref().unwrap().as_str(), "nano-banana-2");
}

#[tokio::test]
async fn invalid_plans_send_nothing() {
    let mut server = mockito::Server::new_async().await;
    let models = server
        .mock("GET", "/api/v1/models")
        .match_query(Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let post = server
        .mock("POST", "/api/v1/generate/image")
        .expect(0)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let base = || plan(exact("nano-banana-2"), "a red fox", 1);
    let cases: Vec<(CallPlan, &str)> = vec![
        (
            base().with_style(StyleDelivery::Field("watercolor".into())),
            "style",
        ),
        (
            base().with_option("visual_dna_ids", json!(["a", "b", "c", "d"])),
            "kolbo.visual_dna_ids",
        ),
        (
            base().with_option("moodboard_id", json!({"id": "m"})),
            "kolbo.moodboard_id",
        ),
        (
            base().with_option("quality", json!("high")),
            "kolbo.quality",
        ),
        (plan(exact("nano-banana-2"), "a red fox", 5), "num_images"),
        (plan(exact("nano-banana-2"), "a red fox", 0), "num_images"),
        (plan(exact(" "), "a red fox", 1), "model"),
        (
            base().with_reference_image("file:///etc/passwd".parse().unwrap()),
            "reference_images",
        ),
        (
            CallPlan::new(
                "koala",
                exact("gpt-image-2"),
                Prompt::new("a red fox").unwrap(),
                1,
            ),
            "provider",
        ),
    ];
    for (call, field) in cases {
        let error = provider.submit(&call).await.unwrap_err();
        match &error {
            Error::InvalidInput(e) => assert_eq!(e.field(), field, "{call:?}: {e}"),
            other => panic!("{call:?}: {other}"),
        }
        assert!(error.nothing_sent());
    }
    post.assert_async().await;
    models.assert_async().await;
}

#[tokio::test]
async fn balance_and_profile() {
    let mut server = mockito::Server::new_async().await;
    let mock = common::fixture_mock(&mut server, &common::fixture("account_credits"), 1)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let balance = provider.balance().await.unwrap();
    assert_eq!(balance.provider.as_str(), "kolbo");
    assert_eq!(balance.credits, Some(Credits::whole(1500)));
    assert_eq!(balance.note, None);
    mock.assert_async().await;

    // Kolbo picks its own model when none is named (Smart Select); no credit worth yet.
    assert_eq!(
        provider.profile(),
        ProviderProfile::default().with_picks_own_model(true)
    );
    let provider = provider.with_credit_worth(CreditWorth::KOLBO_DOCUMENTED);
    assert_eq!(
        provider.profile().credit_worth,
        Some(CreditWorth::KOLBO_DOCUMENTED)
    );
}

#[tokio::test]
async fn a_balance_without_a_total_sums_its_parts() {
    let mut server = mockito::Server::new_async().await;
    let _mock = server
        .mock("GET", "/api/v1/account/credits")
        .with_body(r#"{"success":true,"credits":{"plan_credits":10,"credit_pack":2.5}}"#)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let balance = provider.balance().await.unwrap();
    assert_eq!(balance.credits, Some("12.5".parse().unwrap()));
}

#[tokio::test]
async fn wait_maps_failures_and_empty_results() {
    let mut server = mockito::Server::new_async().await;
    let _failed = server
        .mock("GET", "/api/v1/generate/failed/status")
        .with_body(common::fixture("status.failed").response.body_bytes())
        .create_async()
        .await;
    let _empty = server
        .mock("GET", "/api/v1/generate/empty/status")
        .with_body(
            common::fixture("status.completed_zero_urls")
                .response
                .body_bytes(),
        )
        .create_async()
        .await;
    let _bad_urls = server
        .mock("GET", "/api/v1/generate/bad/status")
        .with_body(
            r#"{"success":true,"state":"completed","result":{"urls":["not a url","ftp://x/y.png"]}}"#,
        )
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let job = |id: &str| JobHandle::new("kolbo", id, 1, 0);
    let error = provider
        .wait(&job("failed"), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        Error::GenerationFailed {
            refund: Refund::Refunded,
            ..
        }
    ));
    for id in ["empty", "bad"] {
        let error = provider.wait(&job(id), &NoProgress).await.unwrap_err();
        match error {
            Error::GenerationFailed {
                job_id,
                refund: Refund::Unknown,
                ..
            } => assert_eq!(job_id, id),
            other => panic!("{id}: {other}"),
        }
    }
    let other = JobHandle::new("koala", "k1", 1, 0);
    assert!(matches!(
        provider.wait(&other, &NoProgress).await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn cancel_reports_the_refund() {
    let mut server = mockito::Server::new_async().await;
    let mock = common::fixture_mock(&mut server, &common::fixture("cancel.cancelled"), 1)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let outcome = provider
        .cancel(&JobHandle::new("kolbo", "abc123", 1, 0))
        .await
        .unwrap();
    assert_eq!(outcome.state, JobState::Cancelled);
    assert_eq!(outcome.credits_refunded, Some(Credits::whole(2)));
    mock.assert_async().await;
}

#[tokio::test]
async fn a_paid_job_that_cannot_be_watched_stays_open_and_charged() {
    let mut server = mockito::Server::new_async().await;
    let _redirect = server
        .mock("GET", "/api/v1/generate/moved/status")
        .with_status(302)
        .with_header("location", "https://elsewhere.example/status")
        .create_async()
        .await;
    let _refused = server
        .mock("GET", "/api/v1/generate/gone/status")
        .with_status(401)
        .with_body(r#"{"success":false,"error":"Invalid API key","code":"INVALID_API_KEY"}"#)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    for id in ["moved", "gone"] {
        let job = JobHandle::new("kolbo", id, 1, 0);
        let error = provider.wait(&job, &NoProgress).await.unwrap_err();
        match &error {
            Error::StillRunning { job_id, .. } => assert_eq!(job_id, id),
            other => panic!("{id}: {other:?}"),
        }
        assert!(error.may_have_been_charged(), "{id}");
        assert!(!error.nothing_sent(), "{id}");
    }
}

//! `KolboProvider` as an `imagegen_core::Provider`: the priced catalog, the bodies it sends
//! for each kind of request, submit → wait → output, cancel, and nothing sent on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use imagegen_core::{
    Credits, Error, GenerationRequest, ImageShape, JobState, ManualClock, ModelChoice, NoProgress,
    Provider, ProviderExtras, Quality, Refund, Submission,
};
use kolbo_api::KolboProvider;
use kolbo_api::extras::KolboOptions;
use kolbo_api::types::{KolboModel, ModelsResponse};
use mockito::{Matcher, Mock, ServerGuard};
use serde_json::json;

fn models() -> Vec<KolboModel> {
    let body = common::fixture("models.image").response.body.unwrap();
    serde_json::from_value::<ModelsResponse>(body)
        .unwrap()
        .models
}

fn model(id: &str) -> KolboModel {
    models().into_iter().find(|m| m.identifier == id).unwrap()
}

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

#[test]
fn request_bodies_for_each_variant() {
    let nano = model("nano-banana-2");
    let midjourney = model("midjourney-v7");
    let mut extras = ProviderExtras::default();
    KolboOptions::default()
        .visual_dna_id("65f1a2b3c4d5e6f7a8b9c0d1")
        .moodboard_id("6601a1b2c3d4e5f6a7b8c9d0")
        .resolution("2K")
        .raw_field("enable_web_search", false)
        .store(&mut extras)
        .unwrap();
    let cases: Vec<(&str, GenerationRequest, Option<&KolboModel>)> = vec![
        (
            "smart_select_minimal",
            GenerationRequest::builder("A futuristic cityscape at night")
                .build()
                .unwrap(),
            None,
        ),
        (
            "smart_select_pixels_and_quality",
            GenerationRequest::builder("A mountain landscape at sunset")
                .shape(shape("1920x1080"))
                .quality(Quality::High)
                .enhance_prompt(false)
                .build()
                .unwrap(),
            None,
        ),
        (
            "model_exact_ratio",
            GenerationRequest::builder("Product photo of a sneaker on white background")
                .shape(shape("16:9"))
                .count(2)
                .build()
                .unwrap(),
            Some(&nano),
        ),
        (
            "model_snapped_ratio",
            GenerationRequest::builder("A wide desert road")
                .shape(shape("21:9"))
                .build()
                .unwrap(),
            Some(&nano),
        ),
        (
            "model_word_shape_and_style",
            GenerationRequest::builder("A fox in the snow")
                .shape(shape("portrait"))
                .style("watercolor")
                .build()
                .unwrap(),
            Some(&nano),
        ),
        (
            "model_with_kolbo_options",
            GenerationRequest::builder("The same character walking on a beach")
                .shape(shape("9:16"))
                .quality(Quality::Low)
                .reference_image("https://example.com/style-ref.jpg")
                .extras(extras)
                .build()
                .unwrap(),
            Some(&nano),
        ),
        (
            "fixed_output_model",
            GenerationRequest::builder("A castle on a cliff")
                .count(1)
                .build()
                .unwrap(),
            Some(&midjourney),
        ),
    ];
    for (name, request, model) in cases {
        let prepared = KolboProvider::prepare(&request, model).unwrap();
        kolbo_api::validate::check_request(&prepared.request, model).unwrap();
        insta::assert_json_snapshot!(
            format!("request_{name}"),
            json!({
                "body": prepared.request,
                "images_requested": prepared.images_requested,
                "warnings": prepared.warnings,
            })
        );
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
    let mut extras = ProviderExtras::default();
    KolboOptions::default()
        .resolution("2K")
        .store(&mut extras)
        .unwrap();
    let request = GenerationRequest::builder("Product photo of a sneaker on white background")
        .shape(shape("16:9"))
        .count(2)
        .extras(extras)
        .build()
        .unwrap();
    let job = provider
        .submit(&Submission::new(
            ModelChoice::Exact("nano-banana-2".into()),
            request,
        ))
        .await
        .unwrap();
    assert_eq!(job.job_id, "gen_nb2_001");
    assert_eq!(job.credits_charged, Some(Credits::whole(8)));
    insta::assert_json_snapshot!("job_handle", job, { ".accepted_at_ms" => "[time]" });
    // The handle survives a journal round trip.
    let job: imagegen_core::JobHandle =
        serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
    let output = provider.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 2);
    assert_eq!(output.credits_charged, Some(Credits::whole(12)));
    assert_eq!(output.model.as_ref().unwrap().as_str(), "nano-banana-2");
    // First poll at 60 % of the 18 s estimate.
    assert_eq!(clock.sleeps()[0], Duration::from_millis(10_800));
    insta::assert_json_snapshot!("job_output", output, { ".job.accepted_at_ms" => "[time]" });
    post.assert_async().await;
    status.assert_async().await;
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
    let request = GenerationRequest::builder("A futuristic cityscape at night")
        .build()
        .unwrap();
    for choice in [
        ModelChoice::ProviderDefault,
        ModelChoice::Exact("kolbo_smart_select_router".into()),
    ] {
        let job = provider
            .submit(&Submission::new(choice, request.clone()))
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
async fn invalid_submissions_send_no_generation() {
    let mut server = mockito::Server::new_async().await;
    let _models = common::fixture_mock(&mut server, &common::fixture("models.image"), 1)
        .expect_at_least(0)
        .create_async()
        .await;
    let post = server
        .mock("POST", "/api/v1/generate/image")
        .expect(0)
        .create_async()
        .await;
    let provider = KolboProvider::new(common::client(&server, &ManualClock::new()));
    let with_options = |options: KolboOptions| {
        let mut extras = ProviderExtras::default();
        options.store(&mut extras).unwrap();
        GenerationRequest::builder("a red fox")
            .extras(extras)
            .build()
            .unwrap()
    };
    let cases: Vec<(&str, GenerationRequest, &str)> = vec![
        (
            "z-image/turbo",
            GenerationRequest::builder("a red fox")
                .reference_image("https://example.com/r.png")
                .build()
                .unwrap(),
            "reference_images",
        ),
        (
            "z-image/turbo",
            with_options(KolboOptions::default().visual_dna_id("d1")),
            "visual_dna_ids",
        ),
        (
            "nano-banana-2",
            with_options(
                KolboOptions::default()
                    .visual_dna_id("a")
                    .visual_dna_id("b")
                    .visual_dna_id("c")
                    .visual_dna_id("d"),
            ),
            "visual_dna_ids",
        ),
        (
            "nano-banana-2",
            with_options(KolboOptions::default().resolution("8K")),
            "resolution",
        ),
        (
            "nano-banana-2",
            GenerationRequest::builder("a red fox")
                .count(5)
                .build()
                .unwrap(),
            "count",
        ),
        (
            "z-image/turbo",
            GenerationRequest::builder("a red fox")
                .quality(Quality::High)
                .build()
                .unwrap(),
            "quality",
        ),
        (
            "flux-9000",
            GenerationRequest::builder("a red fox").build().unwrap(),
            "model",
        ),
    ];
    for (model, request, field) in cases {
        let error = provider
            .submit(&Submission::new(ModelChoice::Exact(model.into()), request))
            .await
            .unwrap_err();
        match &error {
            Error::InvalidInput(e) => assert_eq!(e.field(), field, "{model}: {e}"),
            other => panic!("{model}: {other}"),
        }
        assert!(error.nothing_sent());
    }
    post.assert_async().await;
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
    let job = |id: &str| imagegen_core::JobHandle::new("kolbo", id, 1);
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
    let other = imagegen_core::JobHandle::new("koala", "k1", 1);
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
        .cancel(&imagegen_core::JobHandle::new("kolbo", "abc123", 1))
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
        let job = imagegen_core::JobHandle::new("kolbo", id, 1);
        let error = provider.wait(&job, &NoProgress).await.unwrap_err();
        match &error {
            Error::StillRunning { job_id, .. } => assert_eq!(job_id, id),
            other => panic!("{id}: {other:?}"),
        }
        assert!(error.may_have_been_charged(), "{id}");
        assert!(!error.nothing_sent(), "{id}");
    }
}

//! This crate alone is enough for the common path: every name below comes from
//! `kolbo_api` (no `imagegen_core` or `imagegen_http` path), and a plan is submitted,
//! waited for and its image downloaded against a local server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kolbo_api::{
    CallPlan, Credits, ImageDownloader, KolboClient, KolboProvider, ManualClock, ModelChoice,
    NoProgress, Prompt, Provider,
};

/// A 2×1 RGB PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x7b, 0x40, 0xe8,
    0xdd, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0x00, 0x04,
    0xff, 0x01, 0x07, 0x00, 0x01, 0xff, 0xe2, 0x23, 0x9e, 0x59, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[tokio::test]
async fn submit_wait_and_download_with_only_this_crate() {
    let mut server = mockito::Server::new_async().await;
    let post = server
        .mock("POST", "/api/v1/generate/image")
        .match_header("x-api-key", "test-key")
        .with_body(
            r#"{"success":true,"generation_id":"abc123","type":"image","model":"auto",
                "credits_charged":2,"poll_url":"/v1/generate/abc123/status","poll_interval_hint":3}"#,
        )
        .expect(1)
        .create_async()
        .await;
    let image_url = format!("{}/images/abc123-0.png", server.url());
    let status = server
        .mock("GET", "/api/v1/generate/abc123/status")
        .with_body(format!(
            r#"{{"success":true,"generation_id":"abc123","type":"image","state":"completed",
                "progress":100,"result":{{"urls":["{image_url}"],"model":"z-image/turbo"}},
                "credits_used":2}}"#
        ))
        .expect(1)
        .create_async()
        .await;
    let image = server
        .mock("GET", "/images/abc123-0.png")
        // The image host never sees the API key.
        .match_header("x-api-key", mockito::Matcher::Missing)
        .with_header("content-type", "image/png")
        .with_body(PNG)
        .expect(1)
        .create_async()
        .await;

    let clock = ManualClock::new();
    let client = KolboClient::builder("test-key")
        .base_url(format!("{}/api", server.url()))
        .clock(clock.shared())
        .build()
        .unwrap();
    let kolbo = KolboProvider::new(client);

    let prompt = Prompt::new("a lighthouse at dusk").unwrap();
    let call = CallPlan::new(
        kolbo_api::PROVIDER_ID,
        ModelChoice::ProviderDefault,
        prompt,
        1,
    )
    .with_shape("16:9".parse().unwrap());
    let job = kolbo.submit(&call).await.unwrap();
    assert_eq!(job.job_id, "abc123");
    let output = kolbo.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.credits_charged, Some(Credits::whole(2)));
    assert_eq!(output.images.len(), 1);

    let downloader = ImageDownloader::builder()
        .clock(clock.shared())
        .build()
        .unwrap();
    let mut bytes = Vec::new();
    let saved = downloader
        .download_to_writer(&output.images[0].url, &mut bytes)
        .await
        .unwrap();
    assert_eq!(saved.mime, "image/png");
    assert_eq!((saved.width, saved.height), (Some(2), Some(1)));
    assert_eq!(bytes, PNG);

    post.assert_async().await;
    status.assert_async().await;
    image.assert_async().await;
}

//! This crate alone is enough for the common path: every name below comes from
//! `koala_api` (no `imagegen_core` or `imagegen_http` path), and a plan is submitted,
//! waited for and its image downloaded against a local server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use koala_api::{
    CallPlan, Credits, ImageDownloader, KoalaClient, KoalaPlan, KoalaProvider, ManualClock,
    ModelChoice, NoProgress, Prompt, Provider,
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
    let image_url = format!("{}/api/image/v2-cnfjk-1g1wf.jpg", server.url());
    let post = server
        .mock("POST", "/api/image-generation/")
        .match_header("authorization", "Bearer test-key")
        .with_header("content-type", "application/json")
        .with_body(format!(
            r#"[{{"url":"{image_url}","alt":"a fox in the snow"}}]"#
        ))
        .expect(1)
        .create_async()
        .await;
    // A `.jpg` URL serving PNG bytes: the format comes from the bytes.
    let image = server
        .mock("GET", "/api/image/v2-cnfjk-1g1wf.jpg")
        // The image URL never sees the API key.
        .match_header("authorization", mockito::Matcher::Missing)
        .with_header("content-type", "image/jpeg")
        .with_body(PNG)
        .expect(1)
        .create_async()
        .await;

    let clock = ManualClock::new();
    let client = KoalaClient::builder("test-key")
        .base_url(format!("{}/api", server.url()))
        .plan(KoalaPlan::Basic)
        .clock(clock.shared())
        .build()
        .unwrap();
    let koala = KoalaProvider::new(client);

    let prompt = Prompt::new("a watercolor fox in the snow").unwrap();
    let call = CallPlan::new(
        koala_api::PROVIDER_ID,
        ModelChoice::Exact("gpt-image-2".into()),
        prompt,
        1,
    )
    .with_shape("1:1".parse().unwrap())
    .with_quality("fast");
    let job = koala.submit(&call).await.unwrap();
    let output = koala.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.credits_charged, Some(Credits::whole(1)));
    assert_eq!(output.images.len(), 1);
    assert_eq!(output.images[0].alt.as_deref(), Some("a fox in the snow"));

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
    image.assert_async().await;
}

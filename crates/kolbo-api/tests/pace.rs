//! The opt-in [`SubmitPacer`]: generation starts and moodboard reads (which share Kolbo's
//! 10-per-minute bucket) wait for the window; other routes are not paced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use imagegen_core::{Clock, ManualClock};
use kolbo_api::types::{GenerateImageRequest, ModelsQuery, MoodboardQuery};
use kolbo_api::{KolboClient, SubmitPacer};

fn paced_client(
    server: &mockito::ServerGuard,
    clock: &ManualClock,
    pacer: SubmitPacer,
) -> KolboClient {
    KolboClient::builder(common::TEST_KEY)
        .base_url(format!("{}/api", server.url()))
        .clock(clock.shared())
        .request_timeout(Duration::from_secs(5))
        .submit_pacer(pacer)
        .build()
        .unwrap()
}

#[tokio::test]
async fn generation_starts_and_moodboards_share_the_paced_window() {
    let mut server = mockito::Server::new_async().await;
    let generate = server
        .mock("POST", "/api/v1/generate/image")
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"success":true,"generation_id":"g1","poll_url":"/v1/generate/g1/status"}"#)
        .expect(4)
        .create_async()
        .await;
    let moodboards = server
        .mock("GET", "/api/v1/moodboards")
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"success":true,"moodboards":[],"count":0}"#)
        .expect(1)
        .create_async()
        .await;
    let models = server
        .mock("GET", "/api/v1/models")
        .match_query(mockito::Matcher::Any)
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"success":true,"count":0,"models":[]}"#)
        .expect(3)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = paced_client(
        &server,
        &clock,
        SubmitPacer::new(2, Duration::from_secs(60)),
    );
    let request = GenerateImageRequest::new("a lighthouse");
    let mut times = Vec::new();
    for _ in 0..3 {
        client.generate_image(&request).await.unwrap();
        times.push(clock.now().as_secs());
    }
    assert_eq!(times, [0, 0, 60], "the third start waits for the window");
    client
        .list_moodboards(&MoodboardQuery::default())
        .await
        .unwrap();
    assert_eq!(clock.now().as_secs(), 60, "the window had room for it");
    client.generate_image(&request).await.unwrap();
    assert_eq!(
        clock.now().as_secs(),
        120,
        "moodboards are in the same bucket"
    );
    for _ in 0..3 {
        client.list_models(&ModelsQuery::images()).await.unwrap();
    }
    assert_eq!(clock.now().as_secs(), 120, "other routes are not paced");
    generate.assert_async().await;
    moodboards.assert_async().await;
    models.assert_async().await;
}

#[tokio::test]
async fn without_a_pacer_nothing_waits() {
    let mut server = mockito::Server::new_async().await;
    let generate = server
        .mock("POST", "/api/v1/generate/image")
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(r#"{"success":true,"generation_id":"g1"}"#)
        .expect(12)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let client = common::client(&server, &clock);
    for _ in 0..12 {
        client
            .generate_image(&GenerateImageRequest::new("a lighthouse"))
            .await
            .unwrap();
    }
    assert_eq!(clock.now(), Duration::ZERO);
    generate.assert_async().await;
}

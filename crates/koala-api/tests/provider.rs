//! `KoalaProvider` through the core `Provider` trait, against a mock Koala.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use imagegen_core::{
    CallPlan, Credits, Error, JobHandle, JobState, ManualClock, ModelChoice, ProgressEvent, Prompt,
    Provider, Refusal, StyleDelivery,
};
use koala_api::{KoalaJobState, KoalaPlan, KoalaProvider};
use mockito::Matcher;

const PATH: &str = "/api/image-generation/";

fn call(model: &str, images: u32) -> CallPlan {
    CallPlan::new(
        "koala",
        ModelChoice::Exact(model.into()),
        Prompt::new("a red fox in snow").unwrap(),
        images,
    )
}

#[tokio::test]
async fn submit_then_wait_charges_from_the_table_and_survives_a_journal() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", PATH)
        .match_body(Matcher::Json(serde_json::json!({
            "prompt": "a red fox in snow",
            "size": "1536x1024",
            "numImages": 2,
            "model": "gpt-image-2",
            "quality": "medium",
        })))
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_body(
            r#"[{"url":"https://koala.sh/api/image/v2-foxes-00001.jpg","alt":""},
                {"url":"https://koala.sh/api/image/v2-foxes-00002.jpg","alt":"a red fox"}]"#,
        )
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    clock.advance(std::time::Duration::from_secs(5));
    let provider = KoalaProvider::new(common::client(
        &server.url(),
        &clock,
        KoalaPlan::Professional,
    ));
    let plan = call("gpt-image-2", 2)
        .with_shape("1536x1024".parse().unwrap())
        .with_quality("medium")
        .with_credits(Credits::whole(16));
    let job = provider.submit(&plan).await.unwrap();
    mock.assert_async().await;

    assert_eq!(job.provider, "koala");
    assert_eq!(job.job_id, "v2-foxes-00001");
    assert_eq!(job.credits_charged, Some(Credits::whole(16)));
    assert_eq!(job.images_requested, 2);
    // Accepted on the client's clock: the manual clock's epoch plus 5 s.
    assert_eq!(job.accepted_at_ms, 1_767_225_605_000);

    // A journal writes the handle; a new process reads it back and finishes the job
    // without another request.
    let journal = serde_json::to_string(&job).unwrap();
    let resumed: JobHandle = serde_json::from_str(&journal).unwrap();
    let state: KoalaJobState = serde_json::from_value(resumed.state.clone()).unwrap();
    assert_eq!(state.images.len(), 2);
    assert_eq!(state.size.as_deref(), Some("1536x1024"));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = Arc::clone(&events);
        move |e: ProgressEvent| events.lock().unwrap().push(e.state)
    };
    let fresh = KoalaProvider::new(common::client(
        &server.url(),
        &clock,
        KoalaPlan::Professional,
    ));
    let output = fresh.wait(&resumed, &sink).await.unwrap();
    assert_eq!(output.images.len(), 2);
    assert_eq!(output.images[0].alt, None);
    assert_eq!(output.images[1].alt.as_deref(), Some("a red fox"));
    assert_eq!(output.credits_charged, Some(Credits::whole(16)));
    assert_eq!(output.model.as_ref().unwrap(), "gpt-image-2");
    assert!(output.warnings.is_empty(), "{:?}", output.warnings);
    assert_eq!(*events.lock().unwrap(), [JobState::Completed]);
    assert!(matches!(
        fresh.cancel(&resumed).await,
        Err(Error::Unsupported { .. })
    ));
}

#[tokio::test]
async fn submit_sends_the_planned_size_unchanged() {
    for (size, warned) in [
        ("1792x1008", false),
        ("1008x1792", false),
        ("1216x832", true),
    ] {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("POST", PATH)
            .match_body(Matcher::Json(serde_json::json!({
                "prompt": "a red fox in snow",
                "size": size,
                "numImages": 1,
                "model": "gpt-image-2",
                "quality": "high",
            })))
            .with_body(r#"[{"url":"https://koala.sh/api/image/v2-sizes-00001.jpg"}]"#)
            .expect(1)
            .create_async()
            .await;
        let provider = KoalaProvider::new(common::client(
            &server.url(),
            &ManualClock::new(),
            KoalaPlan::Professional,
        ));
        let plan = call("gpt-image-2", 1)
            .with_shape(size.parse().unwrap())
            .with_quality("high");
        let job = provider.submit(&plan).await.unwrap();
        mock.assert_async().await;
        assert_eq!(job.credits_charged, Some(Credits::whole(20)));
        let output = provider
            .wait(&job, &imagegen_core::NoProgress)
            .await
            .unwrap();
        // Not a native size: sent as planned all the same, and Koala's own snap is told.
        assert_eq!(
            output.warnings.iter().any(|w| w.contains("Koala snaps")),
            warned,
            "{size}: {:?}",
            output.warnings
        );
    }
}

#[tokio::test]
async fn options_and_style_reach_the_wire_and_alt_text_comes_back() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", PATH)
        .match_body(Matcher::Json(serde_json::json!({
            "prompt": "a red fox in snow",
            "style": "anime",
            "numImages": 1,
            "model": "gpt-image-2",
            "quality": "fast",
            "enhancePrompt": "off",
            "generateAltText": true,
            "preserveOriginal": true,
        })))
        .with_body(
            r#"[{"url":"https://koala.sh/api/image/v2-alts-00001.jpg","alt":"an anime fox"}]"#,
        )
        .expect(1)
        .create_async()
        .await;
    let provider = KoalaProvider::new(common::client(
        &server.url(),
        &ManualClock::new(),
        KoalaPlan::Basic,
    ));
    let plan = call("gpt-image-2", 1)
        .with_quality("fast")
        .with_style(StyleDelivery::Field("anime".into()))
        .with_enhance_prompt(false)
        .with_option("generate_alt_text", serde_json::Value::Bool(true))
        .with_option("preserve_original", serde_json::Value::Bool(true));
    let job = provider.submit(&plan).await.unwrap();
    mock.assert_async().await;
    let output = provider
        .wait(&job, &imagegen_core::NoProgress)
        .await
        .unwrap();
    assert_eq!(output.images[0].alt.as_deref(), Some("an anime fox"));
    assert_eq!(job.credits_charged, Some(Credits::whole(1)));
}

#[tokio::test]
async fn fewer_images_than_asked_is_a_warning_not_a_loss() {
    let mut server = mockito::Server::new_async().await;
    let _mock = server
        .mock("POST", PATH)
        .with_body(r#"[{"url":"https://koala.sh/api/image/v2-aaaaa-00001.jpg"}]"#)
        .create_async()
        .await;
    let provider = KoalaProvider::new(common::client(
        &server.url(),
        &ManualClock::new(),
        KoalaPlan::Unknown,
    ));
    let job = provider.submit(&call("standard", 3)).await.unwrap();
    assert_eq!(job.credits_charged, Some(Credits::whole(3)));
    let output = provider
        .wait(&job, &imagegen_core::NoProgress)
        .await
        .unwrap();
    assert_eq!(output.images.len(), 1);
    assert!(
        output
            .warnings
            .iter()
            .any(|w| w.contains("returned 1 of the 3")),
        "{:?}",
        output.warnings
    );
    assert!(
        output.warnings.iter().any(|w| w.contains("deprecated")),
        "{:?}",
        output.warnings
    );
}

#[tokio::test]
async fn refusals_before_sending_reach_the_router_typed() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", Matcher::Any)
        .expect(0)
        .create_async()
        .await;
    let provider = KoalaProvider::new(common::client(
        &server.url(),
        &ManualClock::new(),
        KoalaPlan::Basic,
    ));

    let err = provider.submit(&call("ideogram-3.0", 1)).await.unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::PlanRequired));
    assert!(!err.may_have_been_charged());

    let reference = url::Url::parse("https://example.com/a.png").unwrap();
    let cases = [
        (call("gpt-image-2", 5), "numImages"),
        (
            call("standard", 1).with_reference_image(reference),
            "referenceImages",
        ),
        (
            call("nano-banana-2", 1).with_shape("2048x2048".parse().unwrap()),
            "size",
        ),
        (call("nano-banana-2", 1).with_quality("high"), "quality"),
        (
            call("gpt-image-2", 1).with_style(StyleDelivery::InPrompt("anime".into())),
            "style",
        ),
        (
            call("gpt-image-2", 1).with_option("generate_alt_text", serde_json::json!("yes")),
            "koala.generate_alt_text",
        ),
        (call("gpt-image-2", 1).with_resolution("2K"), "resolution"),
    ];
    for (plan, field) in cases {
        let err = provider.submit(&plan).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(i) if i.field() == field),
            "{field}: {err}"
        );
        assert!(err.nothing_sent(), "{err}");
    }
    mock.assert_async().await;
}

#[tokio::test]
async fn koala_refusals_map_into_the_core_taxonomy() {
    let mut server = mockito::Server::new_async().await;
    let _mock = server
        .mock("POST", PATH)
        .with_status(402)
        .with_body(r#"{"error":"Not enough credits"}"#)
        .create_async()
        .await;
    let provider = KoalaProvider::new(common::client(
        &server.url(),
        &ManualClock::new(),
        KoalaPlan::Unknown,
    ));
    let err = provider.submit(&call("gpt-image-2", 1)).await.unwrap_err();
    let Error::Refused {
        reason,
        message,
        status,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*reason, Refusal::InsufficientCredits);
    assert_eq!(message, "Not enough credits");
    assert_eq!(*status, Some(402));
}

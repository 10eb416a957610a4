//! `KoalaProvider` through the core `Provider` trait, against a mock Koala.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use imagegen_core::{
    Credits, Error, GenerationRequest, JobHandle, JobState, ManualClock, ModelChoice,
    ProgressEvent, Provider, Quality, Refusal, Submission,
};
use koala_api::{KoalaJobState, KoalaPlan, KoalaProvider};
use mockito::Matcher;

const PATH: &str = "/api/image-generation/";

fn submission(
    model: &str,
    build: impl FnOnce(
        imagegen_core::GenerationRequestBuilder,
    ) -> imagegen_core::GenerationRequestBuilder,
) -> Submission {
    let request = build(GenerationRequest::builder("a red fox in snow"))
        .build()
        .unwrap();
    Submission::new(ModelChoice::Exact(model.into()), request)
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
    let provider = KoalaProvider::new(support::client(
        &server.url(),
        &clock,
        KoalaPlan::Professional,
    ));
    let sub = submission("gpt-image-2", |b| {
        b.count(2)
            .quality(Quality::Medium)
            .shape("1216x832".parse().unwrap())
    });
    let job = provider.submit(&sub).await.unwrap();
    mock.assert_async().await;

    assert_eq!(job.provider, "koala");
    assert_eq!(job.job_id, "v2-foxes-00001");
    assert_eq!(job.credits_charged, Some(Credits::whole(16)));
    assert_eq!(job.images_requested, 2);

    // A journal writes the handle; a new process reads it back and finishes the job
    // without another request.
    let journal = serde_json::to_string(&job).unwrap();
    let resumed: JobHandle = serde_json::from_str(&journal).unwrap();
    let state: KoalaJobState = serde_json::from_value(resumed.state.clone()).unwrap();
    assert_eq!(state.images.len(), 2);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = Arc::clone(&events);
        move |e: ProgressEvent| events.lock().unwrap().push(e.state)
    };
    let fresh = KoalaProvider::new(support::client(
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
    assert_eq!(
        output.warnings,
        [
            "gpt-image-2 makes 1536x1024 images, not the requested 1216x832: Koala snaps sizes to the model's nearest native size"
        ]
    );
    assert_eq!(*events.lock().unwrap(), [JobState::Completed]);
    assert!(matches!(
        fresh.cancel(&resumed).await,
        Err(Error::Unsupported { .. })
    ));
}

#[tokio::test]
async fn fewer_images_than_asked_is_a_warning_not_a_loss() {
    let mut server = mockito::Server::new_async().await;
    let _mock = server
        .mock("POST", PATH)
        .with_body(r#"[{"url":"https://koala.sh/api/image/v2-aaaaa-00001.jpg"}]"#)
        .create_async()
        .await;
    let provider = KoalaProvider::new(support::client(
        &server.url(),
        &ManualClock::new(),
        KoalaPlan::Unknown,
    ));
    let job = provider
        .submit(&submission("standard", |b| b.count(3)))
        .await
        .unwrap();
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
    let provider = KoalaProvider::new(support::client(
        &server.url(),
        &ManualClock::new(),
        KoalaPlan::Basic,
    ));

    let err = provider
        .submit(&submission("ideogram-3.0", |b| b))
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::PlanRequired));
    assert!(!err.may_have_been_charged());

    let err = provider
        .submit(&submission("gpt-image-2", |b| b.count(5)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(i) if i.field() == "numImages"),
        "{err}"
    );

    let err = provider
        .submit(&submission("standard", |b| {
            b.reference_image("https://example.com/a.png")
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(i) if i.field() == "referenceImages"),
        "{err}"
    );
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
    let provider = KoalaProvider::new(support::client(
        &server.url(),
        &ManualClock::new(),
        KoalaPlan::Unknown,
    ));
    let err = provider
        .submit(&submission("gpt-image-2", |b| b))
        .await
        .unwrap_err();
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

//! The real kolbo-api and koala-api clients against the simulator: each route, the
//! errors a client must map, and the faults a client must survive, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use imagegen_core::{
    CallPlan, Error, ManualClock, ModelChoice, NoProgress, Prompt, Provider, Refund, Refusal,
};
use imagegen_http::ImageDownloader;
use imagegen_sim::{
    Credential, Fault, FaultRule, ImageSize, KoalaPlan as SimPlan, ListenerKind, PollUrlForm,
    Route, SimConfig, SimHandle,
};
use koala_api::{KoalaClient, KoalaPlan, KoalaProvider};
use kolbo_api::{KolboClient, KolboProvider};

async fn sim() -> SimHandle {
    sim_with(SimConfig::default()).await
}

async fn sim_with(config: SimConfig) -> SimHandle {
    imagegen_sim::start(
        config
            .with_speed(0.0)
            .with_image_size(ImageSize::MaxSide(64)),
    )
    .await
    .unwrap()
}

fn kolbo(sim: &SimHandle) -> KolboProvider {
    let client = KolboClient::builder(sim.kolbo_api_key())
        .base_url(sim.kolbo_base_url())
        .clock(ManualClock::new().shared())
        .build()
        .unwrap();
    KolboProvider::new(client)
}

fn koala(sim: &SimHandle, plan: KoalaPlan) -> KoalaProvider {
    let client = KoalaClient::builder(sim.koala_api_key().to_owned())
        .base_url(sim.koala_base_url())
        .plan(plan)
        .clock(ManualClock::new().shared())
        .build()
        .unwrap();
    KoalaProvider::new(client)
}

fn downloader() -> ImageDownloader {
    ImageDownloader::builder()
        .clock(ManualClock::new().shared())
        .deadline(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// One planned call of one image of `prompt` to `model` at `provider`, nothing else set:
/// what the router would resolve for a bare prompt pinned to that model.
fn call(provider: &str, model: ModelChoice, prompt: &str) -> CallPlan {
    CallPlan::new(provider, model, Prompt::new(prompt).unwrap(), 1)
}

fn exact(model: &str) -> ModelChoice {
    ModelChoice::Exact(model.into())
}

/// Submits `prompt` to Kolbo's nano-banana-2.
async fn submit_nano(
    kolbo: &KolboProvider,
    prompt: &str,
) -> Result<imagegen_core::JobHandle, Error> {
    kolbo
        .submit(&call("kolbo", exact("nano-banana-2"), prompt))
        .await
}

#[tokio::test]
async fn kolbo_generation_end_to_end_with_one_post_and_no_key_at_the_cdn() {
    let sim = sim().await;
    let kolbo = kolbo(&sim);
    let catalog = kolbo.catalog().await.unwrap();
    let nano = catalog
        .iter()
        .find(|m| m.id == "nano-banana-2")
        .expect("nano-banana-2 in the catalog");
    assert_eq!(nano.price.per_image.to_string(), "8");

    let plan = CallPlan::new(
        "kolbo",
        exact("nano-banana-2"),
        Prompt::new("a lighthouse at dusk").unwrap(),
        2,
    )
    .with_shape("16:9".parse().unwrap());
    let before = sim.kolbo_credits(sim.kolbo_api_key()).unwrap();
    let job = kolbo.submit(&plan).await.unwrap();
    assert_eq!(job.credits_charged.unwrap().to_string(), "16");
    let output = kolbo.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 2);
    assert_eq!(
        sim.kolbo_credits(sim.kolbo_api_key()).unwrap(),
        before - 16.0
    );

    let dir = tempfile::tempdir().unwrap();
    for (n, image) in output.images.iter().enumerate() {
        assert!(image.url.as_str().starts_with(sim.cdn_origin()));
        let got = downloader()
            .download_with_extension(&image.url, &dir.path().join(format!("img-{n}")))
            .await
            .unwrap();
        assert!(got.bytes > 0);
        assert!(got.width.is_some());
    }

    let log = sim.request_log();
    assert_eq!(log.count(Route::KolboGenerate), 1);
    // What was posted is the plan's body, as the wire crate writes it.
    let planned = serde_json::to_value(kolbo_api::request_body::request_body(&plan).unwrap());
    assert_eq!(
        log.for_route(Route::KolboGenerate)[0].body,
        Some(planned.unwrap())
    );
    let cdn: Vec<_> = log
        .entries()
        .into_iter()
        .filter(|r| r.listener == ListenerKind::Cdn)
        .collect();
    assert_eq!(cdn.len(), 2);
    assert!(cdn.iter().all(|r| r.auth.is_none()), "{cdn:?}");
    let api = log.for_route(Route::KolboStatus);
    assert!(
        api.iter()
            .all(|r| r.auth.x_api_key == Some(Credential::KolboKey))
    );
}

#[tokio::test]
async fn kolbo_smart_select_reports_the_model_that_ran() {
    let sim = sim().await;
    let kolbo = kolbo(&sim);
    let job = kolbo
        .submit(&call(
            "kolbo",
            ModelChoice::ProviderDefault,
            "a portrait of a fox",
        ))
        .await
        .unwrap();
    let output = kolbo.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 1);
    let posted = &sim.request_log().for_route(Route::KolboGenerate)[0];
    assert!(posted.body.as_ref().unwrap().get("model").is_none());
    assert!(output.model.is_some());
}

#[tokio::test]
async fn kolbo_survives_transient_poll_failures_without_a_second_post() {
    let sim = sim().await;
    sim.faults().inject(FaultRule::nth(
        Route::KolboStatus,
        1,
        Fault::HtmlErrorPage { status: 502 },
    ));
    sim.faults().inject(FaultRule::nth(
        Route::KolboStatus,
        2,
        Fault::Status {
            status: 429,
            retry_after: Some(2),
        },
    ));
    sim.faults()
        .inject(FaultRule::nth(Route::KolboStatus, 3, Fault::TruncatedJson));
    sim.faults().inject(FaultRule::nth(
        Route::KolboStatus,
        4,
        Fault::UnknownState("queued_v2".into()),
    ));
    let kolbo = kolbo(&sim);
    let job = submit_nano(&kolbo, "a storm").await.unwrap();
    let output = kolbo.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 1);
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 1);
    assert!(sim.request_log().count(Route::KolboStatus) >= 5);
}

#[tokio::test]
async fn kolbo_failed_generation_is_refunded_and_typed() {
    let sim = sim().await;
    sim.faults().inject(FaultRule::always(
        Route::KolboGenerate,
        Fault::content_flagged(),
    ));
    let kolbo = kolbo(&sim);
    let before = sim.kolbo_credits(sim.kolbo_api_key()).unwrap();
    let job = submit_nano(&kolbo, "something flagged").await.unwrap();
    let err = kolbo.wait(&job, &NoProgress).await.unwrap_err();
    match &err {
        Error::GenerationFailed { refund, code, .. } => {
            assert_eq!(*refund, Refund::Refunded);
            assert_eq!(code.as_deref(), Some("CONTENT_FLAGGED_SENSITIVE"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.may_have_been_charged());
    assert_eq!(sim.kolbo_credits(sim.kolbo_api_key()).unwrap(), before);
    // The charge book has the charge and its refund, with the id the client was given.
    let [charge] = sim.charges().try_into().unwrap();
    assert_eq!(
        (charge.provider, charge.job_id.as_str()),
        ("kolbo", job.job_id.as_str())
    );
    assert_eq!(charge.prompt, "something flagged");
    assert!(charge.credits > 0.0 && !charge.answer_lost);
    assert!(charge.is_refunded(sim.clock().now()));
}

#[tokio::test]
async fn kolbo_refusals_map_to_the_taxonomy() {
    let sim = sim().await;
    let kolbo = kolbo(&sim);
    // Unknown model: the plan is sent as it is (submit looks nothing up in the catalog;
    // the router plans only catalog models) and Kolbo says MODEL_NOT_FOUND, charging
    // nothing.
    let before = sim.kolbo_credits(sim.kolbo_api_key()).unwrap();
    let err = kolbo
        .submit(&call("kolbo", exact("no-such-model"), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                reason: Refusal::ModelNotFound,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.may_have_been_charged());
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 1);
    assert_eq!(sim.kolbo_credits(sim.kolbo_api_key()).unwrap(), before);

    sim.set_kolbo_credits(sim.kolbo_api_key(), 1.0);
    let err = submit_nano(&kolbo, "x").await.unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(&Refusal::InsufficientCredits),
        "{err:?}"
    );

    let wrong_key = KolboProvider::new(
        KolboClient::builder("kolbo_live_0000000000000000000000000000000000000000")
            .base_url(sim.kolbo_base_url())
            .clock(ManualClock::new().shared())
            .build()
            .unwrap(),
    );
    let err = wrong_key.catalog().await.unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::Auth), "{err:?}");
}

#[tokio::test]
async fn kolbo_post_429_is_a_rate_limit_refusal_sent_once_and_charged_nothing() {
    let sim = sim().await;
    sim.faults().inject(FaultRule::nth(
        Route::KolboGenerate,
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    ));
    let kolbo = kolbo(&sim);
    let before = sim.kolbo_credits(sim.kolbo_api_key()).unwrap();
    let err = submit_nano(&kolbo, "x").await.unwrap_err();
    // The transport never repeats a paid POST; the router waits out the limit.
    assert_eq!(
        err.refusal(),
        Some(&Refusal::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        }),
        "{err:?}"
    );
    assert!(!err.may_have_been_charged());
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 1);
    assert_eq!(sim.kolbo_credits(sim.kolbo_api_key()).unwrap(), before);
    // The next submission goes through and is charged once.
    let job = submit_nano(&kolbo, "x").await.unwrap();
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 2);
    assert_eq!(
        sim.kolbo_credits(sim.kolbo_api_key()).unwrap(),
        before - 8.0
    );
    kolbo.wait(&job, &NoProgress).await.unwrap();
}

#[tokio::test]
async fn kolbo_post_answer_lost_is_maybe_delivered_and_never_resent() {
    let sim = sim().await;
    sim.faults().inject(FaultRule::nth(
        Route::KolboGenerate,
        1,
        Fault::ResetAfterProcessing,
    ));
    let kolbo = kolbo(&sim);
    let err = submit_nano(&kolbo, "x").await.unwrap_err();
    assert!(err.may_have_been_charged(), "{err:?}");
    assert_eq!(sim.request_log().count(Route::KolboGenerate), 1);
    // Charged, kept, and its answer never reached the client.
    let [charge] = sim.charges().try_into().unwrap();
    assert!(charge.answer_lost && !charge.is_refunded(sim.clock().now()));
}

#[tokio::test]
async fn kolbo_status_redirect_is_not_followed_and_the_key_stays_home() {
    let sim = sim().await;
    sim.faults().inject(FaultRule::always(
        Route::KolboStatus,
        Fault::RedirectToOtherOrigin,
    ));
    let kolbo = kolbo(&sim);
    let job = submit_nano(&kolbo, "x").await.unwrap();
    let err = kolbo.wait(&job, &NoProgress).await.unwrap_err();
    // A paid job that could not be watched stays open: its id is kept and it counts as
    // charged, so nothing falls back to submitting it elsewhere.
    match &err {
        Error::StillRunning { job_id, .. } => assert_eq!(job_id, &job.job_id),
        other => panic!("{other:?}"),
    }
    assert!(err.may_have_been_charged());
    assert!(!err.nothing_sent());
    let cdn: Vec<_> = sim
        .request_log()
        .entries()
        .into_iter()
        .filter(|r| r.listener == ListenerKind::Cdn)
        .collect();
    assert!(cdn.is_empty(), "the redirect was followed: {cdn:?}");
}

#[tokio::test]
async fn kolbo_api_form_poll_url_changes_nothing() {
    let mut config = SimConfig::default();
    config.kolbo.poll_url = PollUrlForm::OriginRelative;
    let sim = sim_with(config).await;
    let kolbo = kolbo(&sim);
    let job = submit_nano(&kolbo, "x").await.unwrap();
    assert_eq!(kolbo.wait(&job, &NoProgress).await.unwrap().images.len(), 1);
}

#[tokio::test]
async fn koala_generation_sends_the_planned_size_and_downloads_without_authorization() {
    // Contract change: the client used to snap an asked 1216x832 to gpt-image-2's
    // 1536x1024 at submit. Now the router plans the exact size (the near snap is its
    // decision, shown by `estimate`) and the client sends the plan as it is.
    let sim = sim().await;
    let koala = koala(&sim, KoalaPlan::Professional);
    let plan = CallPlan::new(
        "koala",
        exact("gpt-image-2"),
        Prompt::new("a watercolor fox").unwrap(),
        2,
    )
    .with_shape("1536x1024".parse().unwrap());
    let job = koala.submit(&plan).await.unwrap();
    assert_eq!(job.credits_charged.unwrap().to_string(), "2");
    let output = koala.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 2);
    assert!(
        output.warnings.iter().all(|w| !w.contains("snaps")),
        "{:?}",
        output.warnings
    );
    let posted = &sim.request_log().for_route(Route::KoalaGenerate)[0];
    assert_eq!(posted.auth.authorization, Some(Credential::KoalaKey));
    let body = posted.body.as_ref().unwrap();
    assert_eq!(body["size"], "1536x1024");
    assert_eq!(body["numImages"], 2);
    assert_eq!(body["model"], "gpt-image-2");
    let dir = tempfile::tempdir().unwrap();
    for (n, image) in output.images.iter().enumerate() {
        let got = downloader()
            .download_with_extension(&image.url, &dir.path().join(format!("k-{n}")))
            .await
            .unwrap();
        assert!(got.bytes > 0);
    }
    let images = sim.request_log().for_route(Route::KoalaImage);
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|r| r.auth.is_none()), "{images:?}");
}

#[tokio::test]
async fn koala_a_size_planned_off_the_list_is_sent_as_written_and_koala_snaps_it() {
    // A hand-made plan with a size gpt-image-2 does not make: the client decides nothing,
    // sends 1216x832 as written, and passes on the warning that Koala snaps it.
    let sim = sim().await;
    let koala = koala(&sim, KoalaPlan::Professional);
    let plan = call("koala", exact("gpt-image-2"), "a watercolor fox")
        .with_shape("1216x832".parse().unwrap());
    let job = koala.submit(&plan).await.unwrap();
    let output = koala.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 1);
    let posted = &sim.request_log().for_route(Route::KoalaGenerate)[0];
    assert_eq!(posted.body.as_ref().unwrap()["size"], "1216x832");
    assert!(
        output.warnings.iter().any(|w| w.contains("1536x1024")),
        "{:?}",
        output.warnings
    );
}

#[tokio::test]
async fn koala_plan_rules_locally_and_remotely() {
    let sim = sim().await;
    sim.set_koala_plan(sim.koala_api_key(), SimPlan::Basic);
    // gpt-image-2 at Koala's `high` quality needs the Professional Plan.
    let submission = call("koala", exact("gpt-image-2"), "x").with_quality("high");

    // Told the plan: refused before sending.
    let told = koala(&sim, KoalaPlan::Basic);
    let err = told.submit(&submission).await.unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::PlanRequired), "{err:?}");
    assert_eq!(sim.request_log().count(Route::KoalaGenerate), 0);

    // Plan unknown: Koala's 403 says so.
    let unknown = koala(&sim, KoalaPlan::Unknown);
    let err = unknown.submit(&submission).await.unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::PlanRequired), "{err:?}");
    assert_eq!(sim.request_log().count(Route::KoalaGenerate), 1);
}

#[tokio::test]
async fn koala_out_of_credits_and_bad_key() {
    let sim = sim().await;
    sim.set_koala_credits(sim.koala_api_key(), 0);
    let koala = koala(&sim, KoalaPlan::Professional);
    let err = koala
        .submit(&call("koala", ModelChoice::ProviderDefault, "x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(&Refusal::InsufficientCredits),
        "{err:?}"
    );

    let bad = KoalaProvider::new(
        KoalaClient::builder("00000000-0000-4000-8000-000000000000".to_owned())
            .base_url(sim.koala_base_url())
            .clock(ManualClock::new().shared())
            .build()
            .unwrap(),
    );
    let err = bad
        .submit(&call("koala", ModelChoice::ProviderDefault, "x"))
        .await
        .unwrap_err();
    assert_eq!(err.refusal(), Some(&Refusal::Auth), "{err:?}");
}

#[tokio::test]
async fn koala_failed_image_is_a_typed_download_error() {
    let sim = sim().await;
    sim.faults().inject(FaultRule::always(
        Route::KoalaGenerate,
        Fault::provider_failure(),
    ));
    let koala = koala(&sim, KoalaPlan::Professional);
    let job = koala
        .submit(&call("koala", ModelChoice::ProviderDefault, "x"))
        .await
        .unwrap();
    let output = koala.wait(&job, &NoProgress).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fast = ImageDownloader::builder()
        .clock(ManualClock::new().shared())
        .deadline(Duration::from_secs(30))
        .max_attempts(3)
        .build()
        .unwrap();
    let err = fast
        .download_with_extension(&output.images[0].url, &dir.path().join("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            imagegen_http::DownloadError::AttemptsExhausted { attempts: 3, .. }
        ),
        "{err:?}"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    // The charge book: one KoalaImages order under the id the client keeps, given back
    // once the image failed.
    let [charge] = sim.charges().try_into().unwrap();
    assert_eq!(
        (charge.provider, charge.job_id.as_str()),
        ("koala", job.job_id.as_str())
    );
    assert!(charge.is_refunded(sim.clock().now()));
}

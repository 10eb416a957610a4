//! What a request asks for is what is sent: the shape policy, provider options and styles
//! as requirements (also on fallback), truthful errors, and faults that degrade a run
//! without ending it. In-memory fake providers; no network, no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Fake, OnSubmit, OnWait, Pair, model_entry, pair_with, refused};
use imagegen_core::{
    Capabilities, Error, GenerationRequest, NoProgress, ProviderExtras, ProviderId, Refund,
    Refusal, ShapeSupport, StyleSupport,
};
use imagegen_router::{CallOptions, CooldownPolicy, Exclusion, RouteError, RoutingPolicy};
use serde_json::json;

/// Kolbo: a cheap square-only model and a dearer 16:9 one, both honouring moodboards,
/// the style in the prompt. Koala: one model of any shape, honouring alt text, with a
/// style list.
fn kolbo() -> Fake {
    let caps = |shapes: ShapeSupport| Capabilities {
        shapes,
        max_images_per_request: 4,
        styles: StyleSupport::InPrompt,
        options: vec!["moodboard_id".into(), "visual_dna_ids".into()],
        ..Capabilities::default()
    };
    let ratios = |r: &[&str]| ShapeSupport::AspectRatios {
        ratios: r.iter().map(|s| s.parse().unwrap()).collect(),
        snap: true,
    };
    Fake::new(
        "kolbo",
        vec![
            model_entry("kolbo", "square", 1).with_capabilities(caps(ratios(&["1:1"]))),
            model_entry("kolbo", "wide", 4).with_capabilities(caps(ratios(&["1:1", "16:9"]))),
        ],
    )
}

fn koala() -> Fake {
    Fake::new(
        "koala",
        vec![
            model_entry("koala", "any", 2).with_capabilities(Capabilities {
                max_images_per_request: 4,
                styles: StyleSupport::Named(vec!["photo".into(), "anime".into()]),
                options: vec!["generate_alt_text".into()],
                ..Capabilities::default()
            }),
        ],
    )
}

/// Kolbo and KoalaImages under `policy` (arguments in tie-break order).
fn setup(kolbo: Fake, koala: Fake, policy: RoutingPolicy) -> Pair {
    pair_with(koala, kolbo, policy)
}

fn with_options(
    builder: imagegen_core::GenerationRequestBuilder,
    provider: &str,
    options: serde_json::Value,
) -> GenerationRequest {
    let mut extras = ProviderExtras::default();
    extras.set(ProviderId::new(provider), &options).unwrap();
    builder.extras(extras).build().unwrap()
}

#[tokio::test]
async fn a_wide_request_never_goes_to_a_square_only_model_and_naming_it_sends_nothing() {
    let s = setup(kolbo(), koala(), RoutingPolicy::default());
    let wide = GenerationRequest::builder("a fox")
        .shape("16:9".parse().unwrap())
        .build()
        .unwrap();
    let estimate = s.router.estimate(&wide).await.unwrap();
    let square = estimate
        .candidates
        .iter()
        .find(|c| c.label() == "kolbo/square")
        .unwrap();
    assert!(!square.eligible);
    assert!(
        square.reason.contains("nearest shape 1:1 is 78% off"),
        "{}",
        square.reason
    );
    // The cheapest that makes 16:9 is Koala's any-shape model; what was shown is sent.
    let best = estimate.best().unwrap().clone();
    assert_eq!(best.label(), "koala/any");
    s.router.generate(&wide, &NoProgress).await.unwrap();
    assert_eq!(s.koala.sent.lock().unwrap().clone(), best.calls);
    assert_eq!(s.kolbo.submits(), 0);

    // Named, the square model is an input error before anything is sent.
    let named = CallOptions::default().provider("kolbo").model("square");
    let err = s
        .router
        .generate_with(&wide, &named, &NoProgress, &imagegen_router::NoObserver)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RouteError::NoEligibleCandidate { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("78% off"), "{err}");
    assert!(matches!(
        imagegen_core::Error::from(err),
        imagegen_core::Error::InvalidInput(_)
    ));
    assert_eq!(s.kolbo.submits(), 0);

    // Allowing reshaping sends the square, with one warning.
    let reshape = named.allow_reshape(true);
    let routed = s
        .router
        .generate_with(&wide, &reshape, &NoProgress, &imagegen_router::NoObserver)
        .await
        .unwrap();
    assert_eq!(routed.warnings.len(), 1, "{:?}", routed.warnings);
    assert_eq!(
        s.kolbo.sent.lock().unwrap()[0].shape,
        Some("1:1".parse().unwrap())
    );
}

#[tokio::test]
async fn kolbo_options_never_reach_koala_even_on_fallback() {
    // Both Kolbo models refuse (model not found); Koala is cheaper for nothing but must
    // not be tried: it would drop the moodboard.
    let s = setup(
        kolbo()
            .then_submit(OnSubmit::Fail(refused("kolbo", Refusal::ModelNotFound)))
            .then_submit(OnSubmit::Fail(refused("kolbo", Refusal::ModelNotFound))),
        koala(),
        RoutingPolicy::default(),
    );
    let request = with_options(
        GenerationRequest::builder("a sneaker"),
        "kolbo",
        json!({"moodboard_id": "m1", "visual_dna_ids": ["d1"]}),
    );
    let estimate = s.router.estimate(&request).await.unwrap();
    let koala = estimate
        .candidates
        .iter()
        .find(|c| c.provider == "koala")
        .unwrap();
    assert!(matches!(
        koala.exclusions[0],
        Exclusion::OptionsForAnotherProvider { .. }
    ));
    assert!(
        koala.reason.contains("only kolbo honours"),
        "{}",
        koala.reason
    );
    let err = s.router.generate(&request, &NoProgress).await.unwrap_err();
    assert!(matches!(err, RouteError::AllAttemptsFailed { .. }), "{err}");
    assert_eq!(s.kolbo.submits(), 2);
    assert_eq!(s.koala.submits(), 0, "the options would have been dropped");
    for call in s.kolbo.sent.lock().unwrap().iter() {
        assert_eq!(call.options["moodboard_id"], "m1");
    }
}

#[tokio::test]
async fn alt_text_is_never_routed_to_kolbo_and_options_nothing_honours_are_input_errors() {
    let s = setup(kolbo(), koala(), RoutingPolicy::default());
    let request = with_options(
        GenerationRequest::builder("a fox"),
        "koala",
        json!({"generate_alt_text": true}),
    );
    s.router.generate(&request, &NoProgress).await.unwrap();
    assert_eq!(
        s.kolbo.submits(),
        0,
        "kolbo is cheaper but writes no alt text"
    );
    assert_eq!(
        s.koala.sent.lock().unwrap()[0].options["generate_alt_text"],
        true
    );

    // An option no Koala model honours: nothing can take it, nothing is sent.
    let unknown = with_options(
        GenerationRequest::builder("a fox"),
        "koala",
        json!({"preserve_original": true}),
    );
    let err = s.router.generate(&unknown, &NoProgress).await.unwrap_err();
    assert!(
        matches!(err, RouteError::NoEligibleCandidate { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("does not honour preserve_original"),
        "{err}"
    );

    // Options of two providers at once cannot both be honoured.
    let mut extras = ProviderExtras::default();
    extras
        .set("kolbo".into(), &json!({"moodboard_id": "m"}))
        .unwrap();
    extras
        .set("koala".into(), &json!({"generate_alt_text": true}))
        .unwrap();
    let both = GenerationRequest::builder("x")
        .extras(extras)
        .build()
        .unwrap();
    let err = s.router.estimate(&both).await.unwrap_err();
    assert!(matches!(err, RouteError::InvalidRequest(_)), "{err}");
    // Options of a provider that is not configured.
    let mut extras = ProviderExtras::default();
    extras.set("fal".into(), &json!({"seed": 1})).unwrap();
    let other = GenerationRequest::builder("x")
        .extras(extras)
        .build()
        .unwrap();
    assert!(
        s.router
            .estimate(&other)
            .await
            .unwrap_err()
            .to_string()
            .contains("fal is not configured")
    );
    assert_eq!(s.koala.submits() + s.kolbo.submits(), 1);
}

#[tokio::test]
async fn a_style_outside_the_list_is_not_sent_to_koala() {
    let s = setup(
        kolbo(),
        koala(),
        RoutingPolicy::default().deny_provider("kolbo"),
    );
    let oil = GenerationRequest::builder("x")
        .style("oil")
        .build()
        .unwrap();
    let err = s.router.generate(&oil, &NoProgress).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no style `oil` (takes photo, anime)"),
        "{err}"
    );
    assert_eq!(s.koala.submits(), 0);
    let anime = GenerationRequest::builder("x")
        .style("Anime")
        .build()
        .unwrap();
    s.router.generate(&anime, &NoProgress).await.unwrap();
    assert_eq!(s.koala.sent.lock().unwrap()[0].style_field(), Some("anime"));
}

#[tokio::test]
async fn a_pinned_provider_with_a_refused_key_says_so() {
    let mut bad = kolbo();
    bad.catalog_error = Some(Error::Refused {
        provider: "kolbo".into(),
        reason: Refusal::Auth,
        message: "Invalid API key".into(),
        status: Some(401),
        code: None,
    });
    let s = setup(bad, koala(), RoutingPolicy::default());
    let request = GenerationRequest::builder("x").build().unwrap();
    let pinned = CallOptions::default().provider("kolbo");
    let err = s
        .router
        .generate_with(&request, &pinned, &NoProgress, &imagegen_router::NoObserver)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RouteError::CatalogUnavailable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("authentication failed"), "{err}");
    assert!(matches!(
        imagegen_core::Error::from(err),
        imagegen_core::Error::Refused {
            reason: Refusal::Auth,
            ..
        }
    ));
    assert!(s.router.estimate_with(&request, &pinned).await.is_err());
    // Unpinned, Koala still serves, and the estimate says why Kolbo is missing.
    let estimate = s.router.estimate(&request).await.unwrap();
    assert!(
        estimate
            .notes
            .iter()
            .any(|n| n.contains("kolbo is left out"))
    );
}

#[tokio::test]
async fn an_unreachable_host_fails_once_per_request_not_once_per_model() {
    let down = || Error::NotDelivered {
        provider: "kolbo".into(),
        message: "connection refused".into(),
    };
    let s = setup(
        kolbo()
            .then_submit(OnSubmit::Fail(down()))
            .then_submit(OnSubmit::Fail(down())),
        koala().then_submit(OnSubmit::Fail(Error::NotDelivered {
            provider: "koala".into(),
            message: "connection refused".into(),
        })),
        RoutingPolicy::default(),
    );
    let request = GenerationRequest::builder("x").build().unwrap();
    let err = s.router.generate(&request, &NoProgress).await.unwrap_err();
    assert_eq!(s.kolbo.submits(), 1, "one failure per host");
    assert_eq!(s.koala.submits(), 1);
    let text = err.to_string();
    assert!(text.contains("could not reach the provider"), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(text.contains("nothing was charged"), "{text}");
    assert!(matches!(
        imagegen_core::Error::from(err),
        imagegen_core::Error::NotDelivered { .. }
    ));
}

#[tokio::test]
async fn a_failed_generation_says_the_providers_reason() {
    let s = setup(
        kolbo(),
        koala().then_wait(OnWait::Fail(Error::GenerationFailed {
            provider: "koala".into(),
            job_id: "j".into(),
            message: "the prompt was flagged by the content filter".into(),
            code: Some("content_policy".into()),
            refund: Refund::Refunded,
            retryable: Some(false),
        })),
        RoutingPolicy::default().deny_provider("kolbo"),
    );
    let request = GenerationRequest::builder("x").build().unwrap();
    let err = s.router.generate(&request, &NoProgress).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("generation failed, credits refunded"),
        "{text}"
    );
    assert!(text.contains("flagged by the content filter"), "{text}");
    assert!(
        !text.contains("refused"),
        "a failed generation is not a refusal: {text}"
    );
}

#[tokio::test]
async fn transient_faults_rest_a_provider_and_it_comes_back() {
    let policy = RoutingPolicy::default().cooldown(CooldownPolicy {
        failures: 2,
        duration: Duration::from_secs(30),
    });
    let redirect = || Error::Config("kolbo answered HTTP 302 redirecting elsewhere".into());
    let s = setup(
        kolbo()
            .then_submit(OnSubmit::Fail(redirect()))
            .then_submit(OnSubmit::Fail(refused("kolbo", Refusal::ServerError))),
        koala(),
        policy,
    );
    let request = GenerationRequest::builder("x").build().unwrap();
    // Two requests fail over to Koala; the second failure rests Kolbo.
    for _ in 0..2 {
        s.router.generate(&request, &NoProgress).await.unwrap();
    }
    assert_eq!(s.kolbo.submits(), 2);
    let estimate = s.router.estimate(&request).await.unwrap();
    let square = estimate
        .candidates
        .iter()
        .find(|c| c.label() == "kolbo/square")
        .unwrap();
    assert!(
        matches!(square.exclusions[0], Exclusion::CoolingDown { .. }),
        "{:?}",
        square.exclusions
    );
    s.router.generate(&request, &NoProgress).await.unwrap();
    assert_eq!(s.kolbo.submits(), 2, "resting");
    // After the rest, Kolbo serves again: a redirect or a 5xx storm never ends its run.
    s.clock.advance(Duration::from_secs(31));
    s.router.generate(&request, &NoProgress).await.unwrap();
    assert_eq!(s.kolbo.submits(), 3);
}

#[tokio::test]
async fn only_a_refused_key_takes_a_provider_out_for_the_run() {
    let s = setup(
        kolbo().then_submit(OnSubmit::Fail(refused("kolbo", Refusal::Auth))),
        koala(),
        RoutingPolicy::default(),
    );
    let request = GenerationRequest::builder("x").build().unwrap();
    let routed = s.router.generate(&request, &NoProgress).await.unwrap();
    assert!(
        routed
            .warnings
            .iter()
            .any(|w| w.contains("kolbo is not used for the rest of this run")),
        "{:?}",
        routed.warnings
    );
    s.clock.advance(Duration::from_secs(3600));
    s.router.generate(&request, &NoProgress).await.unwrap();
    assert_eq!(s.kolbo.submits(), 1);
}

#[tokio::test]
async fn call_options_share_the_runs_state() {
    let s = setup(
        kolbo().then_submit(OnSubmit::Fail(refused(
            "kolbo",
            Refusal::InsufficientCredits,
        ))),
        koala(),
        RoutingPolicy::default(),
    );
    let request = GenerationRequest::builder("x").build().unwrap();
    s.router.generate(&request, &NoProgress).await.unwrap();
    // A later call pinned to Kolbo knows, without asking again, that it is out of credits.
    let pinned = CallOptions::default().provider("kolbo");
    let err = s
        .router
        .generate_with(&request, &pinned, &NoProgress, &imagegen_router::NoObserver)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of credits"), "{err}");
    assert_eq!(s.kolbo.submits(), 1);
    assert_eq!(
        s.kolbo
            .catalog_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

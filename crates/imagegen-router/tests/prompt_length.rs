//! A model's prompt limit is a requirement: a prompt longer than a model takes (as the wire
//! would carry it, style included) never goes to it, and naming such a model is an input
//! error with nothing sent. In-memory fake providers; no network, no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fake, Pair, model_entry, pair_with};
use imagegen_core::{Capabilities, GenerationRequest, NoProgress, StyleSupport};
use imagegen_router::{CallOptions, Exclusion, NoObserver, RouteError, RoutingPolicy};

fn limited(provider: &str, model: &str, price: u32, max: u32, styles: StyleSupport) -> Fake {
    Fake::new(
        provider,
        vec![
            model_entry(provider, model, price).with_capabilities(Capabilities {
                max_images_per_request: 4,
                max_prompt_chars: Some(max),
                styles,
                ..Capabilities::default()
            }),
        ],
    )
}

/// Kolbo: a cheap model taking at most 20 characters, styles in the prompt. Koala: a
/// dearer one taking at most 4,000, styles in a field.
fn setup() -> Pair {
    pair_with(
        limited("koala", "any", 2, 4_000, StyleSupport::Any),
        limited("kolbo", "short", 1, 20, StyleSupport::InPrompt),
        RoutingPolicy::default(),
    )
}

fn prompt(chars: usize) -> GenerationRequest {
    GenerationRequest::builder("x".repeat(chars))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_prompt_longer_than_a_model_takes_is_routed_elsewhere() {
    let s = setup();
    let fits = s.router.estimate(&prompt(20)).await.unwrap();
    assert_eq!(fits.best().unwrap().label(), "kolbo/short");

    let long = prompt(21);
    let estimate = s.router.estimate(&long).await.unwrap();
    let short = estimate
        .candidates
        .iter()
        .find(|c| c.label() == "kolbo/short")
        .unwrap();
    assert!(!short.eligible);
    assert_eq!(
        short.exclusions,
        [Exclusion::PromptTooLong { max: 20, given: 21 }]
    );
    assert!(
        short
            .reason
            .contains("takes prompts of at most 20 characters; this one has 21"),
        "{}",
        short.reason
    );
    assert_eq!(estimate.best().unwrap().label(), "koala/any");
    s.router.generate(&long, &NoProgress).await.unwrap();
    assert_eq!(s.kolbo.submits(), 0);
    assert_eq!(s.koala.submits(), 1);
}

#[tokio::test]
async fn a_style_appended_to_the_prompt_counts_towards_the_limit() {
    let s = setup();
    // 10 characters, plus ", in watercolor style" (21) on Kolbo: 31, over its 20.
    let styled = GenerationRequest::builder("a red fox!")
        .style("watercolor")
        .build()
        .unwrap();
    let estimate = s.router.estimate(&styled).await.unwrap();
    let short = estimate
        .candidates
        .iter()
        .find(|c| c.label() == "kolbo/short")
        .unwrap();
    assert_eq!(
        short.exclusions,
        [Exclusion::PromptTooLong { max: 20, given: 31 }]
    );
    assert_eq!(estimate.best().unwrap().label(), "koala/any");
}

#[tokio::test]
async fn naming_a_model_that_cannot_take_the_prompt_is_an_input_error_before_sending() {
    let s = setup();
    let named = CallOptions::default().provider("kolbo").model("short");
    let err = s
        .router
        .generate_with(&prompt(5_120), &named, &NoProgress, &NoObserver)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RouteError::NoEligibleCandidate { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("kolbo/short: takes prompts of at most 20 characters; this one has 5,120"),
        "{err}"
    );
    assert!(matches!(
        imagegen_core::Error::from(err),
        imagegen_core::Error::InvalidInput(_)
    ));
    assert_eq!(s.kolbo.submits() + s.koala.submits(), 0);
}

#[tokio::test]
async fn a_koala_only_route_over_its_bound_is_refused_before_sending() {
    let s = setup();
    let koala_only = CallOptions::default().provider("koala");
    let err = s
        .router
        .generate_with(&prompt(5_120), &koala_only, &NoProgress, &NoObserver)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("koala/any: takes prompts of at most 4,000 characters; this one has 5,120"),
        "{err}"
    );
    assert!(matches!(
        imagegen_core::Error::from(err),
        imagegen_core::Error::InvalidInput(_)
    ));
    assert_eq!(s.kolbo.submits() + s.koala.submits(), 0);
    // Without the provider choice, no model takes it either: the same input error.
    let err = s
        .router
        .generate(&prompt(5_120), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(
        imagegen_core::Error::from(err),
        imagegen_core::Error::InvalidInput(_)
    ));
    assert_eq!(s.kolbo.submits() + s.koala.submits(), 0);
}

//! Candidate evaluation and ranking, with in-memory fake providers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fake, cents, model_entry};
use imagegen_core::{
    Capabilities, CreditWorth, Credits, Error, GenerationRequest, ManualClock, ModelEntry,
    NoProgress, Price, Quality, QualityOption, ShapeSupport,
};
use imagegen_router::{
    CallOptions, Comparison, Exclusion, Preference, RouteError, Router, RoutingPolicy, SmartSelect,
};

fn request(count: u32) -> GenerationRequest {
    GenerationRequest::builder("a lighthouse at dusk")
        .count(count)
        .build()
        .unwrap()
}

fn router(providers: Vec<Fake>, policy: RoutingPolicy) -> Router {
    let mut builder = Router::builder(ManualClock::new().shared()).policy(policy);
    for p in providers {
        builder = builder.provider(Arc::new(p));
    }
    builder.build().unwrap()
}

fn nano_banana_pair() -> Vec<Fake> {
    vec![
        Fake::flat("kolbo", "nano-banana-2", 8),
        Fake::flat("koala", "nano-banana-2", 5),
    ]
}

#[tokio::test]
async fn same_model_equal_worth_the_cheaper_provider_wins() {
    let policy = RoutingPolicy::default()
        .credit_worth("kolbo", cents())
        .credit_worth("koala", cents());
    let estimate = router(nano_banana_pair(), policy)
        .estimate(&request(1))
        .await
        .unwrap();
    assert_eq!(estimate.comparison, Comparison::Usd);
    let best = estimate.best().unwrap();
    assert_eq!(best.provider, "koala");
    assert_eq!(best.total_usd, Some("0.05".parse().unwrap()));
    assert_eq!(estimate.candidates[1].provider, "kolbo");
    assert_eq!(estimate.candidates[1].rank, Some(2));
    assert!(estimate.notes.is_empty(), "{:?}", estimate.notes);
}

#[tokio::test]
async fn same_model_koala_credit_worth_more_kolbo_wins() {
    let policy = RoutingPolicy::default()
        .credit_worth("kolbo", CreditWorth::KOLBO_DOCUMENTED)
        .credit_worth("koala", CreditWorth::per_credit("0.02".parse().unwrap()));
    let estimate = router(nano_banana_pair(), policy)
        .estimate(&request(1))
        .await
        .unwrap();
    let best = estimate.best().unwrap();
    assert_eq!(best.provider, "kolbo", "$0.08 beats 5 × $0.02 = $0.10");
    assert_eq!(best.total_usd, Some("0.08".parse().unwrap()));
    assert!(best.reason.contains("$0.08"), "{}", best.reason);
}

#[tokio::test]
async fn unknown_worth_compares_in_credits_and_says_so() {
    let policy = RoutingPolicy::default().credit_worth("kolbo", cents());
    let estimate = router(nano_banana_pair(), policy)
        .estimate(&request(2))
        .await
        .unwrap();
    assert_eq!(estimate.comparison, Comparison::Credits);
    let best = estimate.best().unwrap();
    assert_eq!(
        (best.provider.as_str(), best.total_credits),
        ("koala", Some(Credits::whole(10)))
    );
    assert!(
        best.notes
            .iter()
            .any(|n| n.contains("koala credit is unknown")),
        "{:?}",
        best.notes
    );
    assert!(
        estimate.notes[0].contains("unknown for koala"),
        "{:?}",
        estimate.notes
    );
}

#[tokio::test]
async fn ties_break_by_provider_order_then_model_and_are_stable() {
    let providers = || {
        vec![
            Fake::new(
                "kolbo",
                vec![model_entry("kolbo", "b", 5), model_entry("kolbo", "a", 5)],
            ),
            Fake::flat("koala", "a", 5),
        ]
    };
    let labels =
        |e: &imagegen_router::Estimate| e.candidates.iter().map(|c| c.label()).collect::<Vec<_>>();
    let first = router(providers(), RoutingPolicy::default())
        .estimate(&request(1))
        .await
        .unwrap();
    assert_eq!(labels(&first), vec!["kolbo/a", "kolbo/b", "koala/a"]);
    for _ in 0..5 {
        let again = router(providers(), RoutingPolicy::default())
            .estimate(&request(1))
            .await
            .unwrap();
        assert_eq!(labels(&again), labels(&first));
    }
}

fn shaped(provider: &str, model: &str, price: u32, caps: Capabilities) -> ModelEntry {
    ModelEntry::new(provider, model, Price::flat(Credits::whole(price))).with_capabilities(caps)
}

#[tokio::test]
async fn capability_exclusions_each_have_a_reason() {
    let ratios_only = Capabilities {
        shapes: ShapeSupport::AspectRatios {
            ratios: vec!["1:1".parse().unwrap(), "16:9".parse().unwrap()],
            snap: false,
        },
        max_reference_images: 5,
        ..Capabilities::default()
    };
    let snapping_sizes = Capabilities {
        shapes: ShapeSupport::Sizes {
            sizes: vec!["1024x1024".parse().unwrap(), "1536x1024".parse().unwrap()],
            snap: true,
        },
        max_reference_images: 5,
        ..Capabilities::default()
    };
    let no_refs = Capabilities {
        max_reference_images: 0,
        ..Capabilities::default()
    };
    let qualities = Capabilities {
        max_reference_images: 5,
        qualities: vec![QualityOption::new(
            "fast",
            Some(Quality::Low),
            Credits::whole(1),
        )],
        default_quality: Some("fast".into()),
        ..Capabilities::default()
    };
    let fake = Fake::new(
        "koala",
        vec![
            shaped("koala", "ratios", 1, ratios_only),
            shaped("koala", "snapper", 2, snapping_sizes),
            shaped("koala", "no-refs", 3, no_refs),
            shaped("koala", "fast-only", 4, qualities),
        ],
    );
    let request = GenerationRequest::builder("x")
        .shape("5:4".parse().unwrap())
        .reference_image("https://example.com/r.png")
        .build()
        .unwrap();
    let router = router(vec![fake], RoutingPolicy::default());
    let estimate = router.estimate(&request).await.unwrap();
    let get = |m: &str| {
        estimate
            .candidates
            .iter()
            .find(|c| c.model.as_ref().is_some_and(|id| id == m))
            .unwrap()
    };
    let ratios = get("ratios");
    assert!(!ratios.eligible);
    assert!(matches!(
        &ratios.exclusions[0],
        Exclusion::ShapeUnsupported { requested, accepted } if requested == "5:4" && accepted.len() == 2
    ));
    assert_eq!(ratios.reason, "does not make 5:4 (accepts 1:1, 16:9)");

    // 5:4 to 3:2 changes the ratio by 20 %: far, so excluded unless reshaping is allowed.
    let snapper = get("snapper");
    assert!(!snapper.eligible);
    assert_eq!(
        snapper.exclusions,
        vec![Exclusion::ShapeTooFar {
            requested: "5:4".into(),
            nearest: "1536x1024".into(),
            off_percent: 20
        }]
    );
    let reshaped = router
        .estimate_with(&request, &CallOptions::default().allow_reshape(true))
        .await
        .unwrap();
    let snapper = reshaped
        .candidates
        .iter()
        .find(|c| c.model.as_ref().is_some_and(|id| id == "snapper"))
        .unwrap();
    assert!(snapper.eligible, "{:?}", snapper.exclusions);
    assert_eq!(snapper.shape, Some("1536x1024".parse().unwrap()));
    assert_eq!(snapper.calls[0].shape, Some("1536x1024".parse().unwrap()));
    assert_eq!(snapper.warnings.len(), 1, "{:?}", snapper.warnings);
    assert!(snapper.warnings[0].contains("reshaped to 1536x1024 (20% off)"));

    let no_refs = get("no-refs");
    assert_eq!(
        no_refs.exclusions,
        vec![Exclusion::TooManyReferenceImages { given: 1, max: 0 }]
    );
    assert!(no_refs.reason.contains("at most 0 reference images"));

    // Its default quality makes fast-only the cheapest.
    assert_eq!(estimate.best().unwrap().label(), "koala/fast-only");

    // A quality no model offers: the one with other qualities says which it has, and one
    // without any quality setting says so.
    let high = GenerationRequest::builder("x")
        .quality(Quality::High)
        .build()
        .unwrap();
    let estimate = router.estimate(&high).await.unwrap();
    let get = |m: &str| {
        estimate
            .candidates
            .iter()
            .find(|c| c.model.as_ref().is_some_and(|id| id == m))
            .unwrap()
    };
    assert!(
        get("snapper")
            .reason
            .contains("has no quality setting, `high` asked")
    );
    let fast = get("fast-only");
    assert!(matches!(
        &fast.exclusions[0],
        Exclusion::QualityUnavailable { wanted, offered } if wanted == "high" && offered == &vec!["fast".to_owned()]
    ));
    assert!(estimate.best().is_none());
}

fn koala_catalog() -> Fake {
    let gpt = ModelEntry::new("koala", "gpt-image-2", Price::flat(Credits::whole(1)))
        .with_capabilities(Capabilities {
            max_images_per_request: 4,
            qualities: vec![
                QualityOption::new("fast", Some(Quality::Low), Credits::whole(1)),
                QualityOption::new("high", Some(Quality::High), Credits::whole(20))
                    .requiring_plan("professional"),
            ],
            default_quality: Some("fast".into()),
            ..Capabilities::default()
        });
    let nano = ModelEntry::new("koala", "nano-banana-2", Price::flat(Credits::whole(5)))
        .with_capabilities(Capabilities {
            max_images_per_request: 4,
            required_plan: Some("professional".into()),
            ..Capabilities::default()
        });
    Fake::new("koala", vec![gpt, nano])
}

#[tokio::test]
async fn plan_gating_by_model_and_by_quality() {
    let high = GenerationRequest::builder("x")
        .quality(Quality::High)
        .build()
        .unwrap();
    // A basic plan: the professional-only model and quality are excluded, with reasons.
    let basic = router(
        vec![koala_catalog()],
        RoutingPolicy::default()
            .plan("koala", "basic")
            .plan_tiers("koala", ["basic", "professional"]),
    );
    let estimate = basic.estimate(&high).await.unwrap();
    assert!(estimate.best().is_none());
    for c in &estimate.candidates {
        assert!(
            c.reason
                .contains("needs the professional plan (yours: basic)"),
            "{}: {}",
            c.label(),
            c.reason
        );
    }
    let err = basic.generate(&high, &NoProgress).await.unwrap_err();
    assert!(
        matches!(err, RouteError::NoEligibleCandidate { .. }),
        "{err}"
    );
    // The default quality needs no plan.
    let fast = basic.estimate(&request(1)).await.unwrap();
    assert_eq!(fast.best().unwrap().label(), "koala/gpt-image-2");
    assert_eq!(fast.best().unwrap().quality.as_deref(), Some("fast"));

    // Unknown plan: eligible, and the estimate says why it may fail.
    let unknown = router(vec![koala_catalog()], RoutingPolicy::default());
    let estimate = unknown.estimate(&high).await.unwrap();
    // nano-banana-2 has no quality setting, so asking for `high` excludes it.
    assert_eq!(estimate.eligible().count(), 1);
    assert!(estimate.eligible().all(|c| {
        c.notes
            .iter()
            .any(|n| n.contains("needs the professional plan"))
    }));

    // Professional: eligible without notes about plans.
    let pro = router(
        vec![koala_catalog()],
        RoutingPolicy::default().plan("koala", "professional"),
    );
    let estimate = pro.estimate(&high).await.unwrap();
    assert_eq!(estimate.best().unwrap().label(), "koala/gpt-image-2");
    assert_eq!(
        estimate.best().unwrap().total_credits,
        Some(Credits::whole(20))
    );
}

#[tokio::test]
async fn price_caps_per_image_per_request_and_in_dollars() {
    // Per image: Kolbo's 8 is over a cap of 6.
    let capped = router(
        nano_banana_pair(),
        RoutingPolicy::default().max_credits_per_image(Credits::whole(6)),
    );
    let estimate = capped.estimate(&request(1)).await.unwrap();
    let kolbo = estimate
        .candidates
        .iter()
        .find(|c| c.provider == "kolbo")
        .unwrap();
    assert_eq!(
        kolbo.exclusions,
        vec![Exclusion::OverImageCap {
            price: Credits::whole(8),
            cap: Credits::whole(6)
        }]
    );
    assert_eq!(estimate.eligible().count(), 1);

    // Per request: 3 images at 5 is 15, over 12; nothing fits, so the error says the cap.
    let capped = router(
        nano_banana_pair(),
        RoutingPolicy::default().max_credits_per_request(Credits::whole(12)),
    );
    let err = capped.generate(&request(3), &NoProgress).await.unwrap_err();
    match &err {
        RouteError::PriceCapExceeded { cheapest, .. } => {
            assert!(
                cheapest.starts_with("koala/nano-banana-2 at 5 credits"),
                "{cheapest}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("raise the cap"));
    assert!(matches!(
        imagegen_core::Error::from(err),
        Error::InvalidInput(i) if i.field() == "max_credits"
    ));

    // In dollars: an unknown worth cannot be checked and is excluded.
    let usd = router(
        nano_banana_pair(),
        RoutingPolicy::default()
            .credit_worth("kolbo", cents())
            .max_usd_per_image("0.10".parse().unwrap()),
    );
    let estimate = usd.estimate(&request(1)).await.unwrap();
    assert_eq!(estimate.best().unwrap().provider, "kolbo");
    let koala = estimate
        .candidates
        .iter()
        .find(|c| c.provider == "koala")
        .unwrap();
    assert_eq!(koala.exclusions, vec![Exclusion::UsdCapUnverifiable]);
}

#[tokio::test]
async fn policy_allow_deny_and_deprecated() {
    let fake = Fake::new(
        "koala",
        vec![
            model_entry("koala", "gpt-image-2", 1).deprecated(false),
            model_entry("koala", "standard", 1).deprecated(true),
        ],
    );
    let estimate = router(
        vec![fake],
        RoutingPolicy::default().deny_model("gpt-image-2"),
    )
    .estimate(&request(1))
    .await
    .unwrap();
    assert!(estimate.best().is_none());
    let reasons: Vec<_> = estimate
        .candidates
        .iter()
        .map(|c| c.reason.clone())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "model denied by the policy".to_owned(),
            "deprecated (name it or allow deprecated models to use it)".to_owned()
        ]
    );
    let named = router(
        vec![Fake::new(
            "koala",
            vec![model_entry("koala", "standard", 1).deprecated(true)],
        )],
        RoutingPolicy::default().allow_model("standard"),
    );
    let estimate = named.estimate(&request(1)).await.unwrap();
    assert!(estimate.best().unwrap().warnings[0].contains("deprecated"));
}

#[tokio::test]
async fn explicit_order_and_fastest() {
    let order = RoutingPolicy::default().preference(Preference::Order(vec![
        ("kolbo".into(), None),
        ("koala".into(), None),
    ]));
    let estimate = router(nano_banana_pair(), order)
        .estimate(&request(1))
        .await
        .unwrap();
    assert_eq!(estimate.best().unwrap().provider, "kolbo");
    assert!(
        estimate
            .best()
            .unwrap()
            .reason
            .contains("#1 in the preferred order")
    );

    let slow = model_entry("koala", "slow", 1).with_typical_seconds(60);
    let quick = model_entry("kolbo", "quick", 9).with_typical_seconds(12);
    let fastest = router(
        vec![
            Fake::new("koala", vec![slow]),
            Fake::new("kolbo", vec![quick]),
        ],
        RoutingPolicy::default().preference(Preference::Fastest),
    );
    let estimate = fastest.estimate(&request(1)).await.unwrap();
    assert_eq!(estimate.best().unwrap().label(), "kolbo/quick");
    assert!(estimate.best().unwrap().reason.contains("about 12s"));
}

#[tokio::test]
async fn fastest_learns_from_observed_latency() {
    let clock = ManualClock::new();
    let mut kolbo = Fake::new(
        "kolbo",
        vec![model_entry("kolbo", "quick-on-paper", 9).with_typical_seconds(5)],
    );
    kolbo.wait_delay = Some((clock.clone(), Duration::from_secs(30)));
    let koala = Fake::new(
        "koala",
        vec![model_entry("koala", "steady", 1).with_typical_seconds(10)],
    );
    let router = Router::builder(clock.shared())
        .provider(Arc::new(kolbo))
        .provider(Arc::new(koala))
        .policy(RoutingPolicy::default().preference(Preference::Fastest))
        .build()
        .unwrap();
    assert_eq!(
        router
            .estimate(&request(1))
            .await
            .unwrap()
            .best()
            .unwrap()
            .label(),
        "kolbo/quick-on-paper"
    );
    router.generate(&request(1), &NoProgress).await.unwrap();
    let estimate = router.estimate(&request(1)).await.unwrap();
    assert_eq!(estimate.best().unwrap().label(), "koala/steady");
    let kolbo = estimate
        .candidates
        .iter()
        .find(|c| c.provider == "kolbo")
        .unwrap();
    assert_eq!(
        kolbo.expected_seconds,
        Some(30),
        "observed, not the catalog's 5"
    );
}

#[tokio::test]
async fn splits_above_the_per_call_maximum() {
    let estimate = router(nano_banana_pair(), RoutingPolicy::default())
        .estimate(&request(6))
        .await
        .unwrap();
    let best = estimate.best().unwrap();
    assert_eq!(best.images_per_call(), vec![4, 2]);
    assert_eq!(best.total_credits, Some(Credits::whole(30)));
    assert!(
        best.notes
            .iter()
            .any(|n| n.contains("split into 2 calls (4 + 2)"))
    );
}

#[tokio::test]
async fn smart_select_reserves_the_dearest_eligible_model() {
    let kolbo = Fake::new(
        "kolbo",
        vec![
            model_entry("kolbo", "cheap", 2),
            model_entry("kolbo", "dear", 15),
        ],
    );
    let policy = RoutingPolicy::default()
        .smart_select("kolbo", SmartSelect::default())
        .deny_model("cheap");
    let estimate = router(vec![kolbo], policy)
        .estimate(&request(2))
        .await
        .unwrap();
    let smart = estimate
        .candidates
        .iter()
        .find(|c| c.model.is_none())
        .unwrap();
    assert!(smart.eligible);
    assert!(smart.price_is_cap);
    assert_eq!(smart.credits_per_image, Some(Credits::whole(15)));
    assert_eq!(smart.total_credits, Some(Credits::whole(30)));
    // Equal price: the exact model goes first.
    assert_eq!(estimate.best().unwrap().label(), "kolbo/dear");
}

#[tokio::test]
async fn a_failed_catalog_is_reported_not_fatal_and_the_cache_has_a_ttl() {
    let clock = ManualClock::manual();
    let mut broken = Fake::flat("kolbo", "nano-banana-2", 8);
    broken.catalog_error = Some(Error::NotDelivered {
        provider: "kolbo".into(),
        message: "connection refused".into(),
    });
    let koala = Arc::new(Fake::flat("koala", "nano-banana-2", 5));
    let router = Router::builder(clock.shared())
        .provider(Arc::new(broken))
        .provider(koala.clone())
        .policy(RoutingPolicy::default().catalog_ttl(Duration::from_secs(600)))
        .build()
        .unwrap();
    let estimate = router.estimate(&request(1)).await.unwrap();
    assert_eq!(estimate.best().unwrap().provider, "koala");
    assert_eq!(estimate.catalog_failures.len(), 1);
    assert!(
        estimate
            .notes
            .iter()
            .any(|n| n.contains("kolbo is left out"))
    );
    // A catalog with a failure is reused for a minute at most.
    router.estimate(&request(1)).await.unwrap();
    assert_eq!(
        koala
            .catalog_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    clock.advance(Duration::from_secs(61));
    router.estimate(&request(1)).await.unwrap();
    assert_eq!(
        koala
            .catalog_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn a_healthy_catalog_lives_for_its_ttl() {
    let clock = ManualClock::manual();
    let koala = Arc::new(Fake::flat("koala", "nano-banana-2", 5));
    let router = Router::builder(clock.shared())
        .provider(koala.clone())
        .policy(RoutingPolicy::default().catalog_ttl(Duration::from_secs(600)))
        .build()
        .unwrap();
    let calls = || {
        koala
            .catalog_calls
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    router.estimate(&request(1)).await.unwrap();
    clock.advance(Duration::from_secs(599));
    router.estimate(&request(1)).await.unwrap();
    assert_eq!(calls(), 1);
    clock.advance(Duration::from_secs(1));
    router.estimate(&request(1)).await.unwrap();
    assert_eq!(calls(), 2);
    router.refresh_catalog().await;
    assert_eq!(calls(), 3);
}

#[tokio::test]
async fn every_catalog_failing_is_an_error() {
    let mut broken = Fake::flat("kolbo", "nano-banana-2", 8);
    broken.catalog_error = Some(Error::NotDelivered {
        provider: "kolbo".into(),
        message: "connection refused".into(),
    });
    let err = router(vec![broken], RoutingPolicy::default())
        .generate(&request(1), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RouteError::CatalogUnavailable { .. }));
    let text = err.to_string();
    assert!(text.contains(": kolbo: could not reach the API"), "{text}");
    assert!(!text.contains("kolbo: kolbo:"), "said once: {text}");
}

#[test]
fn builder_rejects_no_and_duplicate_providers() {
    let clock = ManualClock::new().shared();
    assert!(matches!(
        Router::builder(clock.clone()).build(),
        Err(RouteError::NoProviders)
    ));
    let err = Router::builder(clock)
        .provider(Arc::new(Fake::flat("koala", "a", 1)))
        .provider(Arc::new(Fake::flat("Koala", "b", 1)))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "two providers are named `koala`: give each provider a distinct id"
    );
}

#[tokio::test]
async fn estimate_json_is_pinned() {
    let policy = RoutingPolicy::default()
        .credit_worth("kolbo", cents())
        .max_credits_per_image(Credits::whole(10))
        .run_budget(Credits::whole(100));
    let kolbo = Fake::new(
        "kolbo",
        vec![
            model_entry("kolbo", "nano-banana-2", 8),
            model_entry("kolbo", "nano-banana-pro", 15),
        ],
    );
    let estimate = router(vec![kolbo, Fake::flat("koala", "nano-banana-2", 5)], policy)
        .estimate(&request(6))
        .await
        .unwrap();
    insta::assert_json_snapshot!("estimate_six_images", estimate);
    insta::assert_snapshot!("estimate_six_images_text", estimate.to_string());
}

#[tokio::test]
async fn a_named_model_no_provider_offers_is_said_plainly() {
    let router = router(
        vec![koala_catalog()],
        RoutingPolicy::default().allow_model("no-such-model"),
    );
    let err = router.generate(&request(1), &NoProgress).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RouteError::NoEligibleCandidate { .. }),
        "{text}"
    );
    assert!(
        text.contains("no configured provider offers no-such-model"),
        "{text}"
    );
    assert!(
        text.contains("koala/gpt-image-2, koala/nano-banana-2"),
        "{text}"
    );
}

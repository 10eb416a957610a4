//! `auto`: the provider picks the model (Kolbo's Smart Select) when a call asks for it,
//! without a policy and without denying models by name. Its highest catalog price is
//! reserved, caps and the budget are checked against it before sending, and the
//! reservation settles to the charge reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Fake, model_entry};
use imagegen_core::{
    Capabilities, Credits, GenerationRequest, JobHandle, ManualClock, ModelChoice, ModelEntry,
    Multiplier, NoProgress, Price, Quality, QualityOption,
};
use imagegen_router::{
    AUTO_MODEL, CallOptions, Exclusion, RouteError, RouteObserver, Router, RoutingPolicy,
};

fn request(count: u32) -> GenerationRequest {
    GenerationRequest::builder("a lighthouse at dusk")
        .count(count)
        .build()
        .unwrap()
}

/// Kolbo picks (cheap 2, dear 15; it runs "cheap" at 2 when it picks); Koala (1) does not.
fn providers(policy: RoutingPolicy) -> (Arc<Fake>, Arc<Fake>, Router) {
    let mut kolbo = Fake::new(
        "kolbo",
        vec![
            model_entry("kolbo", "cheap", 2),
            model_entry("kolbo", "dear", 15),
        ],
    );
    kolbo.smart_price = Credits::whole(2);
    kolbo.smart_model = Some("cheap".into());
    let kolbo = Arc::new(kolbo);
    let koala = Arc::new(Fake::flat("koala", "gpt-image-2", 1));
    let router = Router::builder(ManualClock::new().shared())
        .provider(kolbo.clone())
        .provider(koala.clone())
        .provider_picks("kolbo")
        .policy(policy)
        .build()
        .unwrap();
    (kolbo, koala, router)
}

fn auto() -> CallOptions {
    CallOptions::default().provider_picks(true)
}

#[derive(Default)]
struct Reserved(Mutex<Vec<Credits>>);

#[async_trait::async_trait]
impl RouteObserver for Reserved {
    async fn accepted(&self, _job: &JobHandle, _plan: &imagegen_core::CallPlan, reserved: Credits) {
        self.0.lock().unwrap().push(reserved);
    }
}

#[test]
fn model_auto_is_the_providers_pick() {
    assert_eq!(CallOptions::default().model(AUTO_MODEL), auto());
    assert_eq!(CallOptions::default().model("AUTO"), auto());
    let mut direct = CallOptions::default();
    direct.model = Some("auto".into());
    assert!(direct.wants_provider_pick());
    assert!(!CallOptions::default().model("cheap").wants_provider_pick());
}

#[tokio::test]
async fn auto_reserves_the_highest_catalog_price_and_settles_to_the_charge() {
    let (kolbo, koala, router) =
        providers(RoutingPolicy::default().run_budget(Credits::whole(100)));
    let estimate = router.estimate_with(&request(2), &auto()).await.unwrap();
    let best = estimate.best().unwrap();
    assert_eq!(best.label(), "kolbo/auto");
    assert!(best.price_is_cap);
    assert_eq!(best.credits_per_image, Some(Credits::whole(15)));
    assert_eq!(best.total_credits, Some(Credits::whole(30)));
    assert!(
        best.notes
            .iter()
            .any(|n| n.contains("highest catalog price"))
    );
    assert!(
        best.calls
            .iter()
            .all(|c| c.model == ModelChoice::ProviderDefault)
    );
    // Nothing denied by name: every named model is out because the provider picks.
    assert_eq!(estimate.eligible().count(), 1);
    for c in estimate.candidates.iter().filter(|c| c.model.is_some()) {
        assert!(
            c.exclusions
                .iter()
                .all(|e| matches!(e, Exclusion::ModelNotAllowed { why } if why.contains("auto"))),
            "{:?}",
            c.exclusions
        );
    }

    let reserved = Reserved::default();
    let routed = router
        .generate_with(&request(2), &auto(), &NoProgress, &reserved)
        .await
        .unwrap();
    assert_eq!(*reserved.0.lock().unwrap(), vec![Credits::whole(30)]);
    assert_eq!(
        kolbo.sent.lock().unwrap()[0].model,
        ModelChoice::ProviderDefault
    );
    assert_eq!(koala.submits(), 0);
    // The charge reported, not the reservation.
    assert_eq!(routed.credits_charged, Credits::whole(4));
    let status = router.budget().status();
    assert_eq!(status.spent, Credits::whole(4));
    assert_eq!(status.reserved, Credits::ZERO);
    // The model that ran.
    assert_eq!(routed.attempts[0].model.as_ref().unwrap(), "cheap");
    assert_eq!(routed.outputs[0].model.as_ref().unwrap(), "cheap");
}

#[tokio::test]
async fn auto_over_the_budget_is_refused_before_sending() {
    // The pick would cost 4, but the worst case (2 × 15) is over the 20 left.
    let (kolbo, koala, router) = providers(RoutingPolicy::default().run_budget(Credits::whole(20)));
    let err = router
        .generate_with(
            &request(2),
            &auto(),
            &NoProgress,
            &imagegen_router::NoObserver,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RouteError::BudgetExceeded { needed, remaining, .. }
            if needed == Credits::whole(30) && remaining == Credits::whole(20)),
        "{err}"
    );
    assert_eq!(kolbo.submits() + koala.submits(), 0);
    assert_eq!(router.budget().status().spent, Credits::ZERO);
}

#[tokio::test]
async fn auto_under_a_lower_price_cap_is_refused_before_sending() {
    let (kolbo, _koala, router) = providers(RoutingPolicy::default());
    let call = auto().max_credits_per_image(Credits::whole(10));
    let err = router
        .generate_with(
            &request(1),
            &call,
            &NoProgress,
            &imagegen_router::NoObserver,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RouteError::PriceCapExceeded { .. }), "{err}");
    assert_eq!(kolbo.submits(), 0);
}

#[tokio::test]
async fn auto_never_lands_on_a_provider_that_does_not_pick() {
    let (kolbo, koala, router) = providers(RoutingPolicy::default());
    let err = router
        .generate_with(
            &request(1),
            &auto().provider("koala"),
            &NoProgress,
            &imagegen_router::NoObserver,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("only kolbo picks its own model"),
        "{err}"
    );
    assert_eq!(kolbo.submits() + koala.submits(), 0);

    // Without any provider registered as picking, auto is refused outright.
    let lone = Arc::new(Fake::flat("koala", "gpt-image-2", 1));
    let router = Router::builder(ManualClock::new().shared())
        .provider(lone.clone())
        .build()
        .unwrap();
    let err = router.estimate_with(&request(1), &auto()).await.unwrap();
    assert!(err.best().is_none());
    let err = router
        .generate_with(
            &request(1),
            &auto(),
            &NoProgress,
            &imagegen_router::NoObserver,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("none of the configured providers picks its own model"),
        "{err}"
    );
    assert_eq!(lone.submits(), 0);
}

#[tokio::test]
async fn without_auto_the_pick_is_no_candidate() {
    let (_kolbo, _koala, router) = providers(RoutingPolicy::default());
    let estimate = router.estimate(&request(1)).await.unwrap();
    assert!(estimate.candidates.iter().all(|c| c.model.is_some()));
    assert_eq!(estimate.best().unwrap().label(), "koala/gpt-image-2");
}

#[tokio::test]
async fn the_highest_price_counts_qualities_resolutions_and_fixed_outputs() {
    let tiered = ModelEntry::new(
        "kolbo",
        "tiered",
        Price::flat(Credits::whole(4)).with_resolution("4K", "2.5".parse::<Multiplier>().unwrap()),
    )
    .with_capabilities(Capabilities {
        max_images_per_request: 4,
        qualities: vec![
            QualityOption::new("fast", Some(Quality::Low), Credits::whole(2)),
            QualityOption::new("high", Some(Quality::High), Credits::whole(6)),
        ],
        resolutions: vec!["1K".into(), "4K".into()],
        ..Capabilities::default()
    });
    let fixed = ModelEntry::new("kolbo", "four-up", Price::flat(Credits::whole(3)))
        .with_capabilities(Capabilities {
            fixed_images_per_request: Some(4),
            max_images_per_request: 4,
            ..Capabilities::default()
        });
    let router = |entries: Vec<ModelEntry>| {
        Router::builder(ManualClock::new().shared())
            .provider(Arc::new(Fake::new("kolbo", entries)))
            .provider_picks("kolbo")
            .build()
            .unwrap()
    };
    // 6 (high) × 2.5 (4K) = 15.
    let estimate = router(vec![tiered.clone()])
        .estimate_with(&request(1), &auto())
        .await
        .unwrap();
    assert_eq!(
        estimate.best().unwrap().credits_per_image,
        Some(Credits::whole(15))
    );
    // One image asked of a four-image model is four billed: 12.
    let estimate = router(vec![fixed, model_entry("kolbo", "cheap", 2)])
        .estimate_with(&request(1), &auto())
        .await
        .unwrap();
    assert_eq!(
        estimate.best().unwrap().credits_per_image,
        Some(Credits::whole(12))
    );
    // A catalog priced at zero never makes a zero reservation.
    let estimate = router(vec![model_entry("kolbo", "free", 0)])
        .estimate_with(&request(1), &auto())
        .await
        .unwrap();
    let pick = estimate
        .candidates
        .iter()
        .find(|c| c.model.is_none())
        .unwrap();
    assert!(!pick.eligible);
    assert!(matches!(pick.exclusions[0], Exclusion::PriceUnknown { .. }));
}

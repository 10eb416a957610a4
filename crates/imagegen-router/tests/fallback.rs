//! Execution with fallback: every refusal kind, "maybe delivered", refunds, cooldowns,
//! split requests, budgets and the accepted-job hook, with in-memory fake providers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fake, OnSubmit, OnWait, Pair, failed, pair_with, refused};
use imagegen_core::{
    Credits, Error, GenerationRequest, JobHandle, ManualClock, NoProgress, Refund, Refusal,
};
use imagegen_router::{
    Attempt, AttemptOutcome, CooldownPolicy, Exclusion, InMemoryBudget, RouteError, RouteObserver,
    Router, RoutingPolicy, SmartSelect,
};

fn request(count: u32) -> GenerationRequest {
    GenerationRequest::builder("a lighthouse at dusk")
        .count(count)
        .build()
        .unwrap()
}

/// Koala (5 credits) is cheaper, so it is tried first; Kolbo (8) is the fallback.
fn pair(koala: Fake, policy: RoutingPolicy) -> Pair {
    pair_with(koala, Fake::flat("kolbo", "nano-banana-2", 8), policy)
}

fn koala() -> Fake {
    Fake::flat("koala", "nano-banana-2", 5)
}

#[tokio::test]
async fn each_refusal_that_spent_nothing_moves_on() {
    let cases: Vec<(&str, Error)> = vec![
        (
            "insufficient credits",
            refused("koala", Refusal::InsufficientCredits),
        ),
        ("plan required", refused("koala", Refusal::PlanRequired)),
        ("model not found", refused("koala", Refusal::ModelNotFound)),
        (
            "rate limited beyond the threshold",
            refused(
                "koala",
                Refusal::RateLimited {
                    retry_after: Some(Duration::from_secs(120)),
                },
            ),
        ),
        ("server error", refused("koala", Refusal::ServerError)),
        ("auth", refused("koala", Refusal::Auth)),
        (
            "not delivered",
            Error::NotDelivered {
                provider: "koala".into(),
                message: "connection refused".into(),
            },
        ),
    ];
    for (name, error) in cases {
        let p = pair(
            koala().then_submit(OnSubmit::Fail(error.clone())),
            RoutingPolicy::default().run_budget(Credits::whole(100)),
        );
        let routed = p.router.generate(&request(1), &NoProgress).await.unwrap();
        assert_eq!(p.koala.submits(), 1, "{name}");
        assert_eq!(p.kolbo.submits(), 1, "{name}");
        assert_eq!(routed.attempts.len(), 2, "{name}");
        assert_eq!(routed.attempts[0].provider, "koala");
        assert_eq!(routed.attempts[0].credits_charged, Credits::ZERO);
        assert!(matches!(
            routed.attempts[1].outcome,
            AttemptOutcome::Delivered { images: 1 }
        ));
        assert_eq!(routed.credits_charged, Credits::whole(8), "{name}");
        let status = p.router.budget().status();
        assert_eq!(
            status.spent,
            Credits::whole(8),
            "{name}: the refusal cost nothing"
        );
        assert_eq!(status.reserved, Credits::ZERO, "{name}");
    }
}

#[tokio::test]
async fn out_of_credits_exhausts_the_provider_for_the_run() {
    let p = pair(
        koala().then_submit(OnSubmit::Fail(refused(
            "koala",
            Refusal::InsufficientCredits,
        ))),
        RoutingPolicy::default(),
    );
    p.router.generate(&request(1), &NoProgress).await.unwrap();
    p.router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!(p.koala.submits(), 1, "not asked again in this run");
    assert_eq!(p.kolbo.submits(), 2);
    let estimate = p.router.estimate(&request(1)).await.unwrap();
    let koala = estimate
        .candidates
        .iter()
        .find(|c| c.provider == "koala")
        .unwrap();
    assert!(matches!(
        &koala.exclusions[0],
        Exclusion::ProviderExhausted { reason } if reason == "out of credits"
    ));
}

#[tokio::test]
async fn plan_refusal_marks_the_model_unavailable_for_the_run() {
    let p = pair(
        koala().then_submit(OnSubmit::Fail(refused("koala", Refusal::PlanRequired))),
        RoutingPolicy::default(),
    );
    p.router.generate(&request(1), &NoProgress).await.unwrap();
    p.router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!(p.koala.submits(), 1);
    let estimate = p.router.estimate(&request(1)).await.unwrap();
    let koala = estimate
        .candidates
        .iter()
        .find(|c| c.provider == "koala")
        .unwrap();
    assert_eq!(
        koala.reason,
        "refused earlier in this run: needs a higher plan"
    );
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out_on_the_clock() {
    let limited = refused(
        "koala",
        Refusal::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        },
    );
    let p = pair(
        koala().then_submit(OnSubmit::Fail(limited)),
        RoutingPolicy::default(),
    );
    let routed = p.router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!(
        p.koala.submits(),
        2,
        "the 429 spent nothing, so the same call is repeated"
    );
    assert_eq!(p.kolbo.submits(), 0);
    assert_eq!(p.clock.sleeps(), vec![Duration::from_secs(3)]);
    assert_eq!(
        routed.attempts[0].outcome,
        AttemptOutcome::RateLimitWaited { waited_secs: 3 }
    );
}

#[tokio::test]
async fn maybe_delivered_is_never_submitted_elsewhere() {
    let p = pair(
        koala().then_submit(OnSubmit::Fail(Error::MaybeDelivered {
            provider: "koala".into(),
            message: "timed out reading the answer".into(),
        })),
        RoutingPolicy::default().run_budget(Credits::whole(100)),
    );
    let err = p
        .router
        .generate(&request(2), &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(p.koala.submits(), 1);
    assert_eq!(p.kolbo.submits(), 0, "no second paid submission");
    assert!(err.may_have_been_charged());
    let RouteError::MaybeCharged { partial, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(partial.attempts[0].outcome, AttemptOutcome::MaybeCharged);
    assert!(err.to_string().contains("nothing was submitted elsewhere"));
    // The budget counts what may have been spent.
    assert_eq!(p.router.budget().status().spent, Credits::whole(10));
}

#[tokio::test]
async fn an_accepted_job_in_doubt_stops_the_route_with_its_handle() {
    let doubts = [
        Error::StillRunning {
            provider: "koala".into(),
            job_id: "koala-job-0".into(),
            waited: Duration::from_secs(600),
        },
        failed("koala", Refund::NotRefunded),
        failed("koala", Refund::Unknown),
        Error::NotDelivered {
            provider: "koala".into(),
            message: "poll failed".into(),
        },
    ];
    for doubt in doubts {
        let p = pair(
            koala().then_wait(OnWait::Fail(doubt.clone())),
            RoutingPolicy::default().run_budget(Credits::whole(100)),
        );
        let err = p
            .router
            .generate(&request(1), &NoProgress)
            .await
            .unwrap_err();
        assert_eq!(p.kolbo.submits(), 0, "{doubt}");
        match &err {
            RouteError::MaybeCharged { jobs, partial, .. } => {
                assert_eq!(jobs[0].job_id, "koala-job-0");
                assert_eq!(partial.unresolved_jobs(), vec!["koala-job-0"]);
            }
            other => panic!("{doubt}: {other}"),
        }
        assert_eq!(p.router.budget().status().spent, Credits::whole(5));
    }
}

#[tokio::test]
async fn a_refunded_failure_falls_back_to_the_next_candidate() {
    let p = pair(
        koala().then_wait(OnWait::Fail(failed("koala", Refund::Refunded))),
        RoutingPolicy::default().run_budget(Credits::whole(100)),
    );
    let routed = p.router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!((p.koala.submits(), p.kolbo.submits()), (1, 1));
    let outcomes: Vec<_> = routed.attempts.iter().map(|a| a.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            AttemptOutcome::Failed {
                refund: Refund::Refunded
            },
            AttemptOutcome::Delivered { images: 1 }
        ]
    );
    assert_eq!(routed.attempts[0].job_id.as_deref(), Some("koala-job-0"));
    assert_eq!(routed.credits_charged, Credits::whole(8));
    assert_eq!(p.router.budget().status().spent, Credits::whole(8));
    assert_eq!(routed.outputs.len(), 1);
}

#[tokio::test]
async fn content_policy_stops_without_trying_elsewhere() {
    let p = pair(
        koala().then_submit(OnSubmit::Fail(refused("koala", Refusal::ContentPolicy))),
        RoutingPolicy::default(),
    );
    let err = p
        .router
        .generate(&request(1), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RouteError::Stopped { .. }), "{err}");
    assert_eq!(p.kolbo.submits(), 0);
    assert!(!err.may_have_been_charged());
}

#[tokio::test]
async fn all_candidates_refused_lists_every_attempt() {
    let p = pair_with(
        koala().then_submit(OnSubmit::Fail(refused("koala", Refusal::ServerError))),
        Fake::flat("kolbo", "nano-banana-2", 8).then_submit(OnSubmit::Fail(refused(
            "kolbo",
            Refusal::InsufficientCredits,
        ))),
        RoutingPolicy::default().run_budget(Credits::whole(50)),
    );
    let err = p
        .router
        .generate(&request(1), &NoProgress)
        .await
        .unwrap_err();
    let RouteError::AllAttemptsFailed { attempts, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(attempts.len(), 2);
    assert!(
        err.to_string()
            .contains("koala/nano-banana-2: refused: server error")
    );
    assert!(
        err.to_string()
            .contains("kolbo/nano-banana-2: refused: insufficient credits")
    );
    assert_eq!(p.router.budget().status().reserved, Credits::ZERO);
    assert_eq!(p.router.budget().status().spent, Credits::ZERO);
    let core: Error = err.into();
    assert_eq!(core.refusal(), Some(&Refusal::InsufficientCredits));
}

#[tokio::test]
async fn cooldown_rests_a_failing_provider_until_the_clock_passes() {
    let clock = ManualClock::manual();
    let koala = Arc::new(
        koala()
            .then_submit(OnSubmit::Fail(refused("koala", Refusal::ServerError)))
            .then_submit(OnSubmit::Fail(refused("koala", Refusal::ServerError))),
    );
    let kolbo = Arc::new(Fake::flat("kolbo", "nano-banana-2", 8));
    let router = Router::builder(clock.shared())
        .provider(kolbo.clone())
        .provider(koala.clone())
        .policy(RoutingPolicy::default().cooldown(CooldownPolicy {
            failures: 2,
            duration: Duration::from_secs(60),
        }))
        .build()
        .unwrap();
    router.generate(&request(1), &NoProgress).await.unwrap();
    router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!(koala.submits(), 2, "two failures in a row");
    // Cooling down: skipped without a submission.
    router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!(koala.submits(), 2);
    let estimate = router.estimate(&request(1)).await.unwrap();
    let cooling = estimate
        .candidates
        .iter()
        .find(|c| c.provider == "koala")
        .unwrap();
    assert_eq!(
        cooling.exclusions,
        vec![Exclusion::CoolingDown { remaining_secs: 60 }]
    );
    clock.advance(Duration::from_secs(59));
    router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!(koala.submits(), 2);
    clock.advance(Duration::from_secs(1));
    let routed = router.generate(&request(1), &NoProgress).await.unwrap();
    assert_eq!(koala.submits(), 3, "tried again after the cooldown");
    assert_eq!(routed.attempts[0].provider, "koala");
    assert_eq!(kolbo.submits(), 4);
}

#[tokio::test]
async fn a_split_request_runs_each_call_and_sends_the_rest_elsewhere_on_refusal() {
    // Six images at four per call: 4 + 2. Koala accepts the 4 and is out of credits for
    // the 2, which go to Kolbo.
    let p = pair(
        koala()
            .then_submit(OnSubmit::Accept)
            .then_submit(OnSubmit::Fail(refused(
                "koala",
                Refusal::InsufficientCredits,
            ))),
        RoutingPolicy::default().run_budget(Credits::whole(100)),
    );
    let routed = p.router.generate(&request(6), &NoProgress).await.unwrap();
    assert_eq!(p.koala.counts(), vec![4, 2]);
    assert_eq!(p.kolbo.counts(), vec![2]);
    assert_eq!(routed.images_delivered, 6);
    assert_eq!(routed.outputs.len(), 2);
    assert_eq!(routed.credits_charged, Credits::whole(20 + 16));
    let status = p.router.budget().status();
    assert_eq!(status.spent, Credits::whole(36));
    assert_eq!(status.reserved, Credits::ZERO);
}

#[tokio::test]
async fn the_budget_refuses_before_anything_is_sent() {
    let p = pair(
        koala(),
        RoutingPolicy::default().run_budget(Credits::whole(12)),
    );
    p.router.generate(&request(2), &NoProgress).await.unwrap();
    let err = p
        .router
        .generate(&request(1), &NoProgress)
        .await
        .unwrap_err();
    match &err {
        RouteError::BudgetExceeded {
            needed, remaining, ..
        } => {
            assert_eq!(
                (*needed, *remaining),
                (Credits::whole(5), Credits::whole(2))
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(p.koala.submits() + p.kolbo.submits(), 1);
    assert!(err.to_string().contains("raise the budget"));
}

#[tokio::test]
async fn a_budget_too_small_for_the_cheapest_skips_to_nothing_but_says_budget() {
    let budget = Arc::new(InMemoryBudget::new(Credits::whole(4)));
    let clock = ManualClock::new();
    let router = Router::builder(clock.shared())
        .provider(Arc::new(koala()))
        .budget(budget)
        .build()
        .unwrap();
    let err = router.generate(&request(1), &NoProgress).await.unwrap_err();
    assert!(matches!(err, RouteError::BudgetExceeded { .. }), "{err}");
}

#[tokio::test]
async fn a_charge_above_the_reservation_is_counted_and_reported() {
    let p = pair(
        koala().then_wait(OnWait::DeliverCharging(Credits::whole(7))),
        RoutingPolicy::default().run_budget(Credits::whole(100)),
    );
    let routed = p.router.generate(&request(1), &NoProgress).await.unwrap();
    assert!(
        routed
            .warnings
            .iter()
            .any(|w| w.contains("2 more than the 5 reserved")),
        "{:?}",
        routed.warnings
    );
    let status = p.router.budget().status();
    assert_eq!(status.spent, Credits::whole(7));
    assert_eq!(status.overshoot, Credits::whole(2));
}

#[tokio::test]
async fn a_charge_is_computed_from_the_table_when_the_provider_does_not_report_it() {
    let mut silent = koala();
    silent.reports_charge = false;
    let p = pair(
        silent,
        RoutingPolicy::default().run_budget(Credits::whole(100)),
    );
    let routed = p.router.generate(&request(3), &NoProgress).await.unwrap();
    assert_eq!(routed.credits_charged, Credits::whole(15));
    assert_eq!(p.router.budget().status().spent, Credits::whole(15));
}

#[tokio::test]
async fn smart_select_settles_to_what_the_provider_reports() {
    let mut kolbo = Fake::new(
        "kolbo",
        vec![
            common::model_entry("kolbo", "cheap", 2),
            common::model_entry("kolbo", "dear", 15),
        ],
    );
    kolbo.smart_price = Credits::whole(2);
    let kolbo = Arc::new(kolbo);
    let router = Router::builder(ManualClock::new().shared())
        .provider(kolbo.clone())
        .policy(
            RoutingPolicy::default()
                .smart_select("kolbo", SmartSelect::default())
                .preference(imagegen_router::Preference::Order(vec![(
                    "kolbo".into(),
                    None,
                )]))
                .deny_model("cheap")
                .deny_model("dear")
                .run_budget(Credits::whole(100)),
        )
        .build()
        .unwrap();
    // Both exact models are denied, so the provider's choice is the only candidate; its
    // reservation is still priced at the dearest model the provider could pick.
    let estimate = router.estimate(&request(2)).await.unwrap();
    assert_eq!(estimate.best().unwrap().model, None);
    assert!(
        estimate
            .best()
            .is_some_and(|c| c.notes[0].contains("reserved"))
    );
    let routed = router.generate(&request(2), &NoProgress).await.unwrap();
    assert_eq!(routed.credits_charged, Credits::whole(4));
    assert_eq!(router.budget().status().spent, Credits::whole(4));
    assert_eq!(router.budget().status().reserved, Credits::ZERO);
}

#[derive(Default)]
struct Journal {
    log: Arc<Mutex<Vec<String>>>,
    attempts: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl RouteObserver for Journal {
    async fn accepted(&self, job: &JobHandle, _plan: &imagegen_core::CallPlan, reserved: Credits) {
        self.log
            .lock()
            .unwrap()
            .push(format!("journal:{}:{reserved}", job.job_id));
    }

    fn attempted(&self, attempt: &Attempt) {
        self.attempts.lock().unwrap().push(attempt.summary());
    }
}

#[tokio::test]
async fn the_observer_hears_of_an_accepted_job_before_the_wait() {
    let fake = koala();
    let journal = Journal {
        log: Arc::clone(&fake.log),
        ..Journal::default()
    };
    let p = pair(fake, RoutingPolicy::default());
    p.router
        .generate_observed(&request(1), &NoProgress, &journal)
        .await
        .unwrap();
    assert_eq!(
        *p.koala.log.lock().unwrap(),
        vec!["koala:submit", "journal:koala-job-0:5", "koala:wait"]
    );
    assert_eq!(
        *journal.attempts.lock().unwrap(),
        vec!["koala/nano-banana-2: delivered 1 image(s)"]
    );
}

#[tokio::test]
async fn a_journaled_job_resumes_without_a_new_submission() {
    let p = pair(koala(), RoutingPolicy::default());
    let job = JobHandle::new("koala", "koala-job-7", 1, 0).with_model("nano-banana-2");
    let output = p.router.wait(&job, &NoProgress).await.unwrap();
    assert_eq!(output.images.len(), 1);
    assert_eq!(p.koala.submits(), 0);
    let unknown = JobHandle::new("nope", "x", 1, 0);
    assert!(matches!(
        p.router.wait(&unknown, &NoProgress).await,
        Err(RouteError::UnknownProvider(_))
    ));
}

#[tokio::test]
async fn the_route_serializes_for_a_sidecar() {
    let p = pair(
        koala().then_submit(OnSubmit::Fail(refused(
            "koala",
            Refusal::InsufficientCredits,
        ))),
        RoutingPolicy::default(),
    );
    let routed = p.router.generate(&request(1), &NoProgress).await.unwrap();
    let json = serde_json::to_value(&routed).unwrap();
    assert_eq!(json["attempts"][0]["outcome"]["kind"], "refused");
    assert_eq!(
        json["attempts"][0]["outcome"]["reason"]["kind"],
        "insufficient_credits"
    );
    assert_eq!(json["attempts"][1]["job_id"], "kolbo-job-0");
    assert_eq!(json["credits_charged"], 8);
}

#[tokio::test]
async fn cancelling_a_run_after_acceptance_keeps_the_credits_counted() {
    // The job is accepted, then the task is dropped while waiting (Ctrl-C, a timeout):
    // the provider may still charge, so the reservation is counted as spent, not freed.
    let stalled = ManualClock::manual();
    let mut slow = koala();
    slow.wait_delay = Some((stalled, Duration::from_secs(3600)));
    let slow = Arc::new(slow);
    let router = Arc::new(
        Router::builder(ManualClock::new().shared())
            .provider(slow.clone())
            .policy(RoutingPolicy::default().run_budget(Credits::whole(100)))
            .build()
            .unwrap(),
    );
    let task = {
        let router = Arc::clone(&router);
        tokio::spawn(async move { router.generate(&request(2), &NoProgress).await })
    };
    while !slow
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.ends_with(":wait"))
    {
        tokio::task::yield_now().await;
    }
    assert_eq!(router.budget().status().reserved, Credits::whole(10));
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let status = router.budget().status();
    assert_eq!(status.reserved, Credits::ZERO);
    assert_eq!(status.spent, Credits::whole(10));
}

#[tokio::test]
async fn each_job_keeps_the_call_that_was_sent_for_it() {
    // 4 + 2 at Koala, then the 2 refused go to Kolbo: three calls, two jobs delivered.
    let p = pair(
        koala()
            .then_submit(OnSubmit::Accept)
            .then_submit(OnSubmit::Fail(refused(
                "koala",
                Refusal::InsufficientCredits,
            ))),
        RoutingPolicy::default(),
    );
    let estimate = p.router.estimate(&request(6)).await.unwrap();
    let planned = estimate.best().unwrap().calls.clone();
    let routed = p.router.generate(&request(6), &NoProgress).await.unwrap();
    assert_eq!(routed.plans.len(), 2, "one plan per accepted job");
    let koala_job = &routed.outputs[0].job;
    assert_eq!(routed.plan_of(koala_job), Some(&planned[0]));
    let kolbo_job = &routed.outputs[1].job;
    let kolbo_plan = routed.plan_of(kolbo_job).unwrap();
    assert_eq!(kolbo_plan.provider, "kolbo");
    assert_eq!(kolbo_plan.images, 2);
    let unknown = JobHandle::new("kolbo", "no-such-job", 1, 0);
    assert_eq!(routed.plan_of(&unknown), None);
    let json = serde_json::to_value(&routed).unwrap();
    assert_eq!(json["plans"][0]["job_id"], koala_job.job_id.as_str());
    assert_eq!(json["plans"][0]["plan"]["images"], 4);
}

//! Many tasks race against one run budget on a multi-threaded runtime: the budget is
//! never passed, counted on the fake providers themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{Fake, OnWait, failed};
use imagegen_core::{Credits, GenerationRequest, ManualClock, NoProgress, Refund};
use imagegen_router::{
    Budget, BudgetError, BudgetStatus, InMemoryBudget, ReservationId, RouteError, Router,
    Settlement,
};

const ROUNDS: usize = 50;
const TASKS: u32 = 200;
const PRICE: u32 = 3;
const AFFORDABLE_IMAGES: u32 = 37;

/// A budget that checks, after every operation, that settled plus reserved credits stay
/// within the limit, and remembers the highest total it saw. It also shows that another
/// store plugs in through the trait.
#[derive(Debug)]
struct Audited {
    inner: InMemoryBudget,
    limit: Credits,
    peak: AtomicU64,
    violations: Mutex<Vec<BudgetStatus>>,
}

impl Audited {
    fn new(limit: Credits) -> Self {
        Self {
            inner: InMemoryBudget::new(limit),
            limit,
            peak: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
        }
    }

    fn audit(&self) {
        let status = self.inner.status();
        let committed = status.spent.checked_add(status.reserved).unwrap();
        self.peak.fetch_max(committed.micros(), Ordering::SeqCst);
        if committed > self.limit {
            self.violations.lock().unwrap().push(status);
        }
    }
}

impl Budget for Audited {
    fn reserve(&self, amount: Credits) -> Result<ReservationId, BudgetError> {
        let r = self.inner.reserve(amount);
        self.audit();
        r
    }

    fn shrink(&self, id: ReservationId, amount: Credits) -> Result<(), BudgetError> {
        let r = self.inner.shrink(id, amount);
        self.audit();
        r
    }

    fn settle(&self, id: ReservationId, charged: Credits) -> Result<Settlement, BudgetError> {
        let r = self.inner.settle(id, charged);
        self.audit();
        r
    }

    fn release(&self, id: ReservationId) -> Result<(), BudgetError> {
        let r = self.inner.release(id);
        self.audit();
        r
    }

    fn status(&self) -> BudgetStatus {
        self.inner.status()
    }
}

fn racing(id: &str) -> Fake {
    let mut fake = Fake::flat(id, "nano-banana-2", PRICE);
    fake.yields = true;
    fake
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// 200 one-image tasks, a budget for 37 images, two equally priced providers.
#[test]
fn two_hundred_tasks_never_submit_more_than_the_budget_affords() {
    let limit = Credits::whole(PRICE * AFFORDABLE_IMAGES);
    let rt = runtime();
    for round in 0..ROUNDS {
        rt.block_on(async {
            let kolbo = Arc::new(racing("kolbo"));
            let koala = Arc::new(racing("koala"));
            let budget = Arc::new(Audited::new(limit));
            let router = Arc::new(
                Router::builder(ManualClock::new().shared())
                    .provider(kolbo.clone())
                    .provider(koala.clone())
                    .budget(budget.clone())
                    .build()
                    .unwrap(),
            );
            let request = GenerationRequest::builder("a lighthouse").build().unwrap();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let router = Arc::clone(&router);
                    let request = request.clone();
                    tokio::spawn(async move { router.generate(&request, &NoProgress).await })
                })
                .collect();
            let mut delivered = 0;
            let mut over_budget = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(routed) => delivered += routed.images_delivered,
                    Err(RouteError::BudgetExceeded { .. }) => over_budget += 1,
                    Err(other) => panic!("round {round}: {other}"),
                }
            }
            let submitted = kolbo.images_accepted.load(Ordering::SeqCst)
                + koala.images_accepted.load(Ordering::SeqCst);
            let charged = kolbo.charged_micros.load(Ordering::SeqCst)
                + koala.charged_micros.load(Ordering::SeqCst);
            assert!(
                submitted <= AFFORDABLE_IMAGES,
                "round {round}: {submitted} submitted"
            );
            assert_eq!(
                submitted, AFFORDABLE_IMAGES,
                "round {round}: the budget is used up"
            );
            assert_eq!(delivered, AFFORDABLE_IMAGES);
            assert_eq!(over_budget, TASKS - AFFORDABLE_IMAGES);
            let status = budget.status();
            assert!(
                status.spent <= limit,
                "round {round}: settled {}",
                status.spent
            );
            assert_eq!(
                status.spent.micros(),
                charged,
                "settled = what the providers charged"
            );
            assert_eq!(
                status.reserved,
                Credits::ZERO,
                "round {round}: nothing left held"
            );
            assert!(budget.violations.lock().unwrap().is_empty());
            assert!(budget.peak.load(Ordering::SeqCst) <= limit.micros());
        });
    }
}

/// Tasks of one to three images, with every fifth job failing and being refunded (which
/// gives its credits back and falls back to the other provider): what the providers keep
/// never passes the budget.
#[test]
fn refunds_and_fallbacks_under_contention_stay_within_the_budget() {
    let limit = Credits::whole(PRICE * AFFORDABLE_IMAGES);
    let rt = runtime();
    for round in 0..ROUNDS {
        rt.block_on(async {
            let flaky = |id: &str| {
                let mut fake = racing(id);
                for i in 0..TASKS {
                    fake = fake.then_wait(if i % 5 == 4 {
                        OnWait::Fail(failed(id, Refund::Refunded))
                    } else {
                        OnWait::Deliver
                    });
                }
                Arc::new(fake)
            };
            let kolbo = flaky("kolbo");
            let koala = flaky("koala");
            let budget = Arc::new(Audited::new(limit));
            let router = Arc::new(
                Router::builder(ManualClock::new().shared())
                    .provider(kolbo.clone())
                    .provider(koala.clone())
                    .budget(budget.clone())
                    .build()
                    .unwrap(),
            );
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| {
                    let router = Arc::clone(&router);
                    let request = GenerationRequest::builder("a lighthouse")
                        .count(i % 3 + 1)
                        .build()
                        .unwrap();
                    tokio::spawn(async move { router.generate(&request, &NoProgress).await })
                })
                .collect();
            let mut delivered_credits = Credits::ZERO;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(routed) => {
                        delivered_credits = delivered_credits
                            .checked_add(routed.credits_charged)
                            .unwrap();
                    }
                    Err(
                        e @ (RouteError::BudgetExceeded { .. }
                        | RouteError::AllAttemptsFailed { .. }),
                    ) => {
                        if let Some(partial) = e.partial() {
                            delivered_credits = delivered_credits
                                .checked_add(partial.credits_charged)
                                .unwrap();
                        }
                    }
                    Err(other) => panic!("round {round}: {other}"),
                }
            }
            let kept = |f: &Fake| {
                f.charged_micros.load(Ordering::SeqCst) - f.refunded_micros.load(Ordering::SeqCst)
            };
            let kept = kept(&kolbo) + kept(&koala);
            let status = budget.status();
            assert!(
                kept <= limit.micros(),
                "round {round}: providers kept {kept}"
            );
            assert_eq!(status.spent.micros(), kept, "round {round}");
            assert_eq!(delivered_credits, status.spent);
            assert_eq!(status.reserved, Credits::ZERO);
            assert!(budget.violations.lock().unwrap().is_empty());
        });
    }
}

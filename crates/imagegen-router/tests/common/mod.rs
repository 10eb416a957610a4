//! In-memory fake providers for router tests: scripted refusals and failures, counted
//! submissions, no network, no sleeps.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use imagegen_core::{
    CallPlan, Capabilities, Clock, CreditWorth, Credits, Error, ImageRef, JobHandle, JobOutput,
    ManualClock, ModelChoice, ModelEntry, Price, ProgressSink, Provider, ProviderId, Refund,
    Refusal,
};

/// What the next `submit` does.
#[derive(Debug, Clone)]
pub enum OnSubmit {
    Accept,
    Fail(Error),
}

/// What the next `wait` does.
#[derive(Debug, Clone)]
pub enum OnWait {
    Deliver,
    /// Deliver, reporting this charge instead of the price.
    DeliverCharging(Credits),
    Fail(Error),
}

/// A scripted provider. Submissions not scripted are accepted; waits not scripted deliver.
pub struct Fake {
    pub id: ProviderId,
    pub models: Vec<ModelEntry>,
    pub catalog_error: Option<Error>,
    /// Credits per image when the provider picks the model.
    pub smart_price: Credits,
    /// The model the provider reports it ran when it picked.
    pub smart_model: Option<String>,
    /// Whether the job handle carries the charge (Kolbo) or not (Koala).
    pub reports_charge: bool,
    /// Yield to the scheduler inside submit and wait (for races).
    pub yields: bool,
    /// Make `wait` take this long on this clock.
    pub wait_delay: Option<(ManualClock, Duration)>,
    submit_script: Mutex<VecDeque<OnSubmit>>,
    wait_script: Mutex<VecDeque<OnWait>>,
    /// Every submit call.
    pub submits: AtomicU32,
    /// Every accepted submission's image count.
    pub images_accepted: AtomicU32,
    /// Credits of accepted submissions, in millionths.
    pub charged_micros: AtomicU64,
    /// Refunded credits, in millionths.
    pub refunded_micros: AtomicU64,
    pub catalog_calls: AtomicU32,
    /// Ordered log of calls ("submit", "wait").
    pub log: Arc<Mutex<Vec<String>>>,
    counts: Mutex<Vec<u32>>,
    /// Every call plan submitted, in order.
    pub sent: Mutex<Vec<CallPlan>>,
    next_job: AtomicU32,
}

impl Fake {
    pub fn new(id: &str, models: Vec<ModelEntry>) -> Self {
        Self {
            id: ProviderId::new(id),
            models,
            catalog_error: None,
            smart_price: Credits::ZERO,
            smart_model: None,
            reports_charge: true,
            yields: false,
            wait_delay: None,
            submit_script: Mutex::new(VecDeque::new()),
            wait_script: Mutex::new(VecDeque::new()),
            submits: AtomicU32::new(0),
            images_accepted: AtomicU32::new(0),
            charged_micros: AtomicU64::new(0),
            refunded_micros: AtomicU64::new(0),
            catalog_calls: AtomicU32::new(0),
            log: Arc::new(Mutex::new(Vec::new())),
            counts: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            next_job: AtomicU32::new(0),
        }
    }

    /// One flat-priced model taking up to four images and any shape.
    pub fn flat(id: &str, model: &str, price: u32) -> Self {
        Self::new(id, vec![model_entry(id, model, price)])
    }

    pub fn then_submit(self, step: OnSubmit) -> Self {
        self.submit_script.lock().unwrap().push_back(step);
        self
    }

    pub fn then_wait(self, step: OnWait) -> Self {
        self.wait_script.lock().unwrap().push_back(step);
        self
    }

    pub fn submits(&self) -> u32 {
        self.submits.load(Ordering::SeqCst)
    }

    /// Image counts of every submit call, in order.
    pub fn counts(&self) -> Vec<u32> {
        self.counts.lock().unwrap().clone()
    }

    fn price_of(&self, choice: &ModelChoice) -> Option<Credits> {
        match choice {
            ModelChoice::Exact(id) => self
                .models
                .iter()
                .find(|m| &m.id == id)
                .map(|m| m.price.per_image),
            _ => Some(self.smart_price),
        }
    }
}

pub fn model_entry(provider: &str, model: &str, price: u32) -> ModelEntry {
    ModelEntry::new(provider, model, Price::flat(Credits::whole(price))).with_capabilities(
        Capabilities {
            max_images_per_request: 4,
            max_reference_images: 5,
            ..Capabilities::default()
        },
    )
}

pub fn cents() -> CreditWorth {
    CreditWorth::per_credit("0.01".parse().unwrap())
}

pub fn refused(provider: &str, reason: Refusal) -> Error {
    Error::refused(provider, reason, "scripted refusal")
}

pub fn failed(provider: &str, refund: Refund) -> Error {
    Error::GenerationFailed {
        provider: provider.into(),
        job_id: "scripted".into(),
        message: "scripted failure".into(),
        code: None,
        refund,
        retryable: None,
    }
}

#[async_trait]
impl Provider for Fake {
    fn id(&self) -> ProviderId {
        self.id.clone()
    }

    async fn catalog(&self) -> Result<Vec<ModelEntry>, Error> {
        self.catalog_calls.fetch_add(1, Ordering::SeqCst);
        match &self.catalog_error {
            Some(e) => Err(e.clone()),
            None => Ok(self.models.clone()),
        }
    }

    async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error> {
        self.submits.fetch_add(1, Ordering::SeqCst);
        self.counts.lock().unwrap().push(call.images);
        self.sent.lock().unwrap().push(call.clone());
        self.log.lock().unwrap().push(format!("{}:submit", self.id));
        if self.yields {
            tokio::task::yield_now().await;
        }
        let step = self
            .submit_script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(OnSubmit::Accept);
        if let OnSubmit::Fail(e) = step {
            return Err(e);
        }
        let Some(price) = self.price_of(&call.model) else {
            return Err(refused(self.id.as_str(), Refusal::ModelNotFound));
        };
        let images = call.images;
        let charge = price.checked_mul(images).unwrap();
        self.images_accepted.fetch_add(images, Ordering::SeqCst);
        self.charged_micros
            .fetch_add(charge.micros(), Ordering::SeqCst);
        let n = self.next_job.fetch_add(1, Ordering::SeqCst);
        let mut job = JobHandle::new(self.id.clone(), format!("{}-job-{n}", self.id), images, 0);
        if let ModelChoice::Exact(m) = &call.model {
            job = job.with_model(m.clone());
        }
        if self.reports_charge {
            job = job.with_credits_charged(charge);
        }
        Ok(job)
    }

    async fn wait(
        &self,
        job: &JobHandle,
        _progress: &dyn ProgressSink,
    ) -> Result<JobOutput, Error> {
        self.log.lock().unwrap().push(format!("{}:wait", self.id));
        if let Some((clock, delay)) = &self.wait_delay {
            clock.sleep(*delay).await;
        }
        if self.yields {
            tokio::task::yield_now().await;
        }
        let step = self
            .wait_script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(OnWait::Deliver);
        let images = (0..job.images_requested)
            .map(|i| {
                ImageRef::new(
                    url::Url::parse(&format!("https://cdn.example/{}/{i}.png", job.job_id))
                        .unwrap(),
                    None,
                )
            })
            .collect();
        let output = |images| {
            let mut out = JobOutput::new(job.clone(), images);
            if out.model.is_none() {
                out.model = self.smart_model.clone().map(Into::into);
            }
            out
        };
        match step {
            OnWait::Deliver => Ok(output(images)),
            OnWait::DeliverCharging(c) => {
                let mut out = output(images);
                out.credits_charged = Some(c);
                Ok(out)
            }
            OnWait::Fail(e) => {
                if matches!(
                    e,
                    Error::GenerationFailed {
                        refund: Refund::Refunded,
                        ..
                    }
                ) {
                    let charge = job.credits_charged.unwrap_or_default();
                    self.refunded_micros
                        .fetch_add(charge.micros(), Ordering::SeqCst);
                }
                Err(e)
            }
        }
    }
}

/// Kolbo and KoalaImages fakes behind one router on an auto-advancing clock (Kolbo first in
/// tie-break order).
pub struct Pair {
    pub koala: Arc<Fake>,
    pub kolbo: Arc<Fake>,
    pub router: imagegen_router::Router,
    pub clock: ManualClock,
}

/// A [`Pair`] of `koala` and `kolbo` under `policy`.
pub fn pair_with(koala: Fake, kolbo: Fake, policy: imagegen_router::RoutingPolicy) -> Pair {
    let clock = ManualClock::new();
    let koala = Arc::new(koala);
    let kolbo = Arc::new(kolbo);
    let router = imagegen_router::Router::builder(clock.shared())
        .provider(kolbo.clone())
        .provider(koala.clone())
        .policy(policy)
        .build()
        .unwrap();
    Pair {
        koala,
        kolbo,
        router,
        clock,
    }
}

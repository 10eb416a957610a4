//! [`Router`]: picks the best candidate, reserves its worst case, submits, waits, and falls
//! back only when nothing was spent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use imagegen_core::{
    CallPlan, Credits, Error, GenerationRequest, InvalidInput, JobHandle, JobOutput, ModelId,
    ProgressSink, Provider, ProviderId, Refund, Refusal, SharedClock,
};
use serde_json::Value;

use crate::budget::{Budget, BudgetError, InMemoryBudget, Reservation};
use crate::call::CallOptions;
use crate::candidate::estimate::build_estimate;
use crate::candidate::evaluate::{Judge, OptionRequirements};
use crate::candidate::{Candidate, Estimate, Exclusion, RunView};
use crate::catalog::{CatalogCache, CatalogFailure, MergedCatalog};
use crate::cooldown::Cooldowns;
use crate::disposition::{Disposition, Lesson, classify_submit_error};
use crate::error::RouteError;
use crate::policy::RoutingPolicy;
use crate::route::{
    Attempt, AttemptOutcome, JobPlan, NoObserver, RouteObserver, RoutedOutput, describe,
};
use crate::rules::Rules;

/// Weight of a new latency observation in the running average.
const LATENCY_WEIGHT: f64 = 0.3;

/// Builds a [`Router`].
#[must_use]
pub struct RouterBuilder {
    clock: SharedClock,
    providers: Vec<Arc<dyn Provider>>,
    policy: RoutingPolicy,
    budget: Option<Arc<dyn Budget>>,
    picking: BTreeSet<ProviderId>,
}

impl std::fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterBuilder")
            .field(
                "providers",
                &self.providers.iter().map(|p| p.id()).collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RouterBuilder {
    /// Adds a provider. Providers added first win ties.
    pub fn provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// Sets the policy (default: [`RoutingPolicy::default`]).
    pub fn policy(mut self, policy: RoutingPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Says that `provider` picks a model itself when none is named (Kolbo's Smart
    /// Select): a call asking for `auto` ([`CallOptions::provider_picks`]) may route to
    /// its own pick. A provider whose "no model" means a fixed default model is not one.
    /// Providers whose [`ProviderProfile::picks_own_model`](imagegen_core::ProviderProfile)
    /// says so need not be named here.
    pub fn provider_picks(mut self, provider: impl Into<ProviderId>) -> Self {
        self.picking.insert(provider.into());
        self
    }

    /// Uses `budget` for the run instead of an [`InMemoryBudget`] made from the policy's
    /// run budget.
    pub fn budget(mut self, budget: Arc<dyn Budget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Builds the router.
    pub fn build(self) -> Result<Router, RouteError> {
        if self.providers.is_empty() {
            return Err(RouteError::NoProviders);
        }
        let mut order: Vec<ProviderId> = Vec::new();
        let mut policy = self.policy;
        let mut picking = self.picking;
        for provider in &self.providers {
            let id = provider.id();
            if order.contains(&id) {
                return Err(RouteError::DuplicateProvider(id));
            }
            let profile = provider.profile();
            if profile.picks_own_model {
                picking.insert(id.clone());
            }
            policy = policy.with_profile(&id, &profile);
            order.push(id);
        }
        let budget = self
            .budget
            .unwrap_or_else(|| match policy.run_budget_limit() {
                Some(limit) => Arc::new(InMemoryBudget::new(limit)),
                None => Arc::new(InMemoryBudget::unlimited()),
            });
        Ok(Router {
            cooldowns: Cooldowns::new(Arc::clone(&self.clock), policy.cooldown_policy()),
            catalog: CatalogCache::new(policy.catalog_time_to_live()),
            providers: self.providers,
            order,
            policy,
            clock: self.clock,
            budget,
            picking,
            run: Mutex::new(RunState::default()),
        })
    }
}

/// What the router learned in this run.
#[derive(Debug, Default)]
struct RunState {
    exhausted: BTreeMap<ProviderId, String>,
    unavailable: BTreeMap<(ProviderId, ModelId, Option<String>), String>,
    latency: BTreeMap<(ProviderId, ModelId), Duration>,
}

/// Routes requests across providers for the fewest credits, within a policy and a run
/// budget; see the [crate docs](crate) for an example.
///
/// A router is one *run*: what it learns (a provider out of credits, a model refused for
/// the plan, observed latencies, cooldowns) holds for its lifetime. Share it with `Arc`;
/// every method takes `&self`.
pub struct Router {
    providers: Vec<Arc<dyn Provider>>,
    order: Vec<ProviderId>,
    policy: RoutingPolicy,
    clock: SharedClock,
    budget: Arc<dyn Budget>,
    cooldowns: Cooldowns,
    catalog: CatalogCache,
    picking: BTreeSet<ProviderId>,
    run: Mutex<RunState>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("providers", &self.order)
            .field("policy", &self.policy)
            .field("budget", &self.budget.status())
            .finish_non_exhaustive()
    }
}

fn outcome_of(error: &Error) -> AttemptOutcome {
    if error.may_have_been_charged() {
        return AttemptOutcome::MaybeCharged;
    }
    match error {
        Error::Refused { reason, .. } => AttemptOutcome::Refused {
            reason: reason.clone(),
        },
        Error::NotDelivered { .. } => AttemptOutcome::NotDelivered,
        Error::NotSubmitted { .. } => AttemptOutcome::NotSent,
        Error::GenerationFailed { refund, .. } => AttemptOutcome::Failed { refund: *refund },
        Error::Cancelled { .. } => AttemptOutcome::Cancelled,
        _ => AttemptOutcome::Rejected,
    }
}

/// Why a candidate's run ended the request.
enum Halt {
    Stopped(Error),
    MaybeCharged(Error, Vec<JobHandle>),
}

/// The state of one routed request.
struct Progress {
    output: RoutedOutput,
    remaining: u32,
    /// Providers that failed in this request (unreachable, a server error), with why.
    failed: BTreeMap<ProviderId, String>,
}

/// One accepted call awaiting its result.
struct Accepted {
    job: JobHandle,
    images: u32,
    share: Credits,
    accepted_at: Duration,
}

impl Router {
    /// Starts a router on `clock` (a `ManualClock` in tests, `TokioClock` in programs).
    pub fn builder(clock: SharedClock) -> RouterBuilder {
        RouterBuilder {
            clock,
            providers: Vec::new(),
            policy: RoutingPolicy::default(),
            budget: None,
            picking: BTreeSet::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RoutingPolicy {
        &self.policy
    }

    /// The run budget.
    pub fn budget(&self) -> &Arc<dyn Budget> {
        &self.budget
    }

    /// The cooldowns.
    pub fn cooldowns(&self) -> &Cooldowns {
        &self.cooldowns
    }

    /// The providers, in tie-break order.
    pub fn provider_ids(&self) -> &[ProviderId] {
        &self.order
    }

    /// Whether `provider` picks a model itself when a call asks for `auto`.
    pub fn picks_own_model(&self, provider: &ProviderId) -> bool {
        self.picking.contains(provider)
    }

    /// The merged catalog, from the cache while it is fresh.
    pub async fn catalog(&self) -> Arc<MergedCatalog> {
        self.catalog.get(&self.providers, &self.clock, false).await
    }

    /// The merged catalog, fetched again now.
    pub async fn refresh_catalog(&self) -> Arc<MergedCatalog> {
        self.catalog.get(&self.providers, &self.clock, true).await
    }

    /// The ranked, explained candidates for `request`, each with the plan it would send,
    /// spending nothing.
    pub async fn estimate(&self, request: &GenerationRequest) -> Result<Estimate, RouteError> {
        self.estimate_with(request, &CallOptions::default()).await
    }

    /// [`Router::estimate`] with this request's own routing choices.
    ///
    /// Fails before anything is sent when the request's provider options cannot be read,
    /// and with the catalog's own error when no provider the request may use has a
    /// catalog (a refused key, an unreachable host).
    pub async fn estimate_with(
        &self,
        request: &GenerationRequest,
        call: &CallOptions,
    ) -> Result<Estimate, RouteError> {
        self.check_call(call)?;
        let options = self.option_requirements(request)?;
        let catalog = self.catalog().await;
        self.check_catalog(&catalog, call)?;
        Ok(self.estimate_in(
            &catalog,
            request,
            call,
            &options,
            Credits::ZERO,
            &BTreeMap::new(),
        ))
    }

    fn estimate_in(
        &self,
        catalog: &MergedCatalog,
        request: &GenerationRequest,
        call: &CallOptions,
        options: &OptionRequirements,
        committed: Credits,
        failed: &BTreeMap<ProviderId, String>,
    ) -> Estimate {
        let view = {
            let run = self.lock_run();
            RunView {
                exhausted: run.exhausted.clone(),
                failed_this_request: failed.clone(),
                unavailable: run.unavailable.clone(),
                cooling: self.cooldowns.active(),
                latency: run.latency.clone(),
                budget: Some(self.budget.status()).filter(|s| s.limit.is_some()),
                committed,
            }
        };
        let judge = Judge {
            rules: Rules::new(&self.policy, call),
            view: &view,
            options,
        };
        build_estimate(catalog, request, &judge, &self.order, &self.picking)
    }

    /// The call's provider must be one the router has.
    fn check_call(&self, call: &CallOptions) -> Result<(), RouteError> {
        match &call.provider {
            Some(id) if self.provider(id).is_none() => Err(InvalidInput::new(
                "provider",
                format!(
                    "{id} is not configured (set its API key); configured: {}",
                    self.order
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// Reads the request's provider options through their providers: which provider they
    /// belong to, and which of them a model must honour.
    fn option_requirements(
        &self,
        request: &GenerationRequest,
    ) -> Result<OptionRequirements, RouteError> {
        let mut asked: Vec<OptionRequirements> = Vec::new();
        for (id, value) in request.extras().iter() {
            let field = format!("extras.{id}");
            let Value::Object(object) = value else {
                return Err(InvalidInput::new(
                    field,
                    format!("the {id} options must be a JSON object of option names and values"),
                )
                .into());
            };
            let Some(provider) = self.provider(id) else {
                return Err(InvalidInput::new(
                    field,
                    format!(
                        "the request has {id} options, but {id} is not configured (configured: {})",
                        self.order
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .into());
            };
            let required = provider.required_options(object)?;
            let names: Vec<String> = object
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Null | Value::Bool(false)))
                .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()))
                .map(|(k, _)| k.clone())
                .collect();
            if names.is_empty() {
                continue;
            }
            asked.push(OptionRequirements {
                provider: Some(id.clone()),
                names,
                required,
                object: object.clone(),
            });
        }
        if asked.len() > 1 {
            let each = asked
                .iter()
                .map(|a| {
                    format!(
                        "{} ({})",
                        a.provider.as_ref().map_or("?", ProviderId::as_str),
                        a.names.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(InvalidInput::new(
                "extras",
                format!(
                    "the request has options of {each}: one request goes to one provider, so they cannot all be honoured; keep one provider's options"
                ),
            )
            .into());
        }
        Ok(asked.pop().unwrap_or_default())
    }

    /// Fails with the catalogs' own errors when no provider this request may use has a
    /// catalog.
    fn check_catalog(&self, catalog: &MergedCatalog, call: &CallOptions) -> Result<(), RouteError> {
        if catalog.failures.is_empty() {
            return Ok(());
        }
        let rules = Rules::new(&self.policy, call);
        let usable: Vec<&ProviderId> = self
            .order
            .iter()
            .filter(|p| rules.provider_refusal(p).is_none())
            .collect();
        let failures: Vec<CatalogFailure> = catalog
            .failures
            .iter()
            .filter(|f| usable.contains(&&f.provider))
            .cloned()
            .collect();
        let any_catalog = usable
            .iter()
            .any(|p| catalog.entries.iter().any(|e| &&e.provider == p));
        if !failures.is_empty() && !any_catalog {
            return Err(RouteError::CatalogUnavailable { failures });
        }
        Ok(())
    }

    /// Generates `request` on the best candidate, falling back when a candidate refuses
    /// without spending; see [`Router::generate_with`].
    pub async fn generate(
        &self,
        request: &GenerationRequest,
        progress: &dyn ProgressSink,
    ) -> Result<RoutedOutput, RouteError> {
        self.generate_with(request, &CallOptions::default(), progress, &NoObserver)
            .await
    }

    /// [`Router::generate_with`] with no call options.
    pub async fn generate_observed(
        &self,
        request: &GenerationRequest,
        progress: &dyn ProgressSink,
        observer: &dyn RouteObserver,
    ) -> Result<RoutedOutput, RouteError> {
        self.generate_with(request, &CallOptions::default(), progress, observer)
            .await
    }

    /// Generates `request` under this request's routing choices (`call`), telling
    /// `observer` about every accepted job before waiting for it (the place for a journal)
    /// and about every attempt. The run's catalog cache, cooldowns, lessons and budget are
    /// shared by every call.
    ///
    /// The route:
    /// 1. read the request's provider options through their provider, and rank the
    ///    candidates ([`Router::estimate_with`]): each carries its resolved [`CallPlan`]s;
    /// 2. reserve the best one's worst-case cost in the run budget (a candidate the budget
    ///    cannot cover is skipped);
    /// 3. send its calls exactly as planned, waiting out short rate limits;
    /// 4. on a refusal that spent nothing, learn from it (a refused key or no credits: the
    ///    provider is out for the run; plan required or model not found: the model is;
    ///    unreachable or a server error: the provider is skipped for this request and
    ///    counts towards a cooldown) and try the next candidate for the images still
    ///    missing; a fallback is judged by the same rules, so it never lands where the
    ///    request's options or shape would be dropped;
    /// 5. wait for accepted jobs; a failure the provider refunded lets the next candidate
    ///    try; anything that may have been charged stops the route at once
    ///    ([`RouteError::MaybeCharged`], with the job handles), and nothing is submitted
    ///    elsewhere;
    /// 6. settle the reservation to what was charged.
    pub async fn generate_with(
        &self,
        request: &GenerationRequest,
        call: &CallOptions,
        progress: &dyn ProgressSink,
        observer: &dyn RouteObserver,
    ) -> Result<RoutedOutput, RouteError> {
        self.check_call(call)?;
        let options = self.option_requirements(request)?;
        let catalog = self.catalog().await;
        self.check_catalog(&catalog, call)?;
        let mut run = Progress {
            output: RoutedOutput {
                images_requested: request.count(),
                ..RoutedOutput::default()
            },
            remaining: request.count(),
            failed: BTreeMap::new(),
        };
        let mut tried: BTreeSet<(ProviderId, Option<ModelId>)> = BTreeSet::new();
        let mut over_budget: Option<(Credits, Credits)> = None;
        while run.remaining > 0 {
            let sub_request = request.with_count(run.remaining)?;
            let estimate = self.estimate_in(
                &catalog,
                &sub_request,
                call,
                &options,
                run.output.credits_charged,
                &run.failed,
            );
            let next = estimate
                .eligible()
                .find(|c| !tried.contains(&(c.provider.clone(), c.model.clone())))
                .cloned();
            let Some(candidate) = next else {
                return Err(self.no_candidate(estimate, run, over_budget, call));
            };
            tried.insert((candidate.provider.clone(), candidate.model.clone()));
            let total = candidate.total_credits.unwrap_or_default();
            let reservation = match Reservation::take(&self.budget, total) {
                Ok(reservation) => reservation,
                Err(BudgetError::Exceeded { needed, remaining }) => {
                    let mut attempt = Attempt::new(
                        candidate.provider.clone(),
                        candidate.model.clone(),
                        run.remaining,
                        AttemptOutcome::OverBudget,
                    );
                    attempt.credits_reserved = needed;
                    attempt.message = Some(format!(
                        "needs up to {needed} credits, {remaining} left in the run budget"
                    ));
                    observer.attempted(&attempt);
                    run.output.attempts.push(attempt);
                    over_budget = Some((needed, remaining));
                    continue;
                }
                Err(other) => return Err(RouteError::Budget(other)),
            };
            for warning in &candidate.warnings {
                let line = format!("{}: {warning}", candidate.label());
                if !run.output.warnings.contains(&line) {
                    run.output.warnings.push(line);
                }
            }
            if let Err(halt) = self
                .run_candidate(&candidate, reservation, progress, observer, &mut run)
                .await
            {
                let partial = Box::new(run.output);
                return Err(match halt {
                    Halt::Stopped(error) => RouteError::Stopped {
                        error: Box::new(error),
                        partial,
                    },
                    Halt::MaybeCharged(error, jobs) => RouteError::MaybeCharged {
                        error: Box::new(error),
                        jobs,
                        partial,
                    },
                });
            }
        }
        Ok(run.output)
    }

    /// Waits for a job accepted earlier (resuming after a crash, from a journal); never
    /// submits anything.
    pub async fn wait(
        &self,
        job: &JobHandle,
        progress: &dyn ProgressSink,
    ) -> Result<JobOutput, RouteError> {
        let provider = self
            .provider(&job.provider)
            .ok_or_else(|| RouteError::UnknownProvider(job.provider.clone()))?;
        provider
            .wait(job, progress)
            .await
            .map_err(|e| RouteError::Provider(Box::new(e)))
    }

    fn provider(&self, id: &ProviderId) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| &p.id() == id)
    }

    fn lock_run(&self) -> MutexGuard<'_, RunState> {
        // Each critical section is a map update; a panic cannot tear it.
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what a refusal teaches.
    fn learn(&self, candidate: &Candidate, lesson: Lesson, why: &str, run: &mut Progress) {
        let provider = &candidate.provider;
        match lesson {
            Lesson::Nothing => {}
            Lesson::ProviderDown => {
                run.failed.insert(provider.clone(), why.to_owned());
                self.cooldowns.record_failure(provider, None);
                if let Some(left) = self.cooldowns.remaining(provider, None) {
                    run.output.warnings.push(format!(
                        "{provider} rests for {}s after repeated failures ({why}); it is tried again after that",
                        left.as_secs()
                    ));
                }
            }
            Lesson::ModelFailed => self
                .cooldowns
                .record_failure(provider, candidate.model.as_ref()),
            Lesson::ProviderUnusable(reason) => {
                run.output.warnings.push(format!(
                    "{provider} is not used for the rest of this run: {reason}"
                ));
                self.lock_run().exhausted.insert(provider.clone(), reason);
            }
            Lesson::ModelUnavailable {
                reason,
                this_quality,
            } => match &candidate.model {
                Some(model) => {
                    let quality = if this_quality {
                        candidate.quality.clone()
                    } else {
                        None
                    };
                    self.lock_run()
                        .unavailable
                        .insert((provider.clone(), model.clone(), quality), reason);
                }
                None => self.cooldowns.record_failure(provider, None),
            },
        }
    }

    fn observe_latency(&self, provider: &ProviderId, model: &ModelId, took: Duration) {
        let mut run = self.lock_run();
        let entry = run
            .latency
            .entry((provider.clone(), model.clone()))
            .or_insert(took);
        *entry = entry
            .mul_f64(1.0 - LATENCY_WEIGHT)
            .saturating_add(took.mul_f64(LATENCY_WEIGHT));
    }

    /// Submits, waiting out rate limits the policy allows; each wait is recorded.
    async fn submit(
        &self,
        provider: &Arc<dyn Provider>,
        call: &CallPlan,
        candidate: &Candidate,
        run: &mut Progress,
        observer: &dyn RouteObserver,
    ) -> Result<JobHandle, Error> {
        let limits = self.policy.rate_limit_policy();
        let mut waits = 0;
        loop {
            observer.submitting(call).await;
            match provider.submit(call).await {
                Err(error) if matches!(error.refusal(), Some(Refusal::RateLimited { .. })) => {
                    let wait = error.retry_after().unwrap_or(limits.default_wait);
                    if waits >= limits.max_retries || wait > limits.max_wait {
                        return Err(error);
                    }
                    waits += 1;
                    let mut attempt = Attempt::new(
                        candidate.provider.clone(),
                        candidate.model.clone(),
                        call.images,
                        AttemptOutcome::RateLimitWaited {
                            waited_secs: wait.as_secs(),
                        },
                    );
                    attempt.message = Some(describe(&error));
                    attempt.error = Some(error);
                    observer.attempted(&attempt);
                    run.output.attempts.push(attempt);
                    self.clock.sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Runs one candidate: submit its calls, wait for them, settle the reservation.
    async fn run_candidate(
        &self,
        candidate: &Candidate,
        mut reservation: Reservation,
        progress: &dyn ProgressSink,
        observer: &dyn RouteObserver,
        run: &mut Progress,
    ) -> Result<(), Halt> {
        let Some(provider) = self.provider(&candidate.provider).cloned() else {
            return Ok(());
        };
        let per_image = candidate.credits_per_image.unwrap_or_default();
        let mut accepted: Vec<Accepted> = Vec::new();
        let mut halt: Option<Halt> = None;
        let mut doubtful = Credits::ZERO;
        let mut refused = false;

        for call in &candidate.calls {
            if halt.is_some() || refused {
                break;
            }
            let images = call.images;
            let share = per_image
                .checked_mul(images)
                .unwrap_or(reservation.amount());
            match self.submit(&provider, call, candidate, run, observer).await {
                Ok(job) => {
                    reservation.mark_accepted();
                    observer.accepted(&job, call, share).await;
                    run.output.plans.push(JobPlan::new(&job, call.clone()));
                    accepted.push(Accepted {
                        job,
                        images,
                        share,
                        accepted_at: self.clock.now(),
                    });
                }
                Err(error) => {
                    let mut attempt = Attempt::new(
                        candidate.provider.clone(),
                        candidate.model.clone(),
                        images,
                        outcome_of(&error),
                    );
                    attempt.credits_reserved = share;
                    attempt.message = Some(describe(&error));
                    match classify_submit_error(&error) {
                        Disposition::MoveOn(lesson) => {
                            tracing::info!(candidate = %candidate.label(), %error, "refused; trying the next candidate");
                            self.learn(candidate, lesson, &describe(&error), run);
                            refused = true;
                        }
                        Disposition::Stop => halt = Some(Halt::Stopped(error.clone())),
                        Disposition::MaybeCharged => {
                            reservation.mark_accepted();
                            attempt.credits_charged = share;
                            doubtful = doubtful.checked_add(share).unwrap_or(doubtful);
                            halt = Some(Halt::MaybeCharged(error.clone(), Vec::new()));
                        }
                    }
                    attempt.error = Some(error);
                    observer.attempted(&attempt);
                    run.output.attempts.push(attempt);
                }
            }
        }

        if accepted.is_empty() && doubtful.is_zero() {
            if let Err(e) = reservation.release() {
                tracing::warn!(%e, "could not release a reservation");
            }
            return halt.map_or(Ok(()), Err);
        }
        // Give back what was never sent, so concurrent requests can use it.
        let held = accepted
            .iter()
            .map(|a| a.share)
            .fold(doubtful, |acc, s| acc.checked_add(s).unwrap_or(acc));
        if held < reservation.amount()
            && let Err(e) = reservation.shrink_to(held)
        {
            tracing::warn!(%e, "could not shrink a reservation");
        }

        let results = join_all(accepted.iter().map(|a| provider.wait(&a.job, progress))).await;
        let mut charged = doubtful;
        let mut doubtful_jobs = Vec::new();
        for (call, result) in accepted.into_iter().zip(results) {
            let mut attempt = Attempt::new(
                candidate.provider.clone(),
                candidate.model.clone(),
                call.images,
                AttemptOutcome::Delivered { images: 0 },
            );
            attempt.job_id = Some(call.job.job_id.clone());
            attempt.credits_reserved = call.share;
            match result {
                Ok(output) => {
                    let cost = output
                        .credits_charged
                        .or(call.job.credits_charged)
                        .unwrap_or(call.share);
                    let delivered = u32::try_from(output.images.len()).unwrap_or(u32::MAX);
                    if delivered < call.images {
                        run.output.warnings.push(format!(
                            "{} job {} delivered {delivered} of {} images; it was paid for, so it is not submitted again",
                            candidate.provider, call.job.job_id, call.images
                        ));
                    }
                    self.cooldowns
                        .record_success(&candidate.provider, candidate.model.as_ref());
                    if let Some(model) = output.model.as_ref().or(candidate.model.as_ref()) {
                        let took = self.clock.now().saturating_sub(call.accepted_at);
                        self.observe_latency(&candidate.provider, model, took);
                    }
                    attempt.outcome = AttemptOutcome::Delivered { images: delivered };
                    attempt.credits_charged = cost;
                    attempt.model = output.model.clone().or(attempt.model);
                    charged = charged.checked_add(cost).unwrap_or(charged);
                    run.output.images_delivered =
                        run.output.images_delivered.saturating_add(delivered);
                    run.remaining = run.remaining.saturating_sub(call.images);
                    run.output.warnings.extend(
                        output
                            .warnings
                            .iter()
                            .map(|w| format!("{}: {w}", candidate.provider)),
                    );
                    run.output.outputs.push(output);
                }
                Err(error) => {
                    attempt.outcome = outcome_of(&error);
                    attempt.message = Some(describe(&error));
                    match &error {
                        Error::GenerationFailed {
                            refund: Refund::Refunded,
                            ..
                        } => {
                            self.learn(candidate, Lesson::ModelFailed, "", run);
                        }
                        Error::Cancelled { .. } => {
                            if halt.is_none() {
                                halt = Some(Halt::Stopped(error.clone()));
                            }
                        }
                        _ => {
                            // Accepted, and the outcome is unknown or unrefunded: count
                            // the reservation as spent and keep the handle.
                            attempt.outcome = AttemptOutcome::MaybeCharged;
                            attempt.credits_charged = call.share;
                            charged = charged.checked_add(call.share).unwrap_or(charged);
                            doubtful_jobs.push(call.job.clone());
                            match &mut halt {
                                Some(Halt::MaybeCharged(_, jobs)) => jobs.push(call.job.clone()),
                                _ => {
                                    halt = Some(Halt::MaybeCharged(
                                        error.clone(),
                                        vec![call.job.clone()],
                                    ));
                                }
                            }
                        }
                    }
                    attempt.error = Some(error);
                }
            }
            observer.attempted(&attempt);
            run.output.attempts.push(attempt);
        }

        match reservation.settle(charged) {
            Ok(settlement) => {
                if let Some(over) = settlement.overshoot {
                    run.output.warnings.push(format!(
                        "{} charged {} credits, {over} more than the {} reserved",
                        candidate.label(),
                        settlement.charged,
                        settlement.reserved
                    ));
                }
            }
            Err(e) => run.output.warnings.push(format!(
                "the budget could not record {charged} credits: {e}"
            )),
        }
        run.output.credits_charged = run
            .output
            .credits_charged
            .checked_add(charged)
            .unwrap_or(run.output.credits_charged);
        halt.map_or(Ok(()), Err)
    }

    /// The error when no untried candidate is left.
    fn no_candidate(
        &self,
        estimate: Estimate,
        run: Progress,
        over_budget: Option<(Credits, Credits)>,
        call: &CallOptions,
    ) -> RouteError {
        let rules = Rules::new(&self.policy, call);
        let only = |c: &Candidate, f: fn(&Exclusion) -> bool| {
            !c.exclusions.is_empty() && c.exclusions.iter().all(f)
        };
        let budget_blocked = estimate
            .candidates
            .iter()
            .filter(|c| only(c, Exclusion::is_budget))
            .filter_map(|c| c.total_credits)
            .min();
        let budget = over_budget.or_else(|| {
            let remaining = estimate.budget.and_then(|b| b.remaining)?;
            budget_blocked.map(|needed| (needed, remaining))
        });
        if let Some((needed, remaining)) = budget {
            return RouteError::BudgetExceeded {
                needed,
                remaining,
                partial: Box::new(run.output),
            };
        }
        let failed_attempts: Vec<Attempt> = run
            .output
            .attempts
            .iter()
            .filter(|a| {
                !matches!(
                    a.outcome,
                    AttemptOutcome::Delivered { .. } | AttemptOutcome::RateLimitWaited { .. }
                )
            })
            .cloned()
            .collect();
        if !failed_attempts.is_empty() {
            return RouteError::AllAttemptsFailed {
                attempts: failed_attempts,
                partial: Box::new(run.output),
            };
        }
        let a_pick_allowed = estimate
            .candidates
            .iter()
            .any(|c| c.model.is_none() && !c.exclusions.iter().any(Exclusion::is_choice));
        if rules.wants_provider_pick() && !a_pick_allowed {
            let picking: Vec<&str> = self
                .order
                .iter()
                .filter(|p| self.picking.contains(*p))
                .map(ProviderId::as_str)
                .collect();
            let why = if picking.is_empty() {
                "none of the configured providers picks its own model".to_owned()
            } else {
                format!(
                    "only {} picks its own model, and this request may not use it",
                    picking.join(", ")
                )
            };
            return RouteError::NoEligibleCandidate {
                reasons: vec![format!(
                    "`auto` asks the provider to pick the model, but {why}; name a model instead (list them: `imagegen models`)"
                )],
                estimate: Box::new(estimate),
            };
        }
        // The candidates the user's choices leave: their reasons are the ones that matter.
        let chosen: Vec<&Candidate> = estimate
            .candidates
            .iter()
            .filter(|c| !c.exclusions.iter().any(Exclusion::is_choice))
            .collect();
        if chosen.is_empty() && rules.names_a_model() {
            let mut offered: Vec<String> = estimate
                .candidates
                .iter()
                .filter(|c| {
                    c.model.is_some()
                        && !c
                            .exclusions
                            .iter()
                            .any(|e| matches!(e, Exclusion::ProviderNotAllowed { .. }))
                })
                .map(Candidate::label)
                .collect();
            offered.dedup();
            return RouteError::NoEligibleCandidate {
                reasons: vec![format!(
                    "no configured provider offers {}; the models on offer are {} (list them with their prices: `imagegen models`)",
                    rules.named_models().join(", "),
                    offered.join(", ")
                )],
                estimate: Box::new(estimate),
            };
        }
        let capped = chosen
            .iter()
            .filter(|c| only(c, |e| e.is_price_cap() || e.is_budget()))
            .min_by_key(|c| c.total_credits.map_or(u64::MAX, Credits::micros));
        if let Some(cheapest) = capped {
            return RouteError::PriceCapExceeded {
                cheapest: format!(
                    "{} at {} credits per image ({})",
                    cheapest.label(),
                    cheapest.credits_per_image.unwrap_or_default(),
                    cheapest.reason
                ),
                estimate: Box::new(estimate),
            };
        }
        let shown = if chosen.is_empty() {
            estimate.candidates.iter().collect()
        } else {
            chosen
        };
        let reasons = shown
            .iter()
            .map(|c| format!("{}: {}", c.label(), c.reason))
            .collect();
        RouteError::NoEligibleCandidate {
            reasons,
            estimate: Box::new(estimate),
        }
    }
}

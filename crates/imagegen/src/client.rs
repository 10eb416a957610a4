//! [`Client`]: one object for estimating, generating, saving, batching and resuming.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use imagegen_core::{
    Balance, GenerationRequest, JobHandle, NoProgress, ProgressSink, Provider, ProviderId,
    SharedClock, TokioClock,
};
use imagegen_http::ImageDownloader;
use imagegen_router::{
    Budget, BudgetStatus, CallOptions, Estimate, InMemoryBudget, MergedCatalog, RouteError, Router,
    RoutingPolicy,
};
use koala_api::{KoalaClient, KoalaProvider};
use kolbo_api::poll::PollSchedule;
use kolbo_api::types::{Moodboard, MoodboardQuery, VisualDna, VisualDnaQuery};
use kolbo_api::{KolboClient, KolboProvider};
use secrecy::ExposeSecret;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::gate::{GatedProvider, SubmitGate};
use crate::generation::{Asked, Generation, Source};
use crate::job_log::JobLog;
use crate::run::RunObserver;

/// How many images download at once by default.
pub const DEFAULT_DOWNLOAD_CONCURRENCY: usize = 4;

/// Options for one request beyond the request itself.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// Where progress events go (see [`crate::progress::channel`]).
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// The journal that records every accepted job before it is waited on: a JSON Lines
    /// [`Journal`](crate::journal::Journal) or the ledger (the `imagegen-ledger` store).
    pub journal: Option<Arc<dyn JobLog>>,
    /// Where the images will be saved (recorded in the journal for `resume`).
    pub out_dir: Option<PathBuf>,
    /// This request's own routing choices (a provider, a model, a price cap, reshaping),
    /// judged on the client's shared run state.
    pub call: CallOptions,
    /// The request's key in the journal, when the caller keys its requests itself
    /// (default: [`request_key`](crate::job_log::request_key) of the request, its call
    /// options and the folder).
    pub request_key: Option<String>,
    /// How the images are named and kept in their folder (default
    /// [`ImageLayout::Named`](crate::layout::ImageLayout::Named)).
    pub layout: crate::layout::ImageLayout,
    /// The batch line this request came from, for the journal.
    pub(crate) batch_line: Option<u32>,
}

impl std::fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("progress", &self.progress.is_some())
            .field("journal", &self.journal.as_ref().map(|j| j.location()))
            .field("out_dir", &self.out_dir)
            .field("call", &self.call)
            .field("request_key", &self.request_key)
            .field("layout", &self.layout)
            .finish()
    }
}

impl GenerateOptions {
    /// Sends progress to `sink`.
    #[must_use]
    pub fn progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Keys the request `key` in the journal instead of by its content and folder.
    #[must_use]
    pub fn request_key(mut self, key: impl Into<String>) -> Self {
        self.request_key = Some(key.into());
        self
    }

    /// Names and keeps the images in `layout`.
    #[must_use]
    pub fn layout(mut self, layout: crate::layout::ImageLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Records accepted jobs in `journal`.
    #[must_use]
    pub fn journal(mut self, journal: Arc<dyn JobLog>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The output directory recorded in the journal.
    #[must_use]
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// This request's own routing choices.
    #[must_use]
    pub fn call(mut self, call: CallOptions) -> Self {
        self.call = call;
        self
    }
}

type PolicyFn = Box<dyn FnOnce(RoutingPolicy) -> RoutingPolicy + Send>;

/// Builds a [`Client`].
///
/// ```no_run
/// use imagegen::{Client, ClientConfig, Credits};
/// # fn run() -> Result<(), imagegen::Error> {
/// let client = Client::builder()
///     .config(ClientConfig::from_env()?)
///     .policy(|p| p.max_credits_per_image(Credits::whole(10)))
///     .download_concurrency(8)
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    config: ClientConfig,
    clock: Option<SharedClock>,
    policy: Option<PolicyFn>,
    providers: Vec<Arc<dyn Provider>>,
    downloader: Option<ImageDownloader>,
    download_concurrency: usize,
    poll_schedule: Option<PollSchedule>,
    kolbo_pacing: bool,
    kolbo_rate_limit: Option<(u32, Duration)>,
    shared_pacing: Option<Arc<dyn imagegen_ledger::Ledger>>,
    #[cfg(feature = "simulator")]
    simulator: Option<imagegen_sim::SimHandle>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("providers", &self.providers.len())
            .field("download_concurrency", &self.download_concurrency)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Keys, API roots, plan and credit worth (default: nothing configured).
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock for polls, backoff and cooldowns (default: the real clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adjusts the routing policy; `f` receives the policy made from the configuration
    /// (credit worth, plan) and returns the one to use.
    pub fn policy(
        mut self,
        f: impl FnOnce(RoutingPolicy) -> RoutingPolicy + Send + 'static,
    ) -> Self {
        self.policy = Some(Box::new(f));
        self
    }

    /// Adds a provider of your own (any [`Provider`] implementation).
    pub fn provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// The image downloader (default: [`ImageDownloader::new`] on the client's clock, with
    /// the configuration's [`download_deadline`](ClientConfig::download_deadline) if any).
    pub fn downloader(mut self, downloader: ImageDownloader) -> Self {
        self.downloader = Some(downloader);
        self
    }

    /// How many images download at once (default [`DEFAULT_DOWNLOAD_CONCURRENCY`]).
    pub fn download_concurrency(mut self, n: usize) -> Self {
        self.download_concurrency = n.max(1);
        self
    }

    /// How Kolbo jobs are polled (default: Kolbo's adaptive schedule, or a fixed interval
    /// from `IMAGEGEN_POLL_INTERVAL_MS`).
    pub fn poll_schedule(mut self, schedule: PollSchedule) -> Self {
        self.poll_schedule = Some(schedule);
        self
    }

    /// Whether Kolbo generation starts are paced to Kolbo's documented limit, 10 a minute
    /// for this client's key (default: on), so a batch waits its turn instead of being
    /// answered 429; a batch reports each wait as
    /// [`BatchEvent::RateLimited`](crate::batch::BatchEvent). Turn it off against a server with
    /// no such limit (a simulator started with `without_rate_limits`).
    pub fn kolbo_pacing(mut self, on: bool) -> Self {
        self.kolbo_pacing = on;
        self
    }

    /// Kolbo's generation limit for this account: `limit` starts per `window` (default:
    /// the documented 10 a minute). For an account Kolbo gave a higher limit.
    pub fn kolbo_rate_limit(mut self, limit: u32, window: Duration) -> Self {
        self.kolbo_rate_limit = Some((limit.max(1), window.max(Duration::from_millis(1))));
        self
    }

    /// Paces Kolbo's generation starts across every process on `ledger` as well as in
    /// this one (see [`crate::ledger_window`]): gateway instances sharing one account
    /// stay within its limit together. Needs [`kolbo_pacing`](Self::kolbo_pacing) on.
    pub fn shared_pacing(mut self, ledger: Arc<dyn imagegen_ledger::Ledger>) -> Self {
        self.shared_pacing = Some(ledger);
        self
    }

    /// Builds the client: Kolbo when its key is set, KoalaImages when its key is set, and
    /// any providers added. Fails with [`Error::NoProvider`] when there is none.
    pub fn build(self) -> Result<Client, Error> {
        let clock = self.clock.unwrap_or_else(TokioClock::shared);
        let config = &self.config;
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        // Providers that pick a model themselves when none is named (`auto`), and the typed
        // Kolbo client for its account lists: named here, where the providers are built.
        let mut kolbo: Option<KolboClient> = None;
        if let Some(key) = &config.kolbo_api_key {
            let mut builder = KolboClient::builder(key.expose_secret()).clock(Arc::clone(&clock));
            if let Some(url) = &config.kolbo_base_url {
                builder = builder.base_url(url.as_str());
            }
            if self.kolbo_pacing {
                let mut pacer = match self.kolbo_rate_limit {
                    Some((limit, window)) => kolbo_api::SubmitPacer::new(limit, window),
                    None => kolbo_api::SubmitPacer::kolbo_generate(),
                };
                if let Some(ledger) = &self.shared_pacing {
                    pacer = pacer.with_shared_window(Arc::new(
                        crate::ledger_window::LedgerWindow::new(
                            Arc::clone(ledger),
                            "kolbo",
                            key.expose_secret(),
                        ),
                    ));
                }
                pacer.on_wait(crate::pacing::heard);
                builder = builder.submit_pacer(pacer);
            }
            let client = builder
                .build()
                .map_err(|e| Error::Provider(imagegen_core::Error::from(e)))?;
            let schedule = self
                .poll_schedule
                .clone()
                .or_else(|| config.poll_interval.map(fixed_schedule));
            kolbo = Some(client.clone());
            let mut provider = KolboProvider::new(client).with_credit_worth(config.kolbo_worth());
            if let Some(schedule) = schedule {
                provider = provider.with_poll_schedule(schedule);
            }
            providers.push(Arc::new(provider));
        }
        if let Some(key) = &config.koala_api_key {
            let mut builder = KoalaClient::builder(key.clone())
                .plan(config.koala_plan)
                .clock(Arc::clone(&clock));
            if let Some(url) = &config.koala_base_url {
                builder = builder.base_url(url.as_str());
            }
            let client = builder
                .build()
                .map_err(|e| Error::Provider(imagegen_core::Error::from(e)))?;
            let mut provider = KoalaProvider::new(client);
            if let Some(worth) = config.koala_credit_usd {
                provider = provider.with_credit_worth(worth);
            }
            providers.push(Arc::new(provider));
        }
        providers.extend(self.providers);
        if providers.is_empty() {
            return Err(Error::NoProvider);
        }
        let mut policy = RoutingPolicy::default();
        if let Some(f) = self.policy {
            policy = f(policy);
        }
        let downloader = match self.downloader {
            Some(d) => d,
            None => {
                let mut builder = ImageDownloader::builder().clock(Arc::clone(&clock));
                if let Some(deadline) = self.config.download_deadline {
                    builder = builder.deadline(deadline);
                }
                builder
                    .build()
                    .map_err(|e| Error::Provider(imagegen_core::Error::Config(e.to_string())))?
            }
        };
        let gate = Arc::new(SubmitGate::default());
        let providers = providers
            .into_iter()
            .map(|p| Arc::new(GatedProvider::new(p, Arc::clone(&gate))) as Arc<dyn Provider>)
            .collect();
        let shared = Arc::new(Shared {
            providers,
            kolbo,
            clock,
            downloader,
            download_concurrency: self.download_concurrency,
            gate,
            #[cfg(feature = "simulator")]
            simulator: self.simulator,
        });
        Client::with_shared(shared, policy, None)
    }
}

/// A fixed poll schedule for simulators and local proxies.
fn fixed_schedule(interval: Duration) -> PollSchedule {
    let mut schedule = PollSchedule::fixed(interval);
    schedule.min_interval = schedule.min_interval.min(interval);
    schedule.backoff_initial = schedule.backoff_initial.min(interval.saturating_mul(2));
    schedule
}

struct Shared {
    providers: Vec<Arc<dyn Provider>>,
    /// Providers that pick their own model when a call asks for `auto`.
    /// The Kolbo client, when Kolbo is configured (moodboards, visual DNA).
    kolbo: Option<KolboClient>,
    clock: SharedClock,
    downloader: ImageDownloader,
    download_concurrency: usize,
    gate: Arc<SubmitGate>,
    #[cfg(feature = "simulator")]
    simulator: Option<imagegen_sim::SimHandle>,
}

/// The imagegen client: estimate, generate, save, batch and resume across the configured
/// providers, for the fewest credits, never paying twice and never losing a paid image.
///
/// A client is one *run* of the router: what it learns (a provider out of credits, a
/// model refused for the plan, cooldowns) and the run budget hold for its lifetime, and
/// every request's own routing choices ([`GenerateOptions::call`]) are judged on that
/// shared state. [`Client::with_policy`] starts a new run with another policy on the same
/// providers. Cheap to clone; clones share the run.
///
/// ```no_run
/// use imagegen::{Client, GenerationRequest};
/// # async fn run() -> Result<(), imagegen::Error> {
/// let client = Client::from_env()?;
/// let request = GenerationRequest::builder("a lighthouse at dusk, watercolor").build()?;
/// println!("{}", client.estimate(&request).await?);
/// let generation = client.generate(&request).await?;
/// for saved in generation.save("imagegen-out").await? {
///     println!("{} ({} via {})", saved.path.display(), saved.mime, saved.image.provider);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    router: Arc<Router>,
    budget: Arc<dyn Budget>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("providers", &self.providers())
            .field("policy", self.policy())
            .field("budget", &self.budget.status())
            .field("simulated", &self.is_simulated())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: ClientConfig::default(),
            clock: None,
            policy: None,
            providers: Vec::new(),
            downloader: None,
            download_concurrency: DEFAULT_DOWNLOAD_CONCURRENCY,
            poll_schedule: None,
            kolbo_pacing: true,
            kolbo_rate_limit: None,
            shared_pacing: None,
            #[cfg(feature = "simulator")]
            simulator: None,
        }
    }

    /// A client configured from the environment (see [`ClientConfig`]).
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().config(ClientConfig::from_env()?).build()
    }

    fn with_shared(
        shared: Arc<Shared>,
        policy: RoutingPolicy,
        budget: Option<Arc<dyn Budget>>,
    ) -> Result<Self, Error> {
        let budget: Arc<dyn Budget> = budget.unwrap_or_else(|| match policy.run_budget_limit() {
            Some(limit) => Arc::new(InMemoryBudget::new(limit)),
            None => Arc::new(InMemoryBudget::unlimited()),
        });
        let mut builder = Router::builder(Arc::clone(&shared.clock))
            .policy(policy)
            .budget(Arc::clone(&budget));
        for provider in &shared.providers {
            builder = builder.provider(Arc::clone(provider));
        }
        let router = builder.build().map_err(|e| Error::Route {
            error: Box::new(e),
            partial: None,
        })?;
        Ok(Self {
            shared,
            router: Arc::new(router),
            budget,
        })
    }

    /// A new run on the same providers, with the policy `f` makes from this client's.
    /// The new run has its own budget (the policy's run budget).
    ///
    /// ```no_run
    /// # fn run(client: imagegen::Client) -> Result<(), imagegen::Error> {
    /// use imagegen::Credits;
    /// let capped = client.with_policy(|p| p.max_credits_per_image(Credits::whole(5)).run_budget(Credits::whole(50)))?;
    /// # Ok(()) }
    /// ```
    pub fn with_policy(
        &self,
        f: impl FnOnce(RoutingPolicy) -> RoutingPolicy,
    ) -> Result<Self, Error> {
        Self::with_shared(Arc::clone(&self.shared), f(self.policy().clone()), None)
    }

    /// The routing policy of this run.
    pub fn policy(&self) -> &RoutingPolicy {
        self.router.policy()
    }

    /// The providers and models resting after repeated failures in this run, which
    /// routing skips until their cooldown ends; [`Cooldowns::rest`](imagegen_router::Cooldowns::rest) adds one learned
    /// elsewhere (a gateway shares them through its ledger).
    pub fn cooldowns(&self) -> &imagegen_router::Cooldowns {
        self.router.cooldowns()
    }

    /// The configured providers, in tie-break order.
    pub fn providers(&self) -> Vec<ProviderId> {
        self.router.provider_ids().to_vec()
    }

    /// Whether `provider` is configured.
    pub fn has_provider(&self, provider: &str) -> bool {
        self.router.provider_ids().iter().any(|p| p == provider)
    }

    /// The run budget's figures (limit, spent, reserved, remaining).
    pub fn budget(&self) -> BudgetStatus {
        self.budget.status()
    }

    /// Whether this client talks to the in-process simulator.
    pub fn is_simulated(&self) -> bool {
        #[cfg(feature = "simulator")]
        {
            self.shared.simulator.is_some()
        }
        #[cfg(not(feature = "simulator"))]
        {
            false
        }
    }

    /// The in-process simulator, when this client runs against one.
    #[cfg(feature = "simulator")]
    pub fn simulator(&self) -> Option<&imagegen_sim::SimHandle> {
        self.shared.simulator.as_ref()
    }

    pub(crate) fn gate(&self) -> &SubmitGate {
        &self.shared.gate
    }

    /// Every model of every provider, with prices and capabilities (fetched once and
    /// cached); providers whose catalog failed are in `failures`.
    pub async fn models(&self) -> Result<Arc<MergedCatalog>, Error> {
        let catalog = self.router.catalog().await;
        if catalog.entries.is_empty() && !catalog.failures.is_empty() {
            return Err(Error::Route {
                error: Box::new(RouteError::CatalogUnavailable {
                    failures: catalog.failures.clone(),
                }),
                partial: None,
            });
        }
        Ok(catalog)
    }

    /// The moodboards the Kolbo account can use (every scope), for `moodboard_id`
    /// ([`RequestOptions::moodboard_id`](crate::RequestOptions::moodboard_id)). Kolbo
    /// counts this read against its generation rate limit: cache the answer.
    ///
    /// Fails with [`Error::InvalidInput`] when Kolbo is not configured.
    pub async fn moodboards(&self) -> Result<Vec<Moodboard>, Error> {
        let kolbo = self.kolbo("moodboards")?;
        let list = kolbo
            .list_moodboards(&MoodboardQuery::default())
            .await
            .map_err(|e| Error::Provider(e.into()))?;
        Ok(list.moodboards)
    }

    /// The visual DNAs (characters, products) the Kolbo account can use, every page, for
    /// `visual_dna_ids` ([`RequestOptions::visual_dna_ids`](crate::RequestOptions::visual_dna_ids)).
    ///
    /// Fails with [`Error::InvalidInput`] when Kolbo is not configured.
    pub async fn visual_dna(&self) -> Result<Vec<VisualDna>, Error> {
        /// Pages read at most (100 each).
        const MAX_PAGES: u32 = 50;
        let kolbo = self.kolbo("visual DNA")?;
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut query = VisualDnaQuery::default();
            query.page = Some(page);
            query.limit = Some(100);
            let list = kolbo
                .list_visual_dna(&query)
                .await
                .map_err(|e| Error::Provider(e.into()))?;
            let empty = list.visual_dnas.is_empty();
            all.extend(list.visual_dnas);
            if empty || list.has_more != Some(true) {
                break;
            }
        }
        Ok(all)
    }

    fn kolbo(&self, what: &str) -> Result<&KolboClient, Error> {
        self.shared.kolbo.as_ref().ok_or_else(|| {
            Error::InvalidInput(imagegen_core::InvalidInput::new(
                "provider",
                format!("{what} are Kolbo's, and Kolbo is not configured (set KOLBO_API_KEY)"),
            ))
        })
    }

    /// Credit balances, as each provider reports them (or where to look when it has no
    /// balance API).
    pub async fn credits(&self) -> Vec<Result<Balance, Error>> {
        let mut balances = Vec::new();
        for provider in &self.shared.providers {
            balances.push(provider.balance().await.map_err(Error::Provider));
        }
        balances
    }

    /// The ranked, explained candidates for `request`, each with the calls it would send,
    /// spending nothing.
    pub async fn estimate(&self, request: &GenerationRequest) -> Result<Estimate, Error> {
        self.estimate_with(request, &CallOptions::default()).await
    }

    /// [`Client::estimate`] with this request's own routing choices.
    pub async fn estimate_with(
        &self,
        request: &GenerationRequest,
        call: &CallOptions,
    ) -> Result<Estimate, Error> {
        self.router
            .estimate_with(request, call)
            .await
            .map_err(|error| Error::Route {
                error: Box::new(error),
                partial: None,
            })
    }

    /// Generates `request` on the cheapest capable model, falling back when a provider
    /// refuses without charging. The images are not downloaded yet: call
    /// [`Generation::save`] or [`Generation::download`].
    ///
    /// On an error after something was paid for, [`Error::partial`] holds what was
    /// delivered: save it.
    pub async fn generate(&self, request: &GenerationRequest) -> Result<Generation, Error> {
        self.generate_with(request, &GenerateOptions::default())
            .await
    }

    /// [`Client::generate`] with progress reporting and a journal.
    pub async fn generate_with(
        &self,
        request: &GenerationRequest,
        options: &GenerateOptions,
    ) -> Result<Generation, Error> {
        let out_dir = options
            .out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        let observer = RunObserver::new(
            request.prompt().as_str(),
            &out_dir,
            options.journal.as_deref(),
            self.gate(),
        );
        self.generate_observed(request, options, &observer).await
    }

    pub(crate) async fn generate_observed(
        &self,
        request: &GenerationRequest,
        options: &GenerateOptions,
        observer: &RunObserver<'_>,
    ) -> Result<Generation, Error> {
        if self.gate().is_stopped() {
            return Err(Error::Interrupted);
        }
        let started = self.shared.clock.wall_time();
        let progress: &dyn ProgressSink = match &options.progress {
            Some(sink) => sink.as_ref(),
            None => &NoProgress,
        };
        let asked = || Asked::new(request.clone(), options.call.clone());
        let result = self
            .router
            .generate_with(request, &options.call, progress, observer)
            .await;
        match result {
            Ok(routed) => {
                let mut generation =
                    Generation::from_routed(asked(), &routed, started, self.source());
                generation.warnings.extend(observer.journal_failures());
                Ok(generation)
            }
            Err(error) => {
                let partial = error
                    .partial()
                    .filter(|p| !p.outputs.is_empty())
                    .map(|routed| {
                        let mut generation =
                            Generation::from_routed(asked(), routed, started, self.source());
                        generation.warnings.extend(observer.journal_failures());
                        Box::new(generation)
                    });
                let stopped_by_gate = matches!(
                    &error,
                    RouteError::Stopped { error, .. }
                        if matches!(&**error, imagegen_core::Error::NotSubmitted { .. })
                );
                if stopped_by_gate && partial.is_none() {
                    return Err(Error::Interrupted);
                }
                Err(Error::Route {
                    error: Box::new(error),
                    partial,
                })
            }
        }
    }

    /// Waits for a job accepted earlier (from a journal) and returns its images; never
    /// submits anything.
    pub async fn wait_for_job(
        &self,
        job: &JobHandle,
        prompt: &str,
        progress: &dyn ProgressSink,
    ) -> Result<Generation, Error> {
        let output = self
            .router
            .wait(job, progress)
            .await
            .map_err(|error| match error {
                RouteError::Provider(e) => Error::Provider(*e),
                other => Error::Route {
                    error: Box::new(other),
                    partial: None,
                },
            })?;
        Ok(Generation::from_job(prompt, &output, self.source()))
    }

    /// What a [`Generation`] of this client downloads with, and whether it is simulated.
    fn source(&self) -> Source {
        Source {
            downloader: self.shared.downloader.clone(),
            concurrency: self.shared.download_concurrency,
            clock: Arc::clone(&self.shared.clock),
            simulated: self.is_simulated(),
        }
    }

    /// Stops sending new generation requests, in this client and every clone. Jobs already
    /// accepted are still recorded in their journal; see [`Client::submissions_settled`].
    pub fn stop_submitting(&self) {
        self.shared.gate.stop();
    }

    /// Whether [`Client::stop_submitting`] was called.
    pub fn is_stopped(&self) -> bool {
        self.shared.gate.is_stopped()
    }

    /// Waits until no generation request is on the wire and every accepted job has been
    /// recorded: after [`Client::stop_submitting`], the moment it is safe to exit.
    pub async fn submissions_settled(&self) {
        self.shared.gate.settled().await;
    }
}

#[cfg(feature = "simulator")]
mod simulated {
    use imagegen_sim::{ImageSize, SimConfig};

    use super::*;

    /// The simulator's speed for [`Client::simulated`]: generations take a tenth of their
    /// real time.
    pub const SIMULATED_SPEED: f64 = 0.1;

    /// The poll interval against the simulator.
    const SIMULATED_POLL: Duration = Duration::from_millis(150);

    impl Client {
        /// A client against a simulator of both APIs started in this process (on
        /// `127.0.0.1`, ten times faster than the real services, real images). Needs a
        /// Tokio runtime with I/O and time enabled. Everything else is the same as with
        /// real keys: the same clients, the same HTTP.
        ///
        /// ```
        /// # #[tokio::main]
        /// # async fn main() -> Result<(), imagegen::Error> {
        /// let client = imagegen::Client::simulated().await?;
        /// let request = imagegen::GenerationRequest::builder("a lighthouse at dusk").build()?;
        /// let generation = client.generate(&request).await?;
        /// assert_eq!(generation.images.len(), 1);
        /// # Ok(()) }
        /// ```
        pub async fn simulated() -> Result<Self, Error> {
            Self::with_simulator(
                SimConfig::default()
                    .with_speed(SIMULATED_SPEED)
                    .with_image_size(ImageSize::MaxSide(1024)),
            )
            .await
        }

        /// A client against a simulator started in this process with `config`.
        pub async fn with_simulator(config: SimConfig) -> Result<Self, Error> {
            Self::simulated_builder(config).await?.build()
        }

        /// A builder preset for a simulator started in this process with `config`: adjust
        /// the policy or downloads, then build.
        pub async fn simulated_builder(config: SimConfig) -> Result<ClientBuilder, Error> {
            let sim = imagegen_sim::start(config).await?;
            let config = ClientConfig {
                kolbo_api_key: Some(sim.kolbo_api_key().to_owned().into()),
                koala_api_key: Some(sim.koala_api_key().to_owned().into()),
                kolbo_base_url: Some(base_url(&sim.kolbo_base_url())?),
                koala_base_url: Some(base_url(&sim.koala_base_url())?),
                poll_interval: Some(SIMULATED_POLL),
                ..ClientConfig::default()
            };
            let mut builder = Self::builder().config(config);
            builder.simulator = Some(sim);
            Ok(builder)
        }
    }

    fn base_url(text: &str) -> Result<url::Url, Error> {
        url::Url::parse(text)
            .map_err(|e| Error::Provider(imagegen_core::Error::Config(e.to_string())))
    }
}

#[cfg(feature = "simulator")]
pub use simulated::SIMULATED_SPEED;

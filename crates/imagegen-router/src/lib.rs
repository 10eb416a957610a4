//! Credit-cost-aware routing of image requests across providers.
//!
//! `imagegen-router` decides **which provider and model** turns a
//! [`GenerationRequest`](imagegen_core::GenerationRequest) into images, for the fewest
//! credits, and runs it without ever paying twice or passing a budget. It knows providers
//! only through [`imagegen_core::Provider`] (as `Arc<dyn Provider>`), so any provider
//! crate plugs in, and tests use in-memory fakes.
//!
//! What it owns:
//!
//! - [`RoutingPolicy`] ([`policy`]): allowed and denied providers and models, price caps
//!   per image and per request (credits, or dollars), the run budget, the [`Preference`]
//!   (cheapest, an explicit order, or fastest), the user's plan per provider, what a
//!   credit of each provider is worth, and provider-picks-the-model mode ([`SmartSelect`]).
//! - [`MergedCatalog`] ([`catalog`]): every provider's models, fetched at once and cached
//!   for a time-to-live; a provider whose catalog fails is reported, not fatal.
//! - [`Estimate`] and [`Candidate`] ([`candidate`]): every model judged for one request
//!   (shape fit, reference images, quality, plan, calls needed, exact cost in credits and
//!   dollars, caps, budget, cooldowns), each exclusion with its reason, ranked with a
//!   deterministic tie-break. This is what `estimate` and `--dry-run` print.
//! - [`Budget`], [`InMemoryBudget`] and [`Reservation`] ([`budget`]): the worst case is
//!   reserved atomically before anything is sent and settled to the real charge after, so
//!   concurrent requests cannot overshoot (LiteLLM's budgets, which compare recorded
//!   spend, can).
//! - [`Cooldowns`] ([`cooldown`]): a provider or model that keeps failing rests, on the
//!   injected clock.
//! - [`Router`] ([`execute`]): try the best candidate; on a refusal that spent nothing
//!   (out of credits, plan required, model not found, a long rate limit, a server error
//!   before acceptance, a request that never left) move to the next; after a refunded
//!   failure try the next; after anything that *may* have been charged, stop and report
//!   the job instead of submitting elsewhere. Every attempt is recorded in the
//!   [`RoutedOutput`] ([`route`]).
//!
//! # Example
//!
//! Two providers sell the same model; with equal credit worth the cheaper one wins, and a
//! run budget caps the spend.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use imagegen_core::*;
//! use imagegen_router::{Router, RoutingPolicy};
//!
//! /// A provider that answers at once from memory.
//! struct Fake { id: &'static str, price: u32 }
//!
//! #[async_trait]
//! impl Provider for Fake {
//!     fn id(&self) -> ProviderId { ProviderId::new(self.id) }
//!     async fn catalog(&self) -> Result<Vec<ModelEntry>, Error> {
//!         Ok(vec![ModelEntry::new(self.id, "nano-banana-2", Price::flat(Credits::whole(self.price)))])
//!     }
//!     async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error> {
//!         // The plan is resolved: send exactly what it says.
//!         let charged = Credits::whole(self.price).checked_mul(call.images).unwrap_or_default();
//!         Ok(JobHandle::new(self.id, "job-1", call.images, 0).with_credits_charged(charged))
//!     }
//!     async fn wait(&self, job: &JobHandle, _: &dyn ProgressSink) -> Result<JobOutput, Error> {
//!         let url = url::Url::parse("https://cdn.example/1.png").map_err(|e| Error::Config(e.to_string()))?;
//!         Ok(JobOutput::new(job.clone(), vec![ImageRef::new(url, None)]))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let worth = CreditWorth::per_credit("0.01".parse()?);
//! let router = Router::builder(ManualClock::new().shared())
//!     .provider(Arc::new(Fake { id: "kolbo", price: 8 }))
//!     .provider(Arc::new(Fake { id: "koala", price: 5 }))
//!     .policy(
//!         RoutingPolicy::default()
//!             .credit_worth("kolbo", worth)
//!             .credit_worth("koala", worth)
//!             .run_budget(Credits::whole(100)),
//!     )
//!     .build()?;
//!
//! let request = GenerationRequest::builder("a lighthouse at dusk").build()?;
//!
//! // Dry run: the ranked, explained candidates, each with the calls it would send.
//! let estimate = router.estimate(&request).await?;
//! assert_eq!(estimate.best().map(|c| c.provider.as_str()), Some("koala"));
//! println!("{estimate}");
//!
//! // The real thing: the route taken is in the result.
//! let routed = router.generate(&request, &NoProgress).await?;
//! assert_eq!(routed.attempts[0].provider, "koala");
//! assert_eq!(routed.credits_charged, Credits::whole(5));
//! assert_eq!(router.budget().status().remaining, Some(Credits::whole(95)));
//! # Ok(())
//! # }
//! ```

pub mod budget;
pub mod call;
pub mod candidate;
pub mod catalog;
pub mod cooldown;
mod disposition;
pub mod error;
pub mod execute;
pub mod policy;
pub mod route;
mod rules;

pub use budget::{
    Budget, BudgetError, BudgetStatus, InMemoryBudget, Reservation, ReservationId, Settlement,
};
pub use call::{AUTO_MODEL, CallOptions};
pub use candidate::{Candidate, Comparison, Estimate, Exclusion};
pub use catalog::{CatalogFailure, MergedCatalog};
pub use cooldown::{CooldownPolicy, Cooldowns, CoolingDown};
pub use error::RouteError;
pub use execute::{Router, RouterBuilder};
pub use policy::{Preference, PriceCaps, RateLimitPolicy, RoutingPolicy, SmartSelect};
pub use route::{Attempt, AttemptOutcome, JobPlan, NoObserver, RouteObserver, RoutedOutput};

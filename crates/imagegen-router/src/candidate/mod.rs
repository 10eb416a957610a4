//! Candidates: every model of every provider (and each provider's own pick), judged for
//! one request and turned into a resolved plan.
//!
//! | module | owns |
//! |---|---|
//! | [`exclusion`] | [`Exclusion`]: one typed reason a candidate cannot take a request |
//! | `evaluate` | judging one model (or a provider's own pick) and resolving its [`CallPlan`]s |
//! | `rank` | the order eligible candidates are tried in, with a deterministic tie-break |
//! | `estimate` | [`Estimate`]: the ranked candidates of one request, and its one renderer |

pub(crate) mod estimate;
pub(crate) mod evaluate;
pub mod exclusion;
pub(crate) mod rank;

use std::collections::BTreeMap;
use std::time::Duration;

use imagegen_core::{
    CallPlan, Credits, ImageShape, ModelChoice, ModelId, ProviderId, StyleDelivery, Usd,
};
use serde::Serialize;

pub use estimate::{Comparison, Estimate};
pub use exclusion::Exclusion;

use crate::budget::BudgetStatus;
use crate::cooldown::CoolingDown;

/// One provider and model (or the provider's own choice), judged for one request: its
/// resolved plan, its price, and why it ranks where it does or why it is excluded.
///
/// [`Candidate::calls`] are exactly what [`Router::generate`](crate::Router::generate)
/// sends when this candidate is tried: the plan `estimate` shows is the plan sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Candidate {
    /// The provider.
    pub provider: ProviderId,
    /// The model, or `None` when the provider picks (Smart Select).
    pub model: Option<ModelId>,
    /// The model's human name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Position among eligible candidates, from 1.
    pub rank: Option<u32>,
    /// Whether it can take the request.
    pub eligible: bool,
    /// Why it ranks where it does, or why it is excluded.
    pub reason: String,
    /// Every reason it is excluded.
    pub exclusions: Vec<Exclusion>,
    /// Changes to the request it implies (a near snap, a style folded into the prompt),
    /// each said once.
    pub warnings: Vec<String>,
    /// Things worth knowing (an unknown plan, a price that is a cap).
    pub notes: Vec<String>,
    /// The provider's quality name it would run at.
    pub quality: Option<String>,
    /// The resolution tier it would run at.
    pub resolution: Option<String>,
    /// The shape the wire would carry, when one was asked.
    pub shape: Option<ImageShape>,
    /// How the style would be sent, when one was asked.
    pub style: Option<StyleDelivery>,
    /// The provider options it would send.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The calls it would make, fully resolved: what is sent.
    pub calls: Vec<CallPlan>,
    /// Images paid for (more than asked for fixed-output models).
    pub images_billed: u32,
    /// Credits per image.
    pub credits_per_image: Option<Credits>,
    /// Credits for the whole request (worst case for provider's-choice candidates).
    pub total_credits: Option<Credits>,
    /// Dollars per image, when the provider's credit worth is known.
    pub usd_per_image: Option<Usd>,
    /// Dollars for the whole request.
    pub total_usd: Option<Usd>,
    /// Whether the price is a cap (provider's choice) rather than the exact cost.
    pub price_is_cap: bool,
    /// Seconds it usually takes (observed in this run, or the catalog's estimate).
    pub expected_seconds: Option<u64>,
    /// Whether the model can take the request whatever the policy says.
    #[serde(skip)]
    pub(crate) capable: bool,
    /// Images per call at most.
    #[serde(skip)]
    pub(crate) max_per_call: u32,
}

impl Candidate {
    pub(crate) fn new(provider: ProviderId, model: Option<ModelId>) -> Self {
        Self {
            provider,
            model,
            display_name: None,
            rank: None,
            eligible: false,
            reason: String::new(),
            exclusions: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            quality: None,
            resolution: None,
            shape: None,
            style: None,
            options: Vec::new(),
            calls: Vec::new(),
            images_billed: 0,
            credits_per_image: None,
            total_credits: None,
            usd_per_image: None,
            total_usd: None,
            price_is_cap: false,
            expected_seconds: None,
            capable: false,
            max_per_call: 1,
        }
    }

    /// The model choice it submits.
    pub fn choice(&self) -> ModelChoice {
        self.model
            .clone()
            .map_or(ModelChoice::ProviderDefault, ModelChoice::Exact)
    }

    /// `provider/model`, or `provider/auto` when the provider picks.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.choice())
    }

    /// Images per call, in order.
    pub fn images_per_call(&self) -> Vec<u32> {
        self.calls.iter().map(|c| c.images).collect()
    }

    pub(crate) fn exclude(&mut self, exclusion: Exclusion) {
        self.exclusions.push(exclusion);
    }
}

/// What the router knows about this run, for evaluation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunView {
    /// Providers unusable for the rest of the run, with why.
    pub(crate) exhausted: BTreeMap<ProviderId, String>,
    /// Providers that failed earlier in this request, with why.
    pub(crate) failed_this_request: BTreeMap<ProviderId, String>,
    /// Models refused in this run: (provider, model, quality or `None` for all) → why.
    pub(crate) unavailable: BTreeMap<(ProviderId, ModelId, Option<String>), String>,
    /// What is cooling down.
    pub(crate) cooling: Vec<CoolingDown>,
    /// Observed latency per model.
    pub(crate) latency: BTreeMap<(ProviderId, ModelId), Duration>,
    /// What the run budget has left.
    pub(crate) budget: Option<BudgetStatus>,
    /// Credits this request already committed (for the per-request cap on a remainder).
    pub(crate) committed: Credits,
}

impl RunView {
    pub(crate) fn cooling_left(
        &self,
        provider: &ProviderId,
        model: Option<&ModelId>,
    ) -> Option<Duration> {
        self.cooling
            .iter()
            .filter(|c| &c.provider == provider && (c.model.is_none() || c.model.as_ref() == model))
            .map(|c| c.remaining)
            .max()
    }

    pub(crate) fn unavailable_reason(
        &self,
        provider: &ProviderId,
        model: &ModelId,
        quality: Option<&str>,
    ) -> Option<&String> {
        self.unavailable
            .iter()
            .find(|((p, m, q), _)| {
                p == provider && m == model && (q.is_none() || q.as_deref() == quality)
            })
            .map(|(_, why)| why)
    }
}

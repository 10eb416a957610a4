//! What the user allows and prefers: [`RoutingPolicy`].
//!
//! A policy is plain data, built with chained methods from [`RoutingPolicy::default`]
//! (every provider and non-deprecated model allowed, cheapest first, no caps, no budget):
//!
//! ```
//! use std::time::Duration;
//! use imagegen_core::{CreditWorth, Credits, PlanName};
//! use imagegen_router::{Preference, RoutingPolicy};
//!
//! let policy = RoutingPolicy::default()
//!     .deny_provider("kolbo")
//!     .max_credits_per_image(Credits::whole(10))
//!     .run_budget(Credits::whole(200))
//!     .plan("koala", PlanName::new("professional"))
//!     .credit_worth("koala", "$0.0075".parse::<CreditWorth>()?)
//!     .preference(Preference::Cheapest)
//!     .catalog_ttl(Duration::from_secs(600));
//! assert_eq!(policy.run_budget_limit(), Some(Credits::whole(200)));
//! # Ok::<(), imagegen_core::AmountParseError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use imagegen_core::{CreditWorth, Credits, ModelId, PlanName, ProviderId, ProviderProfile, Usd};

use crate::cooldown::CooldownPolicy;

/// How eligible candidates are ordered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Preference {
    /// The lowest total cost first: in dollars when every eligible provider's
    /// [`CreditWorth`] is known, otherwise in credits (and the estimate says so).
    #[default]
    Cheapest,
    /// These providers (and models) first, in this order; `None` as the model means any
    /// model of that provider, cheapest first. Candidates not named follow, cheapest first.
    Order(Vec<(ProviderId, Option<ModelId>)>),
    /// The quickest first: observed latency in this run, else the catalog's typical
    /// seconds; unknown speeds last; ties go to the cheaper.
    Fastest,
}

/// Ceilings on what one request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PriceCaps {
    /// Most credits per image.
    pub per_image: Option<Credits>,
    /// Most credits for the whole request (all calls, all images).
    pub per_request: Option<Credits>,
    /// Most dollars per image (needs the provider's credit worth).
    pub per_image_usd: Option<Usd>,
    /// Most dollars for the whole request (needs the provider's credit worth).
    pub per_request_usd: Option<Usd>,
}

/// Provider-picks-the-model mode (Kolbo's Smart Select) for one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SmartSelect {
    /// Credits per image to reserve, since the model (and so the price) is unknown until
    /// the provider reports it. `None`: the most expensive eligible model of the provider.
    pub reserve_per_image: Option<Credits>,
}

/// How long a rate limit may be waited out on the same candidate before moving on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitPolicy {
    /// The longest `Retry-After` waited out; a longer one moves on to the next candidate.
    pub max_wait: Duration,
    /// The wait when the provider gives no `Retry-After`.
    pub default_wait: Duration,
    /// How many rate limits are waited out per candidate before moving on.
    pub max_retries: u32,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(10),
            default_wait: Duration::from_secs(2),
            max_retries: 2,
        }
    }
}

/// Which models a rule names: one model of any provider, or of one provider.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ModelRule {
    provider: Option<ProviderId>,
    model: ModelId,
}

impl ModelRule {
    fn matches(&self, provider: &ProviderId, model: &ModelId) -> bool {
        self.model == *model && self.provider.as_ref().is_none_or(|p| p == provider)
    }
}

/// Whether the user's plan allows a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanStatus {
    /// The model needs no plan, or the user's plan is enough.
    Satisfied,
    /// The model needs a plan and the user's plan is not configured.
    Unknown(PlanName),
    /// The user's plan is not enough.
    Insufficient { required: PlanName, have: PlanName },
}

/// What the user allows and prefers when a request is routed; see the [module](self) docs.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPolicy {
    allowed_providers: Option<BTreeSet<ProviderId>>,
    denied_providers: BTreeSet<ProviderId>,
    allowed_models: Vec<ModelRule>,
    denied_models: Vec<ModelRule>,
    allow_deprecated: bool,
    allow_reshape: bool,
    caps: PriceCaps,
    run_budget: Option<Credits>,
    preference: Preference,
    plans: BTreeMap<ProviderId, PlanName>,
    plan_tiers: BTreeMap<ProviderId, Vec<PlanName>>,
    credit_worth: BTreeMap<ProviderId, CreditWorth>,
    smart_select: BTreeMap<ProviderId, SmartSelect>,
    cooldown: CooldownPolicy,
    rate_limit: RateLimitPolicy,
    catalog_ttl: Duration,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        Self {
            allowed_providers: None,
            denied_providers: BTreeSet::new(),
            allowed_models: Vec::new(),
            denied_models: Vec::new(),
            allow_deprecated: false,
            allow_reshape: false,
            caps: PriceCaps::default(),
            run_budget: None,
            preference: Preference::Cheapest,
            plans: BTreeMap::new(),
            plan_tiers: BTreeMap::new(),
            credit_worth: BTreeMap::new(),
            smart_select: BTreeMap::new(),
            cooldown: CooldownPolicy::default(),
            rate_limit: RateLimitPolicy::default(),
            catalog_ttl: Duration::from_secs(15 * 60),
        }
    }
}

impl RoutingPolicy {
    /// Allows `provider`; once any provider is allowed, only allowed ones are used.
    #[must_use]
    pub fn allow_provider(mut self, provider: impl Into<ProviderId>) -> Self {
        self.allowed_providers
            .get_or_insert_with(BTreeSet::new)
            .insert(provider.into());
        self
    }

    /// Never uses `provider`.
    #[must_use]
    pub fn deny_provider(mut self, provider: impl Into<ProviderId>) -> Self {
        self.denied_providers.insert(provider.into());
        self
    }

    /// Allows `model` at any provider; once any model is allowed, only allowed ones are
    /// used. A model allowed by name may be deprecated.
    #[must_use]
    pub fn allow_model(mut self, model: impl Into<ModelId>) -> Self {
        self.allowed_models.push(ModelRule {
            provider: None,
            model: model.into(),
        });
        self
    }

    /// Allows `model` at `provider` only (see [`RoutingPolicy::allow_model`]).
    #[must_use]
    pub fn allow_provider_model(
        mut self,
        provider: impl Into<ProviderId>,
        model: impl Into<ModelId>,
    ) -> Self {
        self.allowed_models.push(ModelRule {
            provider: Some(provider.into()),
            model: model.into(),
        });
        self
    }

    /// Never uses `model`, at any provider.
    #[must_use]
    pub fn deny_model(mut self, model: impl Into<ModelId>) -> Self {
        self.denied_models.push(ModelRule {
            provider: None,
            model: model.into(),
        });
        self
    }

    /// Never uses `model` at `provider`.
    #[must_use]
    pub fn deny_provider_model(
        mut self,
        provider: impl Into<ProviderId>,
        model: impl Into<ModelId>,
    ) -> Self {
        self.denied_models.push(ModelRule {
            provider: Some(provider.into()),
            model: model.into(),
        });
        self
    }

    /// Lets the router pick deprecated models without naming them (off by default).
    #[must_use]
    pub fn allow_deprecated(mut self, allow: bool) -> Self {
        self.allow_deprecated = allow;
        self
    }

    /// Excludes candidates whose image costs more than `cap` credits.
    #[must_use]
    pub fn max_credits_per_image(mut self, cap: Credits) -> Self {
        self.caps.per_image = Some(cap);
        self
    }

    /// Excludes candidates whose whole request costs more than `cap` credits.
    #[must_use]
    pub fn max_credits_per_request(mut self, cap: Credits) -> Self {
        self.caps.per_request = Some(cap);
        self
    }

    /// Excludes candidates whose image costs more than `cap` dollars; a provider whose
    /// credit worth is unknown cannot be checked, so it is excluded too.
    #[must_use]
    pub fn max_usd_per_image(mut self, cap: Usd) -> Self {
        self.caps.per_image_usd = Some(cap);
        self
    }

    /// Excludes candidates whose whole request costs more than `cap` dollars (see
    /// [`RoutingPolicy::max_usd_per_image`]).
    #[must_use]
    pub fn max_usd_per_request(mut self, cap: Usd) -> Self {
        self.caps.per_request_usd = Some(cap);
        self
    }

    /// The most credits the router may spend in this run, across every provider and
    /// request. Used when the router is built without an explicit [`crate::Budget`].
    #[must_use]
    pub fn run_budget(mut self, limit: Credits) -> Self {
        self.run_budget = Some(limit);
        self
    }

    /// How candidates are ordered.
    #[must_use]
    pub fn preference(mut self, preference: Preference) -> Self {
        self.preference = preference;
        self
    }

    /// The user's plan at `provider`. Without it, plan-gated models stay eligible (with a
    /// note) and a plan refusal marks them unavailable for the rest of the run.
    #[must_use]
    pub fn plan(mut self, provider: impl Into<ProviderId>, plan: impl Into<PlanName>) -> Self {
        self.plans.insert(provider.into(), plan.into());
        self
    }

    /// The plans of `provider`, lowest first, so a higher plan satisfies a lower
    /// requirement (`["basic", "professional"]`). Without tiers a plan satisfies only a
    /// requirement of the same name.
    #[must_use]
    pub fn plan_tiers<P: Into<PlanName>>(
        mut self,
        provider: impl Into<ProviderId>,
        tiers: impl IntoIterator<Item = P>,
    ) -> Self {
        self.plan_tiers
            .insert(provider.into(), tiers.into_iter().map(Into::into).collect());
        self
    }

    /// What one credit of `provider` is worth. Without it the provider is compared in
    /// credits, and the estimate says so.
    #[must_use]
    pub fn credit_worth(mut self, provider: impl Into<ProviderId>, worth: CreditWorth) -> Self {
        self.credit_worth.insert(provider.into(), worth);
        self
    }

    /// Offers `provider`'s own model choice (Kolbo's Smart Select) as a candidate.
    #[must_use]
    pub fn smart_select(mut self, provider: impl Into<ProviderId>, config: SmartSelect) -> Self {
        self.smart_select.insert(provider.into(), config);
        self
    }

    /// When providers and models cool down after failures.
    #[must_use]
    pub fn cooldown(mut self, cooldown: CooldownPolicy) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How rate limits are waited out.
    #[must_use]
    pub fn rate_limit(mut self, rate_limit: RateLimitPolicy) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// How long a fetched catalog is reused (default 15 minutes).
    #[must_use]
    pub fn catalog_ttl(mut self, ttl: Duration) -> Self {
        self.catalog_ttl = ttl;
        self
    }

    /// Allows models whose nearest shape is far from the one asked (the aspect ratio
    /// changes by more than [`NEAR_SHAPE_TOLERANCE`](imagegen_core::NEAR_SHAPE_TOLERANCE));
    /// by default they are excluded, and naming one is an error before anything is sent.
    #[must_use]
    pub fn allow_reshape(mut self, allow: bool) -> Self {
        self.allow_reshape = allow;
        self
    }

    /// Whether far reshaping is allowed.
    pub fn reshape_allowed(&self) -> bool {
        self.allow_reshape
    }

    /// Fills in what `profile` knows of `provider` (plan, plan tiers, credit worth) where
    /// the policy says nothing: the policy's own settings win.
    #[must_use]
    pub fn with_profile(mut self, provider: &ProviderId, profile: &ProviderProfile) -> Self {
        if let Some(plan) = &profile.plan {
            self.plans
                .entry(provider.clone())
                .or_insert_with(|| plan.clone());
        }
        if !profile.plan_tiers.is_empty() {
            self.plan_tiers
                .entry(provider.clone())
                .or_insert_with(|| profile.plan_tiers.clone());
        }
        if let Some(worth) = profile.credit_worth {
            self.credit_worth.entry(provider.clone()).or_insert(worth);
        }
        self
    }

    /// The run budget, if any.
    pub fn run_budget_limit(&self) -> Option<Credits> {
        self.run_budget
    }

    /// The price caps.
    pub fn caps(&self) -> PriceCaps {
        self.caps
    }

    /// The preference.
    pub fn current_preference(&self) -> &Preference {
        &self.preference
    }

    /// The configured credit worth of `provider`.
    pub fn worth_of(&self, provider: &ProviderId) -> Option<CreditWorth> {
        self.credit_worth.get(provider).copied()
    }

    /// The configured plan at `provider`.
    pub fn plan_of(&self, provider: &ProviderId) -> Option<&PlanName> {
        self.plans.get(provider)
    }

    /// The Smart Select configuration of `provider`, when enabled.
    pub fn smart_select_of(&self, provider: &ProviderId) -> Option<SmartSelect> {
        self.smart_select.get(provider).copied()
    }

    /// The cooldown settings.
    pub fn cooldown_policy(&self) -> CooldownPolicy {
        self.cooldown
    }

    /// The rate-limit settings.
    pub fn rate_limit_policy(&self) -> RateLimitPolicy {
        self.rate_limit
    }

    /// How long a catalog is reused.
    pub fn catalog_time_to_live(&self) -> Duration {
        self.catalog_ttl
    }

    /// Why `provider` may not be used, if it may not.
    pub(crate) fn provider_refusal(&self, provider: &ProviderId) -> Option<&'static str> {
        if self.denied_providers.contains(provider) {
            Some("denied")
        } else if self
            .allowed_providers
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(provider))
        {
            Some("not allowed")
        } else {
            None
        }
    }

    /// Why `model` at `provider` may not be used, if it may not.
    pub(crate) fn model_refusal(
        &self,
        provider: &ProviderId,
        model: &ModelId,
    ) -> Option<&'static str> {
        if self
            .denied_models
            .iter()
            .any(|r| r.matches(provider, model))
        {
            Some("denied")
        } else if !self.allowed_models.is_empty()
            && !self
                .allowed_models
                .iter()
                .any(|r| r.matches(provider, model))
        {
            Some("not allowed")
        } else {
            None
        }
    }

    /// Whether the user named this model (an allow rule or an explicit order entry),
    /// which lets a deprecated model through.
    pub(crate) fn names_model(&self, provider: &ProviderId, model: &ModelId) -> bool {
        self.allowed_models
            .iter()
            .any(|r| r.matches(provider, model))
            || matches!(&self.preference, Preference::Order(order)
                if order.iter().any(|(p, m)| p == provider && m.as_ref() == Some(model)))
    }

    /// The models the user restricted routing to, as `provider/model` or `model`.
    pub fn allowed_model_names(&self) -> Vec<String> {
        self.allowed_models
            .iter()
            .map(|r| match &r.provider {
                Some(p) => format!("{p}/{}", r.model),
                None => r.model.to_string(),
            })
            .collect()
    }

    /// Whether deprecated models may be picked without being named.
    pub(crate) fn deprecated_allowed(&self) -> bool {
        self.allow_deprecated
    }

    /// Whether the user's plan at `provider` allows a model needing `required`.
    pub(crate) fn plan_status(
        &self,
        provider: &ProviderId,
        required: Option<&PlanName>,
    ) -> PlanStatus {
        let Some(required) = required else {
            return PlanStatus::Satisfied;
        };
        let Some(have) = self.plans.get(provider) else {
            return PlanStatus::Unknown(required.clone());
        };
        if have == required {
            return PlanStatus::Satisfied;
        }
        let rank = |plan: &PlanName| {
            self.plan_tiers
                .get(provider)
                .and_then(|tiers| tiers.iter().position(|t| t == plan))
        };
        match (rank(have), rank(required)) {
            (Some(h), Some(r)) if h >= r => PlanStatus::Satisfied,
            _ => PlanStatus::Insufficient {
                required: required.clone(),
                have: have.clone(),
            },
        }
    }

    /// The position of a candidate in an explicit order, if the preference is one and the
    /// candidate is named in it.
    pub(crate) fn order_position(
        &self,
        provider: &ProviderId,
        model: Option<&ModelId>,
    ) -> Option<usize> {
        let Preference::Order(order) = &self.preference else {
            return None;
        };
        order.iter().position(|(p, m)| {
            p == provider
                && match (m, model) {
                    (None, _) => true,
                    (Some(want), Some(have)) => want == have,
                    (Some(_), None) => false,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_and_deny_rules() {
        let policy = RoutingPolicy::default()
            .allow_provider("koala")
            .deny_provider_model("koala", "standard");
        let koala = ProviderId::new("koala");
        let kolbo = ProviderId::new("kolbo");
        assert_eq!(policy.provider_refusal(&koala), None);
        assert_eq!(policy.provider_refusal(&kolbo), Some("not allowed"));
        assert_eq!(
            policy.model_refusal(&koala, &"standard".into()),
            Some("denied")
        );
        assert_eq!(policy.model_refusal(&kolbo, &"standard".into()), None);
        let only = RoutingPolicy::default().allow_model("nano-banana-2");
        assert_eq!(
            only.model_refusal(&koala, &"gpt-image-2".into()),
            Some("not allowed")
        );
        assert!(only.names_model(&kolbo, &"nano-banana-2".into()));
    }

    #[test]
    fn plans_compare_by_tier_when_known() {
        let koala = ProviderId::new("koala");
        let pro = PlanName::new("professional");
        let basic = PlanName::new("basic");
        let unknown = RoutingPolicy::default();
        assert_eq!(unknown.plan_status(&koala, None), PlanStatus::Satisfied);
        assert_eq!(
            unknown.plan_status(&koala, Some(&pro)),
            PlanStatus::Unknown(pro.clone())
        );
        let basic_user = RoutingPolicy::default().plan("koala", "basic");
        assert!(matches!(
            basic_user.plan_status(&koala, Some(&pro)),
            PlanStatus::Insufficient { .. }
        ));
        let pro_user = RoutingPolicy::default()
            .plan("koala", "Professional")
            .plan_tiers("koala", ["basic", "professional"]);
        assert_eq!(
            pro_user.plan_status(&koala, Some(&pro)),
            PlanStatus::Satisfied
        );
        assert_eq!(
            pro_user.plan_status(&koala, Some(&basic)),
            PlanStatus::Satisfied
        );
    }

    #[test]
    fn order_positions() {
        let policy = RoutingPolicy::default().preference(Preference::Order(vec![
            ("kolbo".into(), Some("nano-banana-2".into())),
            ("koala".into(), None),
        ]));
        assert_eq!(
            policy.order_position(&"kolbo".into(), Some(&"nano-banana-2".into())),
            Some(0)
        );
        assert_eq!(
            policy.order_position(&"kolbo".into(), Some(&"other".into())),
            None
        );
        assert_eq!(policy.order_position(&"kolbo".into(), None), None);
        assert_eq!(
            policy.order_position(&"koala".into(), Some(&"x".into())),
            Some(1)
        );
    }
}

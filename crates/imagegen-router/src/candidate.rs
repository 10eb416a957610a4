//! Candidate evaluation: every model of every provider, judged for one request, with a
//! reason for every exclusion and a ranked order. An [`Estimate`] is what `estimate` and
//! `--dry-run` print.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use imagegen_core::{
    Capabilities, Credits, GenerationRequest, ImageShape, ModelChoice, ModelEntry, ModelId,
    PlanName, ProviderId, ShapeFit, Usd,
};
use serde::Serialize;

use crate::budget::BudgetStatus;
use crate::catalog::{CatalogFailure, MergedCatalog};
use crate::cooldown::CoolingDown;
use crate::policy::{PlanStatus, Preference, RoutingPolicy, SmartSelect};

/// Why a candidate cannot take the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Exclusion {
    /// The policy denies or does not allow the provider.
    ProviderNotAllowed {
        /// `denied` or `not allowed`.
        why: String,
    },
    /// The policy denies or does not allow the model.
    ModelNotAllowed {
        /// `denied` or `not allowed`.
        why: String,
    },
    /// The model is deprecated and was not named.
    Deprecated,
    /// The model does not make the requested shape.
    ShapeUnsupported {
        /// What was asked.
        requested: String,
        /// What it makes.
        accepted: Vec<String>,
    },
    /// More reference images than the model takes.
    TooManyReferenceImages {
        /// How many were given.
        given: usize,
        /// How many it takes.
        max: u32,
    },
    /// The model has no such quality.
    QualityUnavailable {
        /// What was asked.
        wanted: String,
        /// What it offers (empty: it has no quality setting).
        offered: Vec<String>,
    },
    /// The user's plan is not enough.
    PlanInsufficient {
        /// The plan needed.
        required: PlanName,
        /// The user's plan.
        have: PlanName,
    },
    /// Refused earlier in this run (plan required, model not found).
    UnavailableThisRun {
        /// What the provider said.
        reason: String,
    },
    /// The provider cannot be used for the rest of the run (out of credits, bad key).
    ProviderExhausted {
        /// What the provider said.
        reason: String,
    },
    /// The provider or model failed repeatedly and is resting.
    CoolingDown {
        /// Seconds left, rounded up.
        remaining_secs: u64,
    },
    /// The price could not be computed.
    PriceUnknown {
        /// Why.
        detail: String,
    },
    /// One image costs more than the per-image cap.
    OverImageCap {
        /// Credits per image.
        price: Credits,
        /// The cap.
        cap: Credits,
    },
    /// The request costs more than the per-request cap.
    OverRequestCap {
        /// Credits for the request (with what this request already spent).
        total: Credits,
        /// The cap.
        cap: Credits,
    },
    /// One image costs more dollars than the per-image cap.
    OverImageUsdCap {
        /// Dollars per image.
        price: Usd,
        /// The cap.
        cap: Usd,
    },
    /// The request costs more dollars than the per-request cap.
    OverRequestUsdCap {
        /// Dollars for the request.
        total: Usd,
        /// The cap.
        cap: Usd,
    },
    /// A dollar cap is set but the provider's credit worth is unknown.
    UsdCapUnverifiable,
    /// The run budget cannot cover the worst case.
    OverBudget {
        /// Worst-case credits.
        needed: Credits,
        /// Credits left.
        remaining: Credits,
    },
    /// Provider-picks-the-model mode, but none of the provider's models can take the
    /// request and no reserve cap is configured.
    NoModelForSmartSelect,
}

impl Exclusion {
    /// Whether it is a price cap (the request would fit with a higher cap).
    pub fn is_price_cap(&self) -> bool {
        matches!(
            self,
            Self::OverImageCap { .. }
                | Self::OverRequestCap { .. }
                | Self::OverImageUsdCap { .. }
                | Self::OverRequestUsdCap { .. }
                | Self::UsdCapUnverifiable
        )
    }

    /// Whether the model cannot do what is asked (shape, references, quality, plan).
    pub fn is_capability(&self) -> bool {
        matches!(
            self,
            Self::ShapeUnsupported { .. }
                | Self::TooManyReferenceImages { .. }
                | Self::QualityUnavailable { .. }
                | Self::PlanInsufficient { .. }
                | Self::PriceUnknown { .. }
        )
    }

    /// Whether it is the run budget.
    pub fn is_budget(&self) -> bool {
        matches!(self, Self::OverBudget { .. })
    }
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProviderNotAllowed { why } => write!(f, "provider {why} by the policy"),
            Self::ModelNotAllowed { why } => write!(f, "model {why} by the policy"),
            Self::Deprecated => {
                f.write_str("deprecated (name it or allow deprecated models to use it)")
            }
            Self::ShapeUnsupported {
                requested,
                accepted,
            } => write!(
                f,
                "does not make {requested} (accepts {})",
                accepted.join(", ")
            ),
            Self::TooManyReferenceImages { given, max } => {
                write!(f, "takes at most {max} reference images, {given} given")
            }
            Self::QualityUnavailable { wanted, offered } if offered.is_empty() => {
                write!(f, "has no quality setting, `{wanted}` asked")
            }
            Self::QualityUnavailable { wanted, offered } => {
                write!(f, "no quality `{wanted}` (offers {})", offered.join(", "))
            }
            Self::PlanInsufficient { required, have } => {
                write!(f, "needs the {required} plan (yours: {have})")
            }
            Self::UnavailableThisRun { reason } => {
                write!(f, "refused earlier in this run: {reason}")
            }
            Self::ProviderExhausted { reason } => {
                write!(f, "provider unusable for the rest of the run: {reason}")
            }
            Self::CoolingDown { remaining_secs } => {
                write!(
                    f,
                    "cooling down after repeated failures ({remaining_secs}s left)"
                )
            }
            Self::PriceUnknown { detail } => write!(f, "price unknown: {detail}"),
            Self::OverImageCap { price, cap } => {
                write!(f, "{price} credits per image is over the cap of {cap}")
            }
            Self::OverRequestCap { total, cap } => {
                write!(
                    f,
                    "{total} credits for the request is over the cap of {cap}"
                )
            }
            Self::OverImageUsdCap { price, cap } => {
                write!(f, "${price} per image is over the cap of ${cap}")
            }
            Self::OverRequestUsdCap { total, cap } => {
                write!(f, "${total} for the request is over the cap of ${cap}")
            }
            Self::UsdCapUnverifiable => f.write_str(
                "a dollar cap is set but this provider's credit worth is unknown (configure it)",
            ),
            Self::OverBudget { needed, remaining } => write!(
                f,
                "needs up to {needed} credits, the run budget has {remaining} left"
            ),
            Self::NoModelForSmartSelect => f.write_str(
                "the provider would pick the model, but none of its models can take the request",
            ),
        }
    }
}

/// The unit candidates were compared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Dollars: every eligible provider's credit worth is known.
    Usd,
    /// Credits: some credit worth is unknown, so credits of different providers were
    /// compared as if equal.
    Credits,
}

/// One provider and model (or the provider's own choice), judged for one request.
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
    /// Changes to the request it implies (a snapped shape, an ignored style).
    pub warnings: Vec<String>,
    /// Things worth knowing (an unknown plan, a price that is a cap).
    pub notes: Vec<String>,
    /// The quality it would run at.
    pub quality: Option<String>,
    /// The shape it would produce, when one was asked.
    pub shape: Option<ImageShape>,
    /// Images per call; more than one call when the model's per-call maximum is lower
    /// than the request.
    pub calls: Vec<u32>,
    /// Images paid for (more than asked for fixed-output models).
    pub images_billed: u32,
    /// Credits per image.
    pub credits_per_image: Option<Credits>,
    /// Worst-case credits for the request: what is reserved before submitting.
    pub total_credits: Option<Credits>,
    /// Dollars per image, when the provider's credit worth is known.
    pub usd_per_image: Option<Usd>,
    /// Dollars for the request, when the provider's credit worth is known.
    pub total_usd: Option<Usd>,
    /// The price is a reserved cap, not a known price (the provider picks the model).
    pub price_is_cap: bool,
    /// Expected seconds to finish: observed in this run, else the catalog's typical time.
    pub expected_seconds: Option<u64>,
    #[serde(skip)]
    capable: bool,
    #[serde(skip)]
    max_per_call: u32,
}

impl Candidate {
    fn new(provider: ProviderId, model: Option<ModelId>) -> Self {
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
            shape: None,
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

    /// The model choice to submit.
    pub fn choice(&self) -> ModelChoice {
        self.model
            .clone()
            .map_or(ModelChoice::ProviderDefault, ModelChoice::Exact)
    }

    /// `provider/model`, or `provider/(provider's choice)`.
    pub fn label(&self) -> String {
        match &self.model {
            Some(m) => format!("{}/{m}", self.provider),
            None => format!("{}/(provider's choice)", self.provider),
        }
    }

    fn exclude(&mut self, exclusion: Exclusion) {
        self.exclusions.push(exclusion);
    }
}

/// What the router knows about this run, for evaluation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunView {
    /// Providers unusable for the rest of the run, with why.
    pub(crate) exhausted: BTreeMap<ProviderId, String>,
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
    fn cooling_left(&self, provider: &ProviderId, model: Option<&ModelId>) -> Option<Duration> {
        self.cooling
            .iter()
            .filter(|c| &c.provider == provider && (c.model.is_none() || c.model.as_ref() == model))
            .map(|c| c.remaining)
            .max()
    }

    fn unavailable_reason(
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

/// Images per call and images billed for `count` images on a model.
fn split_calls(count: u32, caps: &Capabilities) -> (Vec<u32>, u32, Option<String>) {
    if let Some(fixed) = caps.fixed_images_per_request.filter(|f| *f > 0) {
        let calls = count.div_ceil(fixed);
        let billed = fixed.saturating_mul(calls);
        let warning = (billed != count).then(|| {
            format!(
                "makes {fixed} images per call: {billed} images are made and paid for {count} asked"
            )
        });
        return (vec![fixed; calls as usize], billed, warning);
    }
    let max = caps.max_images_per_request.max(1);
    let mut calls = vec![max; (count / max) as usize];
    if !count.is_multiple_of(max) {
        calls.push(count % max);
    }
    (calls, count, None)
}

/// Judges one catalog model for `request`.
pub(crate) fn evaluate_model(
    entry: &ModelEntry,
    request: &GenerationRequest,
    policy: &RoutingPolicy,
    view: &RunView,
) -> Candidate {
    let provider = &entry.provider;
    let mut c = Candidate::new(provider.clone(), Some(entry.id.clone()));
    c.display_name = entry.display_name.clone();
    c.max_per_call = entry.capabilities.max_images_per_request.max(1);
    let caps = &entry.capabilities;

    // The policy.
    if let Some(why) = policy.provider_refusal(provider) {
        c.exclude(Exclusion::ProviderNotAllowed { why: why.into() });
    }
    if let Some(why) = policy.model_refusal(provider, &entry.id) {
        c.exclude(Exclusion::ModelNotAllowed { why: why.into() });
    }
    if entry.deprecated {
        if policy.deprecated_allowed() || policy.names_model(provider, &entry.id) {
            c.warnings.push("deprecated by the provider".into());
        } else {
            c.exclude(Exclusion::Deprecated);
        }
    }

    // What it can do.
    if let Some(requested) = request.shape() {
        match caps.shapes.fit(requested) {
            ShapeFit::Exact(shape) => c.shape = Some(shape),
            ShapeFit::Snapped { requested, actual } => {
                c.shape = Some(actual);
                c.warnings
                    .push(format!("shape {requested} is snapped to {actual}"));
            }
            ShapeFit::Unsupported {
                requested,
                accepted,
            } => c.exclude(Exclusion::ShapeUnsupported {
                requested: requested.to_string(),
                accepted,
            }),
            other => c.exclude(Exclusion::ShapeUnsupported {
                requested: requested.to_string(),
                accepted: vec![format!("{other:?}")],
            }),
        }
    }
    let refs = request.reference_images().len();
    if refs > caps.max_reference_images as usize {
        c.exclude(Exclusion::TooManyReferenceImages {
            given: refs,
            max: caps.max_reference_images,
        });
    }
    let quality = match caps.select_quality(request.quality()) {
        Ok(q) => q,
        Err(offered) => {
            // A quality the model does not have, even a tier on a model without any
            // quality setting, is refused by the providers before sending: exclude it
            // here rather than spend an attempt finding out.
            c.exclude(Exclusion::QualityUnavailable {
                wanted: request
                    .quality()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                offered,
            });
            None
        }
    };
    c.quality = quality.map(|q| q.name.clone());
    if let Some(style) = request.style()
        && !caps.supports_style
    {
        c.warnings.push(format!(
            "style `{style}` is ignored: the model takes no style"
        ));
    }
    match policy.plan_status(provider, entry.required_plan(quality)) {
        PlanStatus::Satisfied => {}
        PlanStatus::Unknown(required) => c.notes.push(format!(
            "needs the {required} plan and yours at {provider} is not configured: tried, and a plan refusal moves on"
        )),
        PlanStatus::Insufficient { required, have } => {
            c.exclude(Exclusion::PlanInsufficient { required, have });
        }
    }

    // What this run has learned.
    if let Some(reason) = view.exhausted.get(provider) {
        c.exclude(Exclusion::ProviderExhausted {
            reason: reason.clone(),
        });
    }
    if let Some(reason) = view.unavailable_reason(provider, &entry.id, c.quality.as_deref()) {
        c.exclude(Exclusion::UnavailableThisRun {
            reason: reason.clone(),
        });
    }
    if let Some(left) = view.cooling_left(provider, Some(&entry.id)) {
        c.exclude(Exclusion::CoolingDown {
            remaining_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        });
    }
    // Whether the model can take the request at all, whatever the policy says: the
    // basis of a provider's-choice reservation, since the provider may pick it anyway.
    c.capable = !c.exclusions.iter().any(Exclusion::is_capability);

    // How many calls, and what it costs.
    let (calls, billed, warning) = split_calls(request.count(), caps);
    if calls.len() > 1 {
        c.notes.push(format!(
            "split into {} calls ({}) because the model makes at most {} per call",
            calls.len(),
            calls
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" + "),
            c.max_per_call
        ));
    }
    c.warnings.extend(warning);
    c.calls = calls;
    c.images_billed = billed;
    match entry.price.per_image(quality, None) {
        Ok(per_image) => price(&mut c, per_image, policy, view),
        Err(e) => c.exclude(Exclusion::PriceUnknown {
            detail: e.to_string(),
        }),
    }

    c.expected_seconds = view
        .latency
        .get(&(provider.clone(), entry.id.clone()))
        .map(|d| d.as_secs())
        .or(entry.typical_seconds.map(u64::from));
    c.eligible = c.exclusions.is_empty();
    c
}

/// Fills in the costs of a candidate priced at `per_image`, and checks caps and budget.
fn price(c: &mut Candidate, per_image: Credits, policy: &RoutingPolicy, view: &RunView) {
    let Some(total) = per_image.checked_mul(c.images_billed) else {
        c.exclude(Exclusion::PriceUnknown {
            detail: "the total overflows".into(),
        });
        return;
    };
    c.credits_per_image = Some(per_image);
    c.total_credits = Some(total);
    let worth = policy.worth_of(&c.provider);
    c.usd_per_image = worth.and_then(|w| w.to_usd(per_image));
    c.total_usd = worth.and_then(|w| w.to_usd(total));
    if worth.is_none() {
        c.notes.push(format!(
            "the worth of a {} credit is unknown: compared in credits",
            c.provider
        ));
    }
    let caps = policy.caps();
    if let Some(cap) = caps.per_image
        && per_image > cap
    {
        c.exclude(Exclusion::OverImageCap {
            price: per_image,
            cap,
        });
    }
    if let Some(cap) = caps.per_request {
        let with_committed = view.committed.checked_add(total).unwrap_or(total);
        if with_committed > cap {
            c.exclude(Exclusion::OverRequestCap {
                total: with_committed,
                cap,
            });
        }
    }
    if caps.per_image_usd.is_some() || caps.per_request_usd.is_some() {
        match (c.usd_per_image, c.total_usd) {
            (Some(usd_image), Some(usd_total)) => {
                if let Some(cap) = caps.per_image_usd
                    && usd_image > cap
                {
                    c.exclude(Exclusion::OverImageUsdCap {
                        price: usd_image,
                        cap,
                    });
                }
                let committed_usd = worth
                    .and_then(|w| w.to_usd(view.committed))
                    .unwrap_or_default();
                let usd_total = committed_usd.checked_add(usd_total).unwrap_or(usd_total);
                if let Some(cap) = caps.per_request_usd
                    && usd_total > cap
                {
                    c.exclude(Exclusion::OverRequestUsdCap {
                        total: usd_total,
                        cap,
                    });
                }
            }
            _ => c.exclude(Exclusion::UsdCapUnverifiable),
        }
    }
    if let Some(remaining) = view.budget.and_then(|b| b.remaining)
        && total > remaining
    {
        c.exclude(Exclusion::OverBudget {
            needed: total,
            remaining,
        });
    }
}

/// Judges provider-picks-the-model mode for `provider`, given its judged models.
pub(crate) fn evaluate_smart_select(
    provider: &ProviderId,
    config: SmartSelect,
    models: &[Candidate],
    request: &GenerationRequest,
    policy: &RoutingPolicy,
    view: &RunView,
) -> Candidate {
    let mut c = Candidate::new(provider.clone(), None);
    c.display_name = Some("provider's choice".into());
    c.price_is_cap = true;
    if let Some(why) = policy.provider_refusal(provider) {
        c.exclude(Exclusion::ProviderNotAllowed { why: why.into() });
    }
    if let Some(reason) = view.exhausted.get(provider) {
        c.exclude(Exclusion::ProviderExhausted {
            reason: reason.clone(),
        });
    }
    if let Some(left) = view.cooling_left(provider, None) {
        c.exclude(Exclusion::CoolingDown {
            remaining_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        });
    }
    let capable: Vec<&Candidate> = models.iter().filter(|m| m.capable).collect();
    // The provider may pick any model that takes the request: split by the smallest
    // per-call maximum among them, and reserve the dearest price.
    c.max_per_call = capable.iter().map(|m| m.max_per_call).min().unwrap_or(1);
    let count = request.count();
    let mut calls = vec![c.max_per_call; (count / c.max_per_call) as usize];
    if !count.is_multiple_of(c.max_per_call) {
        calls.push(count % c.max_per_call);
    }
    c.calls = calls;
    c.images_billed = count;
    c.shape = request.shape();
    let dearest = capable.iter().filter_map(|m| m.credits_per_image).max();
    let reserve = match (config.reserve_per_image, dearest) {
        (Some(cap), _) => {
            c.notes.push(format!(
                "the provider picks the model: {cap} credits per image are reserved (configured cap); the charge is what it reports"
            ));
            Some(cap)
        }
        (None, Some(dearest)) => {
            c.notes.push(format!(
                "the provider picks the model: {dearest} credits per image are reserved (its dearest eligible model); the charge is what it reports"
            ));
            Some(dearest)
        }
        (None, None) => {
            c.exclude(Exclusion::NoModelForSmartSelect);
            None
        }
    };
    c.capable = c.exclusions.is_empty();
    if let Some(per_image) = reserve {
        price(&mut c, per_image, policy, view);
    }
    c.eligible = c.exclusions.is_empty();
    c
}

/// Ranks candidates in place: eligible first in preference order, with a deterministic
/// tie-break (cost, provider order, exact models before provider's choice, model id),
/// then excluded ones by provider order and model id. Returns the unit compared in.
pub(crate) fn rank(
    candidates: &mut [Candidate],
    policy: &RoutingPolicy,
    provider_order: &[ProviderId],
) -> Comparison {
    let comparison = if candidates
        .iter()
        .filter(|c| c.eligible)
        .all(|c| c.total_usd.is_some())
    {
        Comparison::Usd
    } else {
        Comparison::Credits
    };
    let cost = |c: &Candidate| -> u64 {
        match comparison {
            Comparison::Usd => c.total_usd.map_or(u64::MAX, Usd::micros),
            Comparison::Credits => c.total_credits.map_or(u64::MAX, Credits::micros),
        }
    };
    let preference = policy.current_preference();
    let preferred = |c: &Candidate| -> u64 {
        match preference {
            Preference::Order(_) => policy
                .order_position(&c.provider, c.model.as_ref())
                .map_or(u64::MAX, |p| p as u64),
            Preference::Fastest => c.expected_seconds.unwrap_or(u64::MAX),
            _ => 0,
        }
    };
    let provider_index = |c: &Candidate| {
        provider_order
            .iter()
            .position(|p| *p == c.provider)
            .unwrap_or(usize::MAX)
    };
    candidates.sort_by(|a, b| {
        b.eligible
            .cmp(&a.eligible)
            .then_with(|| {
                if a.eligible {
                    preferred(a)
                        .cmp(&preferred(b))
                        .then_with(|| cost(a).cmp(&cost(b)))
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| provider_index(a).cmp(&provider_index(b)))
            .then_with(|| a.model.is_none().cmp(&b.model.is_none()))
            .then_with(|| a.model.cmp(&b.model))
    });
    let unit = match comparison {
        Comparison::Usd => "dollars",
        Comparison::Credits => "credits",
    };
    let mut position = 0u32;
    for c in candidates.iter_mut() {
        if c.eligible {
            position += 1;
            c.rank = Some(position);
            let price = match (comparison, c.total_usd, c.total_credits) {
                (Comparison::Usd, Some(usd), Some(credits)) => {
                    format!("${usd} ({})", credits.with_unit())
                }
                (_, _, Some(credits)) => credits.with_unit().to_string(),
                _ => "price unknown".into(),
            };
            let why = match preference {
                Preference::Order(_) => {
                    match policy.order_position(&c.provider, c.model.as_ref()) {
                        Some(p) => format!("#{} in the preferred order", p + 1),
                        None => "not in the preferred order".into(),
                    }
                }
                Preference::Fastest => match c.expected_seconds {
                    Some(s) => format!("about {s}s"),
                    None => "speed unknown".into(),
                },
                _ => format!("compared in {unit}"),
            };
            c.reason = format!("rank {position}: {price}, {why}");
        } else {
            c.rank = None;
            c.reason = c
                .exclusions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    comparison
}

/// The ranked, explained candidates for one request: what `estimate` and `--dry-run`
/// print. `Display` gives a compact table; `serde` gives JSON.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Estimate {
    /// Images asked for.
    pub images: u32,
    /// The unit eligible candidates were compared in.
    pub comparison: Comparison,
    /// Every candidate: eligible ones first in rank order, then excluded ones.
    pub candidates: Vec<Candidate>,
    /// Remarks on the whole estimate (credits compared across providers, failed catalogs).
    pub notes: Vec<String>,
    /// Providers whose catalog could not be fetched.
    pub catalog_failures: Vec<CatalogFailure>,
    /// The run budget, when there is one.
    pub budget: Option<BudgetStatus>,
}

impl Estimate {
    /// The candidate that would be tried first.
    pub fn best(&self) -> Option<&Candidate> {
        self.candidates.first().filter(|c| c.eligible)
    }

    /// The eligible candidates, in the order they would be tried.
    pub fn eligible(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.iter().filter(|c| c.eligible)
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} image(s), compared in {}",
            self.images,
            match self.comparison {
                Comparison::Usd => "dollars",
                Comparison::Credits => "credits",
            }
        )?;
        for c in &self.candidates {
            let mark = c
                .rank
                .map_or_else(|| "  -".to_owned(), |r| format!("{r:>3}"));
            let credits = c
                .total_credits
                .map_or_else(|| "?".to_owned(), |t| t.to_string());
            writeln!(
                f,
                "{mark} {:<40} {:>8} cr  {}",
                c.label(),
                credits,
                c.reason
            )?;
            for w in &c.warnings {
                writeln!(f, "      warning: {w}")?;
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for failure in &self.catalog_failures {
            writeln!(
                f,
                "catalog of {} unavailable: {}",
                failure.provider, failure.message
            )?;
        }
        Ok(())
    }
}

/// Judges and ranks every candidate for `request`.
pub(crate) fn build_estimate(
    catalog: &MergedCatalog,
    request: &GenerationRequest,
    policy: &RoutingPolicy,
    view: &RunView,
    provider_order: &[ProviderId],
) -> Estimate {
    let mut candidates: Vec<Candidate> = catalog
        .entries
        .iter()
        .map(|entry| evaluate_model(entry, request, policy, view))
        .collect();
    for provider in provider_order {
        if let Some(config) = policy.smart_select_of(provider) {
            let models: Vec<Candidate> = candidates
                .iter()
                .filter(|c| &c.provider == provider)
                .cloned()
                .collect();
            candidates.push(evaluate_smart_select(
                provider, config, &models, request, policy, view,
            ));
        }
    }
    let comparison = rank(&mut candidates, policy, provider_order);
    let mut notes = Vec::new();
    if comparison == Comparison::Credits {
        let mut unknown: Vec<String> = candidates
            .iter()
            .filter(|c| c.eligible && c.total_usd.is_none())
            .map(|c| c.provider.to_string())
            .collect();
        unknown.dedup();
        let providers: std::collections::BTreeSet<&ProviderId> = candidates
            .iter()
            .filter(|c| c.eligible)
            .map(|c| &c.provider)
            .collect();
        if providers.len() > 1 {
            notes.push(format!(
                "the worth of a credit is unknown for {}: providers were compared in credits, which may not be worth the same",
                unknown.join(", ")
            ));
        }
    }
    for failure in &catalog.failures {
        notes.push(format!(
            "{} is left out: its catalog could not be fetched",
            failure.provider
        ));
    }
    Estimate {
        images: request.count(),
        comparison,
        candidates,
        notes,
        catalog_failures: catalog.failures.clone(),
        budget: view.budget,
    }
}

#[cfg(test)]
mod tests {
    use imagegen_core::Price;

    use super::*;

    #[test]
    fn split_respects_per_call_maximum_and_fixed_outputs() {
        let caps = Capabilities {
            max_images_per_request: 4,
            ..Capabilities::default()
        };
        assert_eq!(split_calls(6, &caps).0, vec![4, 2]);
        assert_eq!(split_calls(8, &caps).0, vec![4, 4]);
        assert_eq!(split_calls(3, &caps).0, vec![3]);
        let fixed = Capabilities {
            fixed_images_per_request: Some(4),
            ..Capabilities::default()
        };
        let (calls, billed, warning) = split_calls(5, &fixed);
        assert_eq!((calls, billed), (vec![4, 4], 8));
        assert!(warning.unwrap().contains("8 images"));
        let zero = Capabilities {
            max_images_per_request: 0,
            ..Capabilities::default()
        };
        assert_eq!(split_calls(2, &zero).0, vec![1, 1]);
    }

    #[test]
    fn any_quality_on_a_model_without_quality_settings_excludes_it() {
        let entry = ModelEntry::new("koala", "nano-banana-2", Price::flat(Credits::whole(5)));
        let request = GenerationRequest::builder("x")
            .quality(imagegen_core::Quality::High)
            .build()
            .unwrap();
        let c = evaluate_model(
            &entry,
            &request,
            &RoutingPolicy::default(),
            &RunView::default(),
        );
        assert!(!c.eligible);
        assert!(c.exclusions[0].to_string().contains("no quality setting"));
        let named = GenerationRequest::builder("x")
            .quality(imagegen_core::Quality::Named("turbo".into()))
            .build()
            .unwrap();
        let c = evaluate_model(
            &entry,
            &named,
            &RoutingPolicy::default(),
            &RunView::default(),
        );
        assert!(!c.eligible);
        assert_eq!(c.reason, "");
        assert!(c.exclusions[0].to_string().contains("no quality setting"));
    }
}

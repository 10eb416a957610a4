//! [`Exclusion`]: why a candidate cannot take a request, one typed reason each.

use std::fmt;

use imagegen_core::{Credits, PlanName, ProviderId, Usd};
use serde::Serialize;

/// Why a candidate cannot take the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Exclusion {
    /// The policy, or the call's own provider choice, rules the provider out.
    ProviderNotAllowed {
        /// `denied`, `not allowed`, or `not the provider asked for`.
        why: String,
    },
    /// The policy, or the call's own model choice, rules the model out.
    ModelNotAllowed {
        /// `denied`, `not allowed`, or `not the model asked for`.
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
    /// The model's nearest shape is far from the one asked (the aspect ratio would change
    /// by more than [`NEAR_SHAPE_TOLERANCE`](imagegen_core::NEAR_SHAPE_TOLERANCE)), and
    /// reshaping was not allowed.
    ShapeTooFar {
        /// What was asked.
        requested: String,
        /// The nearest shape the model makes.
        nearest: String,
        /// How much the aspect ratio would change, in percent (rounded).
        off_percent: u32,
    },
    /// More reference images than the model takes.
    TooManyReferenceImages {
        /// How many were given.
        given: usize,
        /// How many it takes.
        max: u32,
    },
    /// The prompt, as the wire would carry it (with a style the model takes in the prompt
    /// appended), is longer than the model takes
    /// ([`Capabilities::max_prompt_chars`](imagegen_core::Capabilities::max_prompt_chars)).
    PromptTooLong {
        /// The most characters it takes.
        max: u32,
        /// The characters the prompt has.
        given: usize,
    },
    /// The prompt is shorter than the model takes
    /// ([`Capabilities::min_prompt_chars`](imagegen_core::Capabilities::min_prompt_chars)).
    PromptTooShort {
        /// The fewest characters it takes.
        min: u32,
        /// The characters the prompt has.
        given: usize,
    },
    /// The model has no such quality.
    QualityUnavailable {
        /// What was asked.
        wanted: String,
        /// What it offers (empty: it has no quality setting).
        offered: Vec<String>,
    },
    /// The model has no such resolution tier.
    ResolutionUnavailable {
        /// What was asked.
        wanted: String,
        /// What it offers (empty: it takes no resolution).
        offered: Vec<String>,
    },
    /// The model does not take the requested style.
    StyleUnsupported {
        /// What was asked.
        style: String,
        /// The style names it takes (empty: it takes no style).
        offered: Vec<String>,
    },
    /// The request carries options only another provider honours.
    OptionsForAnotherProvider {
        /// The provider whose options the request carries.
        provider: ProviderId,
        /// The options.
        options: Vec<String>,
    },
    /// The model does not honour options the request requires.
    OptionsUnsupported {
        /// The options it does not honour.
        options: Vec<String>,
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
    /// The provider cannot be used for the rest of the run (a refused key, no credits).
    ProviderExhausted {
        /// What the provider said.
        reason: String,
    },
    /// The provider failed earlier in this request (unreachable, a server error): its
    /// other models are not tried for this request.
    ProviderFailedThisRequest {
        /// What happened.
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
    /// Provider-picks-the-model mode cannot promise what the request asks (a quality, a
    /// resolution, a style the models take differently).
    SmartSelectCannotPromise {
        /// What it cannot promise.
        what: String,
    },
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

    /// Whether the model cannot do what is asked (shape, references, prompt length,
    /// quality, style, options, plan).
    pub fn is_capability(&self) -> bool {
        matches!(
            self,
            Self::ShapeUnsupported { .. }
                | Self::ShapeTooFar { .. }
                | Self::TooManyReferenceImages { .. }
                | Self::PromptTooLong { .. }
                | Self::PromptTooShort { .. }
                | Self::QualityUnavailable { .. }
                | Self::ResolutionUnavailable { .. }
                | Self::StyleUnsupported { .. }
                | Self::OptionsForAnotherProvider { .. }
                | Self::OptionsUnsupported { .. }
                | Self::PlanInsufficient { .. }
                | Self::PriceUnknown { .. }
        )
    }

    /// Whether it is the run budget.
    pub fn is_budget(&self) -> bool {
        matches!(self, Self::OverBudget { .. })
    }

    /// Whether it is the policy or the call's own choice of provider or model.
    pub fn is_choice(&self) -> bool {
        matches!(
            self,
            Self::ProviderNotAllowed { .. } | Self::ModelNotAllowed { .. }
        )
    }
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

use imagegen_core::request::thousands;

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProviderNotAllowed { why } => write!(f, "provider {why}"),
            Self::ModelNotAllowed { why } => write!(f, "model {why}"),
            Self::Deprecated => {
                f.write_str("deprecated (name it or allow deprecated models to use it)")
            }
            Self::ShapeUnsupported {
                requested,
                accepted,
            } => write!(f, "does not make {requested} (accepts {})", list(accepted)),
            Self::ShapeTooFar {
                requested,
                nearest,
                off_percent,
            } => write!(
                f,
                "does not make {requested}: its nearest shape {nearest} is {off_percent}% off (allow reshaping to use it)"
            ),
            Self::TooManyReferenceImages { given, max } => {
                write!(f, "takes at most {max} reference images, {given} given")
            }
            Self::PromptTooLong { max, given } => write!(
                f,
                "takes prompts of at most {} characters; this one has {}",
                thousands(u64::from(*max)),
                thousands(*given as u64)
            ),
            Self::PromptTooShort { min, given } => write!(
                f,
                "takes prompts of at least {} characters; this one has {}",
                thousands(u64::from(*min)),
                thousands(*given as u64)
            ),
            Self::QualityUnavailable { wanted, offered } if offered.is_empty() => {
                write!(f, "has no quality setting, `{wanted}` asked")
            }
            Self::QualityUnavailable { wanted, offered } => {
                write!(f, "no quality `{wanted}` (offers {})", list(offered))
            }
            Self::ResolutionUnavailable { wanted, offered } if offered.is_empty() => {
                write!(f, "takes no resolution tier, `{wanted}` asked")
            }
            Self::ResolutionUnavailable { wanted, offered } => {
                write!(f, "no resolution `{wanted}` (offers {})", list(offered))
            }
            Self::StyleUnsupported { style, offered } if offered.is_empty() => {
                write!(f, "takes no style, `{style}` asked")
            }
            Self::StyleUnsupported { style, offered } => {
                write!(f, "no style `{style}` (takes {})", list(offered))
            }
            Self::OptionsForAnotherProvider { provider, options } => write!(
                f,
                "the request has {provider} options ({}), which only {provider} honours",
                list(options)
            ),
            Self::OptionsUnsupported { options } => {
                write!(f, "does not honour {}", list(options))
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
            Self::ProviderFailedThisRequest { reason } => {
                write!(f, "provider failed for this request: {reason}")
            }
            Self::CoolingDown { remaining_secs } => {
                write!(f, "resting after failures ({remaining_secs}s left)")
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
                "needs up to {needed} credits, the budget has {remaining} left"
            ),
            Self::NoModelForSmartSelect => f.write_str(
                "the provider would pick the model, but none of its models can take the request",
            ),
            Self::SmartSelectCannotPromise { what } => {
                write!(
                    f,
                    "the provider would pick the model, so {what} cannot be promised"
                )
            }
        }
    }
}

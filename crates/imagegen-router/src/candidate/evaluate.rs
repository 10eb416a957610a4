//! Judging one model (or a provider's own pick) for one request, and resolving the
//! [`CallPlan`]s it would send.

use imagegen_core::{
    CallPlan, Capabilities, Credits, GenerationRequest, ImageShape, ModelChoice, ModelEntry,
    ProviderId, ShapeFit, StyleDelivery,
};
use serde_json::{Map, Value};

use super::exclusion::Exclusion;
use super::{Candidate, RunView};
use crate::policy::{PlanStatus, SmartSelect};
use crate::rules::Rules;

/// The provider options a request carries, as their provider read them.
#[derive(Debug, Clone, Default)]
pub(crate) struct OptionRequirements {
    /// The provider whose options the request carries, if any.
    pub(crate) provider: Option<ProviderId>,
    /// Every option given, by name.
    pub(crate) names: Vec<String>,
    /// The options a model must honour.
    pub(crate) required: Vec<String>,
    /// The options object, sent as given.
    pub(crate) object: Map<String, Value>,
}

/// Everything a candidate is judged against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judge<'a> {
    pub(crate) rules: Rules<'a>,
    pub(crate) view: &'a RunView,
    pub(crate) options: &'a OptionRequirements,
}

/// Images per call and images billed for `count` images on a model.
pub(crate) fn split_calls(count: u32, caps: &Capabilities) -> (Vec<u32>, u32, Option<String>) {
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

fn round_up_secs(left: std::time::Duration) -> u64 {
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

/// The policy, the call and what the run learned about a provider.
fn judge_provider(c: &mut Candidate, judge: &Judge<'_>) {
    let provider = c.provider.clone();
    if let Some(why) = judge.rules.provider_refusal(&provider) {
        c.exclude(Exclusion::ProviderNotAllowed { why: why.into() });
    }
    if let Some(reason) = judge.view.exhausted.get(&provider) {
        c.exclude(Exclusion::ProviderExhausted {
            reason: reason.clone(),
        });
    }
    if let Some(reason) = judge.view.failed_this_request.get(&provider) {
        c.exclude(Exclusion::ProviderFailedThisRequest {
            reason: reason.clone(),
        });
    }
}

/// Whether the provider options are this candidate's to send.
fn judge_options(c: &mut Candidate, honoured: &[String], judge: &Judge<'_>) {
    let options = judge.options;
    let Some(owner) = &options.provider else {
        return;
    };
    if *owner != c.provider {
        c.exclude(Exclusion::OptionsForAnotherProvider {
            provider: owner.clone(),
            options: options.names.clone(),
        });
        return;
    }
    let missing: Vec<String> = options
        .required
        .iter()
        .filter(|o| !honoured.contains(o))
        .cloned()
        .collect();
    if missing.is_empty() {
        c.options = options.names.clone();
    } else {
        c.exclude(Exclusion::OptionsUnsupported { options: missing });
    }
}

/// The shape the wire carries, under the shape policy.
fn judge_shape(c: &mut Candidate, requested: ImageShape, caps: &Capabilities, judge: &Judge<'_>) {
    let fit = caps.shapes.fit(requested);
    let off = fit.ratio_error().unwrap_or(0.0);
    let percent = (off * 100.0).round() as u32;
    match fit {
        ShapeFit::Exact(shape) => c.shape = Some(shape),
        ShapeFit::Snapped { requested, actual }
            if off <= imagegen_core::NEAR_SHAPE_TOLERANCE + 1e-9 =>
        {
            c.shape = Some(actual);
            c.warnings.push(format!(
                "shape {requested} is sent as {actual}, the nearest it makes ({percent}% off)"
            ));
        }
        ShapeFit::Snapped { requested, actual } if judge.rules.reshape_allowed() => {
            c.shape = Some(actual);
            c.warnings.push(format!(
                "shape {requested} is reshaped to {actual} ({percent}% off), as reshaping is allowed"
            ));
        }
        ShapeFit::Snapped { requested, actual } => c.exclude(Exclusion::ShapeTooFar {
            requested: requested.to_string(),
            nearest: actual.to_string(),
            off_percent: percent,
        }),
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

/// Characters of the prompt the wire carries for this candidate: the request's, with the
/// style appended when the model takes it in the prompt (as [`CallPlan::prompt_text`]
/// writes it).
fn sent_prompt_chars(request: &GenerationRequest, style: Option<&StyleDelivery>) -> usize {
    match style {
        Some(delivery @ StyleDelivery::InPrompt(_)) => CallPlan::new(
            ProviderId::new("-"),
            ModelChoice::ProviderDefault,
            request.prompt().clone(),
            1,
        )
        .with_style(delivery.clone())
        .prompt_text()
        .chars()
        .count(),
        _ => request.prompt().char_count(),
    }
}

/// Whether the model takes a prompt this long (judged after the style, which may lengthen
/// it).
fn judge_prompt(c: &mut Candidate, request: &GenerationRequest, caps: &Capabilities) {
    if caps.max_prompt_chars.is_none() && caps.min_prompt_chars.is_none() {
        return;
    }
    let given = sent_prompt_chars(request, c.style.as_ref());
    if let Some(max) = caps.max_prompt_chars.filter(|m| *m > 0)
        && given > max as usize
    {
        c.exclude(Exclusion::PromptTooLong { max, given });
    }
    if let Some(min) = caps.min_prompt_chars
        && given < min as usize
    {
        c.exclude(Exclusion::PromptTooShort { min, given });
    }
}

fn style_warning(delivery: &StyleDelivery) -> Option<String> {
    match delivery {
        StyleDelivery::InPrompt(style) => Some(format!(
            "the model has no style setting: \"{style}\" is added to the prompt"
        )),
        _ => None,
    }
}

/// Judges one catalog model for `request` and resolves its calls.
pub(crate) fn evaluate_model(
    entry: &ModelEntry,
    request: &GenerationRequest,
    judge: &Judge<'_>,
) -> Candidate {
    let provider = &entry.provider;
    let rules = judge.rules;
    let view = judge.view;
    let mut c = Candidate::new(provider.clone(), Some(entry.id.clone()));
    c.display_name = entry.display_name.clone();
    c.max_per_call = entry.capabilities.max_images_per_request.max(1);
    let caps = &entry.capabilities;

    judge_provider(&mut c, judge);
    if let Some(why) = rules.model_refusal(provider, &entry.id) {
        c.exclude(Exclusion::ModelNotAllowed { why: why.into() });
    }
    if entry.deprecated {
        if rules.policy.deprecated_allowed() || rules.names_model(provider, &entry.id) {
            c.warnings.push("deprecated by the provider".into());
        } else {
            c.exclude(Exclusion::Deprecated);
        }
    }

    // What it can do.
    if let Some(requested) = request.shape() {
        judge_shape(&mut c, requested, caps, judge);
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
    if let Some(wanted) = request.resolution() {
        match caps
            .resolutions
            .iter()
            .find(|r| r.eq_ignore_ascii_case(wanted))
        {
            Some(tier) => c.resolution = Some(tier.clone()),
            None => c.exclude(Exclusion::ResolutionUnavailable {
                wanted: wanted.to_owned(),
                offered: caps.resolutions.clone(),
            }),
        }
    }
    if let Some(style) = request.style() {
        match caps.styles.deliver(style) {
            Ok(delivery) => {
                c.warnings.extend(style_warning(&delivery));
                c.style = Some(delivery);
            }
            Err(offered) => c.exclude(Exclusion::StyleUnsupported {
                style: style.to_owned(),
                offered,
            }),
        }
    }
    judge_prompt(&mut c, request, caps);
    judge_options(&mut c, &caps.options, judge);
    match rules
        .policy
        .plan_status(provider, entry.required_plan(quality))
    {
        PlanStatus::Satisfied => {}
        PlanStatus::Unknown(required) => c.notes.push(format!(
            "needs the {required} plan and yours at {provider} is not configured: tried, and a plan refusal moves on"
        )),
        PlanStatus::Insufficient { required, have } => {
            c.exclude(Exclusion::PlanInsufficient { required, have });
        }
    }

    // What this run has learned about the model.
    if let Some(reason) = view.unavailable_reason(provider, &entry.id, c.quality.as_deref()) {
        c.exclude(Exclusion::UnavailableThisRun {
            reason: reason.clone(),
        });
    }
    if let Some(left) = view.cooling_left(provider, Some(&entry.id)) {
        c.exclude(Exclusion::CoolingDown {
            remaining_secs: round_up_secs(left),
        });
    }
    // Whether the model can take the request at all, whatever the policy says: the
    // basis of a provider's-choice reservation, since the provider may pick it anyway.
    c.capable = !c.exclusions.iter().any(Exclusion::is_capability);

    // How many calls, and what they cost.
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
    c.images_billed = billed;
    let per_image = match entry.price.per_image(quality, c.resolution.as_deref()) {
        Ok(per_image) => Some(per_image),
        Err(e) => {
            c.exclude(Exclusion::PriceUnknown {
                detail: e.to_string(),
            });
            None
        }
    };
    c.calls = plan_calls(&c, request, &calls, per_image.unwrap_or_default(), judge);
    if let Some(per_image) = per_image {
        price(&mut c, per_image, judge);
    }

    c.expected_seconds = view
        .latency
        .get(&(provider.clone(), entry.id.clone()))
        .map(|d| d.as_secs())
        .or(entry.typical_seconds.map(u64::from));
    c.eligible = c.exclusions.is_empty();
    c
}

/// The calls a candidate makes: `images` per call, each fully resolved.
fn plan_calls(
    c: &Candidate,
    request: &GenerationRequest,
    images: &[u32],
    per_image: Credits,
    judge: &Judge<'_>,
) -> Vec<CallPlan> {
    let options = if c.options.is_empty() && judge.options.provider.as_ref() != Some(&c.provider) {
        Map::new()
    } else {
        judge.options.object.clone()
    };
    images
        .iter()
        .map(|&n| {
            let mut call =
                CallPlan::new(c.provider.clone(), c.choice(), request.prompt().clone(), n)
                    .with_credits(
                        per_image
                            .checked_mul(n)
                            .unwrap_or(Credits::from_micros(u64::MAX)),
                    );
            call.shape = c.shape;
            call.quality.clone_from(&c.quality);
            call.resolution.clone_from(&c.resolution);
            call.style.clone_from(&c.style);
            call.reference_images = request.reference_images().to_vec();
            call.enhance_prompt = request.enhance_prompt();
            call.options.clone_from(&options);
            call
        })
        .collect()
}

/// Fills in the costs of a candidate priced at `per_image`, and checks caps and budget.
fn price(c: &mut Candidate, per_image: Credits, judge: &Judge<'_>) {
    let policy = judge.rules.policy;
    let view = judge.view;
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
    let caps = judge.rules.caps();
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

/// The most one image of `entry` can cost: its dearest quality at its dearest resolution
/// tier, times the images a fixed-output model makes per call (one image asked, all of
/// them billed).
fn highest_price(entry: &ModelEntry) -> Option<Credits> {
    let qualities = std::iter::once(None).chain(entry.capabilities.qualities.iter().map(Some));
    let tiers: Vec<Option<&str>> = std::iter::once(None)
        .chain(
            entry
                .price
                .resolution_multipliers
                .keys()
                .map(|t| Some(t.as_str())),
        )
        .collect();
    let per_image = qualities
        .flat_map(|q| {
            tiers
                .iter()
                .filter_map(move |t| entry.price.per_image(q, *t).ok())
        })
        .max()?;
    match entry
        .capabilities
        .fixed_images_per_request
        .filter(|f| *f > 1)
    {
        Some(fixed) => per_image.checked_mul(fixed),
        None => Some(per_image),
    }
}

/// Judges provider-picks-the-model mode for `provider`, given its judged models.
pub(crate) fn evaluate_smart_select(
    provider: &ProviderId,
    config: SmartSelect,
    models: &[Candidate],
    entries: &[&ModelEntry],
    request: &GenerationRequest,
    judge: &Judge<'_>,
) -> Candidate {
    let mut c = Candidate::new(provider.clone(), None);
    c.display_name = Some("provider's choice".into());
    c.price_is_cap = true;
    judge_provider(&mut c, judge);
    if judge.rules.call.named_model().is_some() {
        c.exclude(Exclusion::ModelNotAllowed {
            why: "not the model asked for".into(),
        });
    }
    if let Some(left) = judge.view.cooling_left(provider, None) {
        c.exclude(Exclusion::CoolingDown {
            remaining_secs: round_up_secs(left),
        });
    }
    if request.quality().is_some() {
        c.exclude(Exclusion::SmartSelectCannotPromise {
            what: "a quality".into(),
        });
    }
    if request.resolution().is_some() {
        c.exclude(Exclusion::SmartSelectCannotPromise {
            what: "a resolution".into(),
        });
    }
    let capable: Vec<&Candidate> = models.iter().filter(|m| m.capable).collect();
    let capable_entries: Vec<&&ModelEntry> = entries
        .iter()
        .filter(|e| capable.iter().any(|m| m.model.as_ref() == Some(&e.id)))
        .collect();
    // Options and style hold only when every model the provider might pick honours them.
    let honoured: Vec<String> = judge
        .options
        .required
        .iter()
        .filter(|o| {
            capable_entries
                .iter()
                .all(|e| e.capabilities.options.contains(o))
        })
        .cloned()
        .collect();
    judge_options(&mut c, &honoured, judge);
    if let Some(style) = request.style() {
        let deliveries: Vec<_> = capable_entries
            .iter()
            .map(|e| e.capabilities.styles.deliver(style))
            .collect();
        match deliveries.first() {
            Some(Ok(first)) if deliveries.iter().all(|d| d.as_ref() == Ok(first)) => {
                c.warnings.extend(style_warning(first));
                c.style = Some(first.clone());
            }
            _ => c.exclude(Exclusion::SmartSelectCannotPromise {
                what: format!("the style `{style}`"),
            }),
        }
    }
    // The provider may pick any model that takes the request: split by the smallest
    // per-call maximum among them, send the shape as asked, and reserve the highest price
    // in its catalog, since the pick (and so the price) is known only after the fact.
    c.max_per_call = capable.iter().map(|m| m.max_per_call).min().unwrap_or(1);
    let count = request.count();
    let mut calls = vec![c.max_per_call; (count / c.max_per_call) as usize];
    if !count.is_multiple_of(c.max_per_call) {
        calls.push(count % c.max_per_call);
    }
    c.images_billed = count;
    c.shape = request.shape();
    let highest = entries.iter().filter_map(|e| highest_price(e)).max();
    let reserve = match (config.reserve_per_image, highest) {
        (Some(cap), _) => {
            c.notes.push(format!(
                "the provider picks the model: {cap} credits per image are reserved (configured cap); the charge is what it reports"
            ));
            Some(cap)
        }
        (None, _) if capable.is_empty() => {
            c.exclude(Exclusion::NoModelForSmartSelect);
            None
        }
        (None, Some(highest)) => {
            c.notes.push(format!(
                "the provider picks the model: {highest} credits per image are reserved (its highest catalog price); the charge is what it reports"
            ));
            Some(highest)
        }
        (None, None) => {
            c.exclude(Exclusion::PriceUnknown {
                detail: "the provider's catalog has no price to reserve".into(),
            });
            None
        }
    };
    let reserve = match reserve {
        Some(zero) if zero.is_zero() => {
            c.exclude(Exclusion::PriceUnknown {
                detail: "a reservation of zero credits would not bound the charge".into(),
            });
            None
        }
        other => other,
    };
    c.capable = !c.exclusions.iter().any(Exclusion::is_capability);
    c.calls = plan_calls(&c, request, &calls, reserve.unwrap_or_default(), judge);
    for call in &mut c.calls {
        call.model = ModelChoice::ProviderDefault;
    }
    if let Some(per_image) = reserve {
        price(&mut c, per_image, judge);
    }
    c.eligible = c.exclusions.is_empty();
    c
}

#[cfg(test)]
mod tests {
    use imagegen_core::{Price, Quality, ShapeSupport, StyleSupport};

    use super::*;
    use crate::call::CallOptions;
    use crate::policy::RoutingPolicy;

    fn judge<'a>(
        policy: &'a RoutingPolicy,
        call: &'a CallOptions,
        view: &'a RunView,
        options: &'a OptionRequirements,
    ) -> Judge<'a> {
        Judge {
            rules: Rules::new(policy, call),
            view,
            options,
        }
    }

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
        let (policy, call, view, options) = (
            RoutingPolicy::default(),
            CallOptions::default(),
            RunView::default(),
            OptionRequirements::default(),
        );
        let judge = judge(&policy, &call, &view, &options);
        let request = GenerationRequest::builder("x")
            .quality(Quality::High)
            .build()
            .unwrap();
        let c = evaluate_model(&entry, &request, &judge);
        assert!(!c.eligible);
        assert!(c.exclusions[0].to_string().contains("no quality setting"));
    }

    #[test]
    fn a_far_shape_excludes_and_a_near_one_warns_once() {
        let square = ModelEntry::new("kolbo", "square", Price::flat(Credits::whole(1)))
            .with_capabilities(Capabilities {
                shapes: ShapeSupport::AspectRatios {
                    ratios: vec!["1:1".parse().unwrap()],
                    snap: true,
                },
                ..Capabilities::default()
            });
        let (policy, call, view, options) = (
            RoutingPolicy::default(),
            CallOptions::default(),
            RunView::default(),
            OptionRequirements::default(),
        );
        let request = GenerationRequest::builder("x")
            .shape("16:9".parse().unwrap())
            .build()
            .unwrap();
        let c = evaluate_model(&square, &request, &judge(&policy, &call, &view, &options));
        assert!(!c.eligible);
        assert!(matches!(
            c.exclusions[0],
            Exclusion::ShapeTooFar {
                off_percent: 78,
                ..
            }
        ));
        let reshape = CallOptions::default().allow_reshape(true);
        let c = evaluate_model(
            &square,
            &request,
            &judge(&policy, &reshape, &view, &options),
        );
        assert!(c.eligible);
        assert_eq!(c.calls[0].shape, Some("1:1".parse().unwrap()));
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn styles_and_options_are_requirements() {
        let koala = ModelEntry::new("koala", "m", Price::flat(Credits::whole(1)))
            .with_capabilities(Capabilities {
                styles: StyleSupport::Named(vec!["anime".into()]),
                options: vec!["generate_alt_text".into()],
                ..Capabilities::default()
            });
        let kolbo = ModelEntry::new("kolbo", "m", Price::flat(Credits::whole(1)))
            .with_capabilities(Capabilities {
                styles: StyleSupport::InPrompt,
                ..Capabilities::default()
            });
        let (policy, call, view) = (
            RoutingPolicy::default(),
            CallOptions::default(),
            RunView::default(),
        );
        let mut object = Map::new();
        object.insert("generate_alt_text".into(), Value::Bool(true));
        let options = OptionRequirements {
            provider: Some(ProviderId::new("koala")),
            names: vec!["generate_alt_text".into()],
            required: vec!["generate_alt_text".into()],
            object,
        };
        let request = GenerationRequest::builder("x")
            .style("ANIME")
            .build()
            .unwrap();
        let judge = judge(&policy, &call, &view, &options);
        let k = evaluate_model(&koala, &request, &judge);
        assert!(k.eligible, "{:?}", k.exclusions);
        assert_eq!(k.calls[0].style_field(), Some("anime"));
        assert_eq!(k.calls[0].options["generate_alt_text"], Value::Bool(true));
        let b = evaluate_model(&kolbo, &request, &judge);
        assert!(matches!(
            b.exclusions[0],
            Exclusion::OptionsForAnotherProvider { .. }
        ));
        let oil = GenerationRequest::builder("x")
            .style("oil")
            .build()
            .unwrap();
        let k = evaluate_model(&koala, &oil, &judge);
        assert!(matches!(
            k.exclusions[0],
            Exclusion::StyleUnsupported { .. }
        ));
    }
}

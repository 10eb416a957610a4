//! The order eligible candidates are tried in: the preference, then cost, then a
//! deterministic tie-break.

use imagegen_core::{Credits, ProviderId, Usd};

use super::Candidate;
use super::estimate::Comparison;
use crate::policy::{Preference, RoutingPolicy};

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

//! [`Estimate`]: the ranked, explained candidates of one request, and its one renderer
//! (`Display`); `--json` is its `Serialize`.

use std::collections::BTreeSet;
use std::fmt;

use imagegen_core::{GenerationRequest, ModelEntry, ProviderId};
use serde::Serialize;

use super::Candidate;
use super::evaluate::{Judge, evaluate_model, evaluate_smart_select};
use super::rank::rank;
use crate::budget::BudgetStatus;
use crate::catalog::{CatalogFailure, MergedCatalog};
use crate::policy::SmartSelect;

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

/// The ranked, explained candidates for one request, each with the plan it would send:
/// what `estimate` and `--dry-run` print (`Display` is the table, `Serialize` the JSON).
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

    /// Whether only price caps or the budget keep every capable candidate out.
    pub fn blocked_by_price(&self) -> bool {
        self.best().is_none()
            && self.candidates.iter().any(|c| {
                !c.exclusions.is_empty()
                    && c.exclusions
                        .iter()
                        .all(|e| e.is_price_cap() || e.is_budget())
            })
    }
}

impl fmt::Display for Estimate {
    /// The table `imagegen estimate` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.comparison {
            Comparison::Usd => "dollars",
            Comparison::Credits => "credits",
        };
        writeln!(
            f,
            "{} image(s); candidates ranked by cost in {unit}:",
            self.images
        )?;
        writeln!(
            f,
            "{:>4}  {:<34} {:>9} {:>9}  WHY",
            "RANK", "PROVIDER/MODEL", "CR/IMAGE", "TOTAL"
        )?;
        for c in &self.candidates {
            let rank = c.rank.map_or_else(|| "-".to_owned(), |r| r.to_string());
            let per = c
                .credits_per_image
                .map_or_else(|| "?".to_owned(), |v| v.to_string());
            let total = c
                .total_credits
                .map_or_else(|| "?".to_owned(), |v| v.to_string());
            writeln!(
                f,
                "{rank:>4}  {:<34} {per:>9} {total:>9}  {}",
                c.label(),
                c.reason
            )?;
            if c.eligible {
                for warning in &c.warnings {
                    writeln!(f, "{:>60}  warning: {warning}", "")?;
                }
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

/// Judges and ranks every candidate for `request`. A provider's own pick is a candidate
/// when the policy offers it ([`RoutingPolicy::smart_select`](crate::RoutingPolicy::smart_select)),
/// or when the call asks for `auto` and the provider is one of `picking`.
pub(crate) fn build_estimate(
    catalog: &MergedCatalog,
    request: &GenerationRequest,
    judge: &Judge<'_>,
    provider_order: &[ProviderId],
    picking: &BTreeSet<ProviderId>,
) -> Estimate {
    let mut candidates: Vec<Candidate> = catalog
        .entries
        .iter()
        .map(|entry| evaluate_model(entry, request, judge))
        .collect();
    for provider in provider_order {
        let config = judge.rules.policy.smart_select_of(provider).or_else(|| {
            (judge.rules.wants_provider_pick() && picking.contains(provider))
                .then(SmartSelect::default)
        });
        if let Some(config) = config {
            let models: Vec<Candidate> = candidates
                .iter()
                .filter(|c| &c.provider == provider)
                .cloned()
                .collect();
            let entries: Vec<&ModelEntry> = catalog.of_provider(provider).collect();
            candidates.push(evaluate_smart_select(
                provider, config, &models, &entries, request, judge,
            ));
        }
    }
    let comparison = rank(&mut candidates, judge.rules.policy, provider_order);
    let mut notes = Vec::new();
    if comparison == Comparison::Credits {
        let mut unknown: Vec<String> = candidates
            .iter()
            .filter(|c| c.eligible && c.total_usd.is_none())
            .map(|c| c.provider.to_string())
            .collect();
        unknown.dedup();
        let providers: BTreeSet<&ProviderId> = candidates
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
            "{} is left out: its catalog could not be fetched ({})",
            failure.provider, failure.message
        ));
    }
    Estimate {
        images: request.count(),
        comparison,
        candidates,
        notes,
        catalog_failures: catalog.failures.clone(),
        budget: judge.view.budget,
    }
}

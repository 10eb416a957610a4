//! `imagegen estimate PROMPT`: the ranked, explained candidates, spending nothing.

use imagegen::{Candidate, Comparison, Estimate};
use serde_json::json;

use super::fail;
use crate::args::RequestArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: RequestArgs, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let (client, request) = match super::generate::prepare(&args, &out).await {
        Ok(prepared) => prepared,
        Err(error) => return fail(&out, &error),
    };
    match client.estimate(&request).await {
        Ok(estimate) => print_estimate(&out, &estimate),
        Err(error) => fail(&out, &error),
    }
}

/// `kolbo/z-image/turbo: 1 image for 0.5 credits ($0.005)`: what will be tried first.
pub(crate) fn plan_line(estimate: &Estimate) -> Option<String> {
    let best = estimate.best()?;
    let usd = best
        .total_usd
        .map(|u| format!(" (${u})"))
        .unwrap_or_default();
    Some(format!(
        "{} image(s) with {} for {}{usd}",
        estimate.images,
        best.label(),
        best.total_credits.unwrap_or_default().with_unit()
    ))
}

/// Prints the estimate (a table, or JSON) and returns the exit code: 0 when a candidate
/// can take the request, 5 when only price caps or the budget stand in the way, 2 when
/// nothing can take it.
pub(crate) fn print_estimate(out: &Output, estimate: &Estimate) -> u8 {
    let code = if estimate.best().is_some() {
        exit::OK
    } else if estimate.candidates.iter().any(|c| {
        !c.exclusions.is_empty()
            && c.exclusions
                .iter()
                .all(|e| e.is_price_cap() || e.is_budget())
    }) {
        exit::OVER_BUDGET
    } else {
        exit::INVALID_INPUT
    };
    if out.json() {
        out.emit(&json!({
            "images": estimate.images,
            "comparison": match estimate.comparison { Comparison::Usd => "usd", _ => "credits" },
            "candidates": estimate.candidates.iter().map(candidate_json).collect::<Vec<_>>(),
            "notes": estimate.notes,
            "budget": estimate.budget,
        }));
        return code;
    }
    let unit = match estimate.comparison {
        Comparison::Usd => "dollars",
        _ => "credits",
    };
    out.line(format!(
        "{} image(s); candidates ranked by cost in {unit}:",
        estimate.images
    ));
    out.line(format!(
        "{:>4}  {:<34} {:>9} {:>9}  {}",
        "RANK", "PROVIDER/MODEL", "CR/IMAGE", "TOTAL", "WHY"
    ));
    for c in &estimate.candidates {
        let rank = c.rank.map_or_else(|| "-".to_owned(), |r| r.to_string());
        let per = c
            .credits_per_image
            .map_or_else(|| "?".to_owned(), |v| v.to_string());
        let total = c
            .total_credits
            .map_or_else(|| "?".to_owned(), |v| v.to_string());
        out.line(format!(
            "{rank:>4}  {:<34} {per:>9} {total:>9}  {}",
            c.label(),
            why(c)
        ));
        for warning in &c.warnings {
            out.line(format!(
                "{:>4}  {:<34} {:>9} {:>9}  warning: {warning}",
                "", "", "", ""
            ));
        }
    }
    for note in &estimate.notes {
        out.note(note);
    }
    match code {
        exit::OK => {}
        exit::OVER_BUDGET => {
            out.error("every model that can take this request is over the price cap or the budget")
        }
        _ => out.error("no model can take this request: see each reason above"),
    }
    code
}

fn why(c: &Candidate) -> String {
    if c.reason.is_empty() {
        c.exclusions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        c.reason.clone()
    }
}

fn candidate_json(c: &Candidate) -> serde_json::Value {
    json!({
        "provider": c.provider,
        "model": c.model,
        "credits_per_image": c.credits_per_image,
        "total_credits": c.total_credits,
        "eligible": c.eligible,
        "reason": why(c),
        "rank": c.rank,
        "usd_per_image": c.usd_per_image,
        "total_usd": c.total_usd,
        "calls": c.calls,
        "warnings": c.warnings,
        "notes": c.notes,
    })
}

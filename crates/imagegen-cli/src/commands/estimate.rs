//! `imagegen estimate PROMPT`: the ranked, explained candidates, spending nothing.

use imagegen::router::CatalogFailure;
use imagegen::{CallOptions, Client, Estimate, GenerationRequest};

use super::{catalog_failure_code, fail, reshape_hint};
use crate::args::RequestArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: RequestArgs, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let (client, request, call) = match super::generate::prepare(&args, &out).await {
        Ok(prepared) => prepared,
        Err(error) => return fail(&out, &error),
    };
    show_estimate(&out, &client, &request, &call).await
}

/// Estimates `request` with its own routing choices, prints the estimate and returns the
/// exit code (see [`print_estimate`]).
pub(crate) async fn show_estimate(
    out: &Output,
    client: &Client,
    request: &GenerationRequest,
    call: &CallOptions,
) -> u8 {
    match client.estimate_with(request, call).await {
        Ok(estimate) => print_estimate(out, &estimate, call),
        Err(error) => fail(out, &error),
    }
}

/// `kolbo/z-image/turbo: 1 image for 0.5 credits ($0.005)`: what will be tried first.
pub(crate) fn plan_line(estimate: &Estimate) -> Option<String> {
    let best = estimate.best()?;
    let usd = best
        .total_usd
        .map(|u| format!(" (${u})"))
        .unwrap_or_default();
    // A provider's own pick is priced at its dearest model: a reservation, not the cost.
    let up_to = if best.price_is_cap { "up to " } else { "" };
    Some(format!(
        "{} image(s) with {} for {up_to}{}{usd}",
        estimate.images,
        best.label(),
        best.total_credits.unwrap_or_default().with_unit()
    ))
}

/// Prints the estimate (its table, or its JSON) and returns the exit code: 0 when a
/// candidate can take the request, 5 when only price caps or the budget stand in the way,
/// 2 when nothing can take it; a provider whose catalog could not be fetched makes it that
/// failure's code (3 for a refusal such as a bad key, 1 for an unreachable host), unless
/// the request is pinned to another provider.
pub(crate) fn print_estimate(out: &Output, estimate: &Estimate, call: &CallOptions) -> u8 {
    let verdict = if estimate.best().is_some() {
        exit::OK
    } else if estimate.blocked_by_price() {
        exit::OVER_BUDGET
    } else {
        exit::INVALID_INPUT
    };
    let failures: Vec<&CatalogFailure> = relevant_failures(estimate, call).collect();
    let code = catalog_failure_code(failures.iter().copied()).unwrap_or(verdict);
    if out.json() {
        match serde_json::to_value(estimate) {
            Ok(value) => out.emit(&value),
            Err(e) => {
                out.error(format!("the estimate could not be written as JSON: {e}"));
                return exit::OTHER;
            }
        }
    } else {
        out.line(estimate.to_string().trim_end());
    }
    for failure in &failures {
        out.error(format!(
            "the {} catalog could not be fetched: {}",
            failure.provider, failure.message
        ));
    }
    match verdict {
        exit::OK => {}
        exit::OVER_BUDGET => {
            out.error("every model that can take this request is over the price cap or the budget")
        }
        _ => {
            out.error("no model can take this request: see each reason above");
            reshape_hint(out, estimate);
        }
    }
    code
}

/// The catalog failures that matter to a request: all of them, or only its pinned
/// provider's.
pub(crate) fn relevant_failures<'a>(
    estimate: &'a Estimate,
    call: &'a CallOptions,
) -> impl Iterator<Item = &'a CatalogFailure> {
    estimate
        .catalog_failures
        .iter()
        .filter(|f| call.provider.as_ref().is_none_or(|p| *p == f.provider))
}

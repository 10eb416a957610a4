//! `estimate_cost` and `list_models`: prices and reasons, nothing spent.

use imagegen::{Candidate, ModelEntry};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::Shared;
use super::access::Access;
use super::generate::routed;
use super::output::{data, number, tool_error};
use super::params::{ImageParams, ModelsParams};

/// Runs one `estimate_cost` call: every candidate ranked, with prices and reasons, and
/// the budget the caller has left.
pub(crate) async fn estimate(
    shared: &Shared,
    access: &Access,
    params: ImageParams,
) -> CallToolResult {
    let (request, call) = match routed(shared, params).await {
        Ok(routed) => routed,
        Err(refused) => return refused,
    };
    let estimate = match shared.client.estimate_with(&request, &call).await {
        Ok(estimate) => estimate,
        Err(e) => return tool_error("estimate_failed", e.to_string(), json!({})),
    };
    let budget = match access.budget(shared).await {
        Ok(Some(name)) => match shared.ledger.budget(&name).await {
            Ok(Some(status)) => json!({
                "name": name,
                "limit_credits": status.limit.map(number),
                "remaining_credits": status.remaining.map(number),
            }),
            _ => json!({"name": name}),
        },
        _ => Value::Null,
    };
    let (eligible, excluded): (Vec<&Candidate>, Vec<&Candidate>) =
        estimate.candidates.iter().partition(|c| c.eligible);
    let best = eligible.first().map(|c| {
        format!(
            "{} image(s): cheapest is {}/{} for {} in all.",
            estimate.images,
            c.provider,
            c.model.as_ref().map_or("auto", |m| m.as_str()),
            c.total_credits.map_or_else(
                || "an unknown price".to_owned(),
                |t| t.with_unit().to_string()
            )
        )
    });
    data(json!({
        "summary": best.unwrap_or_else(|| "No model can take this request: see `excluded` for why.".to_owned()),
        "images": estimate.images,
        "plans": eligible.iter().map(|c| candidate(c)).collect::<Vec<_>>(),
        "excluded": excluded.iter().map(|c| candidate(c)).collect::<Vec<_>>(),
        "notes": estimate.notes,
        "budget": budget,
        "simulated": shared.client.is_simulated(),
        "spent": 0,
    }))
}

/// One candidate: what it would cost and why it ranks where it does, or is left out.
fn candidate(c: &Candidate) -> Value {
    json!({
        "rank": c.rank,
        "model": format!("{}/{}", c.provider, c.model.as_ref().map_or("auto", |m| m.as_str())),
        "provider": c.provider,
        "credits_per_image": c.credits_per_image.map(number),
        "credits": c.total_credits.map(number),
        "usd": c.total_usd.map(imagegen::Usd::to_f64),
        "price_is_cap": c.price_is_cap,
        "images_billed": c.images_billed,
        "quality": c.quality,
        "reason": c.reason,
        "warnings": c.warnings,
        "expected_seconds": c.expected_seconds,
    })
}

/// Runs one `list_models` call.
pub(crate) async fn models(shared: &Shared, params: ModelsParams) -> CallToolResult {
    let catalog = match shared.client.models().await {
        Ok(catalog) => catalog,
        Err(e) => return tool_error("provider_error", e.to_string(), json!({})),
    };
    let wanted = params.provider.as_deref().map(str::trim);
    let models: Vec<Value> = catalog
        .entries
        .iter()
        .filter(|e| wanted.is_none_or(|p| e.provider.as_str() == p))
        .map(|e| model(shared, e))
        .collect();
    let failures: Vec<Value> = catalog
        .failures
        .iter()
        .map(|f| json!({"provider": f.provider, "message": f.message}))
        .collect();
    data(json!({
        "models": models,
        "catalog_failures": failures,
        "simulated": shared.client.is_simulated(),
    }))
}

/// One model with its price at its default quality and its capabilities.
fn model(shared: &Shared, entry: &ModelEntry) -> Value {
    let default_quality = entry.capabilities.select_quality(None).ok().flatten();
    let credits_per_image = entry
        .price
        .per_image(default_quality, None)
        .unwrap_or(entry.price.per_image);
    let usd_per_image = shared
        .client
        .policy()
        .worth_of(&entry.provider)
        .and_then(|worth| worth.to_usd(credits_per_image));
    json!({
        "id": format!("{}/{}", entry.provider, entry.id),
        "provider": entry.provider,
        "model": entry.id,
        "display_name": entry.display_name,
        "credits_per_image": number(credits_per_image),
        "usd_per_image": usd_per_image.map(imagegen::Usd::to_f64),
        "capabilities": entry.capabilities,
        "deprecated": entry.deprecated,
        "recommended": entry.recommended,
        "typical_seconds": entry.typical_seconds,
    })
}

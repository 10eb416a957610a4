//! `imagegen models [--provider P]`: every model with its price and what it needs.

use imagegen::ModelEntry;
use imagegen::router::CatalogFailure;
use serde_json::json;

use super::{catalog_failure_code, connect, fail};
use crate::args::ModelsArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: ModelsArgs, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let client = match connect(&out, true).await {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    if let Some(provider) = &args.provider
        && !client.has_provider(provider.as_str())
    {
        let error = imagegen::Error::InvalidInput(imagegen::InvalidInput::new(
            "provider",
            format!(
                "{provider} is not configured (set {}_API_KEY)",
                provider.as_str().to_ascii_uppercase()
            ),
        ));
        return fail(&out, &error);
    }
    let catalog = match client.models().await {
        Ok(catalog) => catalog,
        Err(error) => return fail(&out, &error),
    };
    let models: Vec<&ModelEntry> = catalog
        .entries
        .iter()
        .filter(|m| args.provider.as_ref().is_none_or(|p| m.provider == *p))
        .collect();
    let failures: Vec<&CatalogFailure> = catalog
        .failures
        .iter()
        .filter(|f| args.provider.as_ref().is_none_or(|p| f.provider == *p))
        .collect();
    if out.json() {
        // The library's own types, as they serialize: one source for the JSON.
        out.emit(&json!({
            "models": models,
            "failures": failures,
        }));
    } else {
        out.line(format!(
            "{:<8} {:<22} {:>9}  {:<28} {}",
            "PROVIDER", "MODEL", "CR/IMAGE", "QUALITIES (CREDITS)", "NOTES"
        ));
        for m in &models {
            let qualities = m
                .capabilities
                .qualities
                .iter()
                .map(|q| format!("{} {}", q.name, q.per_image))
                .collect::<Vec<_>>()
                .join(", ");
            let mut notes = Vec::new();
            if let Some(plan) = &m.capabilities.required_plan {
                notes.push(format!("needs {plan} plan"));
            }
            if m.capabilities
                .qualities
                .iter()
                .any(|q| q.required_plan.is_some())
            {
                notes.push("some qualities need a plan".to_owned());
            }
            if m.capabilities.max_reference_images > 0 {
                notes.push(format!(
                    "{} ref images",
                    m.capabilities.max_reference_images
                ));
            }
            if m.deprecated {
                notes.push("deprecated".to_owned());
            }
            if let Some(secs) = m.typical_seconds {
                notes.push(format!("~{secs}s"));
            }
            out.line(format!(
                "{:<8} {:<22} {:>9}  {:<28} {}",
                m.provider.as_str(),
                m.id.as_str(),
                m.price.per_image.to_string(),
                qualities,
                notes.join(", ")
            ));
        }
    }
    for failure in &failures {
        out.error(format!(
            "the {} catalog could not be fetched: {}",
            failure.provider, failure.message
        ));
    }
    catalog_failure_code(failures.iter().copied()).unwrap_or(exit::OK)
}

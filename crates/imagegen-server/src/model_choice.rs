//! OpenAI's `model` field on imagegen's routing: which provider and model a request may
//! go to, checked against the merged catalog before anything is sent.
//!
//! | `model` | routes to |
//! |---|---|
//! | absent, `null` or `auto` | the cheapest capable model of any provider |
//! | `provider/model` (`kolbo/z-image/turbo`), as `GET /v1/models` lists it | that model of that provider |
//! | a model id (`gpt-image-2`, `z-image/turbo`) | that model, at the cheapest provider that has it |
//! | a provider (`koala`) | the cheapest capable model of that provider |
//! | `provider/auto` (`kolbo/auto`) | the provider's own pick (Kolbo's Smart Select) |
//! | anything else | 404 `model_not_found` |
//!
//! Model ids may hold slashes themselves (`z-image/turbo`): a first segment that names a
//! configured provider is the provider; otherwise the whole text is the model id. A name
//! not in the catalog is refused only when every provider's catalog was read (a provider
//! whose catalog failed may still have it: the router then decides).

use imagegen::router::MergedCatalog;
use imagegen::{CallOptions, ModelId, ProviderId};

use crate::openai_error::ApiError;

/// Applies the `model` field to `call`; see the [module docs](self).
pub(crate) fn apply(
    model: Option<&str>,
    catalog: &MergedCatalog,
    providers: &[ProviderId],
    mut call: CallOptions,
) -> Result<CallOptions, ApiError> {
    let Some(text) = model.map(str::trim) else {
        return Ok(call);
    };
    if text.is_empty() {
        return Err(ApiError::invalid(
            Some("model"),
            "The model is empty: use 'auto', or an id from GET /v1/models.",
        )
        .code("invalid_value"));
    }
    if text.eq_ignore_ascii_case("auto") {
        return Ok(call);
    }
    let provider_named = |name: &str| providers.iter().find(|p| p.as_str() == name).cloned();
    if let Some(provider) = provider_named(text) {
        call.provider = Some(provider);
        return Ok(call);
    }
    if let Some((first, rest)) = text.split_once('/')
        && let Some(provider) = provider_named(first)
    {
        if rest.eq_ignore_ascii_case("auto") {
            call.provider = Some(provider);
            call.provider_picks = true;
            return Ok(call);
        }
        let listed = catalog
            .entries
            .iter()
            .any(|e| e.provider == provider && e.id.as_str() == rest);
        let unread = catalog.failures.iter().any(|f| f.provider == provider);
        if listed || unread {
            call.provider = Some(provider);
            call.model = Some(ModelId::new(rest));
            return Ok(call);
        }
        return Err(unknown(text));
    }
    let listed = catalog.entries.iter().any(|e| e.id.as_str() == text);
    if listed || !catalog.failures.is_empty() {
        call.model = Some(ModelId::new(text));
        return Ok(call);
    }
    Err(unknown(text))
}

fn unknown(text: &str) -> ApiError {
    ApiError::not_found(format!(
        "The model `{text}` does not exist. Use 'auto' (the cheapest model that can take the request), or an id from GET /v1/models such as 'kolbo/z-image/turbo'."
    ))
    .param(Some("model"))
    .code("model_not_found")
}

#[cfg(test)]
mod tests {
    use imagegen::core::{Credits, ModelEntry, Price};

    use super::*;

    fn catalog() -> MergedCatalog {
        let entry = |provider: &str, id: &str| {
            ModelEntry::new(provider, id, Price::flat(Credits::whole(1)))
        };
        MergedCatalog {
            entries: vec![
                entry("kolbo", "z-image/turbo"),
                entry("kolbo", "gpt-image-2"),
                entry("koala", "gpt-image-2"),
            ],
            failures: Vec::new(),
            fetched_at: std::time::Duration::ZERO,
        }
    }

    fn route(model: &str) -> Result<CallOptions, ApiError> {
        let providers = [ProviderId::new("kolbo"), ProviderId::new("koala")];
        apply(Some(model), &catalog(), &providers, CallOptions::default())
    }

    #[test]
    fn openai_model_names_route() {
        assert_eq!(route("auto").unwrap(), CallOptions::default());
        assert_eq!(route(" AUTO ").unwrap(), CallOptions::default());
        let pinned = route("kolbo/z-image/turbo").unwrap();
        assert_eq!(pinned.provider, Some(ProviderId::new("kolbo")));
        assert_eq!(pinned.model, Some(ModelId::new("z-image/turbo")));
        let bare = route("z-image/turbo").unwrap();
        assert_eq!(
            (bare.provider, bare.model),
            (None, Some(ModelId::new("z-image/turbo")))
        );
        let anywhere = route("gpt-image-2").unwrap();
        assert_eq!(anywhere.provider, None);
        let provider = route("koala").unwrap();
        assert_eq!(
            (provider.provider, provider.model),
            (Some(ProviderId::new("koala")), None)
        );
        let smart = route("kolbo/auto").unwrap();
        assert!(smart.provider_picks);
        assert_eq!(smart.provider, Some(ProviderId::new("kolbo")));
    }

    #[test]
    fn unknown_models_are_404s() {
        for model in ["dall-e-3", "koala/z-image/turbo", "openai/gpt-image-1"] {
            let error = route(model).unwrap_err();
            assert_eq!(error.status(), axum::http::StatusCode::NOT_FOUND, "{model}");
            assert_eq!(error.param_name(), Some("model"));
        }
        assert_eq!(
            route(" ").unwrap_err().status(),
            axum::http::StatusCode::BAD_REQUEST
        );
    }
}

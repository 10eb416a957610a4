//! `GET /generate`: a request as a form (prompt, shape, count, model, quality, style),
//! prefilled from the query string (a detail page's "Re-run"). The page's script sends
//! the same JSON body the API takes to `POST /v1/estimate` as the choices change and
//! shows the ranked plans, then submits to `POST /v1/generations` and follows its
//! `/events` to a progress bar and the links to the images made.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use imagegen::core::StyleSupport;

use super::{Choice, Layout, param, query_pairs, render};
use crate::state::AppState;

/// The shapes offered: the `size` sent, its label, and its width over height.
pub(crate) const SHAPES: [(&str, &str, f64); 5] = [
    ("1024x1024", "Square (1:1)", 1.0),
    ("1536x1024", "Landscape (3:2)", 1.5),
    ("1024x1536", "Portrait (2:3)", 2.0 / 3.0),
    ("16:9", "Wide (16:9)", 16.0 / 9.0),
    ("9:16", "Tall (9:16)", 9.0 / 16.0),
];

/// The qualities offered beside `auto` (OpenAI's names, on imagegen's tiers).
pub(crate) const QUALITIES: [&str; 3] = ["low", "medium", "high"];

/// The most images the form asks for.
const MAX_COUNT: u32 = 4;

#[derive(Template)]
#[template(path = "gallery/generate.html")]
struct GeneratePage {
    layout: Layout,
    prompt: String,
    shapes: Vec<Choice>,
    count: u32,
    max_count: u32,
    models: Vec<Choice>,
    qualities: Vec<Choice>,
    styles: Vec<Choice>,
    notice: Option<String>,
}

/// `GET /generate`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let caller = match super::page_caller(&state, &headers, &uri).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let pairs = query_pairs(&uri);
    let shape = param(&pairs, "shape").unwrap_or_else(|| SHAPES[0].0.to_owned());
    let model = param(&pairs, "model").unwrap_or_else(|| "auto".to_owned());
    let quality = param(&pairs, "quality").unwrap_or_else(|| "auto".to_owned());
    let style = param(&pairs, "style").unwrap_or_default();
    let count = param(&pairs, "count")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_COUNT);
    let (catalog, notice) = match state.client.models().await {
        Ok(catalog) => (Some(catalog), None),
        Err(e) => (
            None,
            Some(format!("The model list could not be read ({e}).")),
        ),
    };
    let mut models = vec![Choice::new("auto", "auto (the cheapest that can)", &model)];
    let mut styles = vec![Choice::new("", "none", &style)];
    if let Some(catalog) = &catalog {
        for entry in &catalog.entries {
            let id = format!("{}/{}", entry.provider, entry.id);
            models.push(Choice::new(id.clone(), id, &model));
            // KoalaImages' documented styles (the catalog names them); once each.
            if let StyleSupport::Named(names) = &entry.capabilities.styles {
                for name in names {
                    if !styles.iter().any(|s| s.value.eq_ignore_ascii_case(name)) {
                        styles.push(Choice::new(name.as_str(), name.as_str(), &style));
                    }
                }
            }
        }
    }
    // A re-run of a model no longer listed, or a style of its own, is still offered.
    if !models.iter().any(|m| m.selected) {
        models.push(Choice::new(model.as_str(), model.as_str(), &model));
    }
    if !styles.iter().any(|s| s.selected) {
        styles.push(Choice::new(style.as_str(), style.as_str(), &style));
    }
    let mut qualities = vec![Choice::new("auto", "auto (the model's default)", &quality)];
    qualities.extend(QUALITIES.iter().map(|q| Choice::new(*q, *q, &quality)));
    if !qualities.iter().any(|q| q.selected) {
        qualities.push(Choice::new(quality.as_str(), quality.as_str(), &quality));
    }
    let page = GeneratePage {
        layout: Layout::new("Generate", "generate", &caller),
        prompt: param(&pairs, "prompt").unwrap_or_default(),
        shapes: SHAPES
            .iter()
            .map(|(value, label, _)| Choice::new(*value, *label, &shape))
            .collect(),
        count,
        max_count: MAX_COUNT,
        models,
        qualities,
        styles,
        notice,
    };
    render(StatusCode::OK, &page)
}

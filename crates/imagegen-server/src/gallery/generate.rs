//! `GET /generate`: a request as a form (prompt, shape, count, model, quality, style,
//! reference image URLs, and Kolbo's moodboard and visual DNA), prefilled from the query
//! string (a detail page's "Re-run"). The page's script sends the same JSON body the API
//! takes to `POST /v1/estimate` as the choices change and shows the ranked plans (a Kolbo
//! option leaves only Kolbo's models, the others listed with the router's reason), then
//! submits to `POST /v1/generations` and follows its `/events` to a progress bar and the
//! links to the images made. A bad value is the API's 400, shown on the form.
//!
//! The moodboards and visual DNAs offered are the Kolbo account's own, read through the
//! facade ([`imagegen::Client::moodboards`], [`imagegen::Client::visual_dna`]) and kept
//! for [`LIBRARY_TTL`] in [`KolboLibrary`] (Kolbo counts a moodboard read against its
//! generation rate limit). When a list cannot be read, the form asks for ids instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use imagegen::RequestOptions;
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

/// The reference image fields offered when the catalog cannot say how many models take.
const DEFAULT_MAX_REFERENCES: u32 = 4;

/// How long the Kolbo account's moodboards and visual DNAs are kept once read.
pub(crate) const LIBRARY_TTL: Duration = Duration::from_secs(300);

/// How long a failed read is kept before a page load tries again.
const FAILED_LIBRARY_TTL: Duration = Duration::from_secs(30);

/// The longest the page waits for the lists (a moodboard read may wait on Kolbo's
/// generation rate limit); past it, the form asks for ids.
const LIBRARY_READ_LIMIT: Duration = Duration::from_secs(5);

/// One moodboard or visual DNA of the account: its id and how the form names it.
#[derive(Debug, Clone)]
struct Named {
    id: String,
    label: String,
}

/// The Kolbo account's moodboards and visual DNAs, each list or why it could not be read.
#[derive(Debug)]
struct Library {
    moodboards: Result<Vec<Named>, String>,
    visual_dna: Result<Vec<Named>, String>,
}

/// The Kolbo account's moodboards and visual DNAs as the form offers them, read at most
/// once per [`LIBRARY_TTL`] (after a failed read, once per [`FAILED_LIBRARY_TTL`]).
#[derive(Debug, Default)]
pub(crate) struct KolboLibrary {
    cached: tokio::sync::Mutex<Option<(Instant, Arc<Library>)>>,
}

impl KolboLibrary {
    /// The lists, from the cache while fresh, else read from Kolbo (one read at a time).
    async fn get(&self, client: &imagegen::Client) -> Arc<Library> {
        let mut cached = self.cached.lock().await;
        if let Some((until, library)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Arc::clone(library);
        }
        let slow = || format!("Kolbo did not answer in {} s", LIBRARY_READ_LIMIT.as_secs());
        let (moodboards, visual_dna) = tokio::join!(
            tokio::time::timeout(LIBRARY_READ_LIMIT, client.moodboards()),
            tokio::time::timeout(LIBRARY_READ_LIMIT, client.visual_dna()),
        );
        let library = Arc::new(Library {
            moodboards: moodboards
                .map_err(|_| slow())
                .and_then(|read| read.map_err(|e| e.to_string()))
                .map(|list| {
                    list.into_iter()
                        .map(|m| Named {
                            label: name_or_id(m.name, &m.id),
                            id: m.id,
                        })
                        .collect()
                }),
            visual_dna: visual_dna
                .map_err(|_| slow())
                .and_then(|read| read.map_err(|e| e.to_string()))
                .map(|list| {
                    list.into_iter()
                        .map(|d| {
                            let name = name_or_id(d.name, &d.id);
                            Named {
                                label: match d.dna_type.filter(|t| !t.trim().is_empty()) {
                                    Some(kind) => format!("{name} ({kind})"),
                                    None => name,
                                },
                                id: d.id,
                            }
                        })
                        .collect()
                }),
        });
        let ttl = if library.moodboards.is_ok() && library.visual_dna.is_ok() {
            LIBRARY_TTL
        } else {
            FAILED_LIBRARY_TTL
        };
        *cached = Some((Instant::now() + ttl, Arc::clone(&library)));
        library
    }
}

fn name_or_id(name: Option<String>, id: &str) -> String {
    name.map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.to_owned())
}

/// A checkbox.
#[derive(Debug, Clone)]
struct Check {
    /// Its element id.
    id: String,
    value: String,
    label: String,
    checked: bool,
}

/// Kolbo's fields: a list to pick from when the account's could be read, else an id field
/// with the reason.
#[derive(Debug, Clone)]
struct KolboFields {
    /// The moodboards to pick from (`none` first), when the account's were read.
    moodboards: Option<Vec<Choice>>,
    /// Why the account's moodboards could not be read: an id field instead.
    moodboard_error: Option<String>,
    /// The moodboard asked (the id field's value).
    moodboard: String,
    /// The visual DNAs to tick, when the account's were read.
    visual_dna: Option<Vec<Check>>,
    /// Why the account's visual DNAs could not be read: an id field instead.
    visual_dna_error: Option<String>,
    /// The visual DNA ids asked, comma-separated (the id field's value).
    visual_dna_text: String,
    /// The most visual DNA ids one request takes.
    max_visual_dna: usize,
}

impl KolboFields {
    fn new(library: &Library, moodboard: &str, visual_dna: &[String]) -> Self {
        let mut fields = Self {
            moodboards: None,
            moodboard_error: None,
            moodboard: moodboard.to_owned(),
            visual_dna: None,
            visual_dna_error: None,
            visual_dna_text: visual_dna.join(", "),
            max_visual_dna: RequestOptions::MAX_VISUAL_DNA,
        };
        match &library.moodboards {
            Ok(list) => {
                let mut choices = vec![Choice::new("", "none", moodboard)];
                choices.extend(
                    list.iter()
                        .map(|m| Choice::new(m.id.as_str(), m.label.as_str(), moodboard)),
                );
                // A re-run's moodboard no longer listed is still offered.
                if !choices.iter().any(|c| c.selected) {
                    choices.push(Choice::new(moodboard, moodboard, moodboard));
                }
                fields.moodboards = Some(choices);
            }
            Err(e) => fields.moodboard_error = Some(e.clone()),
        }
        match &library.visual_dna {
            Ok(list) => {
                let mut offered: Vec<(String, String)> = list
                    .iter()
                    .map(|d| (d.id.clone(), d.label.clone()))
                    .collect();
                // A re-run's visual DNA no longer listed is still offered.
                for id in visual_dna {
                    if !offered.iter().any(|(value, _)| value == id) {
                        offered.push((id.clone(), id.clone()));
                    }
                }
                fields.visual_dna = Some(
                    offered
                        .into_iter()
                        .enumerate()
                        .map(|(i, (value, label))| Check {
                            id: format!("dna-{}", i + 1),
                            checked: visual_dna.contains(&value),
                            value,
                            label,
                        })
                        .collect(),
                );
            }
            Err(e) => fields.visual_dna_error = Some(e.clone()),
        }
        fields
    }
}

/// A reference image URL field.
#[derive(Debug, Clone)]
struct Reference {
    /// Its element id.
    id: String,
    /// Its place, from 1 (in its label).
    number: usize,
    value: String,
}

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
    /// The reference image fields (at least one).
    references: Vec<Reference>,
    /// The most reference images any model takes: the fields the form adds up to.
    max_references: usize,
    /// Whether to show the reference image fields (some model takes them, or some asked).
    offer_references: bool,
    /// Kolbo's fields, when Kolbo is configured.
    kolbo: Option<KolboFields>,
    notice: Option<String>,
}

/// Every non-empty value of `name` in `pairs`, trimmed, in order.
fn params(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
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
    let moodboard = param(&pairs, "moodboard_id").unwrap_or_default();
    // Ticked boxes come one a value; an id field, comma-separated.
    let visual_dna: Vec<String> = params(&pairs, "visual_dna_ids")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .fold(Vec::new(), |mut ids, id| {
            if !ids.contains(&id) {
                ids.push(id);
            }
            ids
        });
    let reference_urls = params(&pairs, "reference_images");
    let kolbo_configured = state.client.has_provider("kolbo");
    let (catalog, library) = tokio::join!(state.client.models(), async {
        if kolbo_configured {
            Some(state.kolbo_library.get(&state.client).await)
        } else {
            None
        }
    });
    let (catalog, notice) = match catalog {
        Ok(catalog) => (Some(catalog), None),
        Err(e) => (
            None,
            Some(format!("The model list could not be read ({e}).")),
        ),
    };
    let mut models = vec![Choice::new("auto", "auto (the cheapest that can)", &model)];
    let mut styles = vec![Choice::new("", "none", &style)];
    let mut max_references = 0;
    if let Some(catalog) = &catalog {
        for entry in &catalog.entries {
            let id = format!("{}/{}", entry.provider, entry.id);
            models.push(Choice::new(id.clone(), id, &model));
            max_references = max_references.max(entry.capabilities.max_reference_images);
            // KoalaImages' documented styles (the catalog names them); once each.
            if let StyleSupport::Named(names) = &entry.capabilities.styles {
                for name in names {
                    if !styles.iter().any(|s| s.value.eq_ignore_ascii_case(name)) {
                        styles.push(Choice::new(name.as_str(), name.as_str(), &style));
                    }
                }
            }
        }
    } else {
        max_references = DEFAULT_MAX_REFERENCES;
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
    // One field at least, and one for each URL asked (even past what models take: the
    // estimate then says why no model can).
    let mut references: Vec<Reference> = reference_urls
        .into_iter()
        .chain(std::iter::once(String::new()))
        .enumerate()
        .map(|(i, value)| Reference {
            id: format!("ref-{}", i + 1),
            number: i + 1,
            value,
        })
        .collect();
    if references.len() > 1 {
        references.pop();
    }
    let offer_references = max_references > 0 || references.iter().any(|r| !r.value.is_empty());
    let max_references = usize::try_from(max_references)
        .unwrap_or(usize::MAX)
        .max(references.len());
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
        references,
        max_references,
        offer_references,
        kolbo: library.map(|library| KolboFields::new(&library, &moodboard, &visual_dna)),
        notice,
    };
    render(StatusCode::OK, &page)
}

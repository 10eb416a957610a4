//! `GET /images/{provider}/{job_id}/{index}`: one saved image with everything the
//! ledger knows of it (prompt, the prompt sent, provider and model, the route its job
//! took, credits and dollars, timings, the file), a link to download it, one to run the
//! same request again, and one to delete it: `GET …/delete` asks, `POST …/delete`
//! removes the ledger's row, then the file and its thumbnail unless another row still
//! names the same file, and goes back to the grid.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use imagegen_ledger::{ImageEntry, ImageKey};
use serde_json::Value;

use super::{Layout, detail_path, error_page, query_value, render, see_other, time};
use crate::auth::Caller;
use crate::state::AppState;

/// One line of the route: a field of the plan the job was sent with.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    value: String,
}

#[derive(Template)]
#[template(path = "gallery/detail.html")]
struct DetailPage {
    layout: Layout,
    image_src: String,
    alt: String,
    prompt: String,
    revised_prompt: Option<String>,
    provider: String,
    model: String,
    route: Vec<Field>,
    credits: String,
    usd: Option<String>,
    accepted: String,
    finished: String,
    duration: String,
    sha256: String,
    bytes: String,
    dimensions: String,
    mime: String,
    file_name: String,
    download: String,
    rerun: String,
    delete: String,
}

#[derive(Template)]
#[template(path = "gallery/delete.html")]
struct DeletePage {
    layout: Layout,
    image_src: String,
    alt: String,
    prompt: String,
    action: String,
    back: String,
}

/// The image a path names and its caller may see, or the page that says why not.
async fn find(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    (provider, job_id, index): (String, String, String),
) -> Result<(Caller, ImageKey, ImageEntry), Response> {
    let caller = super::page_caller(state, headers, uri).await?;
    let not_found = || error_page(StatusCode::NOT_FOUND, "There is no such image.");
    let index: u32 = index.parse().map_err(|_| not_found())?;
    let key = ImageKey::new(provider, job_id, index);
    let entry = match state.ledger.image(&key).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "the gallery could not read the ledger");
            return Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The ledger could not be read.",
            ));
        }
    };
    // A key holder sees only what its key paid for; another's is not there for it.
    if let Caller::Key(record) = &caller
        && entry.job.api_key != Some(record.id)
    {
        return Err(not_found());
    }
    Ok((caller, key, entry))
}

/// The file name the store serves the image under, when it is in the store.
fn stored_name(state: &AppState, entry: &ImageEntry) -> Option<String> {
    let name = entry.image.path.file_name()?.to_str()?.to_owned();
    let (path, _) = state.store.locate(&name)?;
    (path == entry.image.path).then_some(name)
}

/// The image's URL on the page: the stored file, else its thumbnail.
fn image_src(state: &AppState, entry: &ImageEntry) -> String {
    match (stored_name(state, entry), &entry.image.sha256) {
        (Some(name), _) => format!("/v1/files/{name}"),
        (None, Some(sha)) => format!("/thumbs/{sha}.jpg"),
        (None, None) => String::new(),
    }
}

/// `GET /images/{provider}/{job_id}/{index}`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (caller, key, entry) = match find(&state, &headers, &uri, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let job = &entry.job;
    let image = &entry.image;
    let plan: Option<Value> = job
        .plan_json
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    let sent_prompt = plan
        .as_ref()
        .and_then(|p| p.get("prompt"))
        .and_then(Value::as_str)
        .filter(|sent| *sent != job.prompt)
        .map(str::to_owned);
    let model = job.model.as_ref().map_or("", |m| m.as_str()).to_owned();
    let route = plan.as_ref().map(route_fields).unwrap_or_default();
    let charged = job.charged;
    let usd = charged.and_then(|credits| {
        state
            .client
            .policy()
            .worth_of(&job.provider)?
            .to_usd(credits)
            .map(|usd| usd.to_string())
    });
    let duration = job
        .finished_at_ms
        .map(|done| time::format_duration(done.saturating_sub(job.accepted_at_ms)));
    let file_name = stored_name(&state, &entry).unwrap_or_default();
    let dimensions = match (image.width, image.height) {
        (Some(w), Some(h)) => format!("{w} × {h} px"),
        _ => "unknown".to_owned(),
    };
    let page = DetailPage {
        layout: Layout::new("Image", "", &caller),
        image_src: image_src(&state, &entry),
        alt: super::grid::alt_of(&entry),
        prompt: job.prompt.clone(),
        revised_prompt: sent_prompt,
        provider: job.provider.to_string(),
        model: if model.is_empty() {
            "chosen by the provider".to_owned()
        } else {
            model.clone()
        },
        route,
        credits: charged.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
        usd,
        accepted: time::format_ms(job.accepted_at_ms),
        finished: job
            .finished_at_ms
            .map_or_else(|| "not yet".to_owned(), time::format_ms),
        duration: duration.unwrap_or_else(|| "unknown".to_owned()),
        sha256: image.sha256.clone().unwrap_or_else(|| "unknown".to_owned()),
        bytes: image
            .bytes
            .map_or_else(|| "unknown".to_owned(), |b| format!("{b} bytes")),
        dimensions,
        mime: image.mime.clone().unwrap_or_else(|| "unknown".to_owned()),
        download: if file_name.is_empty() {
            String::new()
        } else {
            format!("/v1/files/{file_name}")
        },
        file_name,
        rerun: rerun_link(&entry, plan.as_ref(), &model),
        delete: format!(
            "{}/delete",
            detail_path(key.provider.as_str(), &key.job_id, key.index)
        ),
    };
    render(StatusCode::OK, &page)
}

/// The plan's fields as the route shows them: scalars as they are, anything else as
/// compact JSON; the prompt is shown above, not here.
fn route_fields(plan: &Value) -> Vec<Field> {
    let Some(object) = plan.as_object() else {
        return vec![Field {
            name: "plan".to_owned(),
            value: plan.to_string(),
        }];
    };
    object
        .iter()
        .filter(|(name, _)| name.as_str() != "prompt")
        .map(|(name, value)| Field {
            name: name.replace('_', " "),
            value: match value {
                Value::String(text) => text.clone(),
                Value::Null => "none".to_owned(),
                // A model choice (`{"kind": "exact", "id": …}`) reads as its id.
                Value::Object(map) if map.get("id").is_some_and(Value::is_string) => map
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                other => other.to_string(),
            },
        })
        .collect()
}

/// `/generate?…` with the image's request: prompt, model, shape, count, quality, style,
/// reference images, moodboard and visual DNA.
fn rerun_link(entry: &ImageEntry, plan: Option<&Value>, model: &str) -> String {
    let mut pairs = vec![("prompt", entry.job.prompt.clone())];
    if !model.is_empty() {
        pairs.push(("model", format!("{}/{model}", entry.job.provider)));
    }
    if let Some(shape) = shape_of(entry.image.width, entry.image.height) {
        pairs.push(("shape", shape.to_owned()));
    }
    let count = plan
        .and_then(|p| p.get("images"))
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 4);
    pairs.push(("count", count.to_string()));
    if let Some(quality) = plan
        .and_then(|p| p.get("quality"))
        .and_then(Value::as_str)
        .filter(|q| super::generate::QUALITIES.contains(q))
    {
        pairs.push(("quality", quality.to_owned()));
    }
    if let Some(style) = plan.and_then(|p| p.get("style")).and_then(style_name) {
        pairs.push(("style", style));
    }
    // Reference images, and Kolbo's moodboard and visual DNA as the plan sent them.
    let strings = |value: Option<&Value>| -> Vec<String> {
        match value {
            Some(Value::String(text)) => vec![text.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let options = plan.and_then(|p| p.get("options"));
    for (name, value) in [
        (
            "reference_images",
            plan.and_then(|p| p.get("reference_images")),
        ),
        ("moodboard_id", options.and_then(|o| o.get("moodboard_id"))),
        (
            "visual_dna_ids",
            options.and_then(|o| o.get("visual_dna_ids")),
        ),
    ] {
        pairs.extend(strings(value).into_iter().map(|text| (name, text)));
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", query_value(value)))
        .collect();
    format!("/generate?{}", query.join("&"))
}

/// The style name in a plan's `style` (`{"field": "anime"}`, or a bare name).
fn style_name(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(map) => map.values().find_map(style_name),
        _ => None,
    }
}

/// The generate page's shape nearest an image of `width` × `height`.
fn shape_of(width: Option<u32>, height: Option<u32>) -> Option<&'static str> {
    let (w, h) = (f64::from(width?), f64::from(height?));
    if w <= 0.0 || h <= 0.0 {
        return None;
    }
    let ratio = (w / h).ln();
    super::generate::SHAPES
        .iter()
        .min_by(|a, b| {
            (a.2.ln() - ratio)
                .abs()
                .total_cmp(&(b.2.ln() - ratio).abs())
        })
        .map(|(value, _, _)| *value)
}

/// `GET /images/{provider}/{job_id}/{index}/delete`: are you sure?
pub(crate) async fn confirm_delete(
    State(state): State<Arc<AppState>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (caller, key, entry) = match find(&state, &headers, &uri, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = detail_path(key.provider.as_str(), &key.job_id, key.index);
    let page = DeletePage {
        layout: Layout::new("Delete this image?", "", &caller),
        image_src: image_src(&state, &entry),
        alt: super::grid::alt_of(&entry),
        prompt: entry.job.prompt.clone(),
        action: format!("{back}/delete"),
        back,
    };
    render(StatusCode::OK, &page)
}

/// `POST /images/{provider}/{job_id}/{index}/delete`: removes it, then 303 to `/`.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(refused) = super::check_same_origin(&state, &headers) {
        return *refused;
    }
    let (_, key, entry) = match find(&state, &headers, &uri, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let deleted = match state.ledger.delete_image(&key).await {
        Ok(Some(deleted)) => deleted,
        // Gone meanwhile: what was asked is done.
        Ok(None) => return see_other("/"),
        Err(e) => {
            tracing::error!(error = %e, "an image could not be deleted from the ledger");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The image could not be deleted: the ledger failed.",
            );
        }
    };
    tracing::info!(provider = %key.provider, job = %key.job_id, index = key.index, "an image was deleted from the gallery");
    if !deleted.file_still_used {
        // Only the store's own files: an image the CLI saved elsewhere stays where it is.
        if stored_name(&state, &entry).is_some() {
            remove(&deleted.path).await;
        }
        if let Some(sha) = &entry.image.sha256 {
            remove(&super::thumbs::thumb_path(&state.store, sha)).await;
        }
    }
    see_other("/")
}

/// Removes `path`, which may be gone already.
async fn remove(path: &std::path::Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "a deleted image's file could not be removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_the_nearest_offered() {
        assert_eq!(shape_of(Some(64), Some(64)), Some("1024x1024"));
        assert_eq!(shape_of(Some(1536), Some(1024)), Some("1536x1024"));
        assert_eq!(shape_of(Some(1024), Some(1536)), Some("1024x1536"));
        assert_eq!(shape_of(Some(1920), Some(1080)), Some("16:9"));
        assert_eq!(shape_of(None, Some(1)), None);
    }

    #[test]
    fn styles_are_read_from_a_plan() {
        assert_eq!(
            style_name(&serde_json::json!({"field": "anime"})),
            Some("anime".to_owned())
        );
        assert_eq!(style_name(&serde_json::json!(3)), None);
    }
}

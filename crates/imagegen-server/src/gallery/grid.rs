//! `GET /`: the saved images, newest first, 40 a page (`?after=<cursor>` the next), as
//! thumbnails linking to their pages, narrowed by a GET form (provider, model, UTC days
//! from and to, text in the prompt). `GET /gallery/feed?since=<ms>` (same filters)
//! answers the images recorded since as JSON, which the page polls to show new images
//! without a reload.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use imagegen_ledger::{ImageCursor, ImageEntry, ImageKey, ImageQuery};
use serde::Serialize;
use serde_json::json;

use super::{Choice, Layout, param, query_pairs, query_value, render, time};
use crate::auth::Caller;
use crate::openai_error::ApiError;
use crate::state::AppState;

/// Images a page shows.
pub(crate) const PAGE: u32 = 40;

/// The grid's filters, as the form sends them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filters {
    provider: Option<String>,
    /// `provider/model`.
    model: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
}

impl Filters {
    fn read(pairs: &[(String, String)]) -> Self {
        Self {
            provider: param(pairs, "provider").filter(|p| p != "any"),
            model: param(pairs, "model").filter(|m| m != "any"),
            from: param(pairs, "from"),
            to: param(pairs, "to"),
            q: param(pairs, "q"),
        }
    }

    /// The query for `caller` (its own images only when it holds a key); `None` when
    /// the filters contradict each other (a model of another provider): nothing matches.
    fn query(&self, caller: &Caller, limit: u32) -> Option<ImageQuery> {
        let mut query = ImageQuery::newest(limit);
        if let Some(provider) = &self.provider {
            query = query.from_provider(provider.as_str());
        }
        if let Some(model) = &self.model {
            // `provider/model`: both, as one model name can be two providers'.
            let (provider, model) = model.split_once('/')?;
            if self.provider.as_deref().is_some_and(|p| p != provider) {
                return None;
            }
            query = query.from_provider(provider).from_model(model);
        }
        let since = self.from.as_deref().and_then(time::day_start_ms);
        let until = self.to.as_deref().and_then(time::day_end_ms);
        query = query.between(since, until);
        if let Some(q) = &self.q {
            query = query.matching(q.as_str());
        }
        if let Caller::Key(record) = caller {
            query = query.paid_by(record.id);
        }
        Some(query)
    }

    /// The filters as a query string (`provider=…&model=…`), empty ones left out.
    fn to_query(&self) -> String {
        [
            ("provider", &self.provider),
            ("model", &self.model),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ]
        .iter()
        .filter_map(|(name, value)| {
            value
                .as_deref()
                .map(|v| format!("{name}={}", query_value(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// One thumbnail of the grid.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Tile {
    /// Its page.
    href: String,
    /// Its thumbnail.
    thumb: String,
    /// The alt text: the image's, else its prompt.
    alt: String,
    /// The model that made it, as `provider/model`.
    caption: String,
    /// When it was recorded.
    created_at_ms: u64,
}

impl Tile {
    fn of(entry: &ImageEntry) -> Self {
        let image = &entry.image;
        let thumb = image.sha256.as_deref().map_or_else(
            || "/assets/none.jpg".to_owned(),
            |sha| format!("/thumbs/{sha}.jpg"),
        );
        let model = entry
            .job
            .model
            .as_ref()
            .map_or("auto", |m| m.as_str())
            .to_owned();
        Self {
            href: super::detail_path(image.provider.as_str(), &image.job_id, image.index),
            thumb,
            alt: alt_of(entry),
            caption: format!("{}/{model}", image.provider),
            created_at_ms: image.created_at_ms,
        }
    }
}

/// An image's alt text, else its prompt.
pub(crate) fn alt_of(entry: &ImageEntry) -> String {
    entry
        .image
        .alt_text
        .clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| entry.job.prompt.clone())
}

#[derive(Template)]
#[template(path = "gallery/grid.html")]
struct GridPage {
    layout: Layout,
    tiles: Vec<Tile>,
    providers: Vec<Choice>,
    models: Vec<Choice>,
    from: String,
    to: String,
    q: String,
    /// The next page's URL, when there is one.
    more: Option<String>,
    /// The feed the page polls (first pages only).
    feed: Option<String>,
    /// The newest image's time, where the feed starts.
    since: u64,
    /// Whether any filter is set.
    filtered: bool,
    notice: Option<String>,
}

/// `GET /`.
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
    let filters = Filters::read(&pairs);
    let after = param(&pairs, "after").and_then(|c| parse_cursor(&c));
    let query = filters
        .query(&caller, PAGE + 1)
        .map(|query| match after.clone() {
            Some(cursor) => query.after(cursor),
            None => query,
        });
    let found = match &query {
        Some(query) => state.ledger.images(query).await,
        None => Ok(Vec::new()),
    };
    let mut entries = match found {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(error = %e, "the gallery could not read the ledger");
            return super::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The ledger could not be read.",
            );
        }
    };
    let more = (entries.len() > PAGE as usize).then(|| {
        entries.truncate(PAGE as usize);
        let mut link = filters.to_query();
        if !link.is_empty() {
            link.push('&');
        }
        let cursor = entries.last().map(|e| cursor_text(&e.cursor()));
        format!("/?{link}after={}", query_value(&cursor.unwrap_or_default()))
    });
    let (catalog, notice) = match state.client.models().await {
        Ok(catalog) => (Some(catalog), None),
        Err(e) => (
            None,
            Some(format!("The model list could not be read ({e}).")),
        ),
    };
    let provider = filters.provider.clone().unwrap_or_default();
    let model = filters.model.clone().unwrap_or_default();
    let mut providers = vec![Choice::new("", "any", &provider)];
    providers.extend(
        state
            .client
            .providers()
            .iter()
            .map(|p| Choice::new(p.as_str(), p.as_str(), &provider)),
    );
    let mut models = vec![Choice::new("", "any", &model)];
    if let Some(catalog) = &catalog {
        models.extend(catalog.entries.iter().map(|e| {
            let id = format!("{}/{}", e.provider, e.id);
            Choice::new(id.clone(), id, &model)
        }));
    }
    let filtered = !filters.to_query().is_empty();
    let tiles: Vec<Tile> = entries.iter().map(Tile::of).collect();
    let since = tiles.first().map_or(state.now_ms(), |t| t.created_at_ms);
    let feed = after.is_none().then(|| {
        let query = filters.to_query();
        if query.is_empty() {
            "/gallery/feed?".to_owned()
        } else {
            format!("/gallery/feed?{query}&")
        }
    });
    let page = GridPage {
        layout: Layout::new("Gallery", "gallery", &caller),
        tiles,
        providers,
        models,
        from: filters.from.clone().unwrap_or_default(),
        to: filters.to.clone().unwrap_or_default(),
        q: filters.q.clone().unwrap_or_default(),
        more,
        feed,
        since,
        filtered,
        notice,
    };
    render(StatusCode::OK, &page)
}

/// `GET /gallery/feed?since=<ms>&…filters`: the images recorded at or after `since`,
/// newest first, as `{"tiles": [{href, thumb, alt, caption, created_at_ms}]}`.
pub(crate) async fn feed(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let caller = match state.auth.caller(&headers).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let pairs = query_pairs(&uri);
    let filters = Filters::read(&pairs);
    let since = param(&pairs, "since")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| state.now_ms());
    let found = match filters.query(&caller, PAGE) {
        Some(mut query) => {
            query.since_ms = Some(query.since_ms.map_or(since, |s| s.max(since)));
            state.ledger.images(&query).await
        }
        None => Ok(Vec::new()),
    };
    match found {
        Ok(entries) => {
            let tiles: Vec<Tile> = entries.iter().map(Tile::of).collect();
            axum::Json(json!({"tiles": tiles})).into_response()
        }
        Err(e) => ApiError::internal(format!("the ledger: {e}"))
            .code("ledger_error")
            .into_response(),
    }
}

/// A cursor as the `after` parameter carries it: `<ms>:<index>:<provider>:<job id>`.
fn cursor_text(cursor: &ImageCursor) -> String {
    format!(
        "{}:{}:{}:{}",
        cursor.created_at_ms, cursor.key.index, cursor.key.provider, cursor.key.job_id
    )
}

/// The cursor `text` names, when well formed.
fn parse_cursor(text: &str) -> Option<ImageCursor> {
    let mut parts = text.splitn(4, ':');
    let created_at_ms = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    let provider = parts.next().filter(|p| !p.is_empty())?;
    let job_id = parts.next().filter(|j| !j.is_empty())?;
    Some(ImageCursor::new(
        created_at_ms,
        ImageKey::new(provider, job_id, index),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = ImageCursor::new(1_700, ImageKey::new("kolbo", "job:with:colons", 3));
        assert_eq!(parse_cursor(&cursor_text(&cursor)), Some(cursor));
        assert_eq!(parse_cursor("x:1:a:b"), None);
        assert_eq!(parse_cursor("1:1:a:"), None);
    }
}

//! The gallery: web pages served by the gateway at `/`, for people rather than
//! clients. Server-rendered HTML ([askama](https://docs.rs/askama) templates in
//! `templates/gallery/`, checked at compile time, everything escaped) and a little
//! vanilla JavaScript (`assets/gallery.js`).
//!
//! | page | module |
//! |---|---|
//! | `GET /`: the saved images, newest first, filtered, 40 a page; `GET /gallery/feed` the new ones as JSON | [`grid`] |
//! | `GET /images/{provider}/{job_id}/{index}`: one image, its prompt, route, price, timings and file; `…/delete` confirms and removes it | [`detail`] |
//! | `GET /generate`: a request, estimated as it is written, then run with its progress | [`generate`] |
//! | `GET /spend`: spend per provider per day, totals, each key's budget | [`spend`] |
//! | `GET /thumbs/<sha256>.jpg`: a 256 px JPEG of a stored image | [`thumbs`] |
//! | `GET`/`POST /login`, `/logout`: the key a browser uses, in a cookie | [`session`] |
//! | `GET /assets/gallery.css`, `/assets/gallery.js` | here |
//!
//! Access is the API's ([`crate::auth`]): with no gateway key, this machine only and no
//! login; with keys, a page needs one (a request without is sent to `/login`), and a
//! key holder sees only what its key paid for. Every form POST must come from the
//! gallery itself (`Origin`, else `Sec-Fetch-Site`), so another site's form cannot
//! delete an image or sign a browser in. The routes are HTML, not part of the OpenAPI
//! document: they live in [`router`], merged beside the API's route table.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, ORIGIN, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::auth::Caller;
use crate::state::AppState;

pub(crate) mod detail;
pub(crate) mod generate;
pub(crate) mod grid;
pub(crate) mod session;
pub(crate) mod spend;
pub(crate) mod thumbs;
mod time;

/// The gallery's routes (HTML, so not in the API's route table).
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(grid::page))
        .route("/gallery/feed", get(grid::feed))
        .route("/images/{provider}/{job_id}/{index}", get(detail::page))
        .route(
            "/images/{provider}/{job_id}/{index}/delete",
            get(detail::confirm_delete).post(detail::delete),
        )
        .route("/generate", get(generate::page))
        .route("/spend", get(spend::page))
        .route("/thumbs/{name}", get(thumbs::get))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", get(session::logout).post(session::logout_post))
        .route("/assets/gallery.css", get(css))
        .route("/assets/gallery.js", get(js))
}

const CSS: &str = include_str!("../../assets/gallery.css");
const JS: &str = include_str!("../../assets/gallery.js");

/// FNV-1a of both assets, at compile time: the `?v=` the pages link them with, so a
/// changed asset is a new URL and the old ones can be cached for good.
const ASSET_HASH: u64 = {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut pass = 0;
    while pass < 2 {
        let bytes = if pass == 0 {
            CSS.as_bytes()
        } else {
            JS.as_bytes()
        };
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
            i += 1;
        }
        pass += 1;
    }
    hash
};

/// The assets' version, as the pages' links carry it.
fn asset_version() -> String {
    format!("{ASSET_HASH:016x}")
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(mime: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(mime)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// What the base layout shows on every page.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The page's title (also its `h1`).
    pub(crate) title: String,
    /// Which nav link is this page's: `gallery`, `generate`, `spend` or empty.
    pub(crate) current: &'static str,
    /// The assets' version.
    pub(crate) version: String,
    /// Whether the browser signed in with a key (then it can sign out).
    pub(crate) signed_in: bool,
}

impl Layout {
    pub(crate) fn new(title: impl Into<String>, current: &'static str, caller: &Caller) -> Self {
        Self {
            title: title.into(),
            current,
            version: asset_version(),
            signed_in: matches!(caller, Caller::Key(_)),
        }
    }

    /// A layout with no caller (the login page).
    pub(crate) fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            current: "",
            version: asset_version(),
            signed_in: false,
        }
    }
}

/// A page that explains why it could not show what was asked.
#[derive(Template)]
#[template(path = "gallery/error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

/// An HTML error page with `status`.
pub(crate) fn error_page(status: StatusCode, message: impl Into<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error").to_owned();
    let page = ErrorPage {
        layout: Layout::anonymous(title),
        message: message.into(),
    };
    render(status, &page)
}

/// A rendered template as an HTML response, with the gallery's headers.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "a gallery page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

/// `body` as an HTML response: never cached (it shows what the caller may see), never
/// framed.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ),
    );
    response
}

/// 303 to `location` (a path on this gateway).
pub(crate) fn see_other(location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response()
}

/// The caller of a page request, or the response that refuses it: a request without
/// a key (when keys are needed) goes to `/login`, back here after.
pub(crate) async fn page_caller(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Caller, Response> {
    match state.auth.caller(headers).await {
        Ok(caller) => Ok(caller),
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
            let back = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            Err(see_other(&format!(
                "/login?next={}",
                utf8_percent_encode(&back, QUERY_VALUE)
            )))
        }
        Err(error) => Err(error_page(error.status(), error.message().to_owned())),
    }
}

/// Refuses (403) a form POST that does not come from a page of this gateway: its
/// `Origin` must name the host the request was sent to (or the public URL's); without
/// `Origin`, `Sec-Fetch-Site` must say `same-origin`; without either, it is refused.
pub(crate) fn check_same_origin(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    if is_same_origin(state, headers) {
        Ok(())
    } else {
        Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "This form was not sent from a page of this gateway, so it was not acted on.",
        )))
    }
}

/// Whether a POST comes from a page of this gateway; see [`check_same_origin`].
fn is_same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(ORIGIN) {
        let Some(origin) = origin
            .to_str()
            .ok()
            .and_then(|text| url::Url::parse(text).ok())
        else {
            return false;
        };
        let Some(host) = origin.host_str() else {
            return false;
        };
        let authority = match origin.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let requested = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.eq_ignore_ascii_case(&authority));
        let public = state
            .public_url
            .as_ref()
            .is_some_and(|url| url.origin() == origin.origin());
        return requested || public;
    }
    headers
        .get(HeaderName::from_static("sec-fetch-site"))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("same-origin"))
}

/// Characters escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Characters escaped in a query value.
pub(crate) const QUERY_VALUE: &AsciiSet = SEGMENT;

/// A path segment, escaped.
pub(crate) fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// A query value, escaped.
pub(crate) fn query_value(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

/// The gallery page of image `index` of job `job_id` at `provider`.
pub(crate) fn detail_path(provider: &str, job_id: &str, index: u32) -> String {
    format!("/images/{}/{}/{index}", segment(provider), segment(job_id))
}

/// A request's query string as name and value pairs.
pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The first value of `name` in `pairs`, trimmed, when not empty.
pub(crate) fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// An option of a `select`.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

impl Choice {
    pub(crate) fn new(value: impl Into<String>, label: impl Into<String>, current: &str) -> Self {
        let value = value.into();
        Self {
            selected: value == current,
            label: label.into(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_paths_escape_their_segments() {
        assert_eq!(detail_path("kolbo", "j-1", 0), "/images/kolbo/j-1/0");
        assert_eq!(
            detail_path("koala", "a/b?c", 2),
            "/images/koala/a%2Fb%3Fc/2"
        );
    }
}

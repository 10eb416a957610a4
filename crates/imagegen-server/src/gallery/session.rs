//! `/login` and `/logout`: a browser cannot send `Authorization: Bearer` when it
//! navigates, so the gallery takes the gateway key once in a form and keeps it in a
//! cookie ([`SESSION_COOKIE`]: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` when the
//! public URL is https), which [`crate::auth`] takes like a bearer token. The key never
//! appears in a page, a log or an error. With no gateway key there is nothing to sign in
//! with: `/login` goes to the gallery.

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use imagegen_ledger::api_key_hash;
use imagegen_ledger::api_keys::is_well_formed;

use super::{Layout, check_same_origin, error_page, param, query_pairs, render, see_other};
use crate::auth::SESSION_COOKIE;
use crate::state::AppState;

/// The most a login form's body may be.
const MAX_FORM_BYTES: usize = 4096;

#[derive(Template)]
#[template(path = "gallery/login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    error: Option<String>,
}

/// Where to go after signing in: a path on this gateway, never another site.
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".to_owned())
}

/// `GET /login`.
pub(crate) async fn login_page(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let next = safe_next(param(&query_pairs(&uri), "next"));
    if !state.auth.requires_keys() {
        return see_other(&next);
    }
    let page = LoginPage {
        layout: Layout::anonymous("Sign in"),
        next,
        error: None,
    };
    render(StatusCode::OK, &page)
}

/// `POST /login` (form: `key`, `next`): a live gateway key sets the cookie and goes on
/// to `next`; anything else shows the form again.
pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = check_same_origin(&state, &headers) {
        return *refused;
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let next = safe_next(param(&fields, "next"));
    let key = param(&fields, "key").unwrap_or_default();
    let refuse = |status: StatusCode, message: &str| {
        let page = LoginPage {
            layout: Layout::anonymous("Sign in"),
            next: next.clone(),
            error: Some(message.to_owned()),
        };
        render(status, &page)
    };
    if !is_well_formed(&key) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "That is not a gateway key: they start with igk_ and have 40 hex digits.",
        );
    }
    match state.ledger.find_api_key(&api_key_hash(&key)).await {
        Ok(Some(record)) => {
            tracing::info!(key = %record.prefix, name = %record.name, "a browser signed in to the gallery");
        }
        Ok(None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "That key is not a live key of this gateway.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "the ledger could not be read to sign in");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The ledger could not be read; try again.",
            );
        }
    }
    let secure = state
        .public_url
        .as_ref()
        .is_some_and(|url| url.scheme() == "https");
    let cookie = format!(
        "{SESSION_COOKIE}={key}; HttpOnly; SameSite=Strict; Path=/{}",
        if secure { "; Secure" } else { "" }
    );
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return refuse(StatusCode::BAD_REQUEST, "That is not a gateway key.");
    };
    let location = HeaderValue::from_str(&next).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, cookie), (LOCATION, location)],
    )
        .into_response()
}

/// The cookie cleared, then 303 to `/login`.
fn signed_out() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let cookie = HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""));
    (
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, cookie),
            (LOCATION, HeaderValue::from_static("/login")),
        ],
    )
        .into_response()
}

/// `GET /logout`: forgets the key (harmless to do on anyone's say-so).
pub(crate) async fn logout() -> Response {
    signed_out()
}

/// `POST /logout` (the nav's button).
pub(crate) async fn logout_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = check_same_origin(&state, &headers) {
        return *refused;
    }
    signed_out()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_gateway() {
        assert_eq!(safe_next(Some("/spend?x=1".into())), "/spend?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "spend",
        ] {
            assert_eq!(safe_next(Some(bad.into())), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}

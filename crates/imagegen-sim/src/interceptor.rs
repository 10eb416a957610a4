//! The layer every request passes through: it logs the request (credentials redacted to
//! "which key"), counts the call for fault triggers, and applies the faults that fire,
//! before or after the route runs.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::KoalaErrorBody;
use crate::fault::{Fault, Route};
use crate::listener::ConnectionControl;
use crate::log::{AuthSeen, ListenerKind, LoggedRequest};
use crate::reply::{
    html_error_page, json, koala_error, kolbo_code_for, kolbo_error, set_retry_after, with_type,
};
use crate::state::SimState;

/// The largest request body accepted (bigger ones get 413).
const MAX_BODY: usize = 4 << 20;

/// Faults that change how a generation ends, passed to the generation routes.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobFaults {
    pub(crate) zero_urls: bool,
    /// The Kolbo job waits `pending` first.
    pub(crate) queued: bool,
    /// Message, code, retryable.
    pub(crate) fail: Option<(String, String, bool)>,
    /// The answer will not arrive whole (reset after processing, cut or not JSON): the
    /// charge book says so.
    pub(crate) answer_lost: bool,
}

/// Which listener the layer serves.
#[derive(Debug, Clone)]
pub(crate) struct InterceptContext {
    pub(crate) sim: Arc<SimState>,
    pub(crate) listener: ListenerKind,
}

pub(crate) async fn intercept(
    State(ctx): State<InterceptContext>,
    ConnectInfo(connection): ConnectInfo<ConnectionControl>,
    request: Request,
    next: Next,
) -> Response {
    let sim = &ctx.sim;
    let (mut parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let route = Route::classify(ctx.listener == ListenerKind::Cdn, &method, &path);
    let auth = auth_seen(sim, &parts.headers);
    let bytes = to_bytes(body, MAX_BODY).await;
    let (body_json, body_text) = match &bytes {
        Ok(b) if b.is_empty() => (None, None),
        Ok(b) => match serde_json::from_slice::<serde_json::Value>(b) {
            Ok(v) => (Some(v), None),
            Err(_) => (
                None,
                Some(String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned()),
            ),
        },
        Err(_) => (None, Some("[body too large or unreadable]".to_owned())),
    };
    let seq = sim.log.push(LoggedRequest {
        seq: 0,
        listener: ctx.listener,
        route,
        method,
        path: path.clone(),
        query: query.clone(),
        auth,
        body: body_json,
        body_text,
        status: None,
        at: sim.now(),
    });
    let Ok(bytes) = bytes else {
        let response = with_type(413, "text/plain; charset=utf-8", "request body too large");
        sim.log.set_status(seq, 413);
        return response;
    };

    let fired = sim.faults.on_call(route);
    let mut job = JobFaults::default();
    let mut after = Vec::new();
    let mut reject = None;
    for fault in fired {
        match fault {
            Fault::SlowFirstByte(delay) => {
                sim.sleep(delay).await;
            }
            Fault::ZeroUrls => job.zero_urls = true,
            Fault::Queued => job.queued = true,
            Fault::FailGeneration {
                message,
                code,
                retryable,
            } => job.fail = Some((message, code, retryable)),
            Fault::TruncatedJson | Fault::NotJson | Fault::ResetAfterProcessing => {
                job.answer_lost = true;
                after.push(fault);
            }
            Fault::TruncatedImage | Fault::UnknownState(_) => {
                after.push(fault);
            }
            other => {
                if reject.is_none() {
                    reject = Some(other);
                }
            }
        }
    }
    if let Some(fault) = reject {
        let response = match fault {
            Fault::ConnectionReset => {
                connection.reset();
                return with_type(500, "text/plain; charset=utf-8", "");
            }
            Fault::Status {
                status,
                retry_after,
            } => status_response(route, status, retry_after),
            Fault::HtmlErrorPage { status } => html_error_page(status),
            _ => redirect(sim, &path, query.as_deref()),
        };
        let response = koala_plain_text(sim, route, response).await;
        sim.log.set_status(seq, response.status().as_u16());
        return response;
    }

    parts.extensions.insert(job);
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    for fault in after {
        response = match fault {
            Fault::ResetAfterProcessing => {
                connection.reset();
                return response;
            }
            Fault::UnknownState(state) => replace_state(response, &state).await,
            Fault::TruncatedJson => truncate(response).await,
            Fault::TruncatedImage if route.is_image() => truncate_image(response).await,
            Fault::NotJson => {
                let status = response.status().as_u16();
                with_type(
                    status,
                    "text/plain; charset=utf-8",
                    "upstream connect error or disconnect/reset before headers",
                )
            }
            _ => response,
        };
    }
    let response = koala_plain_text(sim, route, response).await;
    sim.log.set_status(seq, response.status().as_u16());
    response
}

/// Rewrites a KoalaImages `{error}` body as plain text when so configured.
async fn koala_plain_text(sim: &SimState, route: Route, response: Response) -> Response {
    let json_error = response.status().as_u16() >= 400
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !route.is_koala() || sim.config.koala.error_body != KoalaErrorBody::PlainText || !json_error
    {
        return response;
    }
    let (mut parts, bytes) = body_of(response).await;
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(message))
}

fn auth_seen(sim: &SimState, headers: &HeaderMap) -> AuthSeen {
    let x_api_key = headers
        .get("x-api-key")
        .map(|v| sim.credential(v.to_str().unwrap_or_default().trim()));
    let authorization = headers.get(header::AUTHORIZATION).map(|v| {
        let text = v.to_str().unwrap_or_default().trim();
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .unwrap_or(text);
        sim.credential(token.trim())
    });
    AuthSeen {
        x_api_key,
        authorization,
    }
}

fn status_response(route: Route, status: u16, retry_after: Option<u64>) -> Response {
    let mut response = if route.is_koala() {
        koala_error(
            status,
            crate::reply::code(status)
                .canonical_reason()
                .unwrap_or("Error"),
        )
    } else if route == Route::CdnImage {
        with_type(status, "text/plain; charset=utf-8", "error")
    } else if status == 429 {
        crate::reply::kolbo_rate_limited(std::time::Duration::from_secs(retry_after.unwrap_or(1)))
    } else {
        let (code, message) = kolbo_code_for(status);
        kolbo_error(status, code, message)
    };
    match retry_after {
        Some(secs) => set_retry_after(&mut response, secs),
        None => {
            response.headers_mut().remove(header::RETRY_AFTER);
        }
    }
    response
}

fn redirect(sim: &SimState, path: &str, query: Option<&str>) -> Response {
    let location = match query {
        Some(q) => format!("{}{path}?{q}", sim.cdn_origin),
        None => format!("{}{path}", sim.cdn_origin),
    };
    let mut response = with_type(302, "text/plain; charset=utf-8", "Found");
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn body_of(response: Response) -> (axum::http::response::Parts, bytes::Bytes) {
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    (parts, bytes)
}

async fn truncate(response: Response) -> Response {
    let (mut parts, bytes) = body_of(response).await;
    parts.headers.remove(header::CONTENT_LENGTH);
    let cut = bytes.slice(..bytes.len() / 2);
    Response::from_parts(parts, Body::from(cut))
}

/// A successful image cut to its first half, with a `Content-Length` of what is sent, so
/// the response ends cleanly.
async fn truncate_image(response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, bytes) = body_of(response).await;
    let cut = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len()));
    Response::from_parts(parts, Body::from(cut))
}

async fn replace_state(response: Response, state: &str) -> Response {
    let (mut parts, bytes) = body_of(response).await;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut map)) if map.contains_key("state") => {
            map.insert("state".into(), serde_json::Value::String(state.to_owned()));
            let status = parts.status.as_u16();
            let mut rebuilt = json(status, &map);
            parts.headers.remove(header::CONTENT_LENGTH);
            std::mem::swap(rebuilt.headers_mut(), &mut parts.headers);
            rebuilt
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// The fallback for unknown API paths.
pub(crate) async fn not_found(request: Request) -> Response {
    if request.uri().path().starts_with("/api/v1/") {
        kolbo_error(404, "NOT_FOUND", "Route not found")
    } else {
        koala_error(404, "Not found")
    }
}

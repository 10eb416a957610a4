//! Building responses: JSON bodies with the right content type, each provider's error
//! envelope, and the odd bodies faults need.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::rate_limit::retry_after_secs;

/// A JSON response.
pub(crate) fn json<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => with_type(status, "application/json; charset=utf-8", bytes),
        Err(e) => with_type(500, "text/plain; charset=utf-8", e.to_string().into_bytes()),
    }
}

/// A response with a content type.
pub(crate) fn with_type(
    status: u16,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = (code(status), body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[derive(Serialize)]
struct KolboErrorBody<'a> {
    success: bool,
    error: &'a str,
    code: &'a str,
}

/// Kolbo's error envelope `{success:false, error, code}`.
pub(crate) fn kolbo_error(status: u16, code: &str, message: &str) -> Response {
    json(
        status,
        &KolboErrorBody {
            success: false,
            error: message,
            code,
        },
    )
}

#[derive(Serialize)]
struct KolboRateLimitBody<'a> {
    status: bool,
    message: &'a str,
}

/// Kolbo's 429: a different body, `{status:false, message}`, and `Retry-After`.
pub(crate) fn kolbo_rate_limited(retry_after: std::time::Duration) -> Response {
    let mut response = json(
        429,
        &KolboRateLimitBody {
            status: false,
            message: "Too many requests, please try again later",
        },
    );
    set_retry_after(&mut response, retry_after_secs(retry_after));
    response
}

#[derive(Serialize)]
struct KoalaErrorBody<'a> {
    error: &'a str,
}

/// KoalaImages' error body `{error}` (undocumented; the simulator's choice).
pub(crate) fn koala_error(status: u16, message: &str) -> Response {
    json(status, &KoalaErrorBody { error: message })
}

pub(crate) fn set_retry_after(response: &mut Response, secs: u64) {
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// A Cloudflare-style HTML error page.
pub(crate) fn html_error_page(status: u16) -> Response {
    let reason = code(status).canonical_reason().unwrap_or("Error");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\
         <body><center><h1>{status} {reason}</h1></center><hr>\
         <center>cloudflare</center></body></html>\n"
    );
    with_type(status, "text/html; charset=utf-8", page)
}

/// The Kolbo error code a status stands for, for injected statuses.
pub(crate) fn kolbo_code_for(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("VALIDATION_ERROR", "Invalid request"),
        401 => ("INVALID_API_KEY", "Invalid or missing API key"),
        402 => ("INSUFFICIENT_CREDITS", "Insufficient credits"),
        403 => (
            "FORBIDDEN",
            "This API key does not have permission for this action",
        ),
        404 => ("NOT_FOUND", "Not found"),
        409 => ("CONFLICT", "Conflict"),
        500 => ("GENERATION_ERROR", "Internal server error"),
        502..=504 => ("SERVICE_UNAVAILABLE", "Service temporarily unavailable"),
        _ => ("ERROR", "Error"),
    }
}

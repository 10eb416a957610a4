//! The HTTP client for `POST /api/image-generation/`.
//!
//! [`KoalaClient::generate`] validates a request locally ([`crate::validate()`]), sends it
//! once with the API key as a sensitive `Authorization: Bearer` header, and reads the array
//! of image URLs. It never follows a redirect (the key stays with Koala). It retries only
//! when no image can have been charged: after a `429`, waiting as long as `Retry-After`
//! says (or a backoff), and when the connection failed before the request left. Every wait
//! runs on the injected [`Clock`](imagegen_core::Clock), so tests do not sleep.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use imagegen_core::{SharedClock, TokioClock};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{ApiErrorKind, KoalaError, parse_retry_after};
use crate::plan::KoalaPlan;
use crate::types::{GeneratedImage, ImageGenerationRequest};
use crate::validate::{Preflight, validate};

/// Koala's API root.
pub const DEFAULT_BASE_URL: &str = "https://koala.sh/api";
/// The image endpoint below the API root, with the trailing slash Koala documents.
pub const ENDPOINT_PATH: &str = "image-generation/";
/// The environment variable holding the API key.
pub const ENV_API_KEY: &str = "KOALA_API_KEY";
/// The environment variable overriding the API root (the simulator sets it).
pub const ENV_BASE_URL: &str = "KOALA_BASE_URL";
/// The environment variable naming the account's plan (`basic`, `professional`).
pub const ENV_PLAN: &str = "KOALA_PLAN";

/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for the whole generate call. Koala answers before the image is made, so
/// this is generous.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest response body read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// When the generate call is repeated. Only failures that cannot have been charged are
/// retried: a `429`, and a connection that failed before the request left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubmitRetryPolicy {
    /// How many times to try again after the first attempt (0: never).
    pub max_retries: u32,
    /// The first backoff when Koala sends no `Retry-After`; doubled on each retry.
    pub base_delay: Duration,
    /// The longest wait; a `Retry-After` beyond it is returned as an error instead.
    pub max_delay: Duration,
}

impl SubmitRetryPolicy {
    /// A policy.
    pub fn new(max_retries: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            max_retries,
            base_delay,
            max_delay,
        }
    }

    /// Never retry.
    pub fn never() -> Self {
        Self::new(0, Duration::ZERO, Duration::ZERO)
    }

    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

impl Default for SubmitRetryPolicy {
    /// Three retries, 2 s doubling, waits up to 60 s.
    fn default() -> Self {
        Self::new(3, Duration::from_secs(2), Duration::from_secs(60))
    }
}

/// What a generate call produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Generation {
    /// The images, in Koala's order. Their URLs block until each image is ready.
    pub images: Vec<GeneratedImage>,
    /// The checked request: model, quality, the credits charged, warnings.
    pub preflight: Preflight,
    /// How many times the request was sent (more than one only after a `429` or a
    /// connection that failed before sending).
    pub attempts: u32,
}

/// A client for Koala's image API. Cheap to clone.
///
/// ```no_run
/// use koala_api::{ImageGenerationRequest, KoalaClient, KoalaPlan, Quality};
/// # async fn run() -> Result<(), koala_api::KoalaError> {
/// let client = KoalaClient::builder(std::env::var("KOALA_API_KEY").unwrap_or_default())
///     .plan(KoalaPlan::Professional)
///     .build()?;
/// let generation = client
///     .generate(&ImageGenerationRequest::new("a lighthouse at dusk").with_quality(Quality::Medium))
///     .await?;
/// println!("{} credits: {}", generation.preflight.credits.unwrap_or_default(), generation.images[0].url);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KoalaClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_key: SecretString,
    endpoint: Url,
    plan: KoalaPlan,
    clock: SharedClock,
    request_timeout: Duration,
    retry: SubmitRetryPolicy,
}

impl fmt::Debug for KoalaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KoalaClient")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("api_key", &"[redacted]")
            .field("plan", &self.inner.plan)
            .field("request_timeout", &self.inner.request_timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl KoalaClient {
    /// A builder for a client using `api_key`.
    pub fn builder(api_key: impl Into<SecretString>) -> KoalaClientBuilder {
        KoalaClientBuilder {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            plan: KoalaPlan::Unknown,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            http: None,
            clock: None,
            retry: SubmitRetryPolicy::default(),
        }
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// The account's plan, as configured.
    pub fn plan(&self) -> KoalaPlan {
        self.inner.plan
    }

    /// The clock retries wait on.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Checks `request` without sending it: what it would cost and what to know.
    pub fn preflight(&self, request: &ImageGenerationRequest) -> Result<Preflight, KoalaError> {
        Ok(validate(request, self.inner.plan)?)
    }

    /// Validates `request`, sends it, and returns the image URLs.
    ///
    /// Invalid requests fail with [`KoalaError::Invalid`] and nothing is sent. A `429` or a
    /// connection that failed before sending is retried per the [`SubmitRetryPolicy`];
    /// nothing else is, because Koala charges every image of every request it receives.
    #[tracing::instrument(name = "koala.generate", skip_all, fields(model, num_images))]
    pub async fn generate(
        &self,
        request: &ImageGenerationRequest,
    ) -> Result<Generation, KoalaError> {
        let preflight = validate(request, self.inner.plan)?;
        tracing::Span::current()
            .record("model", preflight.model.as_str())
            .record("num_images", preflight.num_images);
        let body = serde_json::to_vec(request).map_err(|e| {
            KoalaError::Config(format!("the request cannot be written as JSON: {e}"))
        })?;
        let policy = self.inner.retry;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let err = match self.send_once(&body).await {
                Ok(images) => {
                    return Ok(Generation {
                        images,
                        preflight,
                        attempts,
                    });
                }
                Err(err) => err,
            };
            let wait = match &err {
                KoalaError::Api {
                    kind: ApiErrorKind::RateLimited,
                    retry_after,
                    ..
                } => Some(retry_after.unwrap_or_else(|| policy.backoff(attempts))),
                KoalaError::NotDelivered { .. } => Some(policy.backoff(attempts)),
                _ => None,
            };
            match wait {
                Some(wait) if attempts <= policy.max_retries && wait <= policy.max_delay => {
                    tracing::warn!(attempt = attempts, wait_ms = wait.as_millis() as u64, error = %err, "retrying Koala generate: nothing was charged");
                    self.inner.clock.sleep(wait).await;
                }
                _ => return Err(err),
            }
        }
    }

    async fn send_once(&self, body: &[u8]) -> Result<Vec<GeneratedImage>, KoalaError> {
        let inner = &self.inner;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", inner.api_key.expose_secret()))
            .map_err(|_| {
                KoalaError::Config("the API key cannot be sent in an HTTP header".to_owned())
            })?;
        auth.set_sensitive(true);
        let response = inner
            .http
            .post(inner.endpoint.clone())
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .timeout(inner.request_timeout)
            .body(body.to_vec())
            .send()
            .await
            .map_err(classify_send_error)?;

        let status = response.status().as_u16();
        if response.url() != &inner.endpoint {
            tracing::warn!(
                status,
                "an injected HTTP client followed a redirect away from the Koala endpoint"
            );
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after =
            header(RETRY_AFTER).and_then(|v| parse_retry_after(&v, inner.clock.wall_time()));
        let location = header(LOCATION);
        let body = read_bounded(response).await;

        if (300..400).contains(&status) {
            return Err(KoalaError::Redirect { status, location });
        }
        if !(200..300).contains(&status) {
            let bytes = body.unwrap_or_default();
            return Err(KoalaError::from_status(status, &bytes, retry_after));
        }
        let bytes = body.map_err(|why| {
            KoalaError::unreadable(status, format!("the body could not be read: {why}"), b"")
        })?;
        let images: Vec<GeneratedImage> = serde_json::from_slice(&bytes).map_err(|e| {
            KoalaError::unreadable(
                status,
                format!("expected a JSON array of {{url, alt}} objects: {e}"),
                &bytes,
            )
        })?;
        if images.is_empty() {
            return Err(KoalaError::unreadable(
                status,
                "the response lists no images",
                &bytes,
            ));
        }
        Ok(images)
    }
}

/// Reads a response body up to [`MAX_RESPONSE_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(format!(
                        "the body is larger than {MAX_RESPONSE_BYTES} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// Whether a failed send may have reached Koala.
fn classify_send_error(err: reqwest::Error) -> KoalaError {
    let message = describe(&err);
    if err.is_builder() {
        KoalaError::Config(message)
    } else if err.is_connect() {
        KoalaError::NotDelivered { message }
    } else {
        KoalaError::MaybeDelivered { message }
    }
}

/// A reqwest error and its causes on one line, without the URL.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    if err.is_timeout() {
        parts.push("timed out".to_owned());
    }
    parts.push(strip_url(&err.to_string()));
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// reqwest's `Display` appends ` for url (...)`; the URL may carry a signed query.
fn strip_url(text: &str) -> String {
    match text.find(" for url (") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

/// Builds a [`KoalaClient`]; see there.
#[must_use]
pub struct KoalaClientBuilder {
    api_key: SecretString,
    base_url: String,
    plan: KoalaPlan,
    connect_timeout: Duration,
    request_timeout: Duration,
    http: Option<reqwest::Client>,
    clock: Option<SharedClock>,
    retry: SubmitRetryPolicy,
}

impl fmt::Debug for KoalaClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KoalaClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl KoalaClientBuilder {
    /// A builder from the environment: the key from `KOALA_API_KEY`, the API root from
    /// `KOALA_BASE_URL` and the plan from `KOALA_PLAN`, when set.
    pub fn from_env() -> Result<Self, KoalaError> {
        let key = std::env::var(ENV_API_KEY)
            .map_err(|_| KoalaError::Config(format!("set {ENV_API_KEY} to a Koala API key")))?;
        let mut builder = KoalaClient::builder(key);
        if let Ok(base) = std::env::var(ENV_BASE_URL) {
            builder = builder.base_url(base);
        }
        if let Ok(plan) = std::env::var(ENV_PLAN) {
            let plan = plan
                .parse()
                .map_err(|e| KoalaError::Config(format!("{ENV_PLAN}: {e}")))?;
            builder = builder.plan(plan);
        }
        Ok(builder)
    }

    /// The API root (default `https://koala.sh/api`); the endpoint is
    /// `<root>/image-generation/`.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The account's plan (default unknown: nothing is refused locally for the plan).
    pub fn plan(mut self, plan: KoalaPlan) -> Self {
        self.plan = plan;
        self
    }

    /// Time to establish a connection (default 10 s). Ignored with [`Self::http_client`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for the whole generate call (default 120 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Uses this HTTP client. It should not follow redirects
    /// (`reqwest::redirect::Policy::none()`); a redirect it follows is logged.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock retries wait on (default: the real clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// When to retry (default [`SubmitRetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: SubmitRetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<KoalaClient, KoalaError> {
        let key = self.api_key.expose_secret();
        if key.trim().is_empty() {
            return Err(KoalaError::Config(format!(
                "the Koala API key is empty: set {ENV_API_KEY}"
            )));
        }
        if HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
            return Err(KoalaError::Config(
                "the Koala API key contains characters that cannot be sent in an HTTP header"
                    .to_owned(),
            ));
        }
        let endpoint = endpoint_url(&self.base_url)?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(self.connect_timeout)
                .user_agent(crate::USER_AGENT)
                .build()
                .map_err(|e| KoalaError::Config(format!("the HTTP client cannot be built: {e}")))?,
        };
        Ok(KoalaClient {
            inner: Arc::new(Inner {
                http,
                api_key: self.api_key,
                endpoint,
                plan: self.plan,
                clock: self.clock.unwrap_or_else(TokioClock::shared),
                request_timeout: self.request_timeout,
                retry: self.retry,
            }),
        })
    }
}

/// `<base>/image-generation/` for an http(s) API root.
fn endpoint_url(base: &str) -> Result<Url, KoalaError> {
    let bad = |why: &str| KoalaError::Config(format!("base URL `{base}` {why}"));
    let mut url = Url::parse(base.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.join(ENDPOINT_PATH)
        .map_err(|e| bad(&format!("cannot take the endpoint path: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_the_trailing_slash() {
        for (base, endpoint) in [
            (
                "https://koala.sh/api",
                "https://koala.sh/api/image-generation/",
            ),
            (
                "https://koala.sh/api/",
                "https://koala.sh/api/image-generation/",
            ),
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/image-generation/",
            ),
            (
                "http://127.0.0.1:8080/koala/api",
                "http://127.0.0.1:8080/koala/api/image-generation/",
            ),
        ] {
            assert_eq!(endpoint_url(base).unwrap().as_str(), endpoint);
        }
        for bad in [
            "koala.sh/api",
            "ftp://koala.sh/api",
            "https://koala.sh/api?x=1",
            "",
        ] {
            assert!(
                matches!(endpoint_url(bad), Err(KoalaError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = SubmitRetryPolicy::new(5, Duration::from_secs(2), Duration::from_secs(10));
        let waits: Vec<u64> = (1..=5).map(|r| policy.backoff(r).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 10, 10]);
    }

    #[test]
    fn bad_keys_are_configuration_errors_that_do_not_echo_the_key() {
        let err = KoalaClient::builder("  ").build().unwrap_err();
        assert!(matches!(err, KoalaError::Config(_)));
        let err = KoalaClient::builder("secret\nkey-123").build().unwrap_err();
        assert!(!err.to_string().contains("key-123"));
    }

    #[tokio::test]
    async fn debug_never_prints_the_key() {
        let builder = KoalaClient::builder("a0ce8c2f-60ad-4edc-89eb-bd6da042e572");
        assert!(!format!("{builder:?}").contains("a0ce8c2f"));
        let client = builder.build().unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("a0ce8c2f"), "{text}");
        assert!(text.contains("[redacted]"));
    }
}

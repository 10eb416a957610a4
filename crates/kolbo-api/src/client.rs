//! [`KolboClient`]: one method per Kolbo route, with the key kept secret, redirects never
//! followed, and a POST retried only when Kolbo provably did not take it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use imagegen_core::{InvalidInput, SharedClock, TokioClock};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::endpoint::{DEFAULT_BASE_URL, Endpoints};
use crate::error::KolboError;
use crate::pace::SubmitPacer;
use crate::types::{
    AccountCreditsResponse, CancelResponse, ErrorBody, GenerateImageRequest, GenerationStarted,
    GenerationStatus, ModelsQuery, ModelsResponse, MoodboardList, MoodboardQuery,
    MoodboardResponse, VisualDnaList, VisualDnaQuery, VisualDnaResponse, normalize_keys,
};
use crate::{tolerant, validate};

/// The header Kolbo reads the API key from.
pub const API_KEY_HEADER: &str = "x-api-key";

const USER_AGENT: &str = concat!("imagegen-kolbo-api/", env!("CARGO_PKG_VERSION"));

/// How many bytes of a bad body an error keeps.
const BODY_PREFIX_LIMIT: usize = imagegen_core::error::BODY_PREFIX_LIMIT;

/// When a request is tried again. Only two situations qualify, because Kolbo has no
/// idempotency key and every accepted `POST /v1/generate/image` is billed:
///
/// - Kolbo answered 429: its rate limiter rejects before any handler runs, so nothing was
///   started or charged. The wait is `Retry-After` when sent (up to
///   [`max_retry_after`](Self::max_retry_after); a longer wait is returned as an error),
///   else [`rate_limit_wait`](Self::rate_limit_wait).
/// - The connection failed before the request was sent.
///
/// A timeout or a dropped connection after sending is never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after a 429 (default 2).
    pub rate_limit_retries: u32,
    /// The wait after a 429 without `Retry-After` (default 5 s).
    pub rate_limit_wait: Duration,
    /// The longest `Retry-After` honoured by waiting (default 65 s, as Kolbo's MCP).
    pub max_retry_after: Duration,
    /// Retries after a connection failure (default 2).
    pub connect_retries: u32,
    /// The wait before the first reconnect; doubled each time (default 1 s).
    pub connect_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            rate_limit_retries: 2,
            rate_limit_wait: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(65),
            connect_retries: 2,
            connect_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            rate_limit_retries: 0,
            connect_retries: 0,
            ..Self::default()
        }
    }
}

/// Builds a [`KolboClient`]; see there.
#[must_use]
pub struct KolboClientBuilder {
    api_key: SecretString,
    base_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    http: Option<reqwest::Client>,
    clock: Option<SharedClock>,
    retry: RetryPolicy,
    pacer: Option<SubmitPacer>,
}

impl fmt::Debug for KolboClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KolboClientBuilder")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("custom_http_client", &self.http.is_some())
            .field("retry", &self.retry)
            .field("pacer", &self.pacer)
            .finish_non_exhaustive()
    }
}

impl KolboClientBuilder {
    /// The API base URL (default [`DEFAULT_BASE_URL`]); routes are `{base}/v1/...`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The TCP/TLS connect timeout (default 10 s). Ignored with
    /// [`http_client`](Self::http_client).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The timeout of one whole request, from connecting to the end of the body
    /// (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Uses this `reqwest::Client` for API calls.
    ///
    /// It **must not follow redirects** (build it with
    /// `.redirect(reqwest::redirect::Policy::none())`): reqwest forwards custom headers
    /// such as `X-API-Key` to whatever host a redirect names.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock for retry waits (default: the real clock). Tests pass a
    /// [`imagegen_core::ManualClock`].
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// When to retry (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Paces generation starts (and moodboard reads, which share their bucket) with
    /// `pacer`, so a batch stays within Kolbo's rate limit instead of provoking 429s
    /// (default: not paced). Use [`SubmitPacer::kolbo_generate`] for the documented
    /// 10 per minute, and share one pacer between all clients of the same key.
    pub fn submit_pacer(mut self, pacer: SubmitPacer) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<KolboClient, KolboError> {
        let key = self.api_key.expose_secret().trim();
        if key.is_empty() {
            return Err(KolboError::Config(
                "the Kolbo API key is empty: set KOLBO_API_KEY to a key from the Kolbo dashboard"
                    .into(),
            ));
        }
        let mut api_key = HeaderValue::from_str(key).map_err(|_| {
            KolboError::Config(
                "the Kolbo API key contains characters that cannot be sent in a header".into(),
            )
        })?;
        api_key.set_sensitive(true);
        let endpoints = Endpoints::new(&self.base_url)?;
        let http = match self.http {
            Some(client) => client,
            None => default_http_client(endpoints.base(), self.connect_timeout)?,
        };
        Ok(KolboClient {
            inner: Arc::new(Inner {
                http,
                api_key,
                endpoints,
                request_timeout: self.request_timeout,
                clock: self.clock.unwrap_or_else(TokioClock::shared),
                retry: self.retry,
                pacer: self.pacer,
            }),
        })
    }
}

fn default_http_client(
    base: &Url,
    connect_timeout: Duration,
) -> Result<reqwest::Client, KolboError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .user_agent(USER_AGENT);
    let loopback = match base.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if loopback {
        // A developer's HTTP(S)_PROXY must not route local (simulator, mock) traffic.
        builder = builder.no_proxy();
    }
    if base.scheme() == "https" {
        builder = builder.https_only(true);
    }
    builder
        .build()
        .map_err(|e| KolboError::Config(format!("cannot build the HTTP client: {e}")))
}

/// A client for Kolbo's developer API (`https://api.kolbo.ai/api/v1/...`).
///
/// Cheap to clone. The key travels only in a sensitive `X-API-Key` header set on each
/// request to the base URL's host; redirects are refused, and `Debug` never prints it.
///
/// ```no_run
/// # async fn run() -> Result<(), kolbo_api::KolboError> {
/// use kolbo_api::{KolboClient, types::GenerateImageRequest};
/// let client = KolboClient::builder(std::env::var("KOLBO_API_KEY").unwrap_or_default())
///     .build()?;
/// let started = client
///     .generate_image(&GenerateImageRequest::new("A lighthouse at dusk").aspect_ratio("16:9"))
///     .await?;
/// let status = client.generation_status(&started.generation_id).await?;
/// println!("{}: {}", started.generation_id, status.state);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KolboClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_key: HeaderValue,
    endpoints: Endpoints,
    request_timeout: Duration,
    clock: SharedClock,
    retry: RetryPolicy,
    pacer: Option<SubmitPacer>,
}

impl fmt::Debug for KolboClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KolboClient")
            .field("base_url", &self.inner.endpoints.base().as_str())
            .field("api_key", &"[redacted]")
            .field("request_timeout", &self.inner.request_timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One call: where, what, and whether it is billable.
struct Call<'a> {
    method: Method,
    url: Url,
    /// A JSON body, already encoded (sent again as is on a retry).
    body: Option<&'a [u8]>,
    query: Option<Value>,
    /// An accepted call may cost credits (only `POST /v1/generate/image`).
    billable: bool,
    /// Retry on 429 and on connection failures (see [`RetryPolicy`]).
    retry: bool,
    /// Counted in the generation rate bucket (see [`SubmitPacer`]).
    paced: bool,
}

/// A successful answer: a 2xx whose body is not an error envelope.
pub(crate) struct Answer {
    status: u16,
    bytes: Vec<u8>,
    /// A body to decode instead of `bytes` (the id recovered from a cut-off answer).
    json: Option<Value>,
}

impl Answer {
    /// The body as `T`, taking the parsed JSON (no copy).
    fn decode<T: DeserializeOwned>(mut self) -> Result<T, KolboError> {
        self.decode_in_place()
    }

    /// The body as `T`; the raw bytes stay for a caller that must look at them on failure.
    fn decode_in_place<T: DeserializeOwned>(&mut self) -> Result<T, KolboError> {
        let mut json = match self.json.take() {
            Some(json) => json,
            // The common case, every answer of a current build: straight from the bytes,
            // with no intermediate JSON tree.
            None if !has_upper_case_key(&self.bytes) => {
                return tolerant::from_slice(&self.bytes).map_err(|e| KolboError::Unreadable {
                    status: self.status,
                    detail: if e.is_data() {
                        format!("unexpected JSON shape: {e}")
                    } else {
                        unreadable_detail(&self.bytes)
                    },
                    body_prefix: body_prefix(&self.bytes),
                });
            }
            // Older builds' camelCase keys: rewritten to snake_case first.
            None => serde_json::from_slice(&self.bytes).map_err(|_| KolboError::Unreadable {
                status: self.status,
                detail: unreadable_detail(&self.bytes),
                body_prefix: body_prefix(&self.bytes),
            })?,
        };
        normalize_keys(&mut json);
        serde_json::from_value(json).map_err(|e| KolboError::Unreadable {
            status: self.status,
            detail: format!("unexpected JSON shape: {e}"),
            body_prefix: body_prefix(&self.bytes),
        })
    }
}

impl KolboClient {
    /// Starts building a client with `api_key` (a `kolbo_live_…` key).
    pub fn builder(api_key: impl Into<String>) -> KolboClientBuilder {
        KolboClientBuilder {
            api_key: SecretString::from(api_key.into()),
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            http: None,
            clock: None,
            retry: RetryPolicy::default(),
            pacer: None,
        }
    }

    /// The base URL (without a trailing slash).
    pub fn base_url(&self) -> &Url {
        self.inner.endpoints.base()
    }

    /// The clock this client waits on.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The status URL of a generation: `{base}/v1/generate/{id}/status`, id
    /// percent-encoded.
    pub fn status_url(&self, generation_id: &str) -> Result<Url, KolboError> {
        check_id("generation_id", generation_id)?;
        Ok(self.inner.endpoints.status(generation_id))
    }

    /// `POST /v1/generate/image`: starts a generation (billed once accepted).
    ///
    /// The request is checked locally first ([`validate::check_request`] without a
    /// catalog); an invalid one is an error and nothing is sent. The POST is repeated only
    /// after a 429 or a connection failure before sending (see [`RetryPolicy`]). If Kolbo
    /// accepted it but the body was cut short, the generation id is recovered from what
    /// arrived when possible, so a paid job is never lost.
    pub async fn generate_image(
        &self,
        request: &GenerateImageRequest,
    ) -> Result<GenerationStarted, KolboError> {
        validate::check_request(request, None)?;
        let body = serde_json::to_vec(request)
            .map_err(|e| KolboError::Config(format!("cannot encode the request: {e}")))?;
        let call = Call {
            method: Method::POST,
            url: self.inner.endpoints.generate_image(),
            body: Some(&body),
            query: None,
            billable: true,
            retry: true,
            paced: true,
        };
        match self.execute(call).await {
            Ok(mut answer) => {
                match answer.decode_in_place::<GenerationStarted>() {
                    Ok(started) => Ok(started),
                    // A paid id must survive a body we cannot read.
                    Err(error) => match salvage_generation_id(&answer.bytes) {
                        Some(id) => {
                            tracing::warn!(generation_id = %id, %error, "kolbo: accepted generation with an unreadable body; recovered its id");
                            Ok(GenerationStarted::with_id(id))
                        }
                        None => Err(error),
                    },
                }
            }
            Err(KolboError::OutcomeUnknown { message }) => {
                Err(KolboError::OutcomeUnknown { message })
            }
            Err(other) => Err(other),
        }
    }

    /// `GET /v1/generate/{id}/status`: one poll, never retried here (the waiter in
    /// [`crate::poll`] handles transient failures).
    pub async fn generation_status(
        &self,
        generation_id: &str,
    ) -> Result<GenerationStatus, KolboError> {
        check_id("generation_id", generation_id)?;
        let call = Call {
            method: Method::GET,
            url: self.inner.endpoints.status(generation_id),
            body: None,
            query: None,
            billable: false,
            retry: false,
            paced: false,
        };
        self.execute(call).await?.decode()
    }

    /// `POST /v1/generate/{id}/cancel` (undocumented; used by Kolbo's own MCP). A finished
    /// generation answers 409.
    pub async fn cancel_generation(
        &self,
        generation_id: &str,
    ) -> Result<CancelResponse, KolboError> {
        check_id("generation_id", generation_id)?;
        let call = Call {
            method: Method::POST,
            url: self.inner.endpoints.cancel(generation_id),
            body: Some(b"{}"),
            query: None,
            billable: false,
            retry: true,
            paced: false,
        };
        self.execute(call).await?.decode()
    }

    /// `GET /v1/models`, filtered by `query` (use [`ModelsQuery::images`]).
    pub async fn list_models(&self, query: &ModelsQuery) -> Result<ModelsResponse, KolboError> {
        self.get(self.inner.endpoints.models(), Some(query)).await
    }

    /// `GET /v1/account/credits`: the credit balance.
    pub async fn account_credits(&self) -> Result<AccountCreditsResponse, KolboError> {
        self.get::<_, ()>(self.inner.endpoints.account_credits(), None)
            .await
    }

    /// `GET /v1/moodboards`. It shares the 10-per-minute generation rate bucket: cache it.
    pub async fn list_moodboards(
        &self,
        query: &MoodboardQuery,
    ) -> Result<MoodboardList, KolboError> {
        self.get(self.inner.endpoints.moodboards(), Some(query))
            .await
    }

    /// `GET /v1/moodboards/{id}`.
    pub async fn moodboard(&self, id: &str) -> Result<MoodboardResponse, KolboError> {
        check_id("moodboard_id", id)?;
        self.get::<_, ()>(self.inner.endpoints.moodboard(id), None)
            .await
    }

    /// `GET /v1/visual-dna`.
    pub async fn list_visual_dna(
        &self,
        query: &VisualDnaQuery,
    ) -> Result<VisualDnaList, KolboError> {
        self.get(self.inner.endpoints.visual_dnas(), Some(query))
            .await
    }

    /// `GET /v1/visual-dna/{id}`.
    pub async fn visual_dna(&self, id: &str) -> Result<VisualDnaResponse, KolboError> {
        check_id("visual_dna_id", id)?;
        self.get::<_, ()>(self.inner.endpoints.visual_dna(id), None)
            .await
    }

    async fn get<T: DeserializeOwned, Q: Serialize>(
        &self,
        url: Url,
        query: Option<&Q>,
    ) -> Result<T, KolboError> {
        let query = query
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| KolboError::Config(format!("cannot encode the query: {e}")))?;
        let paced = url.path().contains("/v1/moodboards");
        let call = Call {
            method: Method::GET,
            url,
            body: None,
            query,
            billable: false,
            retry: true,
            paced,
        };
        self.execute(call).await?.decode()
    }

    /// Sends `call`, retrying only as [`RetryPolicy`] allows.
    async fn execute(&self, call: Call<'_>) -> Result<Answer, KolboError> {
        let policy = &self.inner.retry;
        let (mut rate_limited, mut reconnects) = (0u32, 0u32);
        loop {
            let error = match self.attempt(&call).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if !call.retry {
                return Err(error);
            }
            let wait = match &error {
                KolboError::NotSent { .. } if reconnects < policy.connect_retries => {
                    reconnects += 1;
                    policy
                        .connect_backoff
                        .saturating_mul(1 << (reconnects - 1).min(16))
                }
                e if e.is_rate_limited() && rate_limited < policy.rate_limit_retries => {
                    let wait = e.retry_after().unwrap_or(policy.rate_limit_wait);
                    if wait > policy.max_retry_after {
                        return Err(error);
                    }
                    rate_limited += 1;
                    wait
                }
                _ => return Err(error),
            };
            tracing::debug!(
                method = %call.method,
                path = call.url.path(),
                wait_ms = wait.as_millis() as u64,
                %error,
                "kolbo: retrying a request Kolbo did not take"
            );
            self.inner.clock.sleep(wait).await;
        }
    }

    /// One try: send, read the whole body, sort success from error.
    async fn attempt(&self, call: &Call<'_>) -> Result<Answer, KolboError> {
        // Held until the answer has been read: the slot counts from then.
        let _permit = match (&self.inner.pacer, call.paced) {
            (Some(pacer), true) => Some(pacer.acquire(&self.inner.clock).await),
            _ => None,
        };
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .timeout(self.inner.request_timeout)
            .header(API_KEY_HEADER, self.inner.api_key.clone())
            .header(ACCEPT, "application/json");
        if let Some(query) = &call.query {
            request = request.query(query);
        }
        if let Some(body) = call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&e, call.billable, None))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        tracing::debug!(method = %call.method, path = call.url.path(), status = status.as_u16(), "kolbo: answer");
        if status.is_redirection() {
            return Err(KolboError::Redirect {
                status: status.as_u16(),
                location: header_text(response.headers(), LOCATION),
            });
        }
        let bytes = match read_body(response).await {
            Ok(bytes) => bytes,
            Err((error, partial)) => {
                if call.billable && status.is_success() {
                    // Accepted, then cut off: the id may be in what did arrive.
                    if let Some(id) = salvage_generation_id(&partial) {
                        tracing::warn!(generation_id = %id, "kolbo: body cut short; recovered the generation id");
                        let json = serde_json::json!({ "generation_id": id });
                        return Ok(Answer {
                            status: status.as_u16(),
                            bytes: partial,
                            json: Some(json),
                        });
                    }
                }
                return Err(transport_error(&error, call.billable, Some(status)));
            }
        };
        classify(status, retry_after, bytes, call.billable)
    }
}

/// Reads the body chunk by chunk, keeping what arrived if the connection drops.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, (reqwest::Error, Vec<u8>)> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => return Ok(bytes),
            Err(e) => return Err((e, bytes)),
        }
    }
}

/// Sorts a complete answer into success, a Kolbo error, or an unreadable body.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    bytes: Vec<u8>,
    billable: bool,
) -> Result<Answer, KolboError> {
    let code = status.as_u16();
    if status.is_success() && opens_with_success_true(&bytes) {
        // Kolbo's success envelope says so first: no need to read it twice.
        return Ok(Answer {
            status: code,
            bytes,
            json: None,
        });
    }
    // Read only the envelope's fields: everything else is skipped without being built.
    let envelope = tolerant::from_slice::<ErrorBody>(&bytes)
        .ok()
        .filter(|b| b.is_error() || b.code.is_some() || b.message().is_some());
    let says_error = envelope.as_ref().is_some_and(ErrorBody::is_error);
    if status.is_success() && !says_error {
        // A body that is not JSON is reported when decoding, so that a billable call can
        // still recover the generation id from it.
        return Ok(Answer {
            status: code,
            bytes,
            json: None,
        });
    }
    match envelope {
        Some(body) if says_error || !status.is_success() => {
            // A 5xx from a gateway on a billable call: only Kolbo's own envelope proves
            // nothing was started; a bare `{"message": ...}` from a proxy does not.
            if billable && status.is_server_error() && !body.is_error() && body.code.is_none() {
                return Err(outcome_unknown(code, &bytes));
            }
            Err(KolboError::Api {
                status: code,
                code: body.code.clone().filter(|c| !c.trim().is_empty()),
                message: body
                    .message()
                    .map_or_else(|| format!("HTTP {code}"), str::to_owned),
                retry_after,
            })
        }
        _ if billable && status.is_server_error() => Err(outcome_unknown(code, &bytes)),
        _ => Err(KolboError::Http {
            status: code,
            body_prefix: body_prefix(&bytes),
            retry_after,
        }),
    }
}

/// Whether a JSON text opens with `{"success": true` (white space allowed), as Kolbo's
/// success envelope does: such a body is no error envelope.
fn opens_with_success_true(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    for token in [&b"{"[..], b"\"success\"", b":", b"true"] {
        rest = rest.trim_ascii_start();
        match rest.strip_prefix(token) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    // `true` must end there (not `trueish`): a delimiter follows.
    matches!(rest.trim_ascii_start().first(), Some(b',' | b'}'))
}

/// Whether any object key in a JSON text has an upper-case ASCII letter (a camelCase key
/// of an older Kolbo build). A string counts as a key when a `:` follows it. Exact for
/// valid JSON; on anything else it may say `true`, which only selects the slower path.
fn has_upper_case_key(bytes: &[u8]) -> bool {
    // Jumps from quote to quote with `memchr` (SIMD) rather than byte by byte: most of a
    // body is string values (ids, URLs, timestamps), crossed in a few instructions.
    let mut rest = bytes;
    while let Some(open) = memchr::memchr(b'"', rest) {
        rest = &rest[open + 1..];
        let mut upper = false;
        let mut from = 0;
        let close = loop {
            let Some(tail) = rest.get(from..) else {
                return false; // A string cut short: not valid JSON, and no key.
            };
            let Some(at) = memchr::memchr2(b'"', b'\\', tail).map(|j| from + j) else {
                return false;
            };
            upper |= rest[from..at].iter().any(u8::is_ascii_uppercase);
            if rest[at] == b'"' {
                break at;
            }
            from = at + 2; // A backslash and the character it escapes.
        };
        rest = &rest[close + 1..];
        if upper && rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':') {
            return true;
        }
    }
    false
}

fn outcome_unknown(status: u16, bytes: &[u8]) -> KolboError {
    KolboError::OutcomeUnknown {
        message: format!(
            "HTTP {status} from a gateway, body starts: {:?}",
            body_prefix(bytes)
        ),
    }
}

fn unreadable_detail(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty body".into();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(_) => "unexpected JSON".into(),
        Err(e) if e.is_eof() => format!("truncated JSON: {e}"),
        Err(e) => format!("not JSON: {e}"),
    }
}

/// Maps a reqwest failure: before sending → [`KolboError::NotSent`]; after sending →
/// [`KolboError::OutcomeUnknown`] for a billable call, else [`KolboError::NoAnswer`].
fn transport_error(
    error: &reqwest::Error,
    billable: bool,
    status: Option<StatusCode>,
) -> KolboError {
    let message = error_chain(error);
    if error.is_connect() && status.is_none() {
        return KolboError::NotSent { message };
    }
    let message = match status {
        Some(s) => format!("HTTP {} then {message}", s.as_u16()),
        None if error.is_timeout() => format!("timed out: {message}"),
        None => message,
    };
    if billable {
        KolboError::OutcomeUnknown { message }
    } else {
        KolboError::NoAnswer { message }
    }
}

/// The error and its sources in one line (reqwest's own message is often just
/// "error sending request").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds (Kolbo sends integers; fractions are accepted). HTTP dates are
/// ignored: the waits in question are seconds long.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = header_text(headers, RETRY_AFTER)?;
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).ok())
        .flatten()
}

fn body_prefix(bytes: &[u8]) -> String {
    imagegen_core::error::body_prefix(&bytes[..bytes.len().min(BODY_PREFIX_LIMIT)])
}

/// Finds a complete `"generation_id": "…"` (or `generationId`) in a body that does not
/// parse, such as one cut off mid-transfer.
pub(crate) fn salvage_generation_id(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    for key in ["\"generation_id\"", "\"generationId\""] {
        let mut rest = text.as_ref();
        while let Some(at) = rest.find(key) {
            rest = &rest[at + key.len()..];
            let Some(after_colon) = rest.trim_start().strip_prefix(':') else {
                continue;
            };
            let Some(literal) = after_colon.trim_start().strip_prefix('"') else {
                continue;
            };
            let mut escaped = false;
            let end = literal.char_indices().find_map(|(i, c)| {
                let found = !escaped && c == '"';
                escaped = !escaped && c == '\\';
                found.then_some(i)
            })?;
            let id: String = serde_json::from_str(&format!("\"{}\"", &literal[..end])).ok()?;
            if !id.trim().is_empty() {
                return Some(id);
            }
        }
    }
    None
}

/// An id used as a path segment: non-empty, no control characters, not `.` or `..`.
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<(), InvalidInput> {
    if id.trim().is_empty() || id == "." || id == ".." || id.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            field,
            format!("{id:?} is not a usable id: give the id exactly as Kolbo returned it"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salvages_complete_ids_only() {
        assert_eq!(
            salvage_generation_id(br#"{"success":true,"generation_id":"abc123","type":"ima"#),
            Some("abc123".into())
        );
        assert_eq!(
            salvage_generation_id(br#"{"generationId" : "g\"1","#),
            Some("g\"1".into())
        );
        assert_eq!(salvage_generation_id(br#"{"generation_id":"abc1"#), None);
        assert_eq!(salvage_generation_id(br#"{"generation_id":12,"#), None);
        assert_eq!(salvage_generation_id(b"<html>"), None);
    }

    #[test]
    fn success_true_openings() {
        assert!(opens_with_success_true(
            br#"{"success":true,"generation_id":"g"}"#
        ));
        assert!(opens_with_success_true(b"{ \"success\" : true }"));
        assert!(!opens_with_success_true(
            br#"{"success":false,"error":"x"}"#
        ));
        assert!(!opens_with_success_true(
            br#"{"generation_id":"g","success":true}"#
        ));
        assert!(!opens_with_success_true(br#"{"success":trueish}"#));
        assert!(!opens_with_success_true(br#"{"success":true"#));
        assert!(!opens_with_success_true(b""));
    }

    #[test]
    fn upper_case_keys_are_found_and_values_ignored() {
        assert!(!has_upper_case_key(
            br#"{"state":"completed","created_at":"2026-03-05T10:30:00Z","urls":["https://X/A.png"]}"#
        ));
        assert!(has_upper_case_key(
            br#"{"success":true,"generationId":"g1"}"#
        ));
        assert!(has_upper_case_key(
            br#"{"a":{"supportedAspectRatios" : ["1:1"]}}"#
        ));
        assert!(!has_upper_case_key(br#"{"prompt":"say "Hi": ok"}"#));
        assert!(!has_upper_case_key(br#"["A","B"]"#));
        assert!(!has_upper_case_key(b""));
        // Escapes: an escaped quote neither ends a string nor starts one.
        assert!(!has_upper_case_key(br#"{"text":"a \"Big\": b","k":1}"#));
        assert!(has_upper_case_key(br#"{"odd\"Key":1}"#));
        assert!(!has_upper_case_key(br#"{"path":"C:\\Users\\","ok":true}"#));
        // Cut short, anywhere: no panic, no key.
        assert!(!has_upper_case_key(br#"{"abcD"#));
        assert!(!has_upper_case_key(br#"{"a\"#));
        assert!(!has_upper_case_key(b"\""));
    }

    #[test]
    fn retry_after_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn ids_are_checked() {
        for bad in ["", " ", ".", "..", "a\nb"] {
            assert!(check_id("generation_id", bad).is_err(), "{bad:?}");
        }
        assert!(check_id("generation_id", "a/b").is_ok());
    }

    #[test]
    fn debug_never_prints_the_key() {
        let builder = KolboClient::builder("kolbo_live_0123456789abcdef0123456789abcdef01234567");
        assert!(!format!("{builder:?}").contains("kolbo_live_"));
        let client = builder.build().unwrap();
        let shown = format!("{client:?} {client:#?}");
        assert!(!shown.contains("kolbo_live_"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn bad_keys_are_config_errors() {
        assert!(matches!(
            KolboClient::builder("  ").build(),
            Err(KolboError::Config(_))
        ));
        let err = KolboClient::builder("kolbo_live_ab\ncd")
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("kolbo_live_"));
    }
}

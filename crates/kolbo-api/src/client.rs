//! [`KolboClient`]: one method per Kolbo route over the shared [`imagegen_http::Transport`],
//! with the key kept secret, redirects never followed, and only GETs retried (through the
//! shared [`imagegen_http::retry`] loop). A POST is sent once: Kolbo has no
//! idempotency key and bills every accepted generation, and a 429 is the router's to wait
//! out, so retries happen in one layer only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use imagegen_core::{InvalidInput, SharedClock};
use imagegen_http::retry::{self, Decision};
use imagegen_http::{
    BodyError, Credential, CredentialError, HttpConfig, Reply, RetryAfter, RetryPolicy, Transport,
    TransportError, read_bounded,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
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
    MoodboardResponse, VisualDnaList, VisualDnaQuery, VisualDnaResponse,
};
use crate::{decode, validate};

/// The header Kolbo reads the API key from.
pub const API_KEY_HEADER: &str = "x-api-key";

const USER_AGENT: &str = concat!("imagegen-kolbo-api/", env!("CARGO_PKG_VERSION"));

/// The largest answer body read (the model catalog is the largest, well under this).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How many requests a [`KolboClient`] keeps open at once by default
/// ([`KolboClientBuilder::max_open_requests`]): far more than Kolbo's documented rate
/// limits let a key use, far fewer than the sockets thousands of jobs in flight would open.
pub const DEFAULT_MAX_OPEN_REQUESTS: usize = 128;

/// Builds a [`KolboClient`]; see there.
#[must_use]
pub struct KolboClientBuilder {
    api_key: SecretString,
    config: HttpConfig,
    retry: RetryPolicy,
    pacer: Option<SubmitPacer>,
    max_open_requests: usize,
}

impl fmt::Debug for KolboClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KolboClientBuilder")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.config.base_url)
            .field("connect_timeout", &self.config.connect_timeout)
            .field("request_timeout", &self.config.request_timeout)
            .field("custom_http_client", &self.config.http.is_some())
            .field("retry", &self.retry)
            .field("pacer", &self.pacer)
            .field("max_open_requests", &self.max_open_requests)
            .finish_non_exhaustive()
    }
}

impl KolboClientBuilder {
    /// The API base URL (default [`DEFAULT_BASE_URL`]); routes are `{base}/v1/...`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.config.base_url = url.into();
        self
    }

    /// The TCP/TLS connect timeout (default 5 s, so a dead host fails fast). Ignored with
    /// [`http_client`](Self::http_client).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The timeout of one whole request, from connecting to the end of the body
    /// (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Uses this `reqwest::Client` for API calls.
    ///
    /// It **must not follow redirects** (build it with
    /// `.redirect(reqwest::redirect::Policy::none())`): reqwest forwards custom headers
    /// such as `X-API-Key` to whatever host a redirect names.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.config.http = Some(client);
        self
    }

    /// The clock for retry waits (default: the real clock). Tests pass a
    /// [`imagegen_core::ManualClock`].
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.config.clock = Some(clock);
        self
    }

    /// How GETs (catalog, credits, moodboards, visual DNA) are retried (default
    /// [`RetryPolicy::default`]: two quick retries after a refused connection, a reset or a
    /// 429 asking for at most 5 s). POSTs are never retried.
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

    /// The most requests open to Kolbo at once (default [`DEFAULT_MAX_OPEN_REQUESTS`]);
    /// more wait their turn. HTTP/1.1 gives each open request its own connection and
    /// buffers, so thousands of generations in flight would otherwise mean thousands of
    /// sockets to one host.
    pub fn max_open_requests(mut self, limit: usize) -> Self {
        self.max_open_requests = limit.max(1);
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<KolboClient, KolboError> {
        let api_key = Credential::header(API_KEY_HEADER, &self.api_key).map_err(|e| {
            KolboError::Config(match e {
                CredentialError::Empty => "the Kolbo API key is empty: set KOLBO_API_KEY to a key from the Kolbo dashboard".into(),
                _ => "the Kolbo API key contains characters that cannot be sent in a header".into(),
            })
        })?;
        let endpoints = Endpoints::new(&self.config.base_url)?;
        let transport = Transport::new(&self.config, endpoints.base(), Some(api_key))
            .map_err(|e| KolboError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(KolboClient {
            inner: Arc::new(Inner {
                transport,
                endpoints,
                retry: self.retry,
                pacer: self.pacer,
                open: Arc::new(tokio::sync::Semaphore::new(
                    self.max_open_requests
                        .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
                )),
            }),
        })
    }
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
    transport: Transport,
    endpoints: Endpoints,
    retry: RetryPolicy,
    pacer: Option<SubmitPacer>,
    /// Bounds the requests open at once (each holds a connection and its buffers).
    open: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for KolboClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KolboClient")
            .field("base_url", &self.inner.endpoints.base().as_str())
            .field("api_key", &"[redacted]")
            .field("request_timeout", &self.inner.transport.request_timeout())
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One call: where, what, and whether it is billable.
struct Call<'a> {
    method: Method,
    url: Url,
    /// A JSON body, already encoded.
    body: Option<&'a [u8]>,
    query: Option<Value>,
    /// An accepted call may cost credits (only `POST /v1/generate/image`).
    billable: bool,
    /// An idempotent GET, retried per the [`RetryPolicy`]. Never set on a POST.
    retry: bool,
    /// Counted in the generation rate bucket (see [`SubmitPacer`]).
    paced: bool,
}

/// A successful answer: a 2xx whose body is not an error envelope.
pub(crate) struct Answer {
    status: u16,
    pub(crate) bytes: Bytes,
    /// The generation id recovered from an accepted answer cut short; decoded instead of
    /// `bytes`.
    salvaged_id: Option<String>,
}

impl Answer {
    /// The body as `T` (see [`crate::decode`]).
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T, KolboError> {
        match &self.salvaged_id {
            Some(id) => decode::value(
                self.status,
                serde_json::json!({ "generation_id": id }),
                &self.bytes,
            ),
            None => decode::body(self.status, &self.bytes),
        }
    }
}

impl KolboClient {
    /// Starts building a client with `api_key` (a `kolbo_live_…` key).
    pub fn builder(api_key: impl Into<String>) -> KolboClientBuilder {
        KolboClientBuilder {
            api_key: SecretString::from(api_key.into()),
            config: HttpConfig::new(DEFAULT_BASE_URL, USER_AGENT),
            retry: RetryPolicy::default(),
            pacer: None,
            max_open_requests: DEFAULT_MAX_OPEN_REQUESTS,
        }
    }

    /// The base URL (without a trailing slash).
    pub fn base_url(&self) -> &Url {
        self.inner.endpoints.base()
    }

    /// The clock this client waits on.
    pub fn clock(&self) -> &SharedClock {
        self.inner.transport.clock()
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
    /// catalog); an invalid one is an error and nothing is sent. The POST is sent once and
    /// never repeated here: a 429 is returned as a rate-limit refusal with its
    /// `Retry-After` (the router waits it out), a connection that failed before sending as
    /// [`KolboError::NotSent`]. If Kolbo accepted it but the body was cut short, the
    /// generation id is recovered from what arrived when possible, so a paid job is never
    /// lost.
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
            retry: false,
            paced: true,
        };
        match self.execute(call).await {
            Ok(answer) => {
                match answer.decode::<GenerationStarted>() {
                    Ok(started) => Ok(started),
                    // A paid id must survive a body we cannot read.
                    Err(error) => match decode::salvage_generation_id(&answer.bytes) {
                        Some(id) => {
                            tracing::warn!(generation_id = %id, %error, "kolbo: accepted generation with an unreadable body; recovered its id");
                            Ok(GenerationStarted::with_id(id))
                        }
                        None => Err(error),
                    },
                }
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
    /// generation answers 409. Sent once, like every POST.
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
            retry: false,
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

    /// Sends `call`: once, or for an idempotent GET through the shared retry loop.
    async fn execute(&self, call: Call<'_>) -> Result<Answer, KolboError> {
        if !call.retry || call.method != Method::GET {
            return self.attempt(&call).await;
        }
        let call = &call;
        retry::run(
            &self.inner.retry,
            self.inner.transport.clock().as_ref(),
            &get_decision,
            |_| self.attempt(call),
        )
        .await
        .map_err(retry::Stopped::into_error)
    }

    /// One try: send, read the whole body, sort success from error.
    async fn attempt(&self, call: &Call<'_>) -> Result<Answer, KolboError> {
        // Held until the answer has been read: the slot counts from then.
        let _permit = match (&self.inner.pacer, call.paced) {
            (Some(pacer), true) => Some(pacer.acquire(self.inner.transport.clock()).await),
            _ => None,
        };
        // Also held until the answer has been read: past the limit, a request waits here
        // instead of opening one more connection. The semaphore is never closed.
        let _open = self.inner.open.acquire().await.ok();
        let transport = &self.inner.transport;
        let mut request = transport
            .request(call.method.clone(), call.url.clone())
            .map_err(|e| transport_error(e, call.billable))?
            .header(ACCEPT, "application/json");
        if let Some(query) = &call.query {
            request = request.query(query);
        }
        if let Some(body) = call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = match transport
            .send(request)
            .await
            .map_err(|e| transport_error(e, call.billable))?
        {
            Reply::Answer(response) => response,
            Reply::Redirect(redirect) => {
                tracing::debug!(method = %call.method, path = call.url.path(), status = redirect.status, "kolbo: redirect, not followed");
                return Err(KolboError::Redirect {
                    status: redirect.status,
                    location: redirect.location,
                });
            }
            _ => {
                return Err(KolboError::Config(
                    "the HTTP transport gave an answer this client does not know".into(),
                ));
            }
        };
        let status = response.status();
        let retry_after = RetryAfter::from_headers(response.headers(), self.clock().wall_time())
            .map(RetryAfter::wait);
        tracing::debug!(method = %call.method, path = call.url.path(), status = status.as_u16(), "kolbo: answer");
        let bytes = match read_bounded(response, MAX_RESPONSE_BYTES).await {
            Ok(bytes) => bytes,
            Err(error) => {
                if call.billable && status.is_success() {
                    // Accepted, then cut off: the id may be in what did arrive.
                    if let Some(id) = decode::salvage_generation_id(error.partial()) {
                        tracing::warn!(generation_id = %id, "kolbo: body cut short; recovered the generation id");
                        return Ok(Answer {
                            status: status.as_u16(),
                            bytes: error.partial().clone(),
                            salvaged_id: Some(id),
                        });
                    }
                }
                return Err(match error {
                    BodyError::Interrupted { source, .. } => transport_error(source, call.billable),
                    other => KolboError::Unreadable {
                        status: status.as_u16(),
                        detail: other.to_string(),
                        body_prefix: decode::body_prefix(other.partial()),
                    },
                });
            }
        };
        classify(status, retry_after, bytes, call.billable)
    }
}

/// Whether a failed GET is worth another try: a transport failure per
/// [`Decision::for_transport`] (a refused connection or a reset, not a timeout), or a rate
/// limit (after its `Retry-After`). Anything else is Kolbo's final word.
fn get_decision(error: &KolboError) -> Decision {
    match error {
        KolboError::NotSent {
            source: Some(source),
            ..
        }
        | KolboError::NoAnswer {
            source: Some(source),
            ..
        } => Decision::for_transport(source),
        e if e.is_rate_limited() => Decision::Retry {
            after: e.retry_after(),
        },
        _ => Decision::Stop,
    }
}

/// Sorts a complete answer into success, a Kolbo error, or an unreadable body.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    bytes: Bytes,
    billable: bool,
) -> Result<Answer, KolboError> {
    let code = status.as_u16();
    let envelope = decode::error_envelope(&bytes, status.is_success());
    let says_error = envelope.as_ref().is_some_and(ErrorBody::is_error);
    if status.is_success() && !says_error {
        // A body that is not JSON is reported when decoding, so that a billable call can
        // still recover the generation id from it.
        return Ok(Answer {
            status: code,
            bytes,
            salvaged_id: None,
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
            body_prefix: decode::body_prefix(&bytes),
            retry_after,
        }),
    }
}

fn outcome_unknown(status: u16, bytes: &[u8]) -> KolboError {
    KolboError::OutcomeUnknown {
        message: format!(
            "HTTP {status} from a gateway, body starts: {:?}",
            decode::body_prefix(bytes)
        ),
        source: None,
    }
}

/// Maps a transport failure: not sent → [`KolboError::NotSent`]; maybe sent →
/// [`KolboError::OutcomeUnknown`] for a billable call, else [`KolboError::NoAnswer`]. The
/// transport error stays as the source.
fn transport_error(error: TransportError, billable: bool) -> KolboError {
    let message = error.message().to_owned();
    let source = Some(error);
    if source.as_ref().is_some_and(TransportError::nothing_sent) {
        KolboError::NotSent { message, source }
    } else if billable {
        KolboError::OutcomeUnknown { message, source }
    } else {
        KolboError::NoAnswer { message, source }
    }
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

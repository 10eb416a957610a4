//! The HTTP client for `POST /api/image-generation/`.
//!
//! [`KoalaClient::generate`] validates a request locally ([`crate::validate()`]), sends it
//! **once** through the shared [`imagegen_http::Transport`] with the API key as a sensitive
//! `Authorization: Bearer` header, and reads the array of image URLs. It never follows a
//! redirect (the key stays with Koala).
//!
//! The array is read with plain serde first. A paid answer must not be lost to one odd
//! field, so only when that fails a lenient second pass reads it again: a number no `f64`
//! can hold (`"seed":1e999`, which serde_json refuses for the whole text) reads as `null`
//! (see [`imagegen_http::json::finite_numbers`]), so an optional field holding it is
//! absent (a field this version does not know keeps it as `null` in
//! [`GeneratedImage::extra`]), and of a key sent twice the last value wins, as in
//! `serde_json::Value` and JavaScript's `JSON.parse` (a derived struct refuses it as a
//! "duplicate field"). A required field (`url`) that is bad still makes the answer
//! unreadable, with the number as sent in the error. Koala charges every image of every request it
//! receives, so the POST is never retried here, not even after a `429`: the refusal comes
//! back as [`ApiErrorKind::RateLimited`] with its `Retry-After`, and the router above
//! waits it out (retries happen in one layer only).

use std::fmt;
use std::time::Duration;

use imagegen_core::SharedClock;
use imagegen_http::json::finite_numbers;
use imagegen_http::{
    Credential, CredentialError, HttpConfig, Reply, RetryAfter, Transport, TransportError,
    read_bounded,
};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::SecretString;
use url::Url;

#[cfg(doc)]
use crate::error::ApiErrorKind;
use crate::error::KoalaError;
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

/// Default time to establish a connection: short, so a dead host fails fast.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = imagegen_http::config::DEFAULT_CONNECT_TIMEOUT;
/// Default time for the whole generate call. Koala answers before the image is made, so
/// this is generous.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest response body read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// What a generate call produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Generation {
    /// The images, in Koala's order. Their URLs block until each image is ready.
    pub images: Vec<GeneratedImage>,
    /// The checked request: model, quality, the credits charged, warnings.
    pub preflight: Preflight,
    /// How many times the request was sent: always 1 (a paid POST is never repeated).
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
    transport: Transport,
    endpoint: Url,
    plan: KoalaPlan,
}

impl fmt::Debug for KoalaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KoalaClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &"[redacted]")
            .field("plan", &self.plan)
            .field("request_timeout", &self.transport.request_timeout())
            .finish_non_exhaustive()
    }
}

impl KoalaClient {
    /// A builder for a client using `api_key`.
    pub fn builder(api_key: impl Into<SecretString>) -> KoalaClientBuilder {
        let mut config = HttpConfig::new(DEFAULT_BASE_URL, crate::USER_AGENT);
        config.request_timeout = DEFAULT_REQUEST_TIMEOUT;
        KoalaClientBuilder {
            api_key: api_key.into(),
            plan: KoalaPlan::Unknown,
            config,
        }
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The account's plan, as configured.
    pub fn plan(&self) -> KoalaPlan {
        self.plan
    }

    /// The clock this client was given.
    pub fn clock(&self) -> &SharedClock {
        self.transport.clock()
    }

    /// Checks `request` without sending it: what it would cost and what to know.
    pub fn preflight(&self, request: &ImageGenerationRequest) -> Result<Preflight, KoalaError> {
        Ok(validate(request, self.plan)?)
    }

    /// Validates `request`, sends it once, and returns the image URLs.
    ///
    /// Invalid requests fail with [`KoalaError::Invalid`] and nothing is sent. The request
    /// is never repeated, because Koala charges every image of every request it receives:
    /// a `429` is returned as [`ApiErrorKind::RateLimited`] with its `Retry-After` (the
    /// router waits it out), a connection that failed before sending as
    /// [`KoalaError::NotDelivered`].
    #[tracing::instrument(name = "koala.generate", skip_all, fields(model, num_images))]
    pub async fn generate(
        &self,
        request: &ImageGenerationRequest,
    ) -> Result<Generation, KoalaError> {
        let preflight = validate(request, self.plan)?;
        tracing::Span::current()
            .record("model", preflight.model.as_str())
            .record("num_images", preflight.num_images);
        let body = serde_json::to_vec(request).map_err(|e| {
            KoalaError::Config(format!("the request cannot be written as JSON: {e}"))
        })?;
        let images = self.send_once(body).await?;
        Ok(Generation {
            images,
            preflight,
            attempts: 1,
        })
    }

    async fn send_once(&self, body: Vec<u8>) -> Result<Vec<GeneratedImage>, KoalaError> {
        let request = self
            .transport
            .request(Method::POST, self.endpoint.clone())
            .map_err(transport_error)?
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body);
        let response = match self
            .transport
            .send(request)
            .await
            .map_err(transport_error)?
        {
            Reply::Redirect(redirect) => {
                return Err(KoalaError::Redirect {
                    status: redirect.status,
                    location: redirect.location,
                });
            }
            Reply::Answer(response) => response,
            _ => {
                return Err(KoalaError::Config(
                    "the HTTP transport gave an answer this client does not know".to_owned(),
                ));
            }
        };
        let status = response.status().as_u16();
        let retry_after = RetryAfter::from_headers(response.headers(), self.clock().wall_time())
            .map(RetryAfter::wait);
        let body = read_bounded(response, MAX_RESPONSE_BYTES).await;

        if !(200..300).contains(&status) {
            let bytes = body.unwrap_or_else(|e| e.partial().clone());
            return Err(KoalaError::from_status(status, &bytes, retry_after));
        }
        let bytes = body.map_err(|why| {
            KoalaError::unreadable(status, format!("the body could not be read: {why}"), b"")
        })?;
        success_images(status, &bytes)
    }
}

/// A success answer's images: the body read as the image list, at least one.
pub(crate) fn success_images(status: u16, bytes: &[u8]) -> Result<Vec<GeneratedImage>, KoalaError> {
    let images = read_images(bytes).map_err(|why| {
        KoalaError::unreadable(
            status,
            format!("expected a JSON array of {{url, alt}} objects: {why}"),
            bytes,
        )
    })?;
    if images.is_empty() {
        return Err(KoalaError::unreadable(
            status,
            "the response lists no images",
            bytes,
        ));
    }
    Ok(images)
}

/// Reads a success body as the image list: plain serde, else the lenient pass described in
/// the module documentation. The error is why it is unreadable: the plain pass's reason,
/// or, when the body held numbers out of range, the lenient pass's and those numbers.
pub(crate) fn read_images(bytes: &[u8]) -> Result<Vec<GeneratedImage>, String> {
    let direct = match serde_json::from_slice::<Vec<GeneratedImage>>(bytes) {
        Ok(images) => return Ok(images),
        Err(error) => error,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(direct.to_string());
    };
    let finite = finite_numbers(text);
    for number in &finite.replaced {
        tracing::warn!(
            member = %number.path,
            number = %number.number,
            "koala: reading a number no f64 can hold as null"
        );
    }
    // `Value` keeps the last of a key sent twice.
    let Ok(tree) = serde_json::from_str::<serde_json::Value>(&finite.text) else {
        return Err(direct.to_string());
    };
    match serde_json::from_value::<Vec<GeneratedImage>>(tree) {
        Ok(images) => {
            tracing::debug!(error = %direct, "koala: answer read by the lenient pass");
            Ok(images)
        }
        Err(lenient) if !finite.replaced.is_empty() => {
            let numbers: Vec<String> = finite
                .replaced
                .iter()
                .map(|n| format!("{} = {}", n.path, n.number))
                .collect();
            Err(format!(
                "{lenient}, with a number no f64 can hold read as null ({})",
                numbers.join(", ")
            ))
        }
        Err(_) => Err(direct.to_string()),
    }
}

/// Whether a failed send may have reached Koala: a request that could not be built is a
/// configuration error, one that never left was not delivered, anything else may have
/// been (and charged).
fn transport_error(err: TransportError) -> KoalaError {
    let message = err.message().to_owned();
    if err.is_build() {
        KoalaError::Config(message)
    } else if err.nothing_sent() {
        KoalaError::NotDelivered {
            message,
            source: Some(err),
        }
    } else {
        KoalaError::MaybeDelivered {
            message,
            source: Some(err),
        }
    }
}

/// Builds a [`KoalaClient`]; see there.
#[must_use]
pub struct KoalaClientBuilder {
    api_key: SecretString,
    plan: KoalaPlan,
    config: HttpConfig,
}

impl fmt::Debug for KoalaClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KoalaClientBuilder")
            .field("base_url", &self.config.base_url)
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
        self.config.base_url = base_url.into();
        self
    }

    /// The account's plan (default unknown: nothing is refused locally for the plan).
    pub fn plan(mut self, plan: KoalaPlan) -> Self {
        self.plan = plan;
        self
    }

    /// Time to establish a connection (default 5 s). Ignored with [`Self::http_client`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Time for the whole generate call (default 120 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Uses this HTTP client. It should not follow redirects
    /// (`reqwest::redirect::Policy::none()`); a redirect it follows is logged.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.config.http = Some(client);
        self
    }

    /// The clock (default: the real clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.config.clock = Some(clock);
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<KoalaClient, KoalaError> {
        let credential = Credential::bearer(&self.api_key).map_err(|e| match e {
            CredentialError::Empty => {
                KoalaError::Config(format!("the Koala API key is empty: set {ENV_API_KEY}"))
            }
            _ => KoalaError::Config(
                "the Koala API key contains characters that cannot be sent in an HTTP header"
                    .to_owned(),
            ),
        })?;
        let endpoint = endpoint_url(&self.config.base_url)?;
        let transport = Transport::new(&self.config, &endpoint, Some(credential))
            .map_err(|e| KoalaError::Config(format!("the HTTP client cannot be built: {e}")))?;
        Ok(KoalaClient {
            transport,
            endpoint,
            plan: self.plan,
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
    fn one_number_out_of_range_loses_only_its_field() {
        let images = read_images(
            br#"[{"url":"https://koala.sh/api/image/v2-a.jpg","alt":1e999,"seed":-1e400},
                 {"url":"https://koala.sh/api/image/v2-b.jpg","alt":"a cat","w":[1,1e999]}]"#,
        )
        .unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].url, "https://koala.sh/api/image/v2-a.jpg");
        assert_eq!(images[0].alt, None);
        assert_eq!(images[0].extra["seed"], serde_json::Value::Null);
        assert_eq!(images[1].alt.as_deref(), Some("a cat"));
        assert_eq!(images[1].extra["w"], serde_json::json!([1, null]));
        // A number inside a string is text, not a number.
        let images = read_images(br#"[{"url":"u","alt":"1e999","n":1e999}]"#).unwrap();
        assert_eq!(images[0].alt.as_deref(), Some("1e999"));
    }

    #[test]
    fn of_a_key_sent_twice_the_last_value_wins() {
        let images = read_images(
            br#"[{"url":"https://koala.sh/old.jpg","alt":"x","url":"https://koala.sh/new.jpg","alt":"y"}]"#,
        )
        .unwrap();
        assert_eq!(images[0].url, "https://koala.sh/new.jpg");
        assert_eq!(images[0].alt.as_deref(), Some("y"));
        let images = read_images(br#"[{"url":"u","alt":"x","alt":1e999}]"#).unwrap();
        assert_eq!(images[0].alt, None);
        let images = read_images(br#"[{"url":"u","seed":1,"seed":2}]"#).unwrap();
        assert_eq!(images[0].extra["seed"], 2);
    }

    /// Found by fuzzing (`koala_answer`): serde_json's default float parser may read a
    /// number one ulp off, so an unknown field kept as sent changed, and the image list no
    /// longer read back as itself once written (the workspace turns on `float_roundtrip`).
    #[test]
    fn a_number_kept_as_sent_reads_back_exactly() {
        let images = read_images(br#"[{"url":"u","w":1.111111111111111e+44}]"#).unwrap();
        assert_eq!(
            images[0].extra["w"].as_f64(),
            Some(1.111_111_111_111_111e44)
        );
        let written = serde_json::to_vec(&images).unwrap();
        assert_eq!(read_images(&written).unwrap(), images);
    }

    #[test]
    fn a_bad_url_still_makes_the_answer_unreadable_and_says_so() {
        let why = read_images(br#"[{"url":1e999},{"url":"u"}]"#).unwrap_err();
        assert!(why.contains("invalid type: null"), "{why}");
        assert!(why.contains("[0].url = 1e999"), "{why}");
        let why = read_images(br#"[{"url":"u","alt":5}]"#).unwrap_err();
        assert!(why.starts_with("invalid type: integer `5`"), "{why}");
        let why = read_images(br#"[{"url":"u","n":1e999"#).unwrap_err();
        assert!(why.starts_with("number out of range"), "{why}");
        let why = read_images(b"\xff[]").unwrap_err();
        assert!(why.contains("expected value"), "{why}");
    }

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

//! [`Transport`]: sending one request to an API with its credential.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use imagegen_core::SharedClock;
use reqwest::Method;
use reqwest::header::LOCATION;
use url::Url;

use crate::auth::Credential;
use crate::client::api_client;
use crate::config::HttpConfig;
use crate::error::{NotSentCause, TransportError};

/// What came back from one request: an answer to read, or a redirect that was not
/// followed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// An answer that is not a redirect (any other status), body not yet read.
    Answer(reqwest::Response),
    /// A 3xx, never followed: the credential stays with the API's host. The wire crate
    /// decides what it means (usually a misconfigured base URL).
    Redirect(Redirect),
}

/// A redirect that was not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redirect {
    /// The HTTP status (301, 302, 307, …).
    pub status: u16,
    /// The `Location` header, when sent.
    pub location: Option<String>,
}

/// How long a host that did not accept a connection within the connect timeout is taken
/// to be down: requests in that window fail at once, as not sent, instead of each waiting
/// out the connect timeout again.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(30);

/// Sends requests to one API: the credential on every request to the base URL's origin
/// and to no other, a timeout on every request, redirects returned rather than followed.
/// A host that timed out connecting is not dialled again for [`UNREACHABLE_FOR`], so a
/// run against a dead host fails fast. Cheap to clone (clones share that memory).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use imagegen_http::{Credential, HttpConfig, Reply, Transport, read_bounded};
/// use secrecy::SecretString;
/// let base = url::Url::parse("https://api.example/v1/")?;
/// let config = HttpConfig::new(base.as_str(), "my-client/1.0");
/// let key = Credential::header("x-api-key", &SecretString::from("secret"))?;
/// let transport = Transport::new(&config, &base, Some(key))?;
/// let request = transport.request(reqwest::Method::GET, base.join("models")?)?;
/// match transport.send(request).await? {
///     Reply::Answer(response) => println!("{:?}", read_bounded(response, 1 << 20).await?),
///     Reply::Redirect(redirect) => println!("not followed: {redirect:?}"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    credential: Option<Credential>,
    request_timeout: Duration,
    clock: SharedClock,
    /// Until when (on the clock) the host is taken to be down.
    unreachable_until: Mutex<Option<Duration>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.inner.base.as_str())
            .field("credential", &self.inner.credential)
            .field("request_timeout", &self.inner.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for the API at `base` (checked and completed by the wire crate from
    /// [`HttpConfig::base_url`]), sending `credential` when given.
    pub fn new(
        config: &HttpConfig,
        base: &Url,
        credential: Option<Credential>,
    ) -> Result<Self, TransportError> {
        Ok(Self {
            inner: Arc::new(Inner {
                http: api_client(config, base)?,
                base: base.clone(),
                credential,
                request_timeout: config.request_timeout,
                clock: config.clock_or_real(),
                unreachable_until: Mutex::new(None),
            }),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    /// The clock retry waits run on.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The timeout of one request.
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// A request to `url` with the timeout and the credential. Refused (nothing sent) when
    /// `url` is not on the base URL's origin: the credential goes to its API only.
    pub fn request(
        &self,
        method: Method,
        url: Url,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        if !same_origin(&url, &self.inner.base) {
            return Err(TransportError::not_sent(
                NotSentCause::ForeignOrigin,
                format!(
                    "refusing to send the API credential to {}, which is not the API's origin {}",
                    url.origin().ascii_serialization(),
                    self.inner.base.origin().ascii_serialization()
                ),
            ));
        }
        let request = self
            .inner
            .http
            .request(method, url)
            .timeout(self.inner.request_timeout);
        Ok(match &self.inner.credential {
            Some(credential) => credential.apply(request),
            None => request,
        })
    }

    /// Sends `request` once: never retried here (see [`crate::retry`]). Fails at once, as
    /// not sent, while the host is taken to be down (see [`UNREACHABLE_FOR`]).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, TransportError> {
        if let Some(left) = self.unreachable_for() {
            return Err(TransportError::not_sent(
                NotSentCause::ConnectTimeout,
                format!(
                    "{} did not accept a connection in time moments ago; not dialling it again for {}s",
                    self.inner.base.origin().ascii_serialization(),
                    left.as_secs().max(1)
                ),
            ));
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let error = TransportError::from_send(error);
                if matches!(
                    error,
                    TransportError::NotSent {
                        cause: NotSentCause::ConnectTimeout,
                        ..
                    }
                ) {
                    self.mark_unreachable();
                }
                return Err(error);
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return Ok(Reply::Redirect(Redirect {
                status: status.as_u16(),
                location: response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            }));
        }
        if !same_origin(response.url(), &self.inner.base) {
            tracing::warn!(
                status = status.as_u16(),
                "an injected HTTP client followed a redirect away from the API's origin"
            );
        }
        Ok(Reply::Answer(response))
    }
}

/// Whether two URLs share an origin (scheme, host, port), compared in place: this runs on
/// every request, and `Url::origin` allocates.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Transport {
    fn unreachable_until(&self) -> std::sync::MutexGuard<'_, Option<Duration>> {
        self.inner
            .unreachable_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What is left of the window in which the host is taken to be down.
    fn unreachable_for(&self) -> Option<Duration> {
        let mut until = self.unreachable_until();
        let now = self.inner.clock.now();
        match *until {
            Some(end) if now < end => Some(end - now),
            Some(_) => {
                *until = None;
                None
            }
            None => None,
        }
    }

    /// Takes the host to be down for [`UNREACHABLE_FOR`] from now.
    pub(crate) fn mark_unreachable(&self) {
        let end = self.inner.clock.now().saturating_add(UNREACHABLE_FOR);
        *self.unreachable_until() = Some(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn transport(base: &str) -> Transport {
        transport_on(base, imagegen_core::ManualClock::new().shared())
    }

    fn transport_on(base: &str, clock: SharedClock) -> Transport {
        let base = Url::parse(base).unwrap();
        let mut config = HttpConfig::new(base.as_str(), "test/1");
        config.clock = Some(clock);
        let key = Credential::header("x-api-key", &SecretString::from("s3cret")).unwrap();
        Transport::new(&config, &base, Some(key)).unwrap()
    }

    #[test]
    fn the_credential_stays_on_its_origin() {
        let t = transport("https://api.example/v1/");
        let same = t
            .request(
                Method::GET,
                Url::parse("https://api.example/v1/models").unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
        assert!(same.headers()["x-api-key"].is_sensitive());
        assert_eq!(
            same.timeout(),
            Some(&crate::config::DEFAULT_REQUEST_TIMEOUT)
        );
        for other in [
            "https://cdn.example/v1/models",
            "http://api.example/v1/models",
            "https://api.example:8443/v1/models",
        ] {
            let err = t
                .request(Method::GET, Url::parse(other).unwrap())
                .unwrap_err();
            assert!(err.nothing_sent() && err.is_build(), "{other}: {err:?}");
        }
        let shown = format!("{t:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[tokio::test]
    async fn a_redirect_is_returned_not_followed() {
        let mut server = mockito::Server::new_async().await;
        let moved = server
            .mock("GET", "/api/x")
            .with_status(302)
            .with_header("location", "https://elsewhere.example/x")
            .expect(1)
            .create_async()
            .await;
        let t = transport(&format!("{}/api/", server.url()));
        let request = t
            .request(
                Method::GET,
                Url::parse(&format!("{}/api/x", server.url())).unwrap(),
            )
            .unwrap();
        let reply = t.send(request).await.unwrap();
        moved.assert_async().await;
        let Reply::Redirect(redirect) = reply else {
            panic!("{reply:?}");
        };
        assert_eq!(redirect.status, 302);
        assert_eq!(
            redirect.location.as_deref(),
            Some("https://elsewhere.example/x")
        );
    }

    #[tokio::test]
    async fn a_host_that_timed_out_connecting_is_not_dialled_again_for_a_while() {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("GET", "/api/x")
            .with_status(200)
            .expect(1)
            .create_async()
            .await;
        let clock = imagegen_core::ManualClock::manual();
        let t = transport_on(&format!("{}/api/", server.url()), clock.shared());
        let url = Url::parse(&format!("{}/api/x", server.url())).unwrap();
        t.mark_unreachable();
        let err = t
            .send(t.request(Method::GET, url.clone()).unwrap())
            .await
            .unwrap_err();
        assert!(err.nothing_sent() && err.is_timeout(), "{err:?}");
        assert!(err.message().contains("30s"), "{}", err.message());
        // A clone shares the memory.
        let clone = t.clone();
        clock.advance(UNREACHABLE_FOR - Duration::from_secs(1));
        assert!(
            clone
                .send(clone.request(Method::GET, url.clone()).unwrap())
                .await
                .is_err()
        );
        clock.advance(Duration::from_secs(1));
        let reply = t.send(t.request(Method::GET, url).unwrap()).await.unwrap();
        assert!(matches!(reply, Reply::Answer(_)));
        mock.assert_async().await;
    }
}

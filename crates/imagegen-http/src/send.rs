//! [`Transport`]: sending one request to an API with its credential.

use std::fmt;
use std::sync::Arc;
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

/// Sends requests to one API: the credential on every request to the base URL's origin
/// and to no other, a timeout on every request, redirects returned rather than followed.
/// Cheap to clone.
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
        if url.origin() != self.inner.base.origin() {
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

    /// Sends `request` once: never retried here (see [`crate::retry`]).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, TransportError> {
        let response = request.send().await.map_err(TransportError::from_send)?;
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
        if response.url().origin() != self.inner.base.origin() {
            tracing::warn!(
                status = status.as_u16(),
                "an injected HTTP client followed a redirect away from the API's origin"
            );
        }
        Ok(Reply::Answer(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn transport(base: &str) -> Transport {
        let base = Url::parse(base).unwrap();
        let config = HttpConfig::new(base.as_str(), "test/1");
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
}

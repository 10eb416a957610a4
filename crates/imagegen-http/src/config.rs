//! [`HttpConfig`]: the builder fields every API client shares.

use std::fmt;
use std::time::Duration;

use imagegen_core::{SharedClock, TokioClock};

/// The default time to establish a connection: short, so a dead host fails fast.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default time for one whole request, from connecting to the end of the body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach an API: the fields a wire crate's client builder exposes.
///
/// ```
/// use std::time::Duration;
/// use imagegen_http::HttpConfig;
/// let mut config = HttpConfig::new("https://api.example/v1", "my-client/1.0");
/// config.request_timeout = Duration::from_secs(30);
/// assert_eq!(config.connect_timeout, imagegen_http::config::DEFAULT_CONNECT_TIMEOUT);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The API base URL, as given (each wire crate checks and completes it).
    pub base_url: String,
    /// Time to establish a connection (default 5 s). Ignored with [`Self::http`].
    pub connect_timeout: Duration,
    /// Time for one whole request (default 60 s).
    pub request_timeout: Duration,
    /// The `User-Agent` header. Ignored with [`Self::http`].
    pub user_agent: String,
    /// A `reqwest::Client` to use instead of building one. It **must not follow
    /// redirects**: reqwest forwards custom headers to whatever host a redirect names.
    pub http: Option<reqwest::Client>,
    /// The clock retry waits run on (default: the real clock).
    pub clock: Option<SharedClock>,
}

impl HttpConfig {
    /// A configuration for `base_url` with the default timeouts.
    pub fn new(base_url: impl Into<String>, user_agent: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: user_agent.into(),
            http: None,
            clock: None,
        }
    }

    /// The clock to use: the injected one, else the real clock.
    pub fn clock_or_real(&self) -> SharedClock {
        self.clock.clone().unwrap_or_else(TokioClock::shared)
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .field("custom_http_client", &self.http.is_some())
            .field("clock", &self.clock)
            .finish()
    }
}

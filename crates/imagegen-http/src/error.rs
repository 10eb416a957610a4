//! [`TransportError`]: a request that failed, sorted by whether it can have reached the
//! server.

use std::error::Error as StdError;
use std::sync::Arc;

/// Why a request never left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotSentCause {
    /// The request could not be built (a bad URL or header), or the client could not be.
    Build,
    /// The connection failed: DNS, refused, reset during the handshake, TLS.
    Connect,
    /// The connection was not established within the connect timeout. The host is slow or
    /// dead: this is not retried.
    ConnectTimeout,
    /// The credential would have gone to another origin than the API's.
    ForeignOrigin,
}

/// A request that failed without a complete answer.
///
/// The variant answers the money question: [`TransportError::NotSent`] means nothing
/// reached the server (nothing can have been spent); [`TransportError::MaybeSent`] means
/// the request may have been received and acted upon. The `reqwest::Error` is kept as the
/// [`source`](std::error::Error::source) (shared, so the error stays `Clone`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request never left; nothing reached the server.
    #[error("the request was not sent ({message})")]
    NotSent {
        /// Why.
        cause: NotSentCause,
        /// What failed, with its causes, on one line (no URL: it may carry a signature).
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Arc<reqwest::Error>>,
    },
    /// The request may have been received, but no complete answer came (a timeout, a
    /// connection reset, a body that broke off).
    #[error("no complete answer after the request was sent ({message})")]
    MaybeSent {
        /// The status, when the head of an answer arrived before the failure.
        status: Option<u16>,
        /// Whether a timeout fired.
        timed_out: bool,
        /// What failed, with its causes, on one line.
        message: String,
        /// The underlying error.
        #[source]
        source: Arc<reqwest::Error>,
    },
}

impl PartialEq for TransportError {
    /// Two transport errors are equal when they say the same thing (the `reqwest::Error`
    /// sources are compared by their text).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::NotSent {
                    cause: a,
                    message: m,
                    ..
                },
                Self::NotSent {
                    cause: b,
                    message: n,
                    ..
                },
            ) => a == b && m == n,
            (
                Self::MaybeSent {
                    status: a,
                    timed_out: t,
                    message: m,
                    ..
                },
                Self::MaybeSent {
                    status: b,
                    timed_out: u,
                    message: n,
                    ..
                },
            ) => a == b && t == u && m == n,
            _ => false,
        }
    }
}

impl TransportError {
    /// A failure of `send()`, before any answer: [`Self::NotSent`] when reqwest says the
    /// request never left (building it, or connecting), else [`Self::MaybeSent`].
    pub fn from_send(error: reqwest::Error) -> Self {
        let message = describe(&error);
        if error.is_builder() {
            Self::NotSent {
                cause: NotSentCause::Build,
                message,
                source: Some(Arc::new(error)),
            }
        } else if error.is_connect() {
            let cause = if error.is_timeout() {
                NotSentCause::ConnectTimeout
            } else {
                NotSentCause::Connect
            };
            Self::NotSent {
                cause,
                message,
                source: Some(Arc::new(error)),
            }
        } else {
            Self::MaybeSent {
                status: None,
                timed_out: error.is_timeout(),
                message,
                source: Arc::new(error),
            }
        }
    }

    /// A failure while reading the body of an answer with `status`: always
    /// [`Self::MaybeSent`] (the server answered).
    pub fn from_body(error: reqwest::Error, status: u16) -> Self {
        Self::MaybeSent {
            status: Some(status),
            timed_out: error.is_timeout(),
            message: format!("HTTP {status} then {}", describe(&error)),
            source: Arc::new(error),
        }
    }

    /// A request that was not sent for a reason of our own.
    pub fn not_sent(cause: NotSentCause, message: impl Into<String>) -> Self {
        Self::NotSent {
            cause,
            message: message.into(),
            source: None,
        }
    }

    /// Whether nothing reached the server.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, Self::NotSent { .. })
    }

    /// Whether the request could not even be built (a configuration problem).
    pub fn is_build(&self) -> bool {
        matches!(
            self,
            Self::NotSent {
                cause: NotSentCause::Build | NotSentCause::ForeignOrigin,
                ..
            }
        )
    }

    /// Whether a timeout fired (connecting, or waiting for the answer).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::NotSent {
                cause: NotSentCause::ConnectTimeout,
                ..
            } | Self::MaybeSent {
                timed_out: true,
                ..
            }
        )
    }

    /// What failed, on one line.
    pub fn message(&self) -> &str {
        match self {
            Self::NotSent { message, .. } | Self::MaybeSent { message, .. } => message,
        }
    }
}

/// An error and its causes on one line, without the URL reqwest appends (a URL may carry
/// a signed query). A timeout says so first.
pub fn describe(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if error.is_timeout() {
        parts.push("timed out".to_owned());
    }
    parts.push(strip_url(&error.to_string()));
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// reqwest's `Display` appends ` for url (...)`.
fn strip_url(text: &str) -> String {
    match text.find(" for url (") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_not_sent_and_keeps_its_source() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let err = client
            .get(format!("http://127.0.0.1:{port}/x?sig=secret"))
            .send()
            .await
            .unwrap_err();
        let err = TransportError::from_send(err);
        assert!(err.nothing_sent(), "{err:?}");
        assert!(matches!(
            err,
            TransportError::NotSent {
                cause: NotSentCause::Connect,
                ..
            }
        ));
        assert!(!err.message().contains("secret"), "{}", err.message());
        let source = StdError::source(&err).unwrap();
        assert!(source.downcast_ref::<Arc<reqwest::Error>>().is_some());
        assert_eq!(err.clone(), err);
    }

    #[test]
    fn a_bad_url_is_a_build_error() {
        let client = reqwest::Client::new();
        let err = client.get("http://[::1").build().unwrap_err();
        let err = TransportError::from_send(err);
        assert!(err.nothing_sent() && err.is_build(), "{err:?}");
    }
}

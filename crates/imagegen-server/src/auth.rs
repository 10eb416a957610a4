//! Who may call the gateway: [`Auth`] turns a request's headers into a [`Caller`], or
//! the 401/403 that refuses it.
//!
//! - **Keys** (gateway keys in the ledger, `igk_…`, made by the operator): a request
//!   presents one as `Authorization: Bearer KEY`; it is hashed
//!   ([`imagegen_ledger::api_key_hash`]) and looked up
//!   ([`Ledger::find_api_key`]); an unknown or
//!   revoked key is 401 `invalid_api_key`. The key itself is never logged or echoed.
//! - **No live key in the ledger**: the gateway serves without keys, and only on a
//!   loopback address ([`Auth::new`] refuses any other, as anyone who could reach it
//!   could spend the account's credits). Requests then must name a loopback host in
//!   `Host` (or the configured public URL's), so a web page cannot reach the gateway
//!   through DNS rebinding; any other bearer token (the OpenAI clients insist on one) is
//!   ignored. Once a live key appears in the ledger, keys are required from then on.
//!
//! A browser on the gallery (see `crate::gallery`) cannot send `Authorization` when it
//! navigates, so the key it signed in with at `/login` comes back in the
//! [`SESSION_COOKIE`] instead, taken like a bearer token (a bearer gateway key wins).
//!
//! Image files (`GET /v1/files/…`) need no key: their names are SHA-256 digests, as
//! unguessable as a signed URL, so a URL the gateway returned works wherever it is
//! passed; they keep the host check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::header::{AUTHORIZATION, COOKIE, HOST};
use axum::http::{HeaderMap, StatusCode};
use imagegen_ledger::api_keys::is_well_formed;
use imagegen_ledger::{ApiKeyRecord, Ledger, api_key_hash};
use url::{Host, Url};

use crate::error::ServerError;
use crate::openai_error::{AUTHENTICATION, ApiError, INVALID_REQUEST, PERMISSION};

/// Who is calling.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// Someone on this machine, with no key (the gateway has none).
    Local,
    /// The holder of a gateway key.
    Key(Box<ApiKeyRecord>),
}

impl Caller {
    /// How logs name the caller (never with the key).
    pub(crate) fn label(&self) -> String {
        match self {
            Self::Local => "local".to_owned(),
            Self::Key(record) => format!("{} ({})", record.name, record.prefix),
        }
    }
}

/// The gateway's access rule; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Auth {
    ledger: Arc<dyn Ledger>,
    /// Whether requests without a key are served (no live key, loopback only).
    open: AtomicBool,
    /// The host of the configured public URL, also accepted in `Host` when open.
    public_host: Option<String>,
}

impl Auth {
    /// The rule for a gateway listening on `listen` with `ledger`: keys when the ledger
    /// has a live one; otherwise open, which only a loopback address may be.
    pub(crate) async fn new(
        listen: SocketAddr,
        ledger: Arc<dyn Ledger>,
        public_url: Option<&Url>,
    ) -> Result<Self, ServerError> {
        let keys = has_live_keys(ledger.as_ref()).await?;
        if !keys && !listen.ip().is_loopback() {
            return Err(ServerError::NoKeysOffLoopback { addr: listen });
        }
        Ok(Self {
            ledger,
            open: AtomicBool::new(!keys),
            public_host: public_url
                .and_then(Url::host_str)
                .map(str::to_ascii_lowercase),
        })
    }

    /// Whether requests need a gateway key.
    pub(crate) fn requires_keys(&self) -> bool {
        !self.open.load(Ordering::Acquire)
    }

    /// The caller of a request with `headers`, or the error that refuses it.
    pub(crate) async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let presented = bearer(headers).or_else(|| session_key(headers));
        // A gateway key in the header, else in the gallery's session cookie (an OpenAI
        // client's placeholder bearer does not hide a signed-in browser's key).
        let key = bearer(headers)
            .filter(|k| is_well_formed(k))
            .or_else(|| session_key(headers).filter(|k| is_well_formed(k)));
        if let Some(key) = key {
            return match self.ledger.find_api_key(&api_key_hash(key)).await {
                Ok(Some(record)) => Ok(Caller::Key(Box::new(record))),
                Ok(None) => Err(incorrect_key(Some(key))),
                Err(e) => Err(ApiError::internal(format!("the ledger: {e}")).code("ledger_error")),
            };
        }
        if !self.requires_keys() {
            self.check_host(headers)?;
            // A key made while the gateway runs takes effect at once, and for good.
            match has_live_keys(self.ledger.as_ref()).await {
                Ok(false) => return Ok(Caller::Local),
                Ok(true) => {
                    self.open.store(false, Ordering::Release);
                    tracing::info!("a gateway key exists now: requests need a key from now on");
                }
                Err(e) => {
                    return Err(ApiError::internal(format!("the ledger: {e}")).code("ledger_error"));
                }
            }
        }
        Err(match presented {
            None => ApiError::new(
                StatusCode::UNAUTHORIZED,
                INVALID_REQUEST,
                "You didn't provide an API key. Send your gateway key in an Authorization header: `Authorization: Bearer igk_…`.",
            )
            .code("missing_api_key"),
            Some(_) => incorrect_key(None),
        })
    }

    /// Refuses (403) a request naming a host that is not this machine's (nor the public
    /// URL's) while the gateway serves without keys.
    pub(crate) fn check_host(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.requires_keys() {
            return Ok(());
        }
        let Some(value) = headers.get(HOST) else {
            return Ok(());
        };
        let host = value
            .to_str()
            .ok()
            .and_then(|text| Url::parse(&format!("http://{text}/")).ok());
        let allowed = host
            .as_ref()
            .and_then(Url::host)
            .is_some_and(|host| match host {
                Host::Domain(name) => {
                    let name = name.to_ascii_lowercase();
                    name == "localhost"
                        || name.ends_with(".localhost")
                        || self.public_host.as_deref() == Some(name.as_str())
                }
                Host::Ipv4(ip) => ip.is_loopback(),
                Host::Ipv6(ip) => ip.is_loopback(),
            });
        if allowed {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                PERMISSION,
                "This gateway has no API keys and serves only this machine: address it as localhost or 127.0.0.1 (or create a gateway key).",
            )
            .code("host_not_allowed"))
        }
    }
}

/// Whether the ledger holds a live gateway key.
async fn has_live_keys(ledger: &dyn Ledger) -> Result<bool, imagegen_ledger::LedgerError> {
    Ok(ledger
        .list_api_keys()
        .await?
        .iter()
        .any(ApiKeyRecord::is_live))
}

/// The token of `Authorization: Bearer TOKEN`, when there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The name of the gallery's session cookie: the gateway key a browser signed in with
/// (`HttpOnly`, `SameSite=Strict`), presented like `Authorization: Bearer`.
pub(crate) const SESSION_COOKIE: &str = "imagegen_key";

/// The value of the session cookie, when the request carries one.
fn session_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// 401 for a key that is not a live gateway key, showing at most its display prefix.
fn incorrect_key(key: Option<&str>) -> ApiError {
    let shown = key
        .map(|k| format!(" ({}…)", k.chars().take(10).collect::<String>()))
        .unwrap_or_default();
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        AUTHENTICATION,
        format!("Incorrect API key provided{shown}: it is not a live gateway key of this gateway."),
    )
    .code("invalid_api_key")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_tokens_are_read() {
        assert_eq!(
            bearer(&headers(&[(AUTHORIZATION, "Bearer igk_1")])),
            Some("igk_1")
        );
        assert_eq!(
            bearer(&headers(&[(AUTHORIZATION, "bearer  x ")])),
            Some("x")
        );
        assert_eq!(bearer(&headers(&[(AUTHORIZATION, "Basic x")])), None);
        assert_eq!(bearer(&headers(&[(AUTHORIZATION, "Bearer ")])), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn the_session_cookie_is_read() {
        let both = headers(&[(COOKIE, "a=1; imagegen_key=igk_2 ; b=3")]);
        assert_eq!(session_key(&both), Some("igk_2"));
        assert_eq!(session_key(&headers(&[(COOKIE, "imagegen_key=")])), None);
        assert_eq!(session_key(&headers(&[(COOKIE, "other=igk_3")])), None);
    }

    #[test]
    fn a_refused_key_is_never_echoed_whole() {
        let key = "igk_0123456789abcdef0123456789abcdef01234567";
        let error = incorrect_key(Some(key));
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert!(error.message().contains("igk_012345…"));
        assert!(!error.message().contains("6789abcdef"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_keys_only_loopback_serves_and_only_local_hosts_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string())
            .await
            .unwrap();
        let public: Url = "https://images.example.org/".parse().unwrap();
        let open = Auth::new(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&ledger),
            Some(&public),
        )
        .await
        .unwrap();
        assert!(!open.requires_keys());
        for host in [
            "127.0.0.1:8787",
            "localhost",
            "[::1]:80",
            "images.example.org",
        ] {
            let caller = open.caller(&headers(&[(HOST, host)])).await;
            assert!(matches!(caller, Ok(Caller::Local)), "{host}");
        }
        for host in ["evil.example", "192.168.1.5:8787", "127.0.0.1.evil.example"] {
            let refused = open.caller(&headers(&[(HOST, host)])).await.unwrap_err();
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{host}");
        }
        // An OpenAI client's placeholder key is ignored; a gateway key that is not one is not.
        let placeholder = headers(&[(HOST, "localhost"), (AUTHORIZATION, "Bearer sk-anything")]);
        assert!(open.caller(&placeholder).await.is_ok());
        let unknown = headers(&[
            (HOST, "localhost"),
            (
                AUTHORIZATION,
                "Bearer igk_0123456789abcdef0123456789abcdef01234567",
            ),
        ]);
        assert_eq!(
            open.caller(&unknown).await.unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );

        let refused = Auth::new("0.0.0.0:0".parse().unwrap(), ledger, None).await;
        assert!(matches!(
            refused,
            Err(ServerError::NoKeysOffLoopback { .. })
        ));
    }
}

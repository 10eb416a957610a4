//! [`Credential`]: a secret sent in one request header, never shown.

use std::fmt;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

/// A secret header: its name, and a value marked sensitive (HTTP/2 never indexes it,
/// reqwest never logs it). `Debug` shows the name only.
///
/// ```
/// use imagegen_http::Credential;
/// use secrecy::SecretString;
/// let key = Credential::header("x-api-key", &SecretString::from("k-123")).unwrap();
/// assert!(!format!("{key:?}").contains("k-123"));
/// let bearer = Credential::bearer(&SecretString::from("k-123")).unwrap();
/// assert_eq!(bearer.name(), "authorization");
/// ```
#[derive(Clone)]
pub struct Credential {
    name: HeaderName,
    value: HeaderValue,
}

/// Why a secret cannot be a credential. Never contains the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The secret is empty or only white space.
    #[error("the key is empty")]
    Empty,
    /// The secret has characters a header cannot carry (a line break, say).
    #[error("the key contains characters that cannot be sent in an HTTP header")]
    NotAHeaderValue,
    /// The header name is not a valid header name.
    #[error("the credential header name is not a valid HTTP header name")]
    BadName,
}

impl Credential {
    /// `name: secret` (the secret trimmed), such as `X-API-Key: …`.
    pub fn header(name: &str, secret: &SecretString) -> Result<Self, CredentialError> {
        let name = HeaderName::try_from(name).map_err(|_| CredentialError::BadName)?;
        let secret = secret.expose_secret().trim();
        if secret.is_empty() {
            return Err(CredentialError::Empty);
        }
        Self::sensitive(name, secret)
    }

    /// `Authorization: Bearer <secret>` (the secret trimmed).
    pub fn bearer(secret: &SecretString) -> Result<Self, CredentialError> {
        let secret = secret.expose_secret().trim();
        if secret.is_empty() {
            return Err(CredentialError::Empty);
        }
        Self::sensitive(AUTHORIZATION, &format!("Bearer {secret}"))
    }

    fn sensitive(name: HeaderName, value: &str) -> Result<Self, CredentialError> {
        let mut value =
            HeaderValue::from_str(value).map_err(|_| CredentialError::NotAHeaderValue)?;
        value.set_sensitive(true);
        Ok(Self { name, value })
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// Adds the header to `request`.
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header(self.name.clone(), self.value.clone())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sensitive_trimmed_and_hidden() {
        let c = Credential::header("X-API-Key", &SecretString::from(" abc \n")).unwrap();
        assert_eq!(c.name(), "x-api-key");
        assert!(c.value.is_sensitive());
        assert_eq!(c.value, "abc");
        let shown = format!("{c:?} {c:#?}");
        assert!(
            !shown.contains("abc") && shown.contains("[redacted]"),
            "{shown}"
        );
        let b = Credential::bearer(&SecretString::from("abc")).unwrap();
        assert_eq!(b.value, "Bearer abc");
        assert!(b.value.is_sensitive());
    }

    #[test]
    fn bad_secrets_are_refused_without_echoing_them() {
        let empty = SecretString::from("  ");
        assert_eq!(
            Credential::bearer(&empty).unwrap_err(),
            CredentialError::Empty
        );
        let broken = SecretString::from("ab\ncd-secret");
        let err = Credential::header("x-api-key", &broken).unwrap_err();
        assert_eq!(err, CredentialError::NotAHeaderValue);
        assert!(!err.to_string().contains("cd-secret"));
        assert_eq!(
            Credential::header("bad name", &SecretString::from("x")).unwrap_err(),
            CredentialError::BadName
        );
    }
}

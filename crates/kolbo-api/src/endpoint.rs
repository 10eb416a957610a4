//! Where Kolbo's routes are: URLs built from the base URL and percent-encoded path
//! segments, never by joining server-supplied paths.
//!
//! The status URL of a generation is `{base}/v1/generate/{id}/status`, with the id
//! percent-encoded, exactly as Kolbo's own clients build it. The `poll_url` a started
//! response carries is kept as information only; [`resolve_poll_url`] reads it tolerantly
//! for callers who want it anyway.

use url::Url;

use crate::error::KolboError;

/// Kolbo's production API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.kolbo.ai/api";

/// The routes under one base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    base: Url,
}

impl Endpoints {
    /// Checks `base`: http(s), a host, no credentials, no query or fragment.
    pub(crate) fn new(base: &str) -> Result<Self, KolboError> {
        let bad = |why: &str| KolboError::Config(format!("base URL `{base}` {why}"));
        let mut url = Url::parse(base.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must use http or https"));
        }
        if url.host().is_none() {
            return Err(bad("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let trimmed = url.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
        Ok(Self { base: url })
    }

    /// The base URL (without a trailing slash).
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// `base` followed by `segments`, each percent-encoded (a `/` in a segment becomes
    /// `%2F`, so an id can never climb out of its route).
    pub(crate) fn route(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // A base URL with a host can always be a base; `Endpoints::new` checked it.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(crate) fn generate_image(&self) -> Url {
        self.route(&["v1", "generate", "image"])
    }

    pub(crate) fn status(&self, generation_id: &str) -> Url {
        self.route(&["v1", "generate", generation_id, "status"])
    }

    pub(crate) fn cancel(&self, generation_id: &str) -> Url {
        self.route(&["v1", "generate", generation_id, "cancel"])
    }

    pub(crate) fn models(&self) -> Url {
        self.route(&["v1", "models"])
    }

    pub(crate) fn account_credits(&self) -> Url {
        self.route(&["v1", "account", "credits"])
    }

    pub(crate) fn moodboards(&self) -> Url {
        self.route(&["v1", "moodboards"])
    }

    pub(crate) fn moodboard(&self, id: &str) -> Url {
        self.route(&["v1", "moodboards", id])
    }

    pub(crate) fn visual_dnas(&self) -> Url {
        self.route(&["v1", "visual-dna"])
    }

    pub(crate) fn visual_dna(&self, id: &str) -> Url {
        self.route(&["v1", "visual-dna", id])
    }
}

/// Resolves a `poll_url` from a started response against `base` (such as
/// `https://api.kolbo.ai/api`), tolerating both forms the docs show:
///
/// - `/api/v1/generate/{id}/status` (relative to the origin, when it starts with the base
///   path) → `https://api.kolbo.ai/api/v1/...`;
/// - `/v1/generate/{id}/status` (relative to the base) → `https://api.kolbo.ai/api/v1/...`;
/// - an absolute URL → as is, but only on the base's origin (scheme, host and port), so a
///   server-supplied URL can never send the API key elsewhere.
///
/// `None` for an empty value, another origin, or a path with `.`/`..` segments. The client
/// itself never polls this URL; it builds the status URL from the generation id.
///
/// ```
/// use kolbo_api::endpoint::resolve_poll_url;
/// let base = url::Url::parse("https://api.kolbo.ai/api")?;
/// let want = "https://api.kolbo.ai/api/v1/generate/abc123/status";
/// assert_eq!(resolve_poll_url(&base, "/v1/generate/abc123/status").unwrap().as_str(), want);
/// assert_eq!(resolve_poll_url(&base, "/api/v1/generate/abc123/status").unwrap().as_str(), want);
/// assert_eq!(resolve_poll_url(&base, "https://evil.example/v1/x"), None);
/// # Ok::<(), url::ParseError>(())
/// ```
pub fn resolve_poll_url(base: &Url, poll_url: &str) -> Option<Url> {
    let text = poll_url.trim();
    if text.is_empty() {
        return None;
    }
    let resolved = if let Ok(absolute) = Url::parse(text) {
        absolute
    } else if text.starts_with("//") {
        Url::parse(&format!("{}:{text}", base.scheme())).ok()?
    } else {
        let base_path = base.path().trim_end_matches('/');
        let (path, query) = match text.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (text, None),
        };
        let full_path = if !base_path.is_empty()
            && (path == base_path || path.starts_with(&format!("{base_path}/")))
        {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{base_path}{path}")
        } else {
            format!("{base_path}/{path}")
        };
        if full_path.split('/').any(|s| s == "." || s == "..") {
            return None;
        }
        let mut url = base.clone();
        url.set_path(&full_path);
        url.set_query(query);
        url.set_fragment(None);
        url
    };
    let same_origin = resolved.origin() == base.origin();
    let climbs = text.split(['/', '?']).any(|s| s == "." || s == "..");
    (same_origin && !climbs).then_some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.kolbo.ai/api").unwrap()
    }

    #[test]
    fn poll_url_forms() {
        let want = "https://api.kolbo.ai/api/v1/generate/abc123/status";
        for form in [
            "/v1/generate/abc123/status",
            "/api/v1/generate/abc123/status",
            "v1/generate/abc123/status",
            "https://api.kolbo.ai/api/v1/generate/abc123/status",
            "//api.kolbo.ai/api/v1/generate/abc123/status",
            "  /v1/generate/abc123/status  ",
        ] {
            assert_eq!(
                resolve_poll_url(&base(), form).map(String::from).as_deref(),
                Some(want),
                "{form}"
            );
        }
        assert_eq!(
            resolve_poll_url(&base(), "/v1/generate/a/status?x=1")
                .unwrap()
                .as_str(),
            "https://api.kolbo.ai/api/v1/generate/a/status?x=1"
        );
    }

    #[test]
    fn poll_url_refuses_other_origins_and_traversal() {
        for bad in [
            "",
            "   ",
            "https://evil.example/api/v1/generate/a/status",
            "http://api.kolbo.ai/api/v1/generate/a/status",
            "https://api.kolbo.ai:8443/api/v1/generate/a/status",
            "//evil.example/v1/x",
            "/v1/generate/../../admin",
            "/v1/./generate",
        ] {
            assert_eq!(resolve_poll_url(&base(), bad), None, "{bad}");
        }
    }

    #[test]
    fn poll_url_against_a_root_base() {
        let root = Url::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(
            resolve_poll_url(&root, "/v1/generate/a/status")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/v1/generate/a/status"
        );
    }

    #[test]
    fn routes_percent_encode_ids() {
        let endpoints = Endpoints::new("https://api.kolbo.ai/api/").unwrap();
        assert_eq!(
            endpoints.status("abc123").as_str(),
            "https://api.kolbo.ai/api/v1/generate/abc123/status"
        );
        assert_eq!(
            endpoints.status("a/b c?d#e%").as_str(),
            "https://api.kolbo.ai/api/v1/generate/a%2Fb%20c%3Fd%23e%25/status"
        );
        assert_eq!(
            endpoints.cancel("x").as_str(),
            "https://api.kolbo.ai/api/v1/generate/x/cancel"
        );
        assert_eq!(
            endpoints.visual_dna("d1").as_str(),
            "https://api.kolbo.ai/api/v1/visual-dna/d1"
        );
        let root = Endpoints::new("http://127.0.0.1:1234").unwrap();
        assert_eq!(root.models().as_str(), "http://127.0.0.1:1234/v1/models");
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        for bad in [
            "api.kolbo.ai",
            "ftp://api.kolbo.ai/api",
            "https://user:pw@api.kolbo.ai/api",
            "https://api.kolbo.ai/api?x=1",
            "https://api.kolbo.ai/api#frag",
        ] {
            assert!(
                matches!(Endpoints::new(bad), Err(KolboError::Config(_))),
                "{bad}"
            );
        }
    }
}

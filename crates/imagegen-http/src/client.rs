//! [`api_client`]: the `reqwest::Client` an API client uses.

use url::Url;

use crate::config::HttpConfig;
use crate::error::{NotSentCause, TransportError};

/// The HTTP client for the API at `base`: the injected one when [`HttpConfig::http`] is
/// set, else a new one that **never follows redirects** (a redirect comes back as an
/// answer; see [`Reply::Redirect`](crate::Reply::Redirect)), with the configured connect
/// timeout and user agent, HTTPS only for an `https` base, and no proxy for a loopback
/// base (a developer's `HTTP(S)_PROXY` must not route simulator or mock traffic).
pub fn api_client(config: &HttpConfig, base: &Url) -> Result<reqwest::Client, TransportError> {
    if let Some(client) = &config.http {
        return Ok(client.clone());
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .user_agent(config.user_agent.as_str());
    if is_loopback(base) {
        builder = builder.no_proxy();
    }
    if base.scheme() == "https" {
        builder = builder.https_only(true);
    }
    builder.build().map_err(|e| TransportError::NotSent {
        cause: NotSentCause::Build,
        message: format!(
            "cannot build the HTTP client: {}",
            crate::error::describe(&e)
        ),
        source: Some(std::sync::Arc::new(e)),
    })
}

/// Whether `url` names this machine.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (url, want) in [
            ("http://127.0.0.1:8080/api", true),
            ("http://[::1]/", true),
            ("http://LOCALHOST/", true),
            ("https://api.example/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), want, "{url}");
        }
    }
}

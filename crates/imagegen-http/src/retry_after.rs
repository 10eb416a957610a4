//! [`RetryAfter`]: the one `Retry-After` parser.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// A wait a server asked for in `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an
/// HTTP-date.
///
/// Delay-seconds are integers; fractions (`1.5`) are tolerated. A date is read relative to
/// the `now` passed in, and one in the past is a wait of zero. Anything else (negative,
/// garbage) is no wait at all. Waits are clamped to [`RetryAfter::MAX`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use imagegen_http::RetryAfter;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
/// assert_eq!(RetryAfter::parse("7", now).map(RetryAfter::wait), Some(Duration::from_secs(7)));
/// assert_eq!(
///     RetryAfter::parse("Wed, 21 Oct 2015 07:28:30 GMT", now).map(RetryAfter::wait),
///     Some(Duration::from_secs(30))
/// );
/// assert_eq!(RetryAfter::parse("soon", now), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetryAfter(Duration);

impl RetryAfter {
    /// The longest wait a header is taken to mean (one day); longer values are clamped.
    pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);

    /// Parses a header value.
    pub fn parse(value: &str, now: SystemTime) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            if value.bytes().filter(|&b| b == b'.').count() > 1
                || !value.as_bytes()[0].is_ascii_digit()
            {
                return None;
            }
            let seconds: f64 = value.parse().ok()?;
            if !seconds.is_finite() || seconds < 0.0 {
                return None;
            }
            let wait = if seconds >= Self::MAX.as_secs_f64() {
                Self::MAX
            } else {
                Duration::try_from_secs_f64(seconds).ok()?
            };
            return Some(Self(wait));
        }
        let date = httpdate::parse_http_date(value).ok()?;
        let wait = date.duration_since(now).unwrap_or(Duration::ZERO);
        Some(Self(wait.min(Self::MAX)))
    }

    /// The `Retry-After` header in `headers`, when present and readable.
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Self> {
        let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
        Self::parse(value, now)
    }

    /// The wait.
    pub fn wait(self) -> Duration {
        self.0
    }
}

impl From<RetryAfter> for Duration {
    fn from(after: RetryAfter) -> Self {
        after.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn now() -> SystemTime {
        httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap()
    }

    fn wait(value: &str) -> Option<Duration> {
        RetryAfter::parse(value, now()).map(RetryAfter::wait)
    }

    #[test]
    fn delay_seconds() {
        assert_eq!(wait("0"), Some(Duration::ZERO));
        assert_eq!(wait("7"), Some(Duration::from_secs(7)));
        assert_eq!(wait("120"), Some(Duration::from_secs(120)));
        assert_eq!(wait("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(wait("  7\t"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            wait("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait(" Wed, 21 Oct 2015 07:29:00 GMT "),
            Some(Duration::from_secs(60))
        );
        // Past: zero, not an error.
        assert_eq!(wait("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        // The obsolete forms httpdate reads (RFC 850, asctime) count too.
        assert_eq!(
            wait("Wednesday, 21-Oct-15 07:28:10 GMT"),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn garbage_is_no_wait() {
        for bad in [
            "",
            "   ",
            "soon",
            "-1",
            "+5",
            "1e3",
            "inf",
            "NaN",
            ".5",
            "1.2.3",
            "7 seconds",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(wait(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn huge_numbers_clamp() {
        assert_eq!(wait("86400"), Some(RetryAfter::MAX));
        assert_eq!(
            wait("999999999999999999999999999999"),
            Some(RetryAfter::MAX)
        );
        assert_eq!(wait("18446744073709551616"), Some(RetryAfter::MAX));
        assert_eq!(wait("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(wait("Fri, 01 Jan 2100 00:00:00 GMT"), Some(RetryAfter::MAX));
    }

    #[test]
    fn from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(RetryAfter::from_headers(&headers, now()), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            RetryAfter::from_headers(&headers, now()).map(Duration::from),
            Some(Duration::from_secs(7))
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(RetryAfter::from_headers(&headers, now()), None);
    }
}

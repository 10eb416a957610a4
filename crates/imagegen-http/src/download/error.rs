//! [`DownloadError`]: why a download failed, and what that means for a paid job.

use std::io;
use std::time::Duration;

use imagegen_core::{Error, ProviderId, Refund};

use super::complete::INCOMPLETE;

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The URL is not an http or https URL.
    #[error("`{url}` is not an http or https URL")]
    InvalidUrl {
        /// The URL, without its query.
        url: String,
    },
    /// The server answered with a status that retrying will not change.
    #[error("the image URL answered HTTP {status}; body starts: {body_prefix:?}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The first bytes of the body.
        body_prefix: String,
    },
    /// The bytes are an image, but not PNG, JPEG, WebP or GIF.
    #[error("the image is {mime}, not PNG, JPEG, WebP or GIF")]
    UnsupportedFormat {
        /// What the bytes are.
        mime: String,
    },
    /// The image is larger than the configured limit.
    #[error("the image is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The deadline passed before the image arrived; it may still arrive later.
    #[error(
        "the image was not ready after {}s and {attempts} attempts (last: {last_failure}); keep the URL and try again later",
        waited.as_secs()
    )]
    DeadlineExceeded {
        /// How long was waited.
        waited: Duration,
        /// How many GETs were made.
        attempts: u32,
        /// Why the last one failed.
        last_failure: String,
        /// The HTTP status the last attempt got, when it was an error status (a `503` of a
        /// server still making the image, a `502` of a proxy).
        last_status: Option<u16>,
    },
    /// Every allowed attempt failed; the image may still arrive later.
    #[error(
        "the image could not be fetched in {attempts} attempts (last: {last_failure}); keep the URL and try again later"
    )]
    AttemptsExhausted {
        /// How many GETs were made.
        attempts: u32,
        /// Why the last one failed.
        last_failure: String,
        /// The HTTP status the last attempt got, when it was an error status.
        last_status: Option<u16>,
    },
    /// The transfer broke, or the image turned out incomplete, after bytes were written to a
    /// destination that cannot be rewound (a writer); retry into a fresh destination.
    #[error(
        "the transfer broke after {written} bytes were written ({reason}); download again into a fresh destination"
    )]
    Interrupted {
        /// Bytes written before the break.
        written: u64,
        /// What broke.
        reason: String,
    },
    /// Writing the destination failed.
    #[error("writing the image failed: {message}")]
    Io {
        /// What failed.
        message: String,
        /// The I/O error kind.
        kind: io::ErrorKind,
    },
    /// The downloader is misconfigured.
    #[error("configuration: {0}")]
    Config(String),
}

impl DownloadError {
    pub(crate) fn io(context: &str, err: &io::Error) -> Self {
        Self::Io {
            message: format!("{context}: {err}"),
            kind: err.kind(),
        }
    }

    /// Whether the same URL may succeed later (the image was not ready, or the transfer
    /// broke): keep the URL.
    pub fn may_succeed_later(&self) -> bool {
        matches!(
            self,
            Self::DeadlineExceeded { .. }
                | Self::AttemptsExhausted { .. }
                | Self::Interrupted { .. }
        )
    }

    /// The HTTP status of the last failed attempt, when that attempt got an HTTP error
    /// status: the status of [`Self::Status`], or the last one before the attempts or the
    /// time ran out. `None` when the last failure was not the server answering an error
    /// (a timeout, a reset, a page instead of an image, an incomplete image).
    ///
    /// ```
    /// use imagegen_http::DownloadError;
    /// let gone = DownloadError::Status { status: 404, body_prefix: String::new() };
    /// assert_eq!(gone.last_status(), Some(404));
    /// ```
    pub fn last_status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::AttemptsExhausted { last_status, .. }
            | Self::DeadlineExceeded { last_status, .. } => *last_status,
            _ => None,
        }
    }

    /// Whether the (last) image arrived incomplete: the body ended cleanly but early, so
    /// the image lacks its end (a PNG without `IEND`, a JPEG without its end marker). The
    /// same URL may serve it whole later. The downloader words that failure one way
    /// (`the image is incomplete, it ended early: …`), which is what this reads.
    pub fn is_incomplete_image(&self) -> bool {
        match self {
            Self::AttemptsExhausted { last_failure, .. }
            | Self::DeadlineExceeded { last_failure, .. }
            | Self::Interrupted {
                reason: last_failure,
                ..
            } => last_failure.starts_with(INCOMPLETE),
            _ => false,
        }
    }

    /// This error in the core taxonomy, for the job `job_id` of `provider` whose image
    /// it was. The job was paid for whatever went wrong here, so every result keeps the
    /// job id and counts as possibly charged: an image that may still arrive, or a local
    /// problem (a file that cannot be written), is [`Error::StillRunning`] (resume it
    /// later); an image the host refuses or that is not an image is
    /// [`Error::GenerationFailed`] with the refund unknown.
    pub fn into_core_error(
        self,
        provider: impl Into<ProviderId>,
        job_id: impl Into<String>,
    ) -> Error {
        let provider = provider.into();
        let job_id = job_id.into();
        match self {
            Self::DeadlineExceeded { waited, .. } => Error::StillRunning {
                provider,
                job_id,
                waited,
            },
            Self::AttemptsExhausted { .. }
            | Self::Interrupted { .. }
            | Self::InvalidUrl { .. }
            | Self::Io { .. }
            | Self::Config(_) => Error::StillRunning {
                provider,
                job_id,
                waited: Duration::ZERO,
            },
            err
            @ (Self::Status { .. } | Self::UnsupportedFormat { .. } | Self::TooLarge { .. }) => {
                Error::GenerationFailed {
                    provider,
                    job_id,
                    message: format!("the image could not be fetched: {err}"),
                    code: match &err {
                        Self::Status { status, .. } => Some(format!("HTTP_{status}")),
                        _ => None,
                    },
                    refund: Refund::Unknown,
                    retryable: Some(false),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_download_failure_of_a_paid_job_keeps_it_and_counts_as_charged() {
        let all = [
            DownloadError::InvalidUrl { url: "x".into() },
            DownloadError::Status {
                status: 404,
                body_prefix: "gone".into(),
            },
            DownloadError::UnsupportedFormat {
                mime: "text/html".into(),
            },
            DownloadError::TooLarge { limit: 1 },
            DownloadError::DeadlineExceeded {
                waited: Duration::from_secs(600),
                attempts: 9,
                last_failure: "timeout".into(),
                last_status: None,
            },
            DownloadError::AttemptsExhausted {
                attempts: 3,
                last_failure: "HTTP 502".into(),
                last_status: Some(502),
            },
            DownloadError::AttemptsExhausted {
                attempts: 3,
                last_failure: format!("{INCOMPLETE}: a PNG of 10 bytes"),
                last_status: None,
            },
            DownloadError::Interrupted {
                written: 10,
                reason: "reset".into(),
            },
            DownloadError::Io {
                message: "disk full".into(),
                kind: io::ErrorKind::StorageFull,
            },
            DownloadError::Config("no client".into()),
        ];
        for err in all {
            let shown = format!("{err:?}");
            let core = err.into_core_error("provider", "v2-aaaaa-bbbbb");
            assert!(core.may_have_been_charged(), "{shown} -> {core:?}");
            assert!(!core.nothing_sent(), "{shown} -> {core:?}");
            match &core {
                Error::StillRunning { job_id, .. } | Error::GenerationFailed { job_id, .. } => {
                    assert_eq!(job_id, "v2-aaaaa-bbbbb");
                }
                other => panic!("{shown} -> {other:?}"),
            }
        }
    }

    #[test]
    fn the_last_status_and_an_incomplete_image_are_told() {
        let exhausted = |last_failure: &str, last_status| DownloadError::AttemptsExhausted {
            attempts: 3,
            last_failure: last_failure.into(),
            last_status,
        };
        let incomplete = format!("{INCOMPLETE}: a PNG of 10 bytes without its IEND end chunk");
        assert_eq!(exhausted("HTTP 503", Some(503)).last_status(), Some(503));
        assert_eq!(exhausted(&incomplete, None).last_status(), None);
        assert!(exhausted(&incomplete, None).is_incomplete_image());
        assert!(!exhausted("HTTP 503", Some(503)).is_incomplete_image());
        let deadline = DownloadError::DeadlineExceeded {
            waited: Duration::from_secs(1),
            attempts: 2,
            last_failure: "HTTP 500".into(),
            last_status: Some(500),
        };
        assert_eq!(deadline.last_status(), Some(500));
        assert!(!deadline.is_incomplete_image());
        let status = DownloadError::Status {
            status: 410,
            body_prefix: String::new(),
        };
        assert_eq!(status.last_status(), Some(410));
        let interrupted = DownloadError::Interrupted {
            written: 5,
            reason: incomplete,
        };
        assert!(interrupted.is_incomplete_image() && interrupted.may_succeed_later());
        assert_eq!(interrupted.last_status(), None);
        assert_eq!(DownloadError::TooLarge { limit: 1 }.last_status(), None);
    }

    #[test]
    fn the_error_stays_small() {
        // The facade's error carries it with three strings; keep it at six words.
        assert!(std::mem::size_of::<DownloadError>() <= 48);
    }
}

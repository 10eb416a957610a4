//! Downloading a generated image from its URL, patiently and without credentials.
//!
//! Some providers return image URLs before the images exist; a GET on one blocks until
//! the image is ready (usually seconds, rarely hours). [`ImageDownloader`] is built for
//! that, and for any other image URL (a CDN link). The facade uses it for every provider's
//! images.
//!
//! - its own HTTP client, which carries **no credentials** and may follow redirects;
//! - a short connect timeout and a long read timeout (the wait for the first byte);
//! - retries (a GET is idempotent) on timeouts, connection resets, `408`/`425`/`429`/`5xx`,
//!   on a success status whose body is not an image, and on an image that ended early
//!   (a body that stopped cleanly before the image's end), through the shared
//!   [`crate::retry::run`] loop: bounded exponential backoff on the injected
//!   [`Clock`](imagegen_core::Clock), under an overall deadline the caller sets;
//! - streaming to the destination (any [`AsyncWrite`], or a file written through one locked
//!   temporary [`PartFile`] and renamed into place), never holding the image in memory;
//! - the image checked whole as it streams (a PNG ends with `IEND`, a JPEG with its end
//!   marker, a GIF with its trailer, a WebP holds the bytes its header declares): an
//!   incomplete image is never returned as a success;
//! - the format decided from the bytes (PNG, JPEG, WebP, GIF), never from the URL's
//!   extension: a `.jpg` URL may serve PNG bytes;
//! - width and height read from the image header when cheap (PNG, JPEG, GIF, WebP).
//!
//! | module | what it owns |
//! |---|---|
//! | [`DownloadPolicy`] (`policy`) | timeouts, attempts, backoff, the deadline, the size limit |
//! | `inspect` | [`ImageFormat`] sniffing, [`dimensions`], refusing a page that is not an image |
//! | `complete` | whether a body that ended holds the whole image |
//! | `destination` | writers, and files through a 0644 temporary file renamed into place; [`CountingSink`] |
//! | `part` | [`PartFile`]: the locked `.imagegen-*.part` file; [`sweep_stale_parts`] for those killed runs left |
//! | [`DownloadError`] (`error`) | why a download failed, and [`DownloadError::into_core_error`] for a paid job |

mod complete;
mod destination;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod inspect;
mod part;
mod policy;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegen_core::error::body_prefix;
use imagegen_core::{SharedClock, TokioClock};
use reqwest::header::CONTENT_TYPE;
use tokio::io::AsyncWrite;
use url::Url;

pub use destination::CountingSink;
pub use error::DownloadError;
pub use inspect::{ImageFormat, dimensions};
pub use part::{
    PART_PREFIX, PART_SUFFIX, PartFile, PersistPartError, STALE_PART_AGE, sweep_stale_parts,
};
pub use policy::DownloadPolicy;

use complete::EndCheck;
use destination::{Destination, FileDestination, MemoryDestination, WriterDestination};
use inspect::{BodyInspector, Inspected, Release};

use crate::error::describe;
use crate::retry::{self, AttemptInfo, Decision, Operation, StopReason};
use crate::retry_after::RetryAfter;

/// What a finished download wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadedImage {
    /// The format, from the bytes.
    pub format: ImageFormat,
    /// Its MIME type.
    pub mime: &'static str,
    /// Bytes written.
    pub bytes: u64,
    /// Width in pixels, when the header shows it.
    pub width: Option<u32>,
    /// Height in pixels, when the header shows it.
    pub height: Option<u32>,
    /// The `Content-Type` the server sent, which may disagree with the bytes.
    pub content_type: Option<String>,
    /// How many GETs it took.
    pub attempts: u32,
    /// Time from the first GET to the end, on the downloader's clock.
    pub elapsed: Duration,
    /// Where the file is, for [`ImageDownloader::download_to_file`] and
    /// [`ImageDownloader::download_with_extension`] (`None` for a writer, and for
    /// [`ImageDownloader::download_to_part`], whose [`PartFile::path`] tells).
    pub path: Option<PathBuf>,
}

/// Downloads images from URLs; see the [module documentation](self). Cheap to clone.
///
/// ```no_run
/// use imagegen_http::ImageDownloader;
/// # async fn run() -> Result<(), imagegen_http::DownloadError> {
/// let downloader = ImageDownloader::builder()
///     .deadline(std::time::Duration::from_secs(600))
///     .build()?;
/// let url = url::Url::parse("https://images.example/v2-cnfjk-1g1wf.jpg").unwrap();
/// // Writes `cat.png` or `cat.jpg`, whichever the bytes are.
/// let image = downloader.download_with_extension(&url, "out/cat".as_ref()).await?;
/// println!("{} {}x{:?}", image.mime, image.width.unwrap_or(0), image.height);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ImageDownloader {
    http: reqwest::Client,
    clock: SharedClock,
    policy: DownloadPolicy,
}

impl fmt::Debug for ImageDownloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageDownloader")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Builds an [`ImageDownloader`].
#[derive(Debug, Default)]
#[must_use]
pub struct ImageDownloaderBuilder {
    policy: DownloadPolicy,
    http: Option<reqwest::Client>,
    clock: Option<SharedClock>,
}

impl ImageDownloaderBuilder {
    /// The whole policy at once.
    pub fn policy(mut self, policy: DownloadPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Time to establish a connection (ignored with [`Self::http_client`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.policy.connect_timeout = timeout;
        self
    }

    /// The longest silence while waiting for bytes (ignored with [`Self::http_client`]).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.policy.read_timeout = timeout;
        self
    }

    /// The overall time budget.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.policy.deadline = deadline;
        self
    }

    /// Backoff between attempts: the first wait and the longest.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.policy.initial_backoff = initial;
        self.policy.max_backoff = max;
        self
    }

    /// The most GETs.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts.max(1);
        self
    }

    /// The largest image accepted.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.policy.max_bytes = bytes;
        self
    }

    /// Uses this HTTP client. It must carry no credentials (no default `Authorization`
    /// header, no cookies for the API host).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock backoff and the deadline run on (default: the real clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the downloader.
    pub fn build(self) -> Result<ImageDownloader, DownloadError> {
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.policy.connect_timeout)
                .read_timeout(self.policy.read_timeout)
                .redirect(reqwest::redirect::Policy::limited(5))
                .user_agent(crate::USER_AGENT)
                .build()
                .map_err(|e| {
                    DownloadError::Config(format!("the HTTP client cannot be built: {e}"))
                })?,
        };
        Ok(ImageDownloader {
            http,
            clock: self.clock.unwrap_or_else(TokioClock::shared),
            policy: self.policy,
        })
    }
}

impl ImageDownloader {
    /// A downloader with the default policy.
    pub fn new() -> Result<Self, DownloadError> {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> ImageDownloaderBuilder {
        ImageDownloaderBuilder::default()
    }

    /// The policy.
    pub fn policy(&self) -> &DownloadPolicy {
        &self.policy
    }

    /// The same downloader with another overall deadline.
    #[must_use]
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        let mut copy = self.clone();
        copy.policy.deadline = deadline;
        copy
    }

    /// Streams the image at `url` into `writer`.
    ///
    /// Nothing is written until the first bytes show an image, so an error page never
    /// reaches `writer`. If the transfer breaks, or the image turns out incomplete, after
    /// bytes were written, the error is [`DownloadError::Interrupted`] (a writer cannot be
    /// rewound); file downloads retry instead.
    pub async fn download_to_writer<W>(
        &self,
        url: &Url,
        writer: &mut W,
    ) -> Result<DownloadedImage, DownloadError>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        let mut dest = WriterDestination { writer, written: 0 };
        self.run(url, &mut dest).await
    }

    /// Downloads the whole image at `url` into memory. Unlike
    /// [`ImageDownloader::download_to_writer`], a transfer that breaks after bytes arrived
    /// is tried again from the start, as a file download is (the buffer is emptied); the
    /// policy's size limit bounds the buffer.
    ///
    /// ```no_run
    /// # async fn run(downloader: imagegen_http::ImageDownloader, url: url::Url) -> Result<(), Box<dyn std::error::Error>> {
    /// let (bytes, image) = downloader.download_to_memory(&url).await?;
    /// assert_eq!(bytes.len() as u64, image.bytes);
    /// # Ok(()) }
    /// ```
    pub async fn download_to_memory(
        &self,
        url: &Url,
    ) -> Result<(Vec<u8>, DownloadedImage), DownloadError> {
        let mut dest = MemoryDestination { bytes: Vec::new() };
        let image = self.run(url, &mut dest).await?;
        Ok((dest.bytes, image))
    }

    /// Downloads the image at `url` to `path` (replacing a file there), through a locked
    /// [`PartFile`] in the same directory renamed into place: `path` never holds a partial
    /// image.
    pub async fn download_to_file(
        &self,
        url: &Url,
        path: &Path,
    ) -> Result<DownloadedImage, DownloadError> {
        self.download_file(url, path, |_| path.to_path_buf()).await
    }

    /// Downloads the image at `url` to `base` plus the extension the bytes call for
    /// (`out/cat` becomes `out/cat.png`), through a temporary file renamed into place.
    pub async fn download_with_extension(
        &self,
        url: &Url,
        base: &Path,
    ) -> Result<DownloadedImage, DownloadError> {
        self.download_file(url, base, |format| {
            let mut name = base.as_os_str().to_owned();
            name.push(".");
            name.push(format.extension());
            PathBuf::from(name)
        })
        .await
    }

    /// Downloads the whole image at `url` into a new, locked [`PartFile`] in `dir`
    /// (`.imagegen-<random>.part`, mode 0644), synced to disk, for the caller to move where
    /// it belongs ([`PartFile::persist_new`] never replaces a file). On failure nothing is
    /// left in `dir`. The part stays locked while the caller holds it, so
    /// [`sweep_stale_parts`] leaves it alone.
    ///
    /// ```no_run
    /// # async fn run(downloader: imagegen_http::ImageDownloader, url: url::Url) -> Result<(), Box<dyn std::error::Error>> {
    /// let (part, image) = downloader.download_to_part(&url, "out".as_ref()).await?;
    /// let target = std::path::Path::new("out").join(format!("cat.{}", image.format.extension()));
    /// part.persist_new(&target)?;
    /// # Ok(()) }
    /// ```
    pub async fn download_to_part(
        &self,
        url: &Url,
        dir: &Path,
    ) -> Result<(PartFile, DownloadedImage), DownloadError> {
        check_url(url)?;
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let part = PartFile::create_in(dir)
            .map_err(|e| DownloadError::io(&format!("creating a file in {}", dir.display()), &e))?;
        let (file, temp) = part.into_parts();
        let mut dest = FileDestination::new(file);
        let mut result = self.run(url, &mut dest).await;
        if result.is_ok()
            && let Err(e) = dest.sync().await
        {
            result = Err(e);
        }
        // Whole again (the handle holds the lock); dropped on failure, which removes the
        // file before its lock goes.
        let part = PartFile::from_parts(dest.into_std().await, temp);
        result.map(|image| (part, image))
    }

    async fn download_file(
        &self,
        url: &Url,
        target: &Path,
        final_path: impl FnOnce(ImageFormat) -> PathBuf,
    ) -> Result<DownloadedImage, DownloadError> {
        check_url(url)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let (part, mut image) = self.download_to_part(url, dir).await?;
        let path = final_path(image.format);
        part.persist(&path).map_err(|e| {
            DownloadError::io(&format!("moving the file to {}", path.display()), &e.error)
        })?;
        image.path = Some(path);
        Ok(image)
    }

    /// GETs until the image is whole in `dest`, through the shared retry loop.
    async fn run<D: Destination>(
        &self,
        url: &Url,
        dest: &mut D,
    ) -> Result<DownloadedImage, DownloadError> {
        check_url(url)?;
        let start = self.clock.now();
        let result = retry::run(
            &self.policy.retry_policy(),
            self.clock.as_ref(),
            &Attempt::decision,
            Get {
                downloader: self,
                url,
                dest,
            },
        )
        .await;
        match result {
            Ok(mut image) => {
                image.elapsed = self.clock.now().saturating_sub(start);
                Ok(image)
            }
            Err(stopped) => Err(match stopped.error {
                Attempt::Fatal(err) => err,
                Attempt::Retry { reason, cause, .. } => {
                    let last_status = cause.status();
                    match stopped.reason {
                        StopReason::DeadlineExceeded => DownloadError::DeadlineExceeded {
                            waited: stopped.elapsed,
                            attempts: stopped.attempts,
                            last_failure: reason,
                            last_status,
                        },
                        _ => DownloadError::AttemptsExhausted {
                            attempts: stopped.attempts,
                            last_failure: reason,
                            last_status,
                        },
                    }
                }
            }),
        }
    }

    /// One GET, streamed into `dest`.
    async fn attempt<D: Destination>(
        &self,
        url: &Url,
        dest: &mut D,
        remaining: Duration,
    ) -> Result<DownloadedImage, Attempt> {
        let mut response = self
            .http
            .get(url.clone())
            .timeout(remaining.max(Duration::from_millis(1)))
            .send()
            .await
            .map_err(|e| {
                if e.is_builder() {
                    Attempt::Fatal(DownloadError::Config(describe(&e)))
                } else {
                    Attempt::retry(describe(&e))
                }
            })?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !(200..300).contains(&status) {
            let retry_after = RetryAfter::from_headers(response.headers(), self.clock.wall_time())
                .map(RetryAfter::wait);
            let body = first_bytes(response).await;
            return Err(if matches!(status, 408 | 425 | 429 | 500..=599) {
                Attempt::Retry {
                    reason: format!("HTTP {status}"),
                    retry_after,
                    cause: Cause::Status(status),
                }
            } else {
                Attempt::Fatal(DownloadError::Status {
                    status,
                    body_prefix: body_prefix(&body),
                })
            });
        }
        let limit = self.policy.max_bytes;
        let announced = response.content_length();
        if announced.is_some_and(|n| n > limit) {
            return Err(Attempt::Fatal(DownloadError::TooLarge { limit }));
        }

        let mut inspector = BodyInspector::new(content_type.as_deref());
        let mut end = EndCheck::new();
        let mut total: u64 = 0;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    return Err(Attempt::retry(format!(
                        "the body broke off: {}",
                        describe(&e)
                    )));
                }
            };
            total += chunk.len() as u64;
            if total > limit {
                return Err(Attempt::Fatal(DownloadError::TooLarge { limit }));
            }
            end.feed(&chunk);
            match inspector.feed(&chunk)? {
                Release::Nothing => {}
                Release::Chunk => dest.write(&chunk).await?,
                Release::Held(held) => dest.write(&held).await?,
            }
        }
        let Inspected { format, size, held } = inspector.finish()?;
        // An image cut short is never a success (checked before the last held bytes are
        // written, so a tiny one never reaches a writer).
        if let Some(announced) = announced.filter(|&n| total < n) {
            return Err(Attempt::incomplete(complete::short_of_content_length(
                total, announced,
            )));
        }
        end.verdict(format)
            .map_err(|e| Attempt::incomplete(e.to_string()))?;
        dest.write(&held).await?;
        dest.flush().await?;
        let (width, height) = size.unzip();
        Ok(DownloadedImage {
            format,
            mime: format.mime(),
            bytes: total,
            width,
            height,
            content_type,
            attempts: 0,
            elapsed: Duration::ZERO,
            path: None,
        })
    }
}

/// The download as an operation of the shared retry loop: each attempt GETs into the same
/// destination, rewound first (or the download stops as interrupted).
struct Get<'a, D> {
    downloader: &'a ImageDownloader,
    url: &'a Url,
    dest: &'a mut D,
}

impl<D: Destination> Operation for Get<'_, D> {
    type Output = DownloadedImage;
    type Error = Attempt;

    async fn attempt(&mut self, info: AttemptInfo) -> Result<DownloadedImage, Attempt> {
        let remaining = info.remaining.unwrap_or(self.downloader.policy.deadline);
        match self
            .downloader
            .attempt(self.url, self.dest, remaining)
            .await
        {
            Ok(mut image) => {
                image.attempts = info.number;
                Ok(image)
            }
            Err(Attempt::Retry {
                reason,
                retry_after,
                cause,
            }) => {
                // Another GET starts from an empty destination, or not at all.
                if self.dest.written() > 0 && !self.dest.rewind().await? {
                    return Err(Attempt::Fatal(DownloadError::Interrupted {
                        written: self.dest.written(),
                        reason,
                    }));
                }
                tracing::debug!(url = %redacted(self.url), attempt = info.number, %reason, "image not ready");
                Err(Attempt::Retry {
                    reason,
                    retry_after,
                    cause,
                })
            }
            Err(fatal) => Err(fatal),
        }
    }
}

/// How one attempt failed.
pub(crate) enum Attempt {
    /// Worth another GET.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
        cause: Cause,
    },
    /// Not worth another GET.
    Fatal(DownloadError),
}

/// What made an attempt worth repeating, for the error when none is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The server answered this error status.
    Status(u16),
    /// The image ended early.
    Incomplete,
    /// Anything else: a timeout, a reset, a page instead of an image.
    Other,
}

impl Cause {
    fn status(self) -> Option<u16> {
        match self {
            Self::Status(status) => Some(status),
            Self::Incomplete | Self::Other => None,
        }
    }
}

impl Attempt {
    /// The shared loop's reading of a failed attempt.
    fn decision(&self) -> Decision {
        match self {
            Self::Retry { retry_after, .. } => Decision::Retry {
                after: *retry_after,
            },
            Self::Fatal(_) => Decision::Stop,
        }
    }

    pub(crate) fn retry(reason: String) -> Self {
        Self::Retry {
            reason,
            retry_after: None,
            cause: Cause::Other,
        }
    }

    /// The image ended early; `reason` says how.
    fn incomplete(reason: String) -> Self {
        Self::Retry {
            reason,
            retry_after: None,
            cause: Cause::Incomplete,
        }
    }
}

impl From<DownloadError> for Attempt {
    fn from(err: DownloadError) -> Self {
        Self::Fatal(err)
    }
}
/// The first few hundred bytes of an error body.
async fn first_bytes(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < 512 {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body
}

fn check_url(url: &Url) -> Result<(), DownloadError> {
    if matches!(url.scheme(), "http" | "https") && url.host().is_some() {
        Ok(())
    } else {
        Err(DownloadError::InvalidUrl { url: redacted(url) })
    }
}

/// A URL without its query and fragment, which may hold a signature.
fn redacted(url: &Url) -> String {
    let mut copy = url.clone();
    copy.set_query(None);
    copy.set_fragment(None);
    copy.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_query() {
        let url = Url::parse("https://cdn.example/a.png?sig=secret#x").unwrap();
        assert_eq!(redacted(&url), "https://cdn.example/a.png");
        let err = check_url(&Url::parse("file:///etc/passwd").unwrap()).unwrap_err();
        assert!(matches!(err, DownloadError::InvalidUrl { .. }));
    }
}

//! Downloading a generated image from its URL, patiently and without credentials.
//!
//! Koala returns image URLs before the images exist; a GET on one blocks until the image
//! is ready (usually 8–15 s, rarely hours). [`ImageDownloader`] is built for that, and for
//! any other image URL (a CDN link from another provider):
//!
//! - its own HTTP client, which carries **no credentials** and may follow redirects;
//! - a short connect timeout and a long read timeout (the wait for the first byte);
//! - retries on timeouts, connection resets, `408`/`425`/`429`/`5xx`, and on a success
//!   status whose body is not an image, with bounded exponential backoff on the injected
//!   [`Clock`](imagegen_core::Clock), under an overall deadline the caller sets;
//! - streaming to the destination (any [`AsyncWrite`], or a file written through a
//!   temporary file and renamed into place), never holding the image in memory;
//! - the format decided from the bytes (PNG, JPEG, WebP, GIF), never from the URL's
//!   extension: Koala serves PNG bytes behind `.jpg` URLs;
//! - width and height read from the image header when cheap (PNG, JPEG, GIF, WebP).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use imagegen_core::error::body_prefix;
use imagegen_core::{Error, ProviderId, Refund, SharedClock, TokioClock};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::io::{AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use url::Url;

use crate::client::describe;
use crate::error::parse_retry_after;

/// Bytes inspected to decide the format before anything is written.
const SNIFF_LEN: usize = 32;
/// Bytes kept from the start of the image to read its dimensions.
const HEADER_KEEP: usize = 64 * 1024;

/// An image format the downloader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
    /// GIF.
    Gif,
}

impl ImageFormat {
    /// The format the leading bytes show, if one of these four.
    ///
    /// ```
    /// use koala_api::ImageFormat;
    /// assert_eq!(ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
    /// assert_eq!(ImageFormat::sniff(b"<!DOCTYPE html>"), None);
    /// ```
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        Self::from_mime(infer::get(bytes)?.mime_type())
    }

    /// The format a MIME type names (parameters ignored).
    pub fn from_mime(mime: &str) -> Option<Self> {
        let essence = mime.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "image/png" => Some(Self::Png),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Self::Jpeg),
            "image/webp" => Some(Self::Webp),
            "image/gif" => Some(Self::Gif),
            _ => None,
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
            Self::Gif => "gif",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

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
    /// Where the file is, for file downloads.
    pub path: Option<PathBuf>,
}

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
    },
    /// The transfer broke after bytes were written to a destination that cannot be
    /// rewound (a writer); retry into a fresh destination.
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
    fn io(context: &str, err: &io::Error) -> Self {
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

/// How patient a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadPolicy {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// The longest silence while waiting for the first byte or the next one. Koala holds
    /// the request until the image is ready, so this is long.
    pub read_timeout: Duration,
    /// The overall time budget across all attempts and waits.
    pub deadline: Duration,
    /// The first wait between attempts; doubled after each.
    pub initial_backoff: Duration,
    /// The longest wait between attempts (a longer `Retry-After` is honoured up to the
    /// deadline).
    pub max_backoff: Duration,
    /// The most GETs.
    pub max_attempts: u32,
    /// The largest image accepted, in bytes.
    pub max_bytes: u64,
}

impl Default for DownloadPolicy {
    /// Connect 10 s, read 180 s, deadline 15 min, backoff 2 s doubling to 30 s, 30
    /// attempts, 64 MiB.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(180),
            deadline: Duration::from_secs(15 * 60),
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
            max_attempts: 30,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl DownloadPolicy {
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Downloads images from URLs; see the [module documentation](self). Cheap to clone.
///
/// ```no_run
/// use koala_api::ImageDownloader;
/// # async fn run() -> Result<(), koala_api::DownloadError> {
/// let downloader = ImageDownloader::builder()
///     .deadline(std::time::Duration::from_secs(600))
///     .build()?;
/// let url = url::Url::parse("https://koala.sh/api/image/v2-cnfjk-1g1wf.jpg").unwrap();
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
    /// reaches `writer`. If the transfer breaks after bytes were written, the error is
    /// [`DownloadError::Interrupted`] (a writer cannot be rewound); file downloads retry
    /// instead.
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

    /// Downloads the image at `url` to `path`, through a temporary file in the same
    /// directory renamed into place: `path` never holds a partial image.
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

    async fn download_file(
        &self,
        url: &Url,
        target: &Path,
        final_path: impl FnOnce(ImageFormat) -> PathBuf,
    ) -> Result<DownloadedImage, DownloadError> {
        check_url(url)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".imagegen-download-").suffix(".part");
        // An image is an ordinary file: readable like any other the user creates (the
        // process umask still applies), not the private 0600 of a temporary file.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let temp = builder
            .tempfile_in(&dir)
            .map_err(|e| DownloadError::io(&format!("creating a file in {}", dir.display()), &e))?;
        // The temporary path removes the file when dropped, so a failure leaves nothing.
        let (file, temp_path) = temp.into_parts();
        let mut dest = FileDestination {
            file: tokio::fs::File::from_std(file),
            written: 0,
        };
        let mut image = self.run(url, &mut dest).await?;
        dest.file
            .sync_all()
            .await
            .map_err(|e| DownloadError::io("syncing the file", &e))?;
        drop(dest);
        let path = final_path(image.format);
        temp_path.persist(&path).map_err(|e| {
            DownloadError::io(&format!("moving the file to {}", path.display()), &e.error)
        })?;
        image.path = Some(path);
        Ok(image)
    }

    async fn run<D: Destination>(
        &self,
        url: &Url,
        dest: &mut D,
    ) -> Result<DownloadedImage, DownloadError> {
        check_url(url)?;
        let start = self.clock.now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let waited = self.clock.now().saturating_sub(start);
            let remaining = self.policy.deadline.saturating_sub(waited);
            let failure = match self.attempt(url, dest, remaining).await {
                Ok(mut image) => {
                    image.attempts = attempts;
                    image.elapsed = self.clock.now().saturating_sub(start);
                    return Ok(image);
                }
                Err(Attempt::Fatal(err)) => return Err(err),
                Err(Attempt::Retry {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            let (reason, retry_after) = failure;
            if dest.written() > 0 && !dest.rewind().await? {
                return Err(DownloadError::Interrupted {
                    written: dest.written(),
                    reason,
                });
            }
            if attempts >= self.policy.max_attempts {
                return Err(DownloadError::AttemptsExhausted {
                    attempts,
                    last_failure: reason,
                });
            }
            let wait = retry_after.unwrap_or_else(|| self.policy.backoff(attempts));
            let waited = self.clock.now().saturating_sub(start);
            if waited.saturating_add(wait) >= self.policy.deadline {
                return Err(DownloadError::DeadlineExceeded {
                    waited,
                    attempts,
                    last_failure: reason,
                });
            }
            tracing::debug!(url = %redacted(url), attempt = attempts, wait_ms = wait.as_millis() as u64, %reason, "image not ready; retrying");
            self.clock.sleep(wait).await;
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
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let body = first_bytes(response).await;
            return Err(if matches!(status, 408 | 425 | 429 | 500..=599) {
                Attempt::Retry {
                    reason: format!("HTTP {status}"),
                    retry_after,
                }
            } else {
                Attempt::Fatal(DownloadError::Status {
                    status,
                    body_prefix: body_prefix(&body),
                })
            });
        }
        let limit = self.policy.max_bytes;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(Attempt::Fatal(DownloadError::TooLarge { limit }));
        }

        let mut inspector = BodyInspector::new(content_type.as_deref());
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
            match inspector.feed(&chunk)? {
                Release::Nothing => {}
                Release::Chunk => dest.write(&chunk).await?,
                Release::Held(held) => dest.write(&held).await?,
            }
        }
        let Inspected { format, size, held } = inspector.finish()?;
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

/// Reads an image body as it streams in: decides its format from the first bytes, before
/// any of them is written (nothing but an image reaches the destination), and reads its
/// dimensions from its header. A first chunk that holds the start of the image (nearly
/// always) is read in place; bytes are copied only when that start is split over chunks.
struct BodyInspector<'c> {
    content_type: Option<&'c str>,
    /// The first bytes, kept while the dimensions are unknown and the start was split.
    header: Vec<u8>,
    size: Option<(u32, u32)>,
    /// What arrived before the format was decided.
    held: Vec<u8>,
    format: Option<ImageFormat>,
}

/// What may be written after a chunk.
enum Release {
    /// Nothing yet: the format is not decided.
    Nothing,
    /// The chunk itself.
    Chunk,
    /// Bytes held back until the format was decided, this chunk included.
    Held(Vec<u8>),
}

impl<'c> BodyInspector<'c> {
    fn new(content_type: Option<&'c str>) -> Self {
        Self {
            content_type,
            header: Vec::new(),
            size: None,
            held: Vec::new(),
            format: None,
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<Release, Attempt> {
        if self.size.is_none() {
            if self.header.is_empty() {
                self.size = ImageFormat::sniff(chunk).and_then(|f| dimensions(f, chunk));
                if self.size.is_none() {
                    self.header
                        .extend_from_slice(&chunk[..HEADER_KEEP.min(chunk.len())]);
                }
            } else if self.header.len() < HEADER_KEEP {
                let keep = (HEADER_KEEP - self.header.len()).min(chunk.len());
                self.header.extend_from_slice(&chunk[..keep]);
                self.size =
                    ImageFormat::sniff(&self.header).and_then(|f| dimensions(f, &self.header));
            }
        }
        if self.format.is_some() {
            return Ok(Release::Chunk);
        }
        if self.held.is_empty() && chunk.len() >= SNIFF_LEN {
            self.format = Some(decide(chunk, self.content_type)?);
            return Ok(Release::Chunk);
        }
        self.held.extend_from_slice(chunk);
        if self.held.len() < SNIFF_LEN {
            return Ok(Release::Nothing);
        }
        self.format = Some(decide(&self.held, self.content_type)?);
        Ok(Release::Held(std::mem::take(&mut self.held)))
    }

    /// What the body was, once it has ended.
    fn finish(self) -> Result<Inspected, Attempt> {
        let format = match self.format {
            Some(format) => format,
            None => decide(&self.held, self.content_type)?,
        };
        Ok(Inspected {
            format,
            size: self.size.or_else(|| dimensions(format, &self.header)),
            held: self.held,
        })
    }
}

/// What a whole body turned out to be.
struct Inspected {
    format: ImageFormat,
    size: Option<(u32, u32)>,
    /// Bytes still held back (a body shorter than the sniffing window), to write.
    held: Vec<u8>,
}

/// How one attempt failed.
enum Attempt {
    /// Worth another GET.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Not worth another GET.
    Fatal(DownloadError),
}

impl Attempt {
    fn retry(reason: String) -> Self {
        Self::Retry {
            reason,
            retry_after: None,
        }
    }
}

impl From<DownloadError> for Attempt {
    fn from(err: DownloadError) -> Self {
        Self::Fatal(err)
    }
}

/// The format of a body's first bytes; a body that is no image is worth another GET (the
/// image may not be ready), an image of another format is not.
fn decide(head: &[u8], content_type: Option<&str>) -> Result<ImageFormat, Attempt> {
    if let Some(format) = ImageFormat::sniff(head) {
        return Ok(format);
    }
    if let Some(kind) = infer::get(head).filter(|k| k.matcher_type() == infer::MatcherType::Image) {
        return Err(Attempt::Fatal(DownloadError::UnsupportedFormat {
            mime: kind.mime_type().to_owned(),
        }));
    }
    let what = if head.is_empty() {
        "an empty body".to_owned()
    } else {
        format!("{:?}", body_prefix(&head[..head.len().min(64)]))
    };
    Err(Attempt::retry(format!(
        "a success status with {} ({}), not an image",
        what,
        content_type.unwrap_or("no Content-Type")
    )))
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

/// Width and height from an image's leading bytes.
///
/// ```
/// # use koala_api::download::dimensions;
/// # use koala_api::ImageFormat;
/// let gif = b"GIF89a\x20\x03\x58\x02rest";
/// assert_eq!(dimensions(ImageFormat::Gif, gif), Some((800, 600)));
/// ```
pub fn dimensions(format: ImageFormat, head: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| {
        head.get(i..i + 2)
            .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let le16 = |i: usize| {
        head.get(i..i + 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let be32 = |i: usize| {
        head.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let le24 = |i: usize| {
        head.get(i..i + 3)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
    };
    let found = match format {
        ImageFormat::Png => {
            (head.get(12..16) == Some(b"IHDR")).then_some(())?;
            (be32(16)?, be32(20)?)
        }
        ImageFormat::Gif => (le16(6)?, le16(8)?),
        ImageFormat::Webp => match head.get(12..16)? {
            b"VP8X" => (le24(24)? + 1, le24(27)? + 1),
            b"VP8L" => {
                let bits = head
                    .get(21..25)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
                ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1)
            }
            b"VP8 " => {
                (head.get(23..26) == Some(&[0x9d, 0x01, 0x2a][..])).then_some(())?;
                (le16(26)? & 0x3fff, le16(28)? & 0x3fff)
            }
            _ => return None,
        },
        ImageFormat::Jpeg => {
            let mut i = 2;
            loop {
                if *head.get(i)? != 0xFF {
                    return None;
                }
                let marker = *head.get(i + 1)?;
                match marker {
                    0xFF => i += 1,
                    0x01 | 0xD0..=0xD7 => i += 2,
                    0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                        break (be16(i + 7)?, be16(i + 5)?);
                    }
                    0xD9 | 0xDA => return None,
                    _ => i += 2 + usize::try_from(be16(i + 2)?).ok()?,
                }
            }
        }
    };
    (found.0 > 0 && found.1 > 0).then_some(found)
}

/// Where a download writes.
trait Destination: Send {
    /// Writes `bytes`.
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), DownloadError>>;
    /// Flushes.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), DownloadError>>;
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Starts over; `false` when the destination cannot be rewound.
    fn rewind(&mut self) -> BoxFuture<'_, Result<bool, DownloadError>>;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct WriterDestination<'w, W: ?Sized> {
    writer: &'w mut W,
    written: u64,
}

impl<W: AsyncWrite + Unpin + Send + ?Sized> Destination for WriterDestination<'_, W> {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), DownloadError>> {
        Box::pin(async move {
            if bytes.is_empty() {
                return Ok(());
            }
            self.writer
                .write_all(bytes)
                .await
                .map_err(|e| DownloadError::io("writing the image", &e))?;
            self.written += bytes.len() as u64;
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), DownloadError>> {
        Box::pin(async move {
            self.writer
                .flush()
                .await
                .map_err(|e| DownloadError::io("flushing the image", &e))
        })
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<bool, DownloadError>> {
        Box::pin(async { Ok(false) })
    }
}

struct FileDestination {
    file: tokio::fs::File,
    written: u64,
}

impl Destination for FileDestination {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), DownloadError>> {
        Box::pin(async move {
            self.file
                .write_all(bytes)
                .await
                .map_err(|e| DownloadError::io("writing the image file", &e))?;
            self.written += bytes.len() as u64;
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), DownloadError>> {
        Box::pin(async move {
            self.file
                .flush()
                .await
                .map_err(|e| DownloadError::io("flushing the image file", &e))
        })
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<bool, DownloadError>> {
        Box::pin(async move {
            let fail = |e: io::Error| DownloadError::io("rewinding the image file", &e);
            self.file.flush().await.map_err(fail)?;
            self.file.set_len(0).await.map_err(fail)?;
            self.file.rewind().await.map_err(fail)?;
            self.written = 0;
            Ok(true)
        })
    }
}

/// An [`AsyncWrite`] that counts bytes; handy for measuring without storing.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingSink {
    /// Bytes written.
    pub bytes: u64,
}

impl AsyncWrite for CountingSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.bytes += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
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
            },
            DownloadError::AttemptsExhausted {
                attempts: 3,
                last_failure: "HTTP 502".into(),
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
            let core = err.into_core_error("koala", "v2-aaaaa-bbbbb");
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
    fn formats_from_bytes_not_names() {
        assert_eq!(
            ImageFormat::sniff(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a......"), Some(ImageFormat::Gif));
        assert_eq!(
            ImageFormat::sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(ImageFormat::sniff(b"{\"error\":1}"), None);
        assert_eq!(
            ImageFormat::from_mime("image/PNG; charset=binary"),
            Some(ImageFormat::Png)
        );
        assert_eq!(ImageFormat::Jpeg.extension(), "jpg");
    }

    /// Feeds `body` in pieces of `piece` bytes; what was released, the format and size.
    fn inspect(
        body: &[u8],
        piece: usize,
        content_type: Option<&str>,
    ) -> Result<(Vec<u8>, Inspected), String> {
        let mut inspector = BodyInspector::new(content_type);
        let mut released = Vec::new();
        let describe = |a: Attempt| match a {
            Attempt::Retry { reason, .. } => format!("retry: {reason}"),
            Attempt::Fatal(e) => format!("fatal: {e}"),
        };
        for chunk in body.chunks(piece) {
            match inspector.feed(chunk).map_err(describe)? {
                Release::Nothing => {}
                Release::Chunk => released.extend_from_slice(chunk),
                Release::Held(held) => released.extend_from_slice(&held),
            }
        }
        let inspected = inspector.finish().map_err(describe)?;
        released.extend_from_slice(&inspected.held);
        Ok((released, inspected))
    }

    #[test]
    fn a_body_reads_the_same_whatever_its_chunking() {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend(std::iter::repeat_n(7u8, 5_000));
        // A JPEG whose size comes after 3 KB of metadata.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x0B, 0xBA];
        jpeg.extend(std::iter::repeat_n(0u8, 0x0BB8));
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x02, 0x58, 0x03, 0x20, 0x03]);
        jpeg.extend(std::iter::repeat_n(1u8, 2_000));
        for (body, format, size) in [
            (&png, ImageFormat::Png, (640, 480)),
            (&jpeg, ImageFormat::Jpeg, (800, 600)),
        ] {
            for piece in [1, 7, 31, 32, 33, 1_000, 4_096, body.len()] {
                let (released, got) = inspect(body, piece, Some("image/png")).unwrap();
                assert_eq!(&released, body, "{format:?} in pieces of {piece}");
                assert_eq!(got.format, format, "pieces of {piece}");
                assert_eq!(got.size, Some(size), "{format:?} in pieces of {piece}");
            }
        }
        // Shorter than the sniffing window: decided at the end, still released whole.
        let (released, got) = inspect(&png[..20], 3, None).unwrap();
        assert_eq!(
            (released.as_slice(), got.format),
            (&png[..20], ImageFormat::Png)
        );
    }

    #[test]
    fn a_page_instead_of_an_image_is_refused_before_anything_is_released() {
        let page =
            b"<!DOCTYPE html><html><body>Please wait, your image is being generated</body></html>";
        for piece in [1, 5, 32, page.len()] {
            let mut inspector = BodyInspector::new(Some("text/html"));
            let mut refused = false;
            for chunk in page.chunks(piece) {
                match inspector.feed(chunk) {
                    Ok(Release::Nothing) => {}
                    Ok(_) => panic!("released part of a page (pieces of {piece})"),
                    Err(_) => {
                        refused = true;
                        break;
                    }
                }
            }
            assert!(refused, "pieces of {piece}");
        }
    }

    #[test]
    fn jpeg_dimensions_skip_app_segments() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, b'E', b'x', b'i', b'f'];
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x02, 0x58, 0x03, 0x20, 0x03]);
        assert_eq!(dimensions(ImageFormat::Jpeg, &jpeg), Some((800, 600)));
        assert_eq!(dimensions(ImageFormat::Jpeg, &jpeg[..12]), None);
    }

    #[test]
    fn webp_dimensions() {
        let mut vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00".to_vec();
        vp8x.extend_from_slice(&[0x1F, 0x03, 0x00, 0x57, 0x02, 0x00]);
        assert_eq!(dimensions(ImageFormat::Webp, &vp8x), Some((800, 600)));
        let mut vp8l = b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f".to_vec();
        let bits: u32 = 799 | (599 << 14);
        vp8l.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(dimensions(ImageFormat::Webp, &vp8l), Some((800, 600)));
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = DownloadPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(policy.backoff(u32::MAX), policy.max_backoff);
    }

    #[test]
    fn urls_are_shown_without_their_query() {
        let url = Url::parse("https://cdn.example/a.png?sig=secret#x").unwrap();
        assert_eq!(redacted(&url), "https://cdn.example/a.png");
        let err = check_url(&Url::parse("file:///etc/passwd").unwrap()).unwrap_err();
        assert!(matches!(err, DownloadError::InvalidUrl { .. }));
    }
}

//! [`Generation`]: the images a request produced, where they came from, what they cost,
//! and how to get them onto disk ([`Generation::save`]) or into memory
//! ([`Generation::download`]).
//!
//! Images are fetched with the [`imagegen_http::ImageDownloader`]: its own HTTP client with no
//! credentials (an image host never sees an API key), readiness retries (KoalaImages URLs
//! block until the image exists), and the format decided from the bytes. Several images
//! download at once, up to the client's download concurrency.
//!
//! Saving never overwrites: each image is written as `<prompt-slug>-<n>.<ext>` with the
//! lowest free `n`, and a JSON [`Sidecar`] `<prompt-slug>-<n>.json` beside it: what was
//! asked ([`Asked`]), the [`CallPlan`] sent for the image's job, and where it came from.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use imagegen_core::provider::unix_millis;
use imagegen_core::{
    CallPlan, Credits, GenerationRequest, JobHandle, JobOutput, ModelId, ProviderId, SharedClock,
};
use imagegen_http::{DownloadedImage, ImageDownloader, PartFile};
use imagegen_router::{Attempt, CallOptions, RoutedOutput};
use serde::Serialize;
use url::Url;

use crate::error::Error;
use crate::layout::ImageLayout;
use crate::naming::{create_unique, prompt_slug, sidecar_path};

/// One image a provider made, not downloaded yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GeneratedImage {
    /// The provider that made it.
    pub provider: ProviderId,
    /// The model that made it, when known.
    pub model: Option<ModelId>,
    /// The provider's job (generation) id.
    pub job_id: String,
    /// Its position in the job's output, from 0.
    pub index: usize,
    /// Where to fetch it (never with an API key).
    pub url: Url,
    /// Alt text, when the provider wrote one.
    pub alt: Option<String>,
    /// This image's share of the job's charge.
    pub credits: Option<Credits>,
    /// When the provider accepted the job, in milliseconds since the Unix epoch.
    pub accepted_at_ms: u64,
    /// The prompt after the provider rewrote it, when it says.
    pub prompt_used: Option<String>,
    /// The call sent for this image's job, exactly as the router planned it (model choice,
    /// shape, quality name, style delivery, options, price); `None` for a job resumed
    /// from a journal, whose plan is not recorded there.
    pub sent: Option<CallPlan>,
}

/// What was asked: the request as the caller gave it, and its routing choices.
///
/// Its `Serialize` is the sidecar's `asked`: `request` is the [`GenerationRequest`]'s own
/// (it reads back with `serde_json::from_value`), `call` the [`CallOptions`]'.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Asked {
    /// The request: prompt, count, shape, style, quality, resolution, references,
    /// enhancement and the provider options (moodboard, visual DNA, alt text, …).
    pub request: GenerationRequest,
    /// Its routing choices: provider, model (or the provider's pick), price caps, reshaping.
    pub call: CallOptions,
}

impl Asked {
    /// `request` with its routing choices `call`.
    pub fn new(request: GenerationRequest, call: CallOptions) -> Self {
        Self { request, call }
    }
}

/// The images one request produced, with the route that produced them and their cost.
///
/// ```no_run
/// # async fn run(client: imagegen::Client) -> Result<(), imagegen::Error> {
/// let request = imagegen::GenerationRequest::builder("a lighthouse at dusk").count(2).build()?;
/// let generation = client.generate(&request).await?;
/// println!("{} credits via {}", generation.credits_charged, generation.route_summary());
/// for saved in generation.save("out").await? {
///     println!("{}", saved.path.display());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Generation {
    /// The prompt.
    pub prompt: String,
    /// Images asked for.
    pub images_requested: u32,
    /// The images, job by job in the provider's order.
    pub images: Vec<GeneratedImage>,
    /// Credits charged in all (including charges that may have happened).
    pub credits_charged: Credits,
    /// Every attempt, in order: the route explanation.
    pub route: Vec<Attempt>,
    /// Things to know (a snapped shape, fewer images than asked).
    pub warnings: Vec<String>,
    /// The finished jobs.
    pub jobs: Vec<JobOutput>,
    /// When the request started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// From the start of the request to the last job's end.
    pub elapsed: Duration,
    /// What was asked; `None` for a job resumed from a journal.
    pub asked: Option<Asked>,
    /// Whether the images came from the in-process simulator ([`crate::Client::is_simulated`]).
    pub simulated: bool,
    pub(crate) downloader: ImageDownloader,
    pub(crate) concurrency: usize,
    pub(crate) clock: SharedClock,
}

impl Generation {
    pub(crate) fn from_routed(
        asked: Asked,
        routed: &RoutedOutput,
        started: SystemTime,
        source: Source,
    ) -> Self {
        let Source {
            downloader,
            concurrency,
            clock,
            simulated,
        } = source;
        let mut images = Vec::new();
        for output in &routed.outputs {
            images.extend(images_of(output, routed.plan_of(&output.job)));
        }
        Self {
            prompt: asked.request.prompt().as_str().to_owned(),
            images_requested: routed.images_requested,
            images,
            credits_charged: routed.credits_charged,
            route: routed.attempts.clone(),
            warnings: routed.warnings.clone(),
            jobs: routed.outputs.clone(),
            started_at_ms: unix_millis(started),
            elapsed: clock
                .wall_time()
                .duration_since(started)
                .unwrap_or_default(),
            asked: Some(asked),
            simulated,
            downloader,
            concurrency: concurrency.max(1),
            clock,
        }
    }

    /// A generation of one resumed job.
    pub(crate) fn from_job(prompt: &str, output: &JobOutput, source: Source) -> Self {
        let Source {
            downloader,
            concurrency,
            clock,
            simulated,
        } = source;
        let now = clock.wall_time();
        let accepted = output.job.accepted_at_ms;
        Self {
            prompt: prompt.to_owned(),
            images_requested: output.job.images_requested,
            images: images_of(output, None),
            credits_charged: output.credits_charged.unwrap_or_default(),
            route: Vec::new(),
            warnings: output.warnings.clone(),
            jobs: vec![output.clone()],
            started_at_ms: accepted,
            elapsed: Duration::from_millis(unix_millis(now).saturating_sub(accepted)),
            asked: None,
            simulated,
            downloader,
            concurrency: concurrency.max(1),
            clock,
        }
    }

    /// One line per attempt: where, how it ended and why.
    pub fn route_lines(&self) -> Vec<String> {
        self.route.iter().map(Attempt::summary).collect()
    }

    /// The route in one line (`koala/gpt-image-2: delivered 1 image(s)`).
    pub fn route_summary(&self) -> String {
        self.route_lines().join("; ")
    }

    /// The jobs' handles.
    pub fn job_handles(&self) -> impl Iterator<Item = &JobHandle> {
        self.jobs.iter().map(|j| &j.job)
    }

    /// Downloads every image into `dir` (created if needed) as `<slug>-<n>.<ext>` with a
    /// JSON sidecar, never overwriting a file; several at once. The first failure is
    /// returned after the other downloads finish; images saved before it stay on disk.
    pub async fn save(&self, dir: impl AsRef<Path>) -> Result<Vec<SavedImage>, Error> {
        let (saved, failure) = self.save_each(dir.as_ref(), ImageLayout::Named).await;
        match failure {
            Some(error) => Err(error),
            None => Ok(saved),
        }
    }

    /// Records `plan` as what was sent for every image that does not say (a resumed job).
    pub(crate) fn with_plan(mut self, plan: Option<&CallPlan>) -> Self {
        if let Some(plan) = plan {
            for image in self.images.iter_mut().filter(|i| i.sent.is_none()) {
                image.sent = Some(plan.clone());
            }
        }
        self
    }

    /// Like [`Generation::save`] in `layout`, but returns what was saved along with the
    /// first error.
    pub(crate) async fn save_each(
        &self,
        dir: &Path,
        layout: ImageLayout,
    ) -> (Vec<SavedImage>, Option<Error>) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return (
                Vec::new(),
                Some(Error::io("creating the output directory", dir, e)),
            );
        }
        if layout == ImageLayout::ContentAddressed {
            return self.save_by_content(dir).await;
        }
        sweep_parts(dir);
        // Download several at once, each into its own locked temporary file, then name
        // them in order, so the images of one request are numbered as the provider
        // returned them.
        let downloads: Vec<Result<(PartFile, DownloadedImage), Error>> =
            futures_util::stream::iter(
                self.images
                    .iter()
                    .map(|image| self.download_part(dir, image))
                    .collect::<Vec<_>>(),
            )
            .buffered(self.concurrency)
            .collect()
            .await;
        saved_and_first_failure(self.images.iter().zip(downloads).map(|(image, download)| {
            download.and_then(|(part, downloaded)| self.place(dir, image, part, &downloaded))
        }))
    }

    /// [`ImageLayout::ContentAddressed`]: each image downloaded into memory, then kept
    /// once under its hash (off the async workers), several at once.
    async fn save_by_content(&self, dir: &Path) -> (Vec<SavedImage>, Option<Error>) {
        let kept: Vec<Result<SavedImage, Error>> = futures_util::stream::iter(
            self.images
                .iter()
                .map(|image| self.keep_by_content(dir, image))
                .collect::<Vec<_>>(),
        )
        .buffered(self.concurrency)
        .collect()
        .await;
        saved_and_first_failure(kept)
    }

    async fn keep_by_content(
        &self,
        dir: &Path,
        image: &GeneratedImage,
    ) -> Result<SavedImage, Error> {
        let (bytes, downloaded) = self
            .downloader
            .download_to_memory(&image.url)
            .await
            .map_err(|error| download_error(image, error))?;
        let folder = dir.to_path_buf();
        let extension = downloaded.format.extension();
        let kept = tokio::task::spawn_blocking(move || {
            crate::layout::keep_by_content(&folder, &bytes, extension)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|kept| kept)
        .map_err(|e| Error::io("saving the image", dir, e))?;
        let mut saved = SavedImage::new(
            kept.path,
            image.clone(),
            &downloaded,
            unix_millis(self.clock.wall_time()),
        );
        saved.sidecar = None;
        saved.sha256 = Some(kept.sha256);
        Ok(saved)
    }

    /// Downloads the whole of `image` into a locked temporary file in `dir` (the only one
    /// for this image; removed if the download fails).
    async fn download_part(
        &self,
        dir: &Path,
        image: &GeneratedImage,
    ) -> Result<(PartFile, DownloadedImage), Error> {
        self.downloader
            .download_to_part(&image.url, dir)
            .await
            .map_err(|error| download_error(image, error))
    }

    /// Moves a downloaded image to its own, new name and writes its sidecar.
    fn place(
        &self,
        dir: &Path,
        image: &GeneratedImage,
        part: PartFile,
        downloaded: &DownloadedImage,
    ) -> Result<SavedImage, Error> {
        let stem = prompt_slug(&self.prompt);
        let (path, placeholder) = create_unique(dir, &stem, 1, downloaded.format.extension())
            .map_err(|e| Error::io("choosing a file name", dir, e))?;
        // Give the image the placeholder's ordinary permissions (those of any file the
        // user creates), then replace our own empty placeholder (made with `create_new`,
        // so no other file is ever replaced). The part stays locked until it is renamed.
        if let Err(error) = move_into_placeholder(part, &path) {
            drop(placeholder);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::debug!(path = %path.display(), error = %e, "an empty placeholder was left");
            }
            return Err(error);
        }
        drop(placeholder);
        let saved = SavedImage::new(
            path,
            image.clone(),
            downloaded,
            unix_millis(self.clock.wall_time()),
        );
        let sidecar = Sidecar::new(self, &saved);
        let sidecar_file = sidecar_path(&saved.path);
        let text = serde_json::to_vec_pretty(&sidecar).map_err(|e| {
            Error::io(
                "writing the sidecar",
                &sidecar_file,
                std::io::Error::other(e),
            )
        })?;
        write_new(&sidecar_file, &text)
            .map_err(|e| Error::io("writing the sidecar", &sidecar_file, e))?;
        Ok(saved)
    }

    /// Downloads every image into memory, several at once.
    pub async fn download(&self) -> Result<Vec<ImageData>, Error> {
        let results: Vec<Result<ImageData, Error>> = futures_util::stream::iter(
            self.images
                .iter()
                .map(|image| async move {
                    let mut bytes = Vec::new();
                    let downloaded = self
                        .downloader
                        .download_to_writer(&image.url, &mut bytes)
                        .await
                        .map_err(|error| download_error(image, error))?;
                    Ok(ImageData {
                        image: image.clone(),
                        mime: downloaded.mime,
                        width: downloaded.width,
                        height: downloaded.height,
                        bytes,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .buffered(self.concurrency)
        .collect()
        .await;
        results.into_iter().collect()
    }
}

/// What a [`Generation`] needs from the client that made it.
pub(crate) struct Source {
    pub(crate) downloader: ImageDownloader,
    pub(crate) concurrency: usize,
    pub(crate) clock: SharedClock,
    pub(crate) simulated: bool,
}

fn images_of(output: &JobOutput, sent: Option<&CallPlan>) -> Vec<GeneratedImage> {
    let count = u32::try_from(output.images.len())
        .unwrap_or(u32::MAX)
        .max(1);
    let charge = output.credits_charged.or(output.job.credits_charged);
    let share = charge.map(|c| Credits::from_micros(c.micros().div_ceil(u64::from(count))));
    output
        .images
        .iter()
        .enumerate()
        .map(|(index, image)| GeneratedImage {
            provider: output.job.provider.clone(),
            model: output.model.clone().or_else(|| output.job.model.clone()),
            job_id: output.job.job_id.clone(),
            index,
            url: image.url.clone(),
            alt: image.alt.clone(),
            credits: share,
            accepted_at_ms: output.job.accepted_at_ms,
            prompt_used: output.prompt_used.clone(),
            sent: sent.cloned(),
        })
        .collect()
}

/// Removes the temporary files killed runs left in `dir` (those no running download
/// holds), before new downloads start there.
fn sweep_parts(dir: &Path) {
    match imagegen_http::sweep_stale_parts(dir) {
        Ok(removed) if !removed.is_empty() => tracing::info!(
            dir = %dir.display(),
            removed = removed.len(),
            "removed {} temporary file(s) left by an earlier run",
            removed.len()
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "temporary files were not swept");
        }
    }
}

/// The images saved, in order, and the first failure (each one logged).
fn saved_and_first_failure(
    results: impl IntoIterator<Item = Result<SavedImage, Error>>,
) -> (Vec<SavedImage>, Option<Error>) {
    let mut saved = Vec::new();
    let mut failure = None;
    for result in results {
        match result {
            Ok(image) => saved.push(image),
            Err(e) => {
                tracing::warn!(error = %e, "an image could not be saved");
                failure.get_or_insert(e);
            }
        }
    }
    (saved, failure)
}

/// Moves the downloaded `part` onto our own empty placeholder at `path`, with the
/// placeholder's permissions.
fn move_into_placeholder(part: PartFile, path: &Path) -> Result<(), Error> {
    let permissions = std::fs::metadata(path)
        .map_err(|e| Error::io("choosing a file name", path, e))?
        .permissions();
    std::fs::set_permissions(part.path(), permissions)
        .map_err(|e| Error::io("moving the image", path, e))?;
    part.persist(path)
        .map_err(|e| Error::io("moving the image", path, e.error))
}

fn download_error(image: &GeneratedImage, error: imagegen_http::DownloadError) -> Error {
    Error::Download {
        provider: image.provider.to_string(),
        job_id: image.job_id.clone(),
        url: shown_url(&image.url),
        error,
    }
}

/// A URL as imagegen shows it: without its query and fragment (signed CDN URLs carry
/// tokens there).
///
/// ```
/// let url = url::Url::parse("https://cdn.example/a.png?sig=abc#x")?;
/// assert_eq!(imagegen::generation::shown_url(&url), "https://cdn.example/a.png");
/// # Ok::<(), url::ParseError>(())
/// ```
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// An image in memory, from [`Generation::download`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageData {
    /// Which image.
    pub image: GeneratedImage,
    /// Its MIME type, from the bytes.
    pub mime: &'static str,
    /// Width in pixels, when the header shows it.
    pub width: Option<u32>,
    /// Height in pixels, when the header shows it.
    pub height: Option<u32>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// An image written to disk, from [`Generation::save`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SavedImage {
    /// The image file.
    pub path: PathBuf,
    /// The JSON sidecar beside it ([`ImageLayout::Named`]); `None` when the layout
    /// keeps none ([`ImageLayout::ContentAddressed`]).
    pub sidecar: Option<PathBuf>,
    /// The SHA-256 of its bytes, lower-case hex, when saving computed it
    /// ([`ImageLayout::ContentAddressed`] names the file by it).
    pub sha256: Option<String>,
    /// Which image.
    pub image: GeneratedImage,
    /// Its MIME type, from the bytes.
    pub mime: &'static str,
    /// Width in pixels, when the header shows it.
    pub width: Option<u32>,
    /// Height in pixels, when the header shows it.
    pub height: Option<u32>,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long the download took.
    pub download_ms: u64,
    /// When it was saved, in milliseconds since the Unix epoch.
    pub saved_at_ms: u64,
}

impl SavedImage {
    fn new(
        path: PathBuf,
        image: GeneratedImage,
        downloaded: &DownloadedImage,
        saved_at_ms: u64,
    ) -> Self {
        Self {
            sidecar: Some(sidecar_path(&path)),
            sha256: None,
            path,
            image,
            mime: downloaded.mime,
            width: downloaded.width,
            height: downloaded.height,
            bytes: downloaded.bytes,
            download_ms: u64::try_from(downloaded.elapsed.as_millis()).unwrap_or(u64::MAX),
            saved_at_ms,
        }
    }
}

/// The JSON file written beside each saved image: everything needed to know what was
/// asked, what was sent, where it came from and what it cost. It never contains an API key.
///
/// `asked` is `null` for an image of a job resumed from a journal (the journal keeps the
/// job and the plan it was sent as, not the request), and so is `sent` when the journal
/// predates plans. `simulated` is `true` when the image came
/// from the simulator the client started in its own process
/// ([`crate::Client::is_simulated`]); a client pointed at an external `imagegen sim`
/// through the environment cannot tell it from a real API and writes `false`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Sidecar {
    /// The prompt as asked.
    pub prompt: String,
    /// What was asked: the request as given and its routing choices (`null` when resumed).
    pub asked: Option<Asked>,
    /// The call sent for this image's job, exactly (`null` when not known).
    pub sent: Option<CallPlan>,
    /// Whether the image came from the in-process simulator.
    pub simulated: bool,
    /// The prompt after the provider rewrote it, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_used: Option<String>,
    /// The provider.
    pub provider: ProviderId,
    /// The model, when known.
    pub model: Option<ModelId>,
    /// The provider's generation (job) id.
    pub generation_id: String,
    /// The image's position in the job's output, from 0.
    pub index: usize,
    /// This image's share of the job's charge.
    pub credits: Option<Credits>,
    /// Times, in milliseconds.
    pub timings: SidecarTimings,
    /// The route taken, one line per attempt.
    pub route: Vec<String>,
    /// Where the image was fetched from, without its query string.
    pub source_url: String,
    /// Its MIME type, from the bytes.
    pub mime: &'static str,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Size in bytes.
    pub bytes: u64,
    /// Alt text, when the provider wrote one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
    /// Things to know about the request (a snapped shape).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The imagegen version that wrote it.
    pub imagegen_version: &'static str,
}

/// The times in a [`Sidecar`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SidecarTimings {
    /// When the request started (Unix epoch milliseconds).
    pub requested_at_ms: u64,
    /// When the provider accepted the job (Unix epoch milliseconds).
    pub accepted_at_ms: u64,
    /// When the file was saved (Unix epoch milliseconds).
    pub saved_at_ms: u64,
    /// The download's duration.
    pub download_ms: u64,
    /// From the request to the save.
    pub total_ms: u64,
}

impl Sidecar {
    /// The sidecar of `saved`, an image of `generation`.
    pub fn new(generation: &Generation, saved: &SavedImage) -> Self {
        let image = &saved.image;
        Self {
            prompt: generation.prompt.clone(),
            asked: generation.asked.clone(),
            sent: image.sent.clone(),
            simulated: generation.simulated,
            prompt_used: image.prompt_used.clone(),
            provider: image.provider.clone(),
            model: image.model.clone(),
            generation_id: image.job_id.clone(),
            index: image.index,
            credits: image.credits,
            timings: SidecarTimings {
                requested_at_ms: generation.started_at_ms,
                accepted_at_ms: image.accepted_at_ms,
                saved_at_ms: saved.saved_at_ms,
                download_ms: saved.download_ms,
                total_ms: saved.saved_at_ms.saturating_sub(generation.started_at_ms),
            },
            route: generation.route_lines(),
            source_url: shown_url(&image.url),
            mime: saved.mime,
            width: saved.width,
            height: saved.height,
            bytes: saved.bytes,
            alt: image.alt.clone(),
            warnings: generation.warnings.clone(),
            imagegen_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[cfg(test)]
mod tests {
    use imagegen_core::ImageRef;

    use super::*;

    #[test]
    fn images_share_the_job_charge_and_keep_the_model() {
        let job = JobHandle::new("kolbo", "gen_1", 3, 0)
            .with_model("nano-banana-2")
            .with_credits_charged(Credits::whole(10));
        let urls = [
            "https://cdn.example/a.png?token=secret",
            "https://cdn.example/b.png",
            "https://cdn.example/c.png",
        ];
        let output = JobOutput::new(
            job,
            urls.iter()
                .map(|u| ImageRef::new(Url::parse(u).unwrap(), None))
                .collect(),
        );
        let images = images_of(&output, None);
        assert_eq!(images.len(), 3);
        assert_eq!(images[2].index, 2);
        assert_eq!(images[0].credits, Some("3.333334".parse().unwrap()));
        assert_eq!(images[0].model.as_ref().unwrap(), "nano-banana-2");
        assert_eq!(shown_url(&images[0].url), "https://cdn.example/a.png");
    }
}

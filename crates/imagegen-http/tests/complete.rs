//! An image body that ends cleanly but early is never a success: it is refused, fetched
//! again, and when it never comes whole the error says so and nothing is left on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{gif_bytes, jpeg_bytes, png_bytes, webp_bytes};
use imagegen_core::{Error, ManualClock};
use imagegen_http::{DownloadError, ImageDownloader, ImageFormat};
use url::Url;

const IMAGE_PATH: &str = "/cdn/image-1";

fn downloader(clock: &ManualClock) -> ImageDownloader {
    ImageDownloader::builder()
        .clock(clock.shared())
        .deadline(Duration::from_secs(600))
        .max_attempts(3)
        .build()
        .unwrap()
}

fn url(server: &mockito::ServerGuard) -> Url {
    Url::parse(&format!("{}{IMAGE_PATH}", server.url())).unwrap()
}

/// A server whose first GET gets the first half of `whole` (with a matching
/// `Content-Length`, so the body ends cleanly) and whose next GETs get all of it.
async fn cut_then_whole(whole: &[u8], content_type: &str) -> mockito::ServerGuard {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("GET", IMAGE_PATH)
        .with_header("content-type", content_type)
        .with_body(&whole[..whole.len() / 2])
        .expect(1)
        .create_async()
        .await;
    server
        .mock("GET", IMAGE_PATH)
        .with_header("content-type", content_type)
        .with_body(whole)
        .create_async()
        .await;
    server
}

fn all_formats() -> [(Vec<u8>, ImageFormat, &'static str); 4] {
    [
        (png_bytes(), ImageFormat::Png, "image/png"),
        (jpeg_bytes(), ImageFormat::Jpeg, "image/jpeg"),
        (gif_bytes(), ImageFormat::Gif, "image/gif"),
        (webp_bytes(), ImageFormat::Webp, "image/webp"),
    ]
}

/// The names in `dir`.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_format_cut_short_is_refused_and_fetched_again_whole() {
    for (whole, format, content_type) in all_formats() {
        let server = cut_then_whole(&whole, content_type).await;
        let clock = ManualClock::new();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image");
        let image = downloader(&clock)
            .download_with_extension(&url(&server), &target)
            .await
            .unwrap();
        assert_eq!(image.format, format);
        assert_eq!(image.attempts, 2, "{format:?}: the cut body was refused");
        assert_eq!(image.bytes, whole.len() as u64);
        assert_eq!(clock.sleeps(), [Duration::from_secs(2)], "{format:?}");
        let path = image.path.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), whole, "{format:?}");
        assert_eq!(
            names(dir.path()),
            [format!("image.{}", format.extension())],
            "{format:?}: no temporary file left"
        );
    }
}

#[tokio::test]
async fn each_format_cut_short_into_a_part_file_is_fetched_again() {
    for (whole, format, content_type) in all_formats() {
        let server = cut_then_whole(&whole, content_type).await;
        let dir = tempfile::tempdir().unwrap();
        let (part, image) = downloader(&ManualClock::new())
            .download_to_part(&url(&server), dir.path())
            .await
            .unwrap();
        assert_eq!((image.format, image.attempts), (format, 2));
        assert_eq!(std::fs::read(part.path()).unwrap(), whole, "{format:?}");
        assert_eq!(names(dir.path()).len(), 1, "one temporary file per image");
    }
}

#[tokio::test]
async fn each_format_cut_short_into_memory_is_fetched_again_from_the_start() {
    for (whole, format, content_type) in all_formats() {
        let server = cut_then_whole(&whole, content_type).await;
        let (bytes, image) = downloader(&ManualClock::new())
            .download_to_memory(&url(&server))
            .await
            .unwrap();
        assert_eq!((image.format, image.attempts), (format, 2));
        assert_eq!(bytes, whole, "{format:?}: the cut first body was dropped");
        assert_eq!(image.bytes, whole.len() as u64);
    }
}

#[tokio::test]
async fn a_cut_short_image_in_a_writer_is_an_interrupted_incomplete_download() {
    let whole = png_bytes();
    let server = cut_then_whole(&whole, "image/png").await;
    let mut sink = Vec::new();
    let err = downloader(&ManualClock::new())
        .download_to_writer(&url(&server), &mut sink)
        .await
        .unwrap_err();
    let DownloadError::Interrupted { written, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*written, (whole.len() / 2) as u64);
    assert!(
        err.is_incomplete_image() && err.may_succeed_later(),
        "{err:?}"
    );
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert!(
        err.to_string().contains("without its IEND end chunk"),
        "{err}"
    );
}

#[tokio::test]
async fn an_image_cut_short_every_time_fails_as_incomplete_and_leaves_nothing() {
    for (whole, format, content_type) in all_formats() {
        let mut server = mockito::Server::new_async().await;
        let cut = server
            .mock("GET", IMAGE_PATH)
            .with_header("content-type", content_type)
            .with_body(&whole[..whole.len() / 2])
            .expect(3)
            .create_async()
            .await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("fox.img");
        let d = downloader(&ManualClock::new());
        let err = d
            .download_to_file(&url(&server), &target)
            .await
            .unwrap_err();
        cut.assert_async().await;
        assert!(
            matches!(
                err,
                DownloadError::AttemptsExhausted {
                    attempts: 3,
                    last_status: None,
                    ..
                }
            ),
            "{format:?}: {err:?}"
        );
        assert!(err.is_incomplete_image());
        let shown = err.to_string();
        assert!(
            shown.contains("the image is incomplete, it ended early"),
            "{shown}"
        );
        assert!(!target.exists(), "{format:?}: nothing at the target");
        assert!(names(dir.path()).is_empty(), "{format:?}: no .part left");
        // Through a part file: nothing is left either.
        let err = d
            .download_to_part(&url(&server), dir.path())
            .await
            .unwrap_err();
        assert!(err.is_incomplete_image(), "{err:?}");
        assert!(names(dir.path()).is_empty(), "{format:?}: no .part left");
        // A paid job's image that may come whole later: the job stays resumable.
        let core = err.into_core_error("provider", "job-1");
        assert!(matches!(core, Error::StillRunning { .. }), "{core:?}");
    }
}

#[tokio::test]
async fn the_message_names_the_format_and_the_size() {
    let mut png = png_bytes();
    png.extend(std::iter::repeat_n(7u8, 12_345 - png.len()));
    let mut server = mockito::Server::new_async().await;
    server
        .mock("GET", IMAGE_PATH)
        .with_body(&png)
        .create_async()
        .await;
    let err = ImageDownloader::builder()
        .clock(ManualClock::new().shared())
        .max_attempts(1)
        .build()
        .unwrap()
        .download_to_writer(&url(&server), &mut imagegen_http::CountingSink::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "the image is incomplete, it ended early: a PNG of 12,345 bytes without its IEND end chunk"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn trailing_zero_padding_after_a_jpeg_or_gif_end_is_whole() {
    for (mut body, content_type) in [(jpeg_bytes(), "image/jpeg"), (gif_bytes(), "image/gif")] {
        body.extend_from_slice(&[0u8; 300]);
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("GET", IMAGE_PATH)
            .with_header("content-type", content_type)
            .with_body(&body)
            .expect(1)
            .create_async()
            .await;
        let mut sink = Vec::new();
        let image = downloader(&ManualClock::new())
            .download_to_writer(&url(&server), &mut sink)
            .await
            .unwrap();
        mock.assert_async().await;
        assert_eq!(image.attempts, 1);
        assert_eq!(sink, body);
    }
}

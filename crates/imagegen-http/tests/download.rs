//! The image download: a URL that blocks until the image is ready, retries under a
//! deadline, formats from bytes, no credentials, streaming into files and writers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Reply, ScriptedServer, jpeg_bytes, png_bytes, response};
use imagegen_core::{Error, ManualClock};
use imagegen_http::download::CountingSink;
use imagegen_http::{DownloadError, ImageDownloader, ImageFormat};
use mockito::Matcher;
use url::Url;

const IMAGE_PATH: &str = "/api/image/v2-cnfjk-1g1wf.jpg";

fn downloader(clock: &ManualClock) -> ImageDownloader {
    ImageDownloader::builder()
        .clock(clock.shared())
        .deadline(Duration::from_secs(600))
        .build()
        .unwrap()
}

fn url(base: &str) -> Url {
    Url::parse(&format!("{base}{IMAGE_PATH}")).unwrap()
}

#[tokio::test]
async fn png_bytes_behind_a_jpg_url_are_a_png_and_no_credentials_are_sent() {
    let mut server = mockito::Server::new_async().await;
    let png = png_bytes();
    let mock = server
        .mock("GET", IMAGE_PATH)
        .match_header("authorization", Matcher::Missing)
        .match_header("cookie", Matcher::Missing)
        .match_header("x-api-key", Matcher::Missing)
        .with_status(200)
        .with_header("content-type", "image/png")
        .with_body(&png)
        .expect(1)
        .create_async()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let image = downloader(&clock)
        .download_with_extension(&url(&server.url()), &dir.path().join("cat"))
        .await
        .unwrap();
    mock.assert_async().await;
    assert_eq!(image.format, ImageFormat::Png);
    assert_eq!(image.mime, "image/png");
    assert_eq!((image.width, image.height), (Some(3), Some(2)));
    assert_eq!(image.bytes, png.len() as u64);
    assert_eq!(image.attempts, 1);
    let path = image.path.unwrap();
    assert_eq!(path, dir.path().join("cat.png"));
    assert_eq!(std::fs::read(&path).unwrap(), png);
    // Only the image is left: the temporary file was renamed, not copied.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // An ordinary file, not a private temporary one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o044, 0o044 & !umask(), "mode {mode:o}");
    }
}

/// The process umask, read from /proc (0o022 when unreadable).
#[cfg(unix)]
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[tokio::test]
async fn the_bytes_win_over_a_wrong_content_type() {
    let mut server = mockito::Server::new_async().await;
    let _mock = server
        .mock("GET", IMAGE_PATH)
        .with_header("content-type", "image/jpeg")
        .with_body(png_bytes())
        .create_async()
        .await;
    let mut sink = Vec::new();
    let image = downloader(&ManualClock::new())
        .download_to_writer(&url(&server.url()), &mut sink)
        .await
        .unwrap();
    assert_eq!(image.format, ImageFormat::Png);
    assert_eq!(image.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(sink, png_bytes());
}

#[tokio::test]
async fn a_502_then_the_image() {
    let mut server = mockito::Server::new_async().await;
    let bad_gateway = server
        .mock("GET", IMAGE_PATH)
        .with_status(502)
        .with_body("<html>Bad Gateway</html>")
        .expect(1)
        .create_async()
        .await;
    let ok = server
        .mock("GET", IMAGE_PATH)
        .with_header("content-type", "image/jpeg")
        .with_body(jpeg_bytes())
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let mut sink = Vec::new();
    let image = downloader(&clock)
        .download_to_writer(&url(&server.url()), &mut sink)
        .await
        .unwrap();
    bad_gateway.assert_async().await;
    ok.assert_async().await;
    assert_eq!(image.format, ImageFormat::Jpeg);
    assert_eq!((image.width, image.height), (Some(1536), Some(1024)));
    assert_eq!(image.attempts, 2);
    assert_eq!(clock.sleeps(), [Duration::from_secs(2)]);
    // The error page never reached the destination.
    assert_eq!(sink, jpeg_bytes());
}

#[tokio::test]
async fn a_success_status_with_a_non_image_body_is_retried() {
    let mut server = mockito::Server::new_async().await;
    let placeholder = server
        .mock("GET", IMAGE_PATH)
        .with_header("content-type", "text/html")
        .with_body("<!DOCTYPE html><p>Your image is being generated</p>")
        .expect(2)
        .create_async()
        .await;
    let ok = server
        .mock("GET", IMAGE_PATH)
        .with_body(png_bytes())
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let image = downloader(&clock)
        .download_to_writer(&url(&server.url()), &mut CountingSink::default())
        .await
        .unwrap();
    placeholder.assert_async().await;
    ok.assert_async().await;
    assert_eq!(image.attempts, 3);
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(2), Duration::from_secs(4)]
    );
}

#[tokio::test]
async fn retry_after_on_a_503_is_honoured() {
    let mut server = mockito::Server::new_async().await;
    let _busy = server
        .mock("GET", IMAGE_PATH)
        .with_status(503)
        .with_header("retry-after", "11")
        .expect(1)
        .create_async()
        .await;
    let _ok = server
        .mock("GET", IMAGE_PATH)
        .with_body(png_bytes())
        .create_async()
        .await;
    let clock = ManualClock::new();
    downloader(&clock)
        .download_to_writer(&url(&server.url()), &mut CountingSink::default())
        .await
        .unwrap();
    assert_eq!(clock.sleeps(), [Duration::from_secs(11)]);
}

#[tokio::test]
async fn the_blocking_url_is_waited_for_with_the_long_read_timeout() {
    // The host holds the GET until the image exists: the first byte comes late.
    let server = ScriptedServer::start(vec![Reply::After(
        Duration::from_millis(150),
        response(200, "image/png", &png_bytes()),
    )])
    .await;
    let clock = ManualClock::new();
    let image = ImageDownloader::builder()
        .clock(clock.shared())
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .download_to_writer(&url(&server.url), &mut CountingSink::default())
        .await
        .unwrap();
    assert_eq!(image.attempts, 1);
    assert_eq!(server.request_count(), 1);
    let head = server.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(!head.contains("authorization"), "{head}");
}

#[tokio::test]
async fn a_read_timeout_is_retried() {
    let server = ScriptedServer::start(vec![
        Reply::After(
            Duration::from_millis(600),
            response(200, "image/png", &png_bytes()),
        ),
        Reply::After(Duration::ZERO, response(200, "image/png", &png_bytes())),
    ])
    .await;
    let clock = ManualClock::new();
    let image = ImageDownloader::builder()
        .clock(clock.shared())
        .read_timeout(Duration::from_millis(60))
        .build()
        .unwrap()
        .download_to_writer(&url(&server.url), &mut CountingSink::default())
        .await
        .unwrap();
    assert_eq!(image.attempts, 2);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn a_body_that_breaks_off_restarts_a_file_but_not_a_writer() {
    let png = png_bytes();
    let mut head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\n\r\n",
        png.len() + 500
    )
    .into_bytes();
    head.extend_from_slice(&png);
    let broken = Reply::BreakAfter(head);
    let whole = Reply::After(Duration::ZERO, response(200, "image/png", &png));

    let server = ScriptedServer::start(vec![broken.clone(), whole.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fox.png");
    let image = downloader(&ManualClock::new())
        .download_to_file(&url(&server.url), &target)
        .await
        .unwrap();
    assert_eq!(image.attempts, 2);
    assert_eq!(std::fs::read(&target).unwrap(), png);

    let server = ScriptedServer::start(vec![broken, whole]).await;
    let mut sink = Vec::new();
    let err = downloader(&ManualClock::new())
        .download_to_writer(&url(&server.url), &mut sink)
        .await
        .unwrap_err();
    let DownloadError::Interrupted { written, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*written, png.len() as u64);
    assert!(err.may_succeed_later());
}

#[tokio::test]
async fn the_deadline_bounds_the_wait_and_keeps_the_job_resumable() {
    let mut server = mockito::Server::new_async().await;
    let _down = server
        .mock("GET", IMAGE_PATH)
        .with_status(504)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let err = downloader(&clock)
        .with_deadline(Duration::from_secs(60))
        .download_to_file(&url(&server.url()), &dir.path().join("x.png"))
        .await
        .unwrap_err();
    let DownloadError::DeadlineExceeded {
        waited, attempts, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(*waited <= Duration::from_secs(60));
    assert_eq!(*attempts, 5);
    // The server was answering errors, and said which.
    assert_eq!(err.last_status(), Some(504));
    assert!(!err.is_incomplete_image());
    assert_eq!(
        clock.sleeps(),
        [2, 4, 8, 16].map(Duration::from_secs).to_vec()
    );
    // Nothing half-written is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let core = err.into_core_error("provider", "v2-cnfjk-1g1wf");
    assert!(matches!(core, Error::StillRunning { .. }), "{core:?}");
    assert!(core.may_have_been_charged());
}

#[tokio::test]
async fn attempts_are_bounded_too() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("GET", IMAGE_PATH)
        .with_status(500)
        .expect(3)
        .create_async()
        .await;
    let err = ImageDownloader::builder()
        .clock(ManualClock::new().shared())
        .max_attempts(3)
        .build()
        .unwrap()
        .download_to_writer(&url(&server.url()), &mut CountingSink::default())
        .await
        .unwrap_err();
    mock.assert_async().await;
    assert!(matches!(
        err,
        DownloadError::AttemptsExhausted { attempts: 3, .. }
    ));
    assert_eq!(err.last_status(), Some(500));
}

#[tokio::test]
async fn the_last_status_is_the_last_attempts_only() {
    // Errors first, then a page instead of an image: the server was not answering an
    // error status at the end.
    let mut server = mockito::Server::new_async().await;
    let _busy = server
        .mock("GET", IMAGE_PATH)
        .with_status(503)
        .expect(1)
        .create_async()
        .await;
    let _page = server
        .mock("GET", IMAGE_PATH)
        .with_header("content-type", "text/html")
        .with_body("<!DOCTYPE html><p>wait</p>")
        .create_async()
        .await;
    let err = ImageDownloader::builder()
        .clock(ManualClock::new().shared())
        .max_attempts(2)
        .build()
        .unwrap()
        .download_to_writer(&url(&server.url()), &mut CountingSink::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::AttemptsExhausted {
                attempts: 2,
                last_status: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.last_status(), None);
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let mut server = mockito::Server::new_async().await;
    let gone = server
        .mock("GET", "/gone.jpg")
        .with_status(404)
        .with_body("no such image")
        .expect(1)
        .create_async()
        .await;
    let bmp = server
        .mock("GET", "/odd.jpg")
        .with_body(
            b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\x18\0\0\0\0\0",
        )
        .expect(1)
        .create_async()
        .await;
    let big = server
        .mock("GET", "/big.jpg")
        .with_body(vec![0xFFu8; 4096])
        .expect(1)
        .create_async()
        .await;
    let clock = ManualClock::new();
    let d = ImageDownloader::builder()
        .clock(clock.shared())
        .max_bytes(1024)
        .build()
        .unwrap();
    let get = |path: &str| Url::parse(&format!("{}{path}", server.url())).unwrap();
    let mut sink = CountingSink::default();
    let err = d
        .download_to_writer(&get("/gone.jpg"), &mut sink)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DownloadError::Status {
            status: 404,
            body_prefix: "no such image".into()
        }
    );
    assert_eq!(err.last_status(), Some(404));
    let err = d
        .download_to_writer(&get("/odd.jpg"), &mut sink)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::UnsupportedFormat { ref mime } if mime == "image/bmp"),
        "{err:?}"
    );
    let err = d
        .download_to_writer(&get("/big.jpg"), &mut sink)
        .await
        .unwrap_err();
    assert_eq!(err, DownloadError::TooLarge { limit: 1024 });
    gone.assert_async().await;
    bmp.assert_async().await;
    big.assert_async().await;
    assert!(clock.sleeps().is_empty());
    assert_eq!(sink.bytes, 0);
    let err = d
        .download_to_writer(&Url::parse("file:///etc/passwd").unwrap(), &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::InvalidUrl { .. }));
}

#[tokio::test]
async fn redirects_to_a_cdn_are_followed_without_credentials() {
    let mut cdn = mockito::Server::new_async().await;
    let image = cdn
        .mock("GET", "/cdn/v2.png")
        .match_header("authorization", Matcher::Missing)
        .with_body(png_bytes())
        .expect(1)
        .create_async()
        .await;
    let mut server = mockito::Server::new_async().await;
    let _redirect = server
        .mock("GET", IMAGE_PATH)
        .with_status(302)
        .with_header("location", &format!("{}/cdn/v2.png", cdn.url()))
        .create_async()
        .await;
    let got = downloader(&ManualClock::new())
        .download_to_writer(&url(&server.url()), &mut CountingSink::default())
        .await
        .unwrap();
    image.assert_async().await;
    assert_eq!(got.format, ImageFormat::Png);
}

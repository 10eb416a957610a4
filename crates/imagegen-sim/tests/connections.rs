//! Keep-alive connections: reused while in use, closed once idle for the configured time
//! (as real servers close them), never while a request is being answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: Duration = Duration::from_millis(400);

/// Reads one HTTP/1.1 response (headers and a `Content-Length` body); returns its status
/// line and body.
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a content-length");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = head.lines().next().unwrap().to_owned();
    (status, buf[head_end..head_end + length].to_vec())
}

/// Waits for the server to close `stream`; returns how long that took, or `None` if it is
/// still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut chunk = [0_u8; 64];
    match tokio::time::timeout(limit, stream.read(&mut chunk)).await {
        Ok(Ok(0) | Err(_)) => Some(start.elapsed()),
        Ok(Ok(n)) => panic!("unexpected bytes on an idle connection: {:?}", &chunk[..n]),
        Err(_) => None,
    }
}

fn models_request(key: &str) -> String {
    format!("GET /api/v1/models?type=image HTTP/1.1\r\nHost: sim\r\nX-API-Key: {key}\r\n\r\n")
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (sim, _clock) = common::sim(|c| c.with_idle_timeout(Some(IDLE))).await;
    let key = sim.kolbo_api_key().to_owned();
    let mut stream = TcpStream::connect(sim.api_addr()).await.unwrap();

    // Two requests on one connection, the second after a pause shorter than the timeout:
    // keep-alive works.
    for _ in 0..2 {
        stream
            .write_all(models_request(&key).as_bytes())
            .await
            .unwrap();
        let (status, body) = read_response(&mut stream).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(!body.is_empty());
        tokio::time::sleep(IDLE / 4).await;
    }

    // Then left idle: the server closes it, not before the timeout and well within a few
    // multiples of it.
    let waited = closed_within(&mut stream, IDLE * 10)
        .await
        .expect("the idle connection was never closed");
    assert!(
        waited + IDLE / 4 >= IDLE * 3 / 4,
        "closed too early: {waited:?}"
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_or_leaves_a_body_unread_is_closed() {
    let (sim, _clock) = common::sim(|c| c.with_idle_timeout(Some(IDLE))).await;
    let key = sim.kolbo_api_key().to_owned();

    let mut silent = TcpStream::connect(sim.api_addr()).await.unwrap();
    assert!(closed_within(&mut silent, IDLE * 10).await.is_some());

    // A request whose response is never read (the client keeps the socket, reads nothing):
    // once the response is sent the connection is idle, and closed.
    let mut unread = TcpStream::connect(sim.api_addr()).await.unwrap();
    unread
        .write_all(models_request(&key).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(IDLE * 3).await;
    let (status, _) = read_response(&mut unread).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(closed_within(&mut unread, IDLE * 10).await.is_some());
}

#[tokio::test]
async fn a_request_being_answered_is_not_idle() {
    let (sim, clock) = common::sim(|c| c.with_idle_timeout(Some(IDLE))).await;
    let key = sim.koala_api_key().to_owned();
    let made = common::koala_generate(&sim, &key, &json!({"prompt": "cat"})).await;
    assert_eq!(made.status, 200);
    let url = made.json()[0]["url"].as_str().unwrap().to_owned();
    let path = url
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();

    // The image URL holds the request until the image is ready (on the simulator's clock),
    // far longer than the idle timeout in real time.
    let mut stream = TcpStream::connect(sim.api_addr()).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: sim\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(IDLE * 3).await;
    clock.advance(Duration::from_secs(60));
    let (status, body) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(body.starts_with(&[0xFF, 0xD8]), "a JPEG");
}

#[tokio::test]
async fn without_an_idle_timeout_connections_stay_open() {
    let (sim, _clock) = common::sim(|c| c.with_idle_timeout(None)).await;
    let key = sim.kolbo_api_key().to_owned();
    let mut stream = TcpStream::connect(sim.api_addr()).await.unwrap();
    stream
        .write_all(models_request(&key).as_bytes())
        .await
        .unwrap();
    let _ = read_response(&mut stream).await;
    assert_eq!(closed_within(&mut stream, IDLE * 3).await, None);
    // And the default closes idle connections after a few seconds.
    assert_eq!(
        imagegen_sim::SimConfig::default().idle_timeout,
        Some(Duration::from_secs(5))
    );
}

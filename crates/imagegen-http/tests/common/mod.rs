//! Helpers shared by the integration tests: a tiny scripted HTTP server for what mockito
//! cannot do (a slow first byte, a body that breaks off, a connection that never answers).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A 3x2 RGBA PNG.
pub fn png_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 3, 2);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[200u8; 3 * 2 * 4]).unwrap();
    }
    out
}

/// A 1536x1024 baseline JPEG header, some scan bytes and the end-of-image marker.
pub fn jpeg_bytes() -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    jpeg.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x04, 0x00, 0x06, 0x00, 0x03]);
    jpeg.extend_from_slice(&[0u8; 64]);
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

/// A 4x3 GIF: header, an image block, the trailer.
pub fn gif_bytes() -> Vec<u8> {
    let mut gif = b"GIF89a\x04\x00\x03\x00\x00\x00\x00".to_vec();
    gif.extend_from_slice(b"\x2c\x00\x00\x00\x00\x04\x00\x03\x00\x00\x02");
    gif.push(40);
    gif.extend(std::iter::repeat_n(0x11u8, 40));
    gif.extend_from_slice(&[0x00, 0x3B]);
    gif
}

/// An 800x600 lossless WebP whose RIFF size matches its length.
pub fn webp_bytes() -> Vec<u8> {
    let mut webp = b"RIFF\0\0\0\0WEBPVP8L".to_vec();
    webp.extend_from_slice(&70u32.to_le_bytes());
    webp.push(0x2f);
    let bits: u32 = 799 | (599 << 14);
    webp.extend_from_slice(&bits.to_le_bytes());
    webp.extend(std::iter::repeat_n(0x5Au8, 65));
    let size = u32::try_from(webp.len() - 8).unwrap();
    webp[4..8].copy_from_slice(&size.to_le_bytes());
    webp
}

/// What one connection to a [`ScriptedServer`] does.
#[derive(Clone)]
pub enum Reply {
    /// Waits, then answers with the whole response.
    After(Duration, Vec<u8>),
    /// Sends the first bytes, then closes the connection.
    BreakAfter(Vec<u8>),
    /// Reads the request and never answers.
    Silent,
}

/// An HTTP/1.1 response with `status`, `content_type` and `body`.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A server on 127.0.0.1 that answers connection `n` with `replies[n]` (the last one
/// repeats) and records each request's head.
pub struct ScriptedServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl ScriptedServer {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let reply = replies[n.min(replies.len() - 1)].clone();
                n += 1;
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    match reply {
                        Reply::After(delay, bytes) => {
                            tokio::time::sleep(delay).await;
                            let _ = socket.write_all(&bytes).await;
                            let _ = socket.shutdown().await;
                        }
                        Reply::BreakAfter(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            let _ = socket.flush().await;
                            drop(socket);
                        }
                        Reply::Silent => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                    }
                });
            }
        });
        Self { url, requests }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

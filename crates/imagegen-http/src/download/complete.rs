//! Completeness: whether a body that ended cleanly holds the whole image. A server (or a
//! proxy) may close a response early without any error, and the cut-short bytes still
//! start like an image. The end is checked as the bytes stream through, keeping only the
//! first few bytes and a small tail, never the image:
//!
//! | format | whole when |
//! |---|---|
//! | PNG | it ends with the `IEND` chunk (`00 00 00 00 49 45 4E 44 AE 42 60 82`) |
//! | JPEG | it ends with the end-of-image marker `FF D9` (trailing `00` padding allowed) |
//! | GIF | it ends with the trailer `3B` (trailing `00` padding allowed) |
//! | WebP | at least the bytes its RIFF header declares arrived (size field + 8) |

use std::fmt;

use super::inspect::ImageFormat;

/// The `IEND` chunk every PNG ends with: length 0, type, CRC.
const PNG_IEND: [u8; 12] = [
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];
/// JPEG's end-of-image marker.
const JPEG_EOI: [u8; 2] = [0xFF, 0xD9];
/// GIF's trailer.
const GIF_TRAILER: u8 = 0x3B;
/// Bytes of the end kept (before any trailing zeros): enough for the longest end mark.
const TAIL: usize = 16;
/// Bytes of the start kept: WebP's `RIFF` header with its size field.
const HEAD: usize = 12;
/// How every reason for an incomplete image starts
/// ([`DownloadError::is_incomplete_image`](super::DownloadError::is_incomplete_image) reads it).
pub(crate) const INCOMPLETE: &str = "the image is incomplete, it ended early";

/// Watches a body stream by and says, at its end, whether the image is whole.
#[derive(Debug, Default)]
pub(crate) struct EndCheck {
    head: [u8; HEAD],
    head_len: usize,
    /// The last bytes before the run of trailing zeros (at most [`TAIL`]).
    tail: Vec<u8>,
    /// Zero bytes at the very end so far.
    trailing_zeros: u64,
    /// Bytes seen.
    total: u64,
}

impl EndCheck {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk of the body into account.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        if self.head_len < HEAD {
            let take = (HEAD - self.head_len).min(chunk.len());
            self.head[self.head_len..self.head_len + take].copy_from_slice(&chunk[..take]);
            self.head_len += take;
        }
        self.total += chunk.len() as u64;
        match chunk.iter().rposition(|&b| b != 0) {
            None => self.trailing_zeros += chunk.len() as u64,
            Some(last) => {
                // The zeros so far were not trailing after all.
                let zeros = usize::try_from(self.trailing_zeros).map_or(TAIL, |n| n.min(TAIL));
                self.push(&[0; TAIL][..zeros]);
                self.push(&chunk[..=last]);
                self.trailing_zeros = (chunk.len() - last - 1) as u64;
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - TAIL..]);
            return;
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > TAIL {
            let excess = self.tail.len() - TAIL;
            self.tail.drain(..excess);
        }
    }

    /// Whether the body, now ended, is a whole image of `format`.
    pub(crate) fn verdict(&self, format: ImageFormat) -> Result<(), Incomplete> {
        let missing = match format {
            ImageFormat::Png => (self.trailing_zeros > 0 || !self.tail.ends_with(&PNG_IEND))
                .then_some(Missing::PngIend),
            ImageFormat::Jpeg => (!self.tail.ends_with(&JPEG_EOI)).then_some(Missing::JpegEoi),
            ImageFormat::Gif => {
                (self.tail.last() != Some(&GIF_TRAILER)).then_some(Missing::GifTrailer)
            }
            ImageFormat::Webp => match self.head.get(4..8) {
                Some(size) if self.head_len >= 8 => {
                    let declared =
                        u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]])) + 8;
                    (self.total < declared).then_some(Missing::WebpBytes { declared })
                }
                _ => Some(Missing::WebpHeader),
            },
        };
        match missing {
            None => Ok(()),
            Some(missing) => Err(Incomplete {
                format,
                bytes: self.total,
                missing,
            }),
        }
    }
}

/// An image that ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incomplete {
    format: ImageFormat,
    bytes: u64,
    missing: Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    PngIend,
    JpegEoi,
    GifTrailer,
    WebpHeader,
    WebpBytes { declared: u64 },
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.format {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Gif => "GIF",
            ImageFormat::Webp => "WebP",
        };
        write!(
            f,
            "{INCOMPLETE}: a {name} of {} bytes ",
            grouped(self.bytes)
        )?;
        match self.missing {
            Missing::PngIend => f.write_str("without its IEND end chunk"),
            Missing::JpegEoi => f.write_str("without its end-of-image marker (FF D9)"),
            Missing::GifTrailer => f.write_str("without its trailer (3B)"),
            Missing::WebpHeader => f.write_str("too short for its RIFF header"),
            Missing::WebpBytes { declared } => {
                write!(f, "where its RIFF header declares {}", grouped(declared))
            }
        }
    }
}

/// A body shorter than its `Content-Length`, as a reason to retry.
pub(crate) fn short_of_content_length(received: u64, declared: u64) -> String {
    format!(
        "{INCOMPLETE}: {} of the {} bytes its Content-Length announced",
        grouped(received),
        grouped(declared)
    )
}

/// `12345` as `12,345`.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `piece` bytes.
    fn check(body: &[u8], piece: usize, format: ImageFormat) -> Result<(), String> {
        let mut end = EndCheck::new();
        for chunk in body.chunks(piece.max(1)) {
            end.feed(chunk);
        }
        end.verdict(format).map_err(|e| e.to_string())
    }

    fn png() -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend(std::iter::repeat_n(0u8, 40));
        png.extend(std::iter::repeat_n(7u8, 300));
        png.extend_from_slice(&PNG_IEND);
        png
    }

    fn jpeg() -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend(std::iter::repeat_n(9u8, 200));
        jpeg.extend_from_slice(&JPEG_EOI);
        jpeg
    }

    fn gif() -> Vec<u8> {
        let mut gif = b"GIF89a\x02\x00\x02\x00".to_vec();
        gif.extend(std::iter::repeat_n(1u8, 50));
        gif.extend_from_slice(&[0x00, GIF_TRAILER]);
        gif
    }

    fn webp() -> Vec<u8> {
        let mut webp = b"RIFF\x00\x00\x00\x00WEBPVP8L".to_vec();
        webp.extend(std::iter::repeat_n(5u8, 100));
        let size = u32::try_from(webp.len() - 8).unwrap();
        webp[4..8].copy_from_slice(&size.to_le_bytes());
        webp
    }

    const PIECES: [usize; 6] = [1, 2, 5, 13, 64, 10_000];

    #[test]
    fn whole_images_pass_however_they_are_chunked() {
        for (body, format) in [
            (png(), ImageFormat::Png),
            (jpeg(), ImageFormat::Jpeg),
            (gif(), ImageFormat::Gif),
            (webp(), ImageFormat::Webp),
        ] {
            for piece in PIECES {
                assert_eq!(
                    check(&body, piece, format),
                    Ok(()),
                    "{format:?} in {piece}s"
                );
            }
        }
    }

    #[test]
    fn cut_short_images_are_refused_with_what_is_missing() {
        for (body, format, missing) in [
            (png(), ImageFormat::Png, "without its IEND end chunk"),
            (
                jpeg(),
                ImageFormat::Jpeg,
                "without its end-of-image marker (FF D9)",
            ),
            (gif(), ImageFormat::Gif, "without its trailer (3B)"),
            (webp(), ImageFormat::Webp, "where its RIFF header declares"),
        ] {
            for cut in [body.len() - 1, body.len() / 2, 10] {
                for piece in PIECES {
                    let err = check(&body[..cut], piece, format).unwrap_err();
                    assert!(
                        err.starts_with("the image is incomplete, it ended early: "),
                        "{err}"
                    );
                    assert!(err.contains(missing), "{err}");
                }
            }
        }
        // The numbers read well.
        let mut big = vec![0x89; 12_345];
        big[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
        let err = check(&big, 4096, ImageFormat::Png).unwrap_err();
        assert_eq!(
            err,
            "the image is incomplete, it ended early: a PNG of 12,345 bytes without its IEND end chunk"
        );
        assert!(
            check(&webp()[..6], 1, ImageFormat::Webp)
                .unwrap_err()
                .contains("RIFF header")
        );
    }

    #[test]
    fn padding_zeros_are_tolerated_where_allowed() {
        for (body, format) in [(jpeg(), ImageFormat::Jpeg), (gif(), ImageFormat::Gif)] {
            let mut padded = body.clone();
            padded.extend(std::iter::repeat_n(0u8, 100));
            for piece in PIECES {
                assert_eq!(
                    check(&padded, piece, format),
                    Ok(()),
                    "{format:?} in {piece}s"
                );
            }
            // Zeros after a cut do not make it whole.
            let mut cut = body[..body.len() - 1].to_vec();
            cut.extend(std::iter::repeat_n(0u8, 20));
            for piece in PIECES {
                assert!(
                    check(&cut, piece, format).is_err(),
                    "{format:?} in {piece}s"
                );
            }
        }
        // A PNG must end with IEND itself.
        let mut png = png();
        png.push(0);
        assert!(check(&png, 7, ImageFormat::Png).is_err());
        // More bytes than a WebP declares is fine.
        let mut webp = webp();
        webp.extend_from_slice(&[0, 0, 1]);
        assert_eq!(check(&webp, 7, ImageFormat::Webp), Ok(()));
    }

    #[test]
    fn grouping() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(12_345), "12,345");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(
            short_of_content_length(10, 2_000),
            "the image is incomplete, it ended early: 10 of the 2,000 bytes its Content-Length announced"
        );
    }
}

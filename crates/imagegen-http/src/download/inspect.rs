//! Inspection: what a body is, decided from its bytes as they stream in. The format is
//! sniffed (PNG, JPEG, WebP, GIF; never from the URL or `Content-Type`), a page that is not
//! an image is refused before any byte is released, and width and height are read from the
//! image header when cheap.

use std::fmt;

use imagegen_core::error::body_prefix;

use super::Attempt;
use super::error::DownloadError;

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
    /// use imagegen_http::ImageFormat;
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

/// Reads an image body as it streams in: decides its format from the first bytes, before
/// any of them is written (nothing but an image reaches the destination), and reads its
/// dimensions from its header. A first chunk that holds the start of the image (nearly
/// always) is read in place; bytes are copied only when that start is split over chunks.
pub(crate) struct BodyInspector<'c> {
    content_type: Option<&'c str>,
    /// The first bytes, kept while the dimensions are unknown and the start was split.
    header: Vec<u8>,
    size: Option<(u32, u32)>,
    /// What arrived before the format was decided.
    held: Vec<u8>,
    format: Option<ImageFormat>,
}

/// What may be written after a chunk.
pub(crate) enum Release {
    /// Nothing yet: the format is not decided.
    Nothing,
    /// The chunk itself.
    Chunk,
    /// Bytes held back until the format was decided, this chunk included.
    Held(Vec<u8>),
}

impl<'c> BodyInspector<'c> {
    pub(crate) fn new(content_type: Option<&'c str>) -> Self {
        Self {
            content_type,
            header: Vec::new(),
            size: None,
            held: Vec::new(),
            format: None,
        }
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Release, Attempt> {
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
        // Decided on exactly the first SNIFF_LEN bytes, however they arrived: a longer
        // look could see another image format (an AVIF's `ftyp` box) in one chunking and
        // not in another.
        if self.held.is_empty() && chunk.len() >= SNIFF_LEN {
            self.format = Some(decide(&chunk[..SNIFF_LEN], self.content_type)?);
            return Ok(Release::Chunk);
        }
        self.held.extend_from_slice(chunk);
        if self.held.len() < SNIFF_LEN {
            return Ok(Release::Nothing);
        }
        self.format = Some(decide(&self.held[..SNIFF_LEN], self.content_type)?);
        Ok(Release::Held(std::mem::take(&mut self.held)))
    }

    /// What the body was, once it has ended.
    pub(crate) fn finish(self) -> Result<Inspected, Attempt> {
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
pub(crate) struct Inspected {
    pub(crate) format: ImageFormat,
    pub(crate) size: Option<(u32, u32)>,
    /// Bytes still held back (a body shorter than the sniffing window), to write.
    pub(crate) held: Vec<u8>,
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

/// Width and height from an image's leading bytes.
///
/// ```
/// # use imagegen_http::download::dimensions;
/// # use imagegen_http::ImageFormat;
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Found by fuzzing (`image_complete`): the format was decided on however many bytes
    /// the first chunk (or the held ones) held, so a body whose head another image format
    /// claims only past the sniffing window (an AVIF `ftyp` box of 73 bytes) was refused
    /// in one chunking and retried in another.
    #[test]
    fn the_verdict_on_another_format_does_not_depend_on_the_chunking() {
        let mut body = vec![0, 0, 0, 0x49];
        body.extend_from_slice(b"ftypavif\x00\x00\x00\x00avifmif1");
        body.resize(200, 0);
        let verdicts: Vec<String> = [1, 7, 31, 32, 33, 100, body.len()]
            .into_iter()
            .map(|piece| match inspect(&body, piece, None) {
                Ok((_, got)) => format!("{:?}", got.format),
                Err(why) => why.split(':').next().unwrap_or_default().to_owned(),
            })
            .collect();
        assert!(verdicts.iter().all(|v| *v == verdicts[0]), "{verdicts:?}");
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
}

//! Real images: a small landscape (sky gradient, a glowing sun, soft clouds, layered hills,
//! a vignette) whose colours and layout come from a hash of the prompt, encoded as PNG or
//! JPEG. The same prompt and variant always give the same bytes.

use bytes::Bytes;

use crate::rng::{SplitMix, fnv1a};

/// The encoding of a served image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ImageFormat {
    Png,
    Jpeg,
}

impl ImageFormat {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
        }
    }
}

/// What to draw: enough to redraw the same bytes at any time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageSpec {
    /// Hash of the prompt and the variant (the image's place in its batch).
    pub(crate) seed: u64,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) format: ImageFormat,
}

impl ImageSpec {
    pub(crate) fn new(
        prompt: &str,
        variant: u32,
        width: u32,
        height: u32,
        format: ImageFormat,
    ) -> Self {
        Self {
            seed: fnv1a(&[prompt.as_bytes(), &variant.to_le_bytes()]),
            width: width.clamp(1, 8192),
            height: height.clamp(1, 8192),
            format,
        }
    }

    /// Draws and encodes the image (CPU-bound: call from a blocking thread).
    pub(crate) fn encode(&self) -> Result<Bytes, String> {
        let rgb = render_rgb(self.seed, self.width, self.height);
        match self.format {
            ImageFormat::Png => encode_png(&rgb, self.width, self.height),
            ImageFormat::Jpeg => encode_jpeg(&rgb, self.width, self.height),
        }
        .map(Bytes::from)
    }
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(rgb.len() / 4);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let w = u16::try_from(width).map_err(|_| format!("width {width} is too large for JPEG"))?;
    let h = u16::try_from(height).map_err(|_| format!("height {height} is too large for JPEG"))?;
    let mut out = Vec::with_capacity(rgb.len() / 10);
    jpeg_encoder::Encoder::new(&mut out, 88)
        .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

type Rgb = [f32; 3];

fn hsl(h: f64, s: f64, l: f64) -> Rgb {
    let h = h.rem_euclid(1.0) * 6.0;
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [(r + m) as f32, (g + m) as f32, (b + m) as f32]
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

struct Blob {
    x: f32,
    y: f32,
    r2: f32,
    color: Rgb,
    alpha: f32,
}

struct Hill {
    base: f32,
    waves: [(f32, f32, f32); 2],
    top: Rgb,
    bottom: Rgb,
}

/// RGB8 pixels, row-major.
pub(crate) fn render_rgb(seed: u64, width: u32, height: u32) -> Vec<u8> {
    let mut rng = SplitMix::new(seed);
    let hue = rng.next_f64();
    let sky_top = hsl(hue + 0.55, 0.45, 0.78);
    let sky_low = hsl(hue + 0.02, 0.70, 0.70);
    let sun_color = hsl(hue + 0.08, 0.95, 0.82);
    let sun_x = rng.range_f64(0.2, 0.8) as f32;
    let sun_y = rng.range_f64(0.15, 0.42) as f32;
    let sun_r = rng.range_f64(0.05, 0.11) as f32;
    let aspect = width as f32 / height as f32;

    let blobs: Vec<Blob> = (0..5)
        .map(|_| {
            let r = rng.range_f64(0.08, 0.22) as f32;
            Blob {
                x: rng.range_f64(0.0, 1.0) as f32 * aspect,
                y: rng.range_f64(0.05, 0.55) as f32,
                r2: r * r,
                color: hsl(hue + rng.range_f64(-0.08, 0.2), 0.5, 0.9),
                alpha: rng.range_f64(0.2, 0.45) as f32,
            }
        })
        .collect();

    let hills: Vec<Hill> = (0..3)
        .map(|i| {
            let depth = i as f64;
            let tone = hue + 0.30 + rng.range_f64(-0.06, 0.06) + depth * 0.04;
            let wave = |rng: &mut SplitMix, amp: f64, freq: (f64, f64)| {
                (
                    rng.range_f64(amp * 0.5, amp) as f32,
                    (rng.range_f64(freq.0, freq.1) * std::f64::consts::TAU) as f32,
                    rng.range_f64(0.0, std::f64::consts::TAU) as f32,
                )
            };
            Hill {
                base: (0.58 + depth * 0.12 + rng.range_f64(-0.03, 0.03)) as f32,
                waves: [
                    wave(&mut rng, 0.07, (0.6, 1.6)),
                    wave(&mut rng, 0.025, (2.0, 5.0)),
                ],
                top: mix(
                    hsl(tone, 0.35, 0.55 - depth * 0.12),
                    sky_low,
                    0.45 - depth as f32 * 0.18,
                ),
                bottom: hsl(tone + 0.03, 0.40, 0.30 - depth * 0.08),
            }
        })
        .collect();

    let (w, h) = (width as usize, height as usize);
    // Per column: each hill's ridge height (as a fraction of the height).
    let ridges: Vec<Vec<f32>> = hills
        .iter()
        .map(|hill| {
            (0..w)
                .map(|x| {
                    let u = x as f32 / w as f32;
                    hill.base
                        + hill
                            .waves
                            .iter()
                            .map(|(amp, freq, phase)| amp * (u * freq + phase).sin())
                            .sum::<f32>()
                })
                .collect()
        })
        .collect();

    let mut out = vec![0u8; w * h * 3];
    let inv_h = 1.0 / h as f32;
    let px = 1.5 * inv_h;
    for y in 0..h {
        let v = (y as f32 + 0.5) * inv_h;
        let sky = mix(sky_top, sky_low, (v / 0.75).min(1.0).powf(1.4));
        let row = &mut out[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let u = (x as f32 + 0.5) * inv_h; // aspect-correct horizontal coordinate
            let mut c = sky;
            // The sun: a hard-ish disc and a wide glow.
            let dx = u - sun_x * aspect;
            let dy = v - sun_y;
            let d2 = dx * dx + dy * dy;
            let glow = 1.0 / (1.0 + d2 / (sun_r * sun_r) * 1.5);
            c = mix(c, sun_color, glow * 0.55);
            let disc = ((sun_r - d2.sqrt()) / px).clamp(0.0, 1.0);
            c = mix(c, [1.0, 0.97, 0.9], disc * 0.85);
            // Soft clouds.
            for b in &blobs {
                let dx = (u - b.x) * 0.6;
                let dy = v - b.y;
                let f = 1.0 - (dx * dx + dy * dy) / b.r2;
                if f > 0.0 {
                    c = mix(c, b.color, f * f * b.alpha);
                }
            }
            // Hills, back to front, with anti-aliased ridges and haze.
            for (hill, ridge) in hills.iter().zip(&ridges) {
                let top = ridge[x];
                let cover = ((v - top) / px + 0.5).clamp(0.0, 1.0);
                if cover > 0.0 {
                    let depth = ((v - top) / (1.0 - top).max(0.05)).clamp(0.0, 1.0);
                    c = mix(c, mix(hill.top, hill.bottom, depth), cover);
                }
            }
            // Vignette.
            let vx = x as f32 / w as f32 - 0.5;
            let vy = v - 0.5;
            let dim = 1.0 - 0.35 * (vx * vx + vy * vy);
            let o = &mut row[x * 3..x * 3 + 3];
            for (k, channel) in o.iter_mut().enumerate() {
                *channel = (c[k] * dim * 255.0).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_the_asked_dimensions_and_is_deterministic() {
        let spec = ImageSpec::new("a lighthouse at dusk", 0, 48, 32, ImageFormat::Png);
        let a = spec.encode().unwrap();
        let b = spec.encode().unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height are big-endian at offsets 16 and 20.
        assert_eq!(u32::from_be_bytes([a[16], a[17], a[18], a[19]]), 48);
        assert_eq!(u32::from_be_bytes([a[20], a[21], a[22], a[23]]), 32);
        let other = ImageSpec::new("a lighthouse at dusk", 1, 48, 32, ImageFormat::Png);
        assert_ne!(other.encode().unwrap(), a, "variants differ");
    }

    #[test]
    fn jpeg_starts_and_ends_with_markers() {
        let spec = ImageSpec::new("cat", 0, 40, 30, ImageFormat::Jpeg);
        let bytes = spec.encode().unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9]);
    }

    #[test]
    fn image_is_not_a_flat_fill() {
        let rgb = render_rgb(fnv1a(&[b"cat"]), 64, 64);
        let mut distinct: Vec<[u8; 3]> = rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 200, "only {} colours", distinct.len());
        assert_ne!(
            render_rgb(fnv1a(&[b"dog"]), 8, 8),
            render_rgb(fnv1a(&[b"cat"]), 8, 8)
        );
    }
}

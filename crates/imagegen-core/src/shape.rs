//! The shape of an image: an aspect ratio, pixel dimensions, or a named orientation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a piece of text is not an image shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeParseError {
    /// The text is neither `W:H`, `WxH` nor one of `square`, `portrait`, `landscape`.
    #[error(
        "`{input}` is not an image shape: use an aspect ratio like `16:9`, pixel dimensions like `1024x1024`, or `square`, `portrait`, `landscape`"
    )]
    Unrecognized {
        /// The text as given.
        input: String,
    },
    /// One side of a ratio or of pixel dimensions is zero or too large.
    #[error("`{input}` has a side of {value}: each side must be between 1 and {max}")]
    OutOfRange {
        /// The text as given.
        input: String,
        /// The offending side.
        value: u64,
        /// The largest side accepted.
        max: u32,
    },
}

/// The largest side accepted in a ratio or in pixel dimensions.
pub const MAX_SIDE: u32 = 16_384;

/// An aspect ratio such as `16:9`, kept as written (not reduced: `32:18` stays `32:18`).
///
/// ```
/// use imagegen_core::AspectRatio;
/// let r: AspectRatio = "16:9".parse()?;
/// assert_eq!((r.width(), r.height()), (16, 9));
/// assert_eq!(r.to_string(), "16:9");
/// # Ok::<(), imagegen_core::ShapeParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AspectRatio {
    width: u32,
    height: u32,
}

impl AspectRatio {
    /// A ratio from its two sides; `None` when a side is zero or above [`MAX_SIDE`].
    pub fn new(width: u32, height: u32) -> Option<Self> {
        valid_side(width)
            .and(valid_side(height))
            .map(|_| Self { width, height })
    }

    /// The width term.
    pub fn width(self) -> u32 {
        self.width
    }

    /// The height term.
    pub fn height(self) -> u32 {
        self.height
    }

    /// Width divided by height.
    pub fn value(self) -> f64 {
        f64::from(self.width) / f64::from(self.height)
    }

    /// The same ratio in lowest terms (`32:18` gives `16:9`).
    pub fn reduced(self) -> Self {
        let g = gcd(self.width, self.height);
        Self {
            width: self.width / g,
            height: self.height / g,
        }
    }

    /// Whether two ratios describe the same proportion (`32:18` and `16:9` do).
    pub fn same_proportion(self, other: Self) -> bool {
        u64::from(self.width) * u64::from(other.height)
            == u64::from(other.width) * u64::from(self.height)
    }

    /// How far apart two ratios are, as the absolute difference of their logarithms.
    ///
    /// Log distance treats `2:1` and `1:2` as equally far from `1:1`, which plain
    /// differences do not.
    pub fn distance(self, other: Self) -> f64 {
        (self.value().ln() - other.value().ln()).abs()
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.width, self.height)
    }
}

impl FromStr for AspectRatio {
    type Err = ShapeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match ImageShape::from_str(s)? {
            ImageShape::Aspect(r) => Ok(r),
            _ => Err(ShapeParseError::Unrecognized {
                input: s.to_owned(),
            }),
        }
    }
}

/// Pixel dimensions such as `1024x1024`.
///
/// ```
/// use imagegen_core::Dimensions;
/// let d: Dimensions = "1536x1024".parse()?;
/// assert_eq!(d.aspect_ratio().reduced().to_string(), "3:2");
/// # Ok::<(), imagegen_core::ShapeParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimensions {
    width: u32,
    height: u32,
}

impl Dimensions {
    /// Dimensions from width and height in pixels; `None` when a side is zero or above
    /// [`MAX_SIDE`].
    pub fn new(width: u32, height: u32) -> Option<Self> {
        valid_side(width)
            .and(valid_side(height))
            .map(|_| Self { width, height })
    }

    /// Width in pixels.
    pub fn width(self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(self) -> u32 {
        self.height
    }

    /// The ratio of width to height, as written (`1536x1024` gives `1536:1024`).
    pub fn aspect_ratio(self) -> AspectRatio {
        AspectRatio {
            width: self.width,
            height: self.height,
        }
    }

    /// Number of pixels.
    pub fn pixels(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

impl fmt::Display for Dimensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl FromStr for Dimensions {
    type Err = ShapeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match ImageShape::from_str(s)? {
            ImageShape::Pixels(d) => Ok(d),
            _ => Err(ShapeParseError::Unrecognized {
                input: s.to_owned(),
            }),
        }
    }
}

/// An orientation named in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Orientation {
    /// As wide as tall (1:1).
    Square,
    /// Taller than wide (2:3 unless a provider says otherwise).
    Portrait,
    /// Wider than tall (3:2 unless a provider says otherwise).
    Landscape,
}

impl Orientation {
    /// The word as written on the command line and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Square => "square",
            Self::Portrait => "portrait",
            Self::Landscape => "landscape",
        }
    }

    /// The ratio this word stands for when a provider does not define it: 1:1, 2:3, 3:2.
    pub fn default_ratio(self) -> AspectRatio {
        let (width, height) = match self {
            Self::Square => (1, 1),
            Self::Portrait => (2, 3),
            Self::Landscape => (3, 2),
        };
        AspectRatio { width, height }
    }
}

/// The shape a user asks for.
///
/// Parsing accepts `W:H` (aspect ratio), `WxH` (pixels; `X` and `×` too) and the words
/// `square`, `portrait`, `landscape`, in any case and with surrounding spaces.
///
/// ```
/// use imagegen_core::{ImageShape, Orientation};
/// assert!(matches!("16:9".parse(), Ok(ImageShape::Aspect(_))));
/// assert!(matches!("1024x1024".parse(), Ok(ImageShape::Pixels(_))));
/// assert_eq!("Square".parse(), Ok(ImageShape::Named(Orientation::Square)));
/// let err = "banana".parse::<ImageShape>().unwrap_err();
/// assert!(err.to_string().contains("`banana`"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageShape {
    /// An aspect ratio such as `16:9`; the provider picks the pixel size.
    Aspect(AspectRatio),
    /// Exact pixel dimensions such as `1024x1024`.
    Pixels(Dimensions),
    /// A named orientation.
    Named(Orientation),
}

impl ImageShape {
    /// The proportion this shape asks for; words map through [`Orientation::default_ratio`].
    pub fn aspect_ratio(self) -> AspectRatio {
        match self {
            Self::Aspect(r) => r,
            Self::Pixels(d) => d.aspect_ratio(),
            Self::Named(o) => o.default_ratio(),
        }
    }
}

impl Default for ImageShape {
    fn default() -> Self {
        Self::Named(Orientation::Square)
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Aspect(r) => r.fmt(f),
            Self::Pixels(d) => d.fmt(f),
            Self::Named(o) => f.write_str(o.as_str()),
        }
    }
}

impl FromStr for ImageShape {
    type Err = ShapeParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim().to_ascii_lowercase();
        let unrecognized = || ShapeParseError::Unrecognized {
            input: input.to_owned(),
        };
        match text.as_str() {
            "square" => return Ok(Self::Named(Orientation::Square)),
            "portrait" => return Ok(Self::Named(Orientation::Portrait)),
            "landscape" => return Ok(Self::Named(Orientation::Landscape)),
            _ => {}
        }
        let (sep_is_ratio, left, right) = if let Some((l, r)) = text.split_once(':') {
            (true, l, r)
        } else if let Some((l, r)) = text.split_once(['x', '×']) {
            (false, l, r)
        } else {
            return Err(unrecognized());
        };
        let side = |part: &str| -> Result<u32, ShapeParseError> {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(unrecognized());
            }
            let value: u64 = part.parse().map_err(|_| ShapeParseError::OutOfRange {
                input: input.to_owned(),
                value: u64::MAX,
                max: MAX_SIDE,
            })?;
            match u32::try_from(value).ok().and_then(valid_side) {
                Some(v) => Ok(v),
                None => Err(ShapeParseError::OutOfRange {
                    input: input.to_owned(),
                    value,
                    max: MAX_SIDE,
                }),
            }
        };
        let (width, height) = (side(left)?, side(right)?);
        Ok(if sep_is_ratio {
            Self::Aspect(AspectRatio { width, height })
        } else {
            Self::Pixels(Dimensions { width, height })
        })
    }
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(AspectRatio);
string_serde!(Dimensions);
string_serde!(ImageShape);

fn valid_side(v: u32) -> Option<u32> {
    (1..=MAX_SIDE).contains(&v).then_some(v)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ratios_pixels_and_words() {
        assert_eq!(
            "16:9".parse::<ImageShape>(),
            Ok(ImageShape::Aspect(AspectRatio::new(16, 9).unwrap()))
        );
        assert_eq!(
            " 1024X768 ".parse::<ImageShape>(),
            Ok(ImageShape::Pixels(Dimensions::new(1024, 768).unwrap()))
        );
        assert_eq!(
            "1024×768".parse::<ImageShape>(),
            Ok(ImageShape::Pixels(Dimensions::new(1024, 768).unwrap()))
        );
        assert_eq!(
            "PORTRAIT".parse::<ImageShape>(),
            Ok(ImageShape::Named(Orientation::Portrait))
        );
    }

    #[test]
    fn rejects_bad_input_naming_it() {
        for bad in [
            "banana", "", "16:", ":9", "16:9:1", "axb", "-1:2", "1.5:1", "16 : 9x", "0x0x0",
        ] {
            let err = bad.parse::<ImageShape>().unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{bad}`")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn rejects_zero_and_huge_sides() {
        assert!(matches!(
            "0:1".parse::<ImageShape>(),
            Err(ShapeParseError::OutOfRange { value: 0, .. })
        ));
        assert!(matches!(
            "99999x10".parse::<ImageShape>(),
            Err(ShapeParseError::OutOfRange { value: 99999, .. })
        ));
        assert!(matches!(
            "99999999999999999999999x10".parse::<ImageShape>(),
            Err(ShapeParseError::OutOfRange { .. })
        ));
    }

    #[test]
    fn typed_parsers_refuse_the_other_kind() {
        assert!("16:9".parse::<Dimensions>().is_err());
        assert!("1024x1024".parse::<AspectRatio>().is_err());
        assert!("square".parse::<AspectRatio>().is_err());
    }

    #[test]
    fn ratio_arithmetic() {
        let wide = AspectRatio::new(32, 18).unwrap();
        assert_eq!(wide.reduced(), AspectRatio::new(16, 9).unwrap());
        assert!(wide.same_proportion(AspectRatio::new(16, 9).unwrap()));
        let square = AspectRatio::new(1, 1).unwrap();
        let twice = AspectRatio::new(2, 1).unwrap();
        let half = AspectRatio::new(1, 2).unwrap();
        assert!((square.distance(twice) - square.distance(half)).abs() < 1e-12);
        assert_eq!(
            ImageShape::Named(Orientation::Landscape).aspect_ratio(),
            AspectRatio::new(3, 2).unwrap()
        );
    }

    #[test]
    fn serde_uses_the_written_form() {
        let shape: ImageShape = "16:9".parse().unwrap();
        assert_eq!(serde_json::to_string(&shape).unwrap(), "\"16:9\"");
        let back: ImageShape = serde_json::from_str("\"1024x1024\"").unwrap();
        assert_eq!(back.to_string(), "1024x1024");
        assert!(serde_json::from_str::<ImageShape>("\"banana\"").is_err());
    }
}

//! The exact JSON Koala's image endpoint takes and returns.
//!
//! [`ImageGenerationRequest`] serializes to the camelCase body of
//! `POST /api/image-generation/`; every documented parameter is a typed field, and
//! [`ImageGenerationRequest::extra`] carries parameters Koala adds later. The response is a
//! JSON array of [`GeneratedImage`].
//!
//! Enumerated values ([`Style`], [`Model`], [`Quality`]) have an `Other(String)` arm, so a
//! value Koala introduces tomorrow can be sent today and never breaks parsing.

use std::fmt;
use std::str::FromStr;

use imagegen_core::{AspectRatio, Dimensions, Orientation};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// Implements `as_str`, `Display`, `FromStr` (infallible, unknown text becomes `Other`) and
/// string serde for an enum with an `Other(String)` arm.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, sent and received as written.
            Other(String),
        }

        impl $name {
            /// Every documented value, in the documentation's order.
            pub const DOCUMENTED: &'static [$name] = &[$($name::$variant),*];

            /// The value as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(text) => text,
                }
            }

            /// Whether the value is one Koala documents.
            pub fn is_documented(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;

            /// Matches documented values exactly as written (Koala's values are lower
            /// case); anything else is kept in `Other`.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok(match text {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                })
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text.parse() {
                    Ok(value) => value,
                    Err(never) => match never {},
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::from(text.as_str()))
            }
        }
    };
}

wire_enum! {
    /// The visual style (`style`). Koala's default is [`Style::Photo`].
    ///
    /// ```
    /// use koala_api::Style;
    /// assert_eq!("3d".parse::<Style>().unwrap(), Style::ThreeD);
    /// assert_eq!(Style::from("vaporwave"), Style::Other("vaporwave".into()));
    /// ```
    pub enum Style {
        /// `photo`, the default.
        Photo => "photo",
        /// `illustration`.
        Illustration => "illustration",
        /// `watercolor`.
        Watercolor => "watercolor",
        /// `fantasy`.
        Fantasy => "fantasy",
        /// `anime`.
        Anime => "anime",
        /// `3d`.
        ThreeD => "3d",
        /// `isometric`.
        Isometric => "isometric",
        /// `general`.
        General => "general",
        /// `none`: no style; prompt enhancement then defaults to off.
        None => "none",
    }
}

wire_enum! {
    /// The model (`model`). Koala's default is [`Model::GptImage2`]; see
    /// [`crate::ModelSpec`] for prices and plan rules.
    ///
    /// ```
    /// use koala_api::Model;
    /// assert_eq!(Model::from("ideogram-3.0"), Model::Ideogram3);
    /// assert!(!Model::from("gpt-image-3").is_documented());
    /// ```
    pub enum Model {
        /// `gpt-image-2`: the default and recommended model.
        GptImage2 => "gpt-image-2",
        /// `ideogram-3.0`.
        Ideogram3 => "ideogram-3.0",
        /// `nano-banana-2`.
        NanoBanana2 => "nano-banana-2",
        /// `standard` (deprecated; Leonardo Phoenix 1.0).
        Standard => "standard",
        /// `premium` (deprecated; higher-quality Leonardo Phoenix 1.0).
        Premium => "premium",
    }
}

wire_enum! {
    /// The quality (`quality`); which values apply depends on the model.
    ///
    /// gpt-image-2 takes `fast` (default), `medium` and `high`; ideogram-3.0 takes `turbo`.
    pub enum Quality {
        /// `fast` (gpt-image-2, 1 credit).
        Fast => "fast",
        /// `medium` (gpt-image-2, 8 credits, Professional Plan).
        Medium => "medium",
        /// `high` (gpt-image-2, 20 credits, Professional Plan).
        High => "high",
        /// `turbo` (ideogram-3.0, 3 credits).
        Turbo => "turbo",
    }
}

/// Whether Koala rewrites the prompt (`enhancePrompt`), sent as the strings `"on"`/`"off"`.
///
/// Koala's default is on, except with [`Style::None`].
///
/// ```
/// use koala_api::EnhancePrompt;
/// assert_eq!(serde_json::to_string(&EnhancePrompt::Off).unwrap(), "\"off\"");
/// assert_eq!(EnhancePrompt::from(true), EnhancePrompt::On);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnhancePrompt {
    /// `"on"`.
    On,
    /// `"off"`.
    Off,
}

impl From<bool> for EnhancePrompt {
    fn from(on: bool) -> Self {
        if on { Self::On } else { Self::Off }
    }
}

/// The image size (`size`): pixel dimensions, an aspect-ratio shorthand, a word, or a value
/// this version does not know.
///
/// Parsing is lossless: text that would not be written back byte for byte (`"1024X1024"`,
/// `" 16:9"`) is kept as [`Size::Other`], so what a caller writes is what is sent. Whether
/// a size is *accepted* is for [`crate::validate()`] to say: see [`Size::is_documented`].
///
/// ```
/// use koala_api::Size;
/// let size: Size = "1536x640".parse().unwrap();
/// assert!(size.is_documented());
/// assert_eq!(size.to_string(), "1536x640");
/// assert!(Size::from("16:9").is_documented());
/// assert!(!Size::from("4:3").is_documented());
/// assert_eq!(Size::documented().len(), 23);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Size {
    /// Pixel dimensions such as `1024x1024`.
    Pixels(Dimensions),
    /// An aspect-ratio shorthand such as `16:9`, kept as written.
    Ratio(AspectRatio),
    /// `square`, `portrait` or `landscape`.
    Word(Orientation),
    /// Anything else, sent as written.
    Other(String),
}

/// The pixel sizes Koala documents, in the documentation's order.
pub const DOCUMENTED_PIXEL_SIZES: [(u32, u32); 11] = [
    (1024, 1024),
    (1152, 896),
    (1216, 832),
    (1344, 768),
    (1536, 640),
    (640, 1536),
    (768, 1344),
    (832, 1216),
    (896, 1152),
    (1792, 1008),
    (1008, 1792),
];

/// The aspect-ratio shorthands Koala documents, in the documentation's order.
pub const DOCUMENTED_RATIOS: [(u32, u32); 9] = [
    (1, 1),
    (5, 4),
    (3, 2),
    (16, 9),
    (21, 9),
    (9, 21),
    (9, 16),
    (2, 3),
    (4, 5),
];

impl Size {
    /// Pixel dimensions; `None` when a side is zero or too large.
    pub fn pixels(width: u32, height: u32) -> Option<Self> {
        Dimensions::new(width, height).map(Self::Pixels)
    }

    /// An aspect-ratio shorthand; `None` when a side is zero or too large.
    pub fn ratio(width: u32, height: u32) -> Option<Self> {
        AspectRatio::new(width, height).map(Self::Ratio)
    }

    /// Every documented size: the 11 pixel sizes, the 9 ratio shorthands and the words
    /// `square`, `portrait`, `landscape`.
    pub fn documented() -> Vec<Self> {
        let pixels = DOCUMENTED_PIXEL_SIZES
            .iter()
            .filter_map(|&(w, h)| Self::pixels(w, h));
        let ratios = DOCUMENTED_RATIOS
            .iter()
            .filter_map(|&(w, h)| Self::ratio(w, h));
        let words = [
            Orientation::Square,
            Orientation::Portrait,
            Orientation::Landscape,
        ]
        .into_iter()
        .map(Self::Word);
        pixels.chain(ratios).chain(words).collect()
    }

    /// Whether Koala lists this size (exactly as written: `32:18` is not `16:9`).
    pub fn is_documented(&self) -> bool {
        match self {
            Self::Pixels(d) => DOCUMENTED_PIXEL_SIZES.contains(&(d.width(), d.height())),
            Self::Ratio(r) => DOCUMENTED_RATIOS.contains(&(r.width(), r.height())),
            Self::Word(_) => true,
            Self::Other(_) => false,
        }
    }

    /// The neutral shape this size asks for, unless it is [`Size::Other`].
    pub fn shape(&self) -> Option<imagegen_core::ImageShape> {
        use imagegen_core::ImageShape;
        match self {
            Self::Pixels(d) => Some(ImageShape::Pixels(*d)),
            Self::Ratio(r) => Some(ImageShape::Aspect(*r)),
            Self::Word(o) => Some(ImageShape::Named(*o)),
            Self::Other(_) => None,
        }
    }

    /// The size that asks for `shape`, written the way Koala writes it.
    pub fn from_shape(shape: imagegen_core::ImageShape) -> Self {
        use imagegen_core::ImageShape;
        match shape {
            ImageShape::Pixels(d) => Self::Pixels(d),
            ImageShape::Aspect(r) => Self::Ratio(r),
            ImageShape::Named(o) => Self::Word(o),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pixels(d) => d.fmt(f),
            Self::Ratio(r) => r.fmt(f),
            Self::Word(o) => f.write_str(o.as_str()),
            Self::Other(text) => f.write_str(text),
        }
    }
}

impl FromStr for Size {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        use imagegen_core::ImageShape;
        let parsed = text.parse::<ImageShape>().ok().map(Self::from_shape);
        Ok(match parsed {
            // Keep the text verbatim unless it writes back identically.
            Some(size) if size.to_string() == text => size,
            _ => Self::Other(text.to_owned()),
        })
    }
}

impl From<&str> for Size {
    fn from(text: &str) -> Self {
        match text.parse() {
            Ok(size) => size,
            Err(never) => match never {},
        }
    }
}

impl From<Dimensions> for Size {
    fn from(d: Dimensions) -> Self {
        Self::Pixels(d)
    }
}

impl From<AspectRatio> for Size {
    fn from(r: AspectRatio) -> Self {
        Self::Ratio(r)
    }
}

impl From<Orientation> for Size {
    fn from(o: Orientation) -> Self {
        Self::Word(o)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::from(text.as_str()))
    }
}

/// The body of `POST /api/image-generation/`, field for field.
///
/// Unset optional fields are left out of the JSON, so Koala applies its own defaults. Use
/// [`ImageGenerationRequest::new`] and the `with_*` setters; [`crate::validate()`] checks a
/// request against the model table before anything is sent.
///
/// ```
/// use koala_api::{EnhancePrompt, ImageGenerationRequest, Model, Quality, Style};
/// let request = ImageGenerationRequest::new("cat")
///     .with_style(Style::Watercolor)
///     .with_size("1024x1024")
///     .with_num_images(1)
///     .with_model(Model::GptImage2)
///     .with_quality(Quality::Medium)
///     .with_enhance_prompt(EnhancePrompt::On)
///     .with_generate_alt_text(true);
/// let json = serde_json::to_value(&request).unwrap();
/// assert_eq!(json["numImages"], 1);
/// assert_eq!(json["enhancePrompt"], "on");
/// assert_eq!(json["generateAltText"], true);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageGenerationRequest {
    /// What to draw (`prompt`, required).
    pub prompt: String,
    /// The visual style (default `photo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<Style>,
    /// The size (default `1024x1024`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// How many images, 1 to 4 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_images: Option<u32>,
    /// The model (default `gpt-image-2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    /// The quality, for models that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Reference image URLs (gpt-image-2 and nano-banana-2, at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_images: Vec<Url>,
    /// Prompt enhancement (default on, off with style `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhance_prompt: Option<EnhancePrompt>,
    /// Keep gpt-image-2's raw PNG instead of re-encoding it as JPEG (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_original: Option<bool>,
    /// Write alt text into the response's `alt` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_alt_text: Option<bool>,
    /// Parameters this version does not know, sent as they are. They must not repeat a
    /// documented field ([`crate::validate()`] refuses that).
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The documented request fields, as written on the wire.
pub const REQUEST_FIELDS: [&str; 10] = [
    "prompt",
    "style",
    "size",
    "numImages",
    "model",
    "quality",
    "referenceImages",
    "enhancePrompt",
    "preserveOriginal",
    "generateAltText",
];

impl ImageGenerationRequest {
    /// A request for `prompt` with every other field left to Koala's defaults.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            style: None,
            size: None,
            num_images: None,
            model: None,
            quality: None,
            reference_images: Vec::new(),
            enhance_prompt: None,
            preserve_original: None,
            generate_alt_text: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Sets `style`.
    #[must_use]
    pub fn with_style(mut self, style: impl Into<Style>) -> Self {
        self.style = Some(style.into());
        self
    }

    /// Sets `size`.
    #[must_use]
    pub fn with_size(mut self, size: impl Into<Size>) -> Self {
        self.size = Some(size.into());
        self
    }

    /// Sets `numImages`.
    #[must_use]
    pub fn with_num_images(mut self, count: u32) -> Self {
        self.num_images = Some(count);
        self
    }

    /// Sets `model`.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<Model>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets `quality`.
    #[must_use]
    pub fn with_quality(mut self, quality: impl Into<Quality>) -> Self {
        self.quality = Some(quality.into());
        self
    }

    /// Adds a reference image URL.
    #[must_use]
    pub fn with_reference_image(mut self, url: Url) -> Self {
        self.reference_images.push(url);
        self
    }

    /// Sets `enhancePrompt`.
    #[must_use]
    pub fn with_enhance_prompt(mut self, enhance: impl Into<EnhancePrompt>) -> Self {
        self.enhance_prompt = Some(enhance.into());
        self
    }

    /// Sets `preserveOriginal`.
    #[must_use]
    pub fn with_preserve_original(mut self, preserve: bool) -> Self {
        self.preserve_original = Some(preserve);
        self
    }

    /// Sets `generateAltText`.
    #[must_use]
    pub fn with_generate_alt_text(mut self, generate: bool) -> Self {
        self.generate_alt_text = Some(generate);
        self
    }

    /// Adds an undocumented parameter, sent as it is.
    #[must_use]
    pub fn with_extra(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The model Koala will run: the one set, or its default, gpt-image-2.
    pub fn effective_model(&self) -> Model {
        self.model.clone().unwrap_or(crate::models::DEFAULT_MODEL)
    }

    /// The number of images Koala will make: the one set, or its default, 1.
    pub fn effective_num_images(&self) -> u32 {
        self.num_images.unwrap_or(1)
    }
}

/// One generated image, as an element of the response array.
///
/// The URL works before the image exists: fetching it blocks until the image is ready
/// (see [`imagegen_http::ImageDownloader`]). `alt` is `None` when Koala sent none, `null` or `""`.
///
/// ```
/// use koala_api::GeneratedImage;
/// let images: Vec<GeneratedImage> = serde_json::from_str(
///     r#"[{"url":"https://koala.sh/api/image/v2-a.jpg","alt":""},
///         {"url":"https://koala.sh/api/image/v2-b.jpg"}]"#,
/// ).unwrap();
/// assert_eq!(images[0].alt, None);
/// assert_eq!(images[1].alt, None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GeneratedImage {
    /// Where the image will be, as Koala wrote it.
    pub url: String,
    /// Alt text, when Koala wrote a non-empty one.
    #[serde(
        default,
        deserialize_with = "non_empty_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub alt: Option<String>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl GeneratedImage {
    /// An image at `url` with optional alt text (empty alt text becomes `None`).
    pub fn new(url: impl Into<String>, alt: Option<String>) -> Self {
        Self {
            url: url.into(),
            alt: alt.filter(|a| !a.trim().is_empty()),
            extra: serde_json::Map::new(),
        }
    }

    /// The URL parsed, when it is an absolute http or https URL.
    pub fn parsed_url(&self) -> Option<Url> {
        Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
    }
}

fn non_empty_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.filter(|a| !a.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_keep_unknown_values() {
        for style in Style::DOCUMENTED {
            assert_eq!(&Style::from(style.as_str()), style);
        }
        for model in Model::DOCUMENTED {
            let json = serde_json::to_string(model).unwrap();
            assert_eq!(&serde_json::from_str::<Model>(&json).unwrap(), model);
        }
        let new: Quality = serde_json::from_str("\"ultra\"").unwrap();
        assert_eq!(new, Quality::Other("ultra".into()));
        assert_eq!(serde_json::to_string(&new).unwrap(), "\"ultra\"");
        assert_eq!(Style::DOCUMENTED.len(), 9);
        assert_eq!(Model::DOCUMENTED.len(), 5);
    }

    #[test]
    fn sizes_parse_losslessly() {
        assert_eq!(Size::from("1024x1024"), Size::pixels(1024, 1024).unwrap());
        assert_eq!(Size::from("21:9"), Size::ratio(21, 9).unwrap());
        assert_eq!(Size::from("portrait"), Size::Word(Orientation::Portrait));
        for odd in ["1024X1024", " 16:9", "Square", "huge", "", "1024×1024"] {
            assert_eq!(Size::from(odd), Size::Other(odd.into()), "{odd}");
            assert_eq!(Size::from(odd).to_string(), odd);
        }
        let all = Size::documented();
        assert!(all.iter().all(Size::is_documented));
        assert!(!Size::from("1792x1024").is_documented());
        assert!(!Size::from("32:18").is_documented());
    }

    #[test]
    fn request_omits_unset_fields_and_flattens_extra() {
        let request = ImageGenerationRequest::new("cat")
            .with_extra("background", serde_json::json!("transparent"));
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"prompt": "cat", "background": "transparent"})
        );
        let back: ImageGenerationRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn response_tolerates_missing_null_and_extra_fields() {
        let images: Vec<GeneratedImage> = serde_json::from_str(
            r#"[{"url":"u1","alt":null},{"url":"u2","alt":"  "},{"url":"u3","alt":"a cat","seed":7}]"#,
        )
        .unwrap();
        assert_eq!(images[0].alt, None);
        assert_eq!(images[1].alt, None);
        assert_eq!(images[2].alt.as_deref(), Some("a cat"));
        assert_eq!(images[2].extra["seed"], 7);
        assert_eq!(images[0].parsed_url(), None);
    }
}

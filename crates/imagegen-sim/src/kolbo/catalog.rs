//! The simulated Kolbo model catalog, in the simulator's own types: several image models
//! with the `credit` field and the capability fields Kolbo's catalog carries.

use std::collections::BTreeMap;

use serde::Serialize;

/// One catalog model, as `GET /api/v1/models` writes it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KolboModel {
    pub(crate) identifier: &'static str,
    pub(crate) name: &'static str,
    pub(crate) provider: &'static str,
    pub(crate) types: Vec<&'static str>,
    /// Credits per image at the default quality and resolution.
    pub(crate) credit: f64,
    pub(crate) supported_aspect_ratios: Vec<&'static str>,
    pub(crate) supported_aspect_ratios_by_type: BTreeMap<&'static str, Vec<&'static str>>,
    pub(crate) default_aspect_ratio: &'static str,
    pub(crate) supported_durations: Option<Vec<u32>>,
    pub(crate) supported_resolutions: Vec<&'static str>,
    pub(crate) resolution_multipliers: BTreeMap<&'static str, f64>,
    pub(crate) default_resolution: Option<&'static str>,
    pub(crate) supported_qualities: Vec<&'static str>,
    pub(crate) quality_multipliers: BTreeMap<&'static str, f64>,
    pub(crate) default_quality: Option<&'static str>,
    pub(crate) max_reference_images: u32,
    pub(crate) max_visual_dna: u32,
    pub(crate) supports_visual_dna: bool,
    pub(crate) images_per_request: Option<u32>,
    pub(crate) requires_prompt: bool,
    pub(crate) min_prompt_length: u32,
    pub(crate) max_prompt_length: u32,
    pub(crate) max_file_size: u64,
    pub(crate) estimated_duration_seconds: u32,
    pub(crate) recommended: bool,
    pub(crate) new_model: bool,
    pub(crate) nsfw_only: bool,
    pub(crate) summary: &'static str,
    #[serde(rename = "smartSelect_StrengthsSummary")]
    pub(crate) smart_select_strengths_summary: &'static str,
    pub(crate) description: String,
    pub(crate) flat_credit_by_resolution: Option<BTreeMap<&'static str, f64>>,
    pub(crate) avatar: String,
}

impl KolboModel {
    /// The long side in pixels at a resolution tier (`1K` 1024, `2K` 2048, `4K` 4096).
    pub(crate) fn long_side(&self, resolution: Option<&str>) -> u32 {
        match resolution.or(self.default_resolution) {
            Some("2K") => 2048,
            Some("3K") => 3072,
            Some("4K") => 4096,
            _ => 1024,
        }
    }

    pub(crate) fn is_image_model(&self) -> bool {
        self.types.contains(&"text_to_img")
    }
}

const RATIOS_WIDE: &[&str] = &["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"];
const RATIOS_GPT: &[&str] = &["1:1", "3:2", "2:3"];
const RATIOS_BASIC: &[&str] = &["1:1", "16:9", "9:16", "4:3", "3:4"];

struct Spec {
    identifier: &'static str,
    name: &'static str,
    provider: &'static str,
    credit: f64,
    ratios: &'static [&'static str],
    resolutions: &'static [(&'static str, f64)],
    default_resolution: Option<&'static str>,
    qualities: &'static [(&'static str, f64)],
    default_quality: Option<&'static str>,
    max_refs: u32,
    max_dna: u32,
    images_per_request: Option<u32>,
    max_prompt: u32,
    seconds: u32,
    recommended: bool,
    new_model: bool,
    editing: bool,
    summary: &'static str,
    strengths: &'static str,
}

const SPECS: &[Spec] = &[
    Spec {
        identifier: "nano-banana-2",
        name: "Nano Banana 2",
        provider: "kie",
        credit: 8.0,
        ratios: RATIOS_WIDE,
        resolutions: &[("1K", 1.0), ("2K", 1.5), ("4K", 2.0)],
        default_resolution: Some("1K"),
        qualities: &[("low", 0.5), ("medium", 1.0), ("high", 1.5), ("auto", 1.0)],
        default_quality: Some("auto"),
        max_refs: 8,
        max_dna: 8,
        images_per_request: None,
        max_prompt: 5000,
        seconds: 20,
        recommended: true,
        new_model: false,
        editing: true,
        summary: "Fast, faithful all-rounder with strong prompt following and references.",
        strengths: "products, characters, faithful edits",
    },
    Spec {
        identifier: "nano-banana-2/4k",
        name: "Nano Banana 2 (4K)",
        provider: "kie",
        credit: 16.0,
        ratios: RATIOS_WIDE,
        resolutions: &[("4K", 1.0)],
        default_resolution: Some("4K"),
        qualities: &[],
        default_quality: None,
        max_refs: 8,
        max_dna: 8,
        images_per_request: None,
        max_prompt: 5000,
        seconds: 35,
        recommended: false,
        new_model: false,
        editing: false,
        summary: "Nano Banana 2 rendered at 4K.",
        strengths: "large prints, fine detail",
    },
    Spec {
        identifier: "nano-banana-pro",
        name: "Nano Banana Pro",
        provider: "kie",
        credit: 15.0,
        ratios: RATIOS_WIDE,
        resolutions: &[("1K", 1.0), ("2K", 1.0), ("4K", 2.0)],
        default_resolution: Some("1K"),
        qualities: &[],
        default_quality: None,
        max_refs: 14,
        max_dna: 8,
        images_per_request: None,
        max_prompt: 10000,
        seconds: 30,
        recommended: true,
        new_model: true,
        editing: true,
        summary: "Highest fidelity, best text rendering and multi-reference composition.",
        strengths: "text rendering, multi-reference scenes",
    },
    Spec {
        identifier: "gpt-image-2",
        name: "GPT Image 2",
        provider: "openai",
        credit: 6.0,
        ratios: RATIOS_GPT,
        resolutions: &[],
        default_resolution: None,
        qualities: &[("low", 1.0), ("medium", 2.5), ("high", 5.0), ("auto", 2.5)],
        default_quality: Some("low"),
        max_refs: 10,
        max_dna: 0,
        images_per_request: None,
        max_prompt: 32000,
        seconds: 25,
        recommended: false,
        new_model: true,
        editing: true,
        summary: "Strong layout and typography; quality tiers change the price.",
        strengths: "layouts, typography, posters",
    },
    Spec {
        identifier: "flux-2/flash",
        name: "Flux 2 Flash",
        provider: "fal",
        credit: 1.5,
        ratios: RATIOS_WIDE,
        resolutions: &[],
        default_resolution: None,
        qualities: &[],
        default_quality: None,
        max_refs: 4,
        max_dna: 3,
        images_per_request: None,
        max_prompt: 2000,
        seconds: 6,
        recommended: false,
        new_model: false,
        editing: false,
        summary: "Quick drafts at a low price.",
        strengths: "quick drafts, concept art",
    },
    Spec {
        identifier: "z-image/turbo",
        name: "Z-Image Turbo",
        provider: "fal",
        credit: 0.5,
        ratios: RATIOS_BASIC,
        resolutions: &[],
        default_resolution: None,
        qualities: &[],
        default_quality: None,
        max_refs: 0,
        max_dna: 0,
        images_per_request: None,
        max_prompt: 1000,
        seconds: 4,
        recommended: false,
        new_model: false,
        editing: false,
        summary: "The cheapest and fastest model; no references.",
        strengths: "cheap previews",
    },
    Spec {
        identifier: "midjourney-v7",
        name: "Midjourney v7",
        provider: "kie",
        credit: 3.0,
        ratios: RATIOS_WIDE,
        resolutions: &[],
        default_resolution: None,
        qualities: &[],
        default_quality: None,
        max_refs: 1,
        max_dna: 0,
        images_per_request: Some(4),
        max_prompt: 2000,
        seconds: 40,
        recommended: false,
        new_model: false,
        editing: false,
        summary: "Artistic; always returns a grid of four images.",
        strengths: "painterly, artistic styles",
    },
];

/// The Smart Select pseudo-model some catalogs list.
pub(crate) const SMART_SELECT_ROUTER: &str = "kolbo_smart_select_router";

/// Model ids that mean Smart Select.
pub(crate) fn is_smart_select_alias(id: &str) -> bool {
    matches!(
        id.trim().to_ascii_lowercase().as_str(),
        "" | "auto" | "smart-select" | "default" | "none" | SMART_SELECT_ROUTER
    )
}

/// The catalog, with avatars on the CDN origin.
pub(crate) fn catalog(cdn_origin: &str) -> Vec<KolboModel> {
    SPECS
        .iter()
        .map(|s| {
            let mut types = vec!["text_to_img"];
            if s.editing {
                types.push("image_editing");
            }
            KolboModel {
                identifier: s.identifier,
                name: s.name,
                provider: s.provider,
                types,
                credit: s.credit,
                supported_aspect_ratios: s.ratios.to_vec(),
                supported_aspect_ratios_by_type: [("text_to_img", s.ratios.to_vec())]
                    .into_iter()
                    .collect(),
                default_aspect_ratio: "1:1",
                supported_durations: None,
                supported_resolutions: s.resolutions.iter().map(|(r, _)| *r).collect(),
                resolution_multipliers: s.resolutions.iter().copied().collect(),
                default_resolution: s.default_resolution,
                supported_qualities: s.qualities.iter().map(|(q, _)| *q).collect(),
                quality_multipliers: s.qualities.iter().copied().collect(),
                default_quality: s.default_quality,
                max_reference_images: s.max_refs,
                max_visual_dna: s.max_dna,
                supports_visual_dna: s.max_dna > 0,
                images_per_request: s.images_per_request,
                requires_prompt: true,
                min_prompt_length: 1,
                max_prompt_length: s.max_prompt,
                max_file_size: 25 << 20,
                estimated_duration_seconds: s.seconds,
                recommended: s.recommended,
                new_model: s.new_model,
                nsfw_only: false,
                summary: s.summary,
                smart_select_strengths_summary: s.strengths,
                description: format!("{} ({}), simulated by imagegen-sim", s.name, s.provider),
                flat_credit_by_resolution: None,
                avatar: format!(
                    "{cdn_origin}/avatars/{}.png",
                    s.identifier.replace('/', "-")
                ),
            }
        })
        .collect()
}

/// The pseudo-model entry for Smart Select.
pub(crate) fn smart_select_entry(cdn_origin: &str) -> KolboModel {
    KolboModel {
        identifier: SMART_SELECT_ROUTER,
        name: "Smart Select",
        provider: "kolbo",
        types: vec!["text_to_img"],
        credit: 0.0,
        supported_aspect_ratios: RATIOS_WIDE.to_vec(),
        supported_aspect_ratios_by_type: [("text_to_img", RATIOS_WIDE.to_vec())]
            .into_iter()
            .collect(),
        default_aspect_ratio: "1:1",
        supported_durations: None,
        supported_resolutions: Vec::new(),
        resolution_multipliers: BTreeMap::new(),
        default_resolution: None,
        supported_qualities: Vec::new(),
        quality_multipliers: BTreeMap::new(),
        default_quality: None,
        max_reference_images: 8,
        max_visual_dna: 3,
        supports_visual_dna: true,
        images_per_request: None,
        requires_prompt: true,
        min_prompt_length: 1,
        max_prompt_length: 5000,
        max_file_size: 25 << 20,
        estimated_duration_seconds: 20,
        recommended: true,
        new_model: false,
        nsfw_only: false,
        summary: "Kolbo picks the model for your prompt; the price is the chosen model's.",
        smart_select_strengths_summary: "everything",
        description: "Smart Select router, simulated by imagegen-sim".to_owned(),
        flat_credit_by_resolution: None,
        avatar: format!("{cdn_origin}/avatars/smart-select.png"),
    }
}

/// Smart Select's choice for a prompt: text-heavy prompts go to GPT Image 2, photographic
/// ones to Nano Banana 2, everything else to Flux 2 Flash.
pub(crate) fn smart_select(prompt: &str) -> &'static str {
    let p = prompt.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| p.contains(w));
    if has(&["text", "logo", "poster", "typography", "sign", "label"]) {
        "gpt-image-2"
    } else if has(&["photo", "product", "portrait", "realistic", "studio"]) {
        "nano-banana-2"
    } else {
        "flux-2/flash"
    }
}

/// Width and height for an aspect ratio `W:H` with `long` pixels on the longer side,
/// rounded to multiples of 8.
pub(crate) fn dimensions(aspect_ratio: &str, long: u32) -> (u32, u32) {
    let (w, h) = aspect_ratio
        .split_once(':')
        .and_then(|(w, h)| Some((w.trim().parse::<f64>().ok()?, h.trim().parse::<f64>().ok()?)))
        .filter(|(w, h)| *w > 0.0 && *h > 0.0)
        .unwrap_or((1.0, 1.0));
    let round8 = |v: f64| ((v / 8.0).round() as u32 * 8).max(8);
    let long = f64::from(long);
    if w >= h {
        (round8(long), round8(long * h / w))
    } else {
        (round8(long * w / h), round8(long))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_prices_are_in_the_catalog() {
        let models = catalog("http://cdn");
        let credit = |id: &str| models.iter().find(|m| m.identifier == id).map(|m| m.credit);
        assert_eq!(credit("nano-banana-2"), Some(8.0));
        assert_eq!(credit("nano-banana-pro"), Some(15.0));
        assert_eq!(credit("nano-banana-2/4k"), Some(16.0));
        assert!(models.iter().all(|m| m.is_image_model()));
        assert!(models.iter().any(|m| m.credit < 2.0));
    }

    #[test]
    fn smart_select_and_aliases() {
        assert_eq!(smart_select("A logo for a bakery"), "gpt-image-2");
        assert_eq!(smart_select("Product photo of a sneaker"), "nano-banana-2");
        assert_eq!(
            smart_select("A futuristic cityscape at night"),
            "flux-2/flash"
        );
        assert!(is_smart_select_alias("auto"));
        assert!(is_smart_select_alias(SMART_SELECT_ROUTER));
        assert!(!is_smart_select_alias("nano-banana-2"));
    }

    #[test]
    fn dimensions_follow_the_ratio() {
        assert_eq!(dimensions("1:1", 1024), (1024, 1024));
        assert_eq!(dimensions("16:9", 1024), (1024, 576));
        assert_eq!(dimensions("9:16", 1024), (576, 1024));
        assert_eq!(dimensions("21:9", 4096), (4096, 1752));
        assert_eq!(dimensions("nonsense", 1024), (1024, 1024));
    }
}

//! KoalaImages' models, qualities, plans, prices and sizes.

use crate::config::KoalaPlan;

/// One quality of a model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KoalaQuality {
    pub(crate) name: &'static str,
    pub(crate) credits: u64,
    pub(crate) professional: bool,
    pub(crate) seconds: f64,
}

/// One model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KoalaModel {
    pub(crate) id: &'static str,
    /// Qualities the model takes; empty when `quality` does not apply (it is ignored).
    pub(crate) qualities: &'static [KoalaQuality],
    /// Price and timing when the model has no qualities.
    pub(crate) credits: u64,
    pub(crate) seconds: f64,
    pub(crate) professional: bool,
    pub(crate) takes_references: bool,
    pub(crate) preserves_original: bool,
    pub(crate) snaps_size: bool,
}

pub(crate) const MODELS: &[KoalaModel] = &[
    KoalaModel {
        id: "gpt-image-2",
        qualities: &[
            KoalaQuality {
                name: "fast",
                credits: 1,
                professional: false,
                seconds: 8.0,
            },
            KoalaQuality {
                name: "medium",
                credits: 8,
                professional: true,
                seconds: 12.0,
            },
            KoalaQuality {
                name: "high",
                credits: 20,
                professional: true,
                seconds: 15.0,
            },
        ],
        credits: 1,
        seconds: 8.0,
        professional: false,
        takes_references: true,
        preserves_original: true,
        snaps_size: true,
    },
    KoalaModel {
        id: "ideogram-3.0",
        qualities: &[KoalaQuality {
            name: "turbo",
            credits: 3,
            professional: true,
            seconds: 10.0,
        }],
        credits: 3,
        seconds: 10.0,
        professional: true,
        takes_references: false,
        preserves_original: false,
        snaps_size: false,
    },
    KoalaModel {
        id: "nano-banana-2",
        qualities: &[],
        credits: 5,
        seconds: 11.0,
        professional: true,
        takes_references: true,
        preserves_original: false,
        snaps_size: false,
    },
    KoalaModel {
        id: "standard",
        qualities: &[],
        credits: 1,
        seconds: 8.0,
        professional: false,
        takes_references: false,
        preserves_original: false,
        snaps_size: false,
    },
    KoalaModel {
        id: "premium",
        qualities: &[],
        credits: 5,
        seconds: 12.0,
        professional: true,
        takes_references: false,
        preserves_original: false,
        snaps_size: false,
    },
];

pub(crate) const STYLES: &[&str] = &[
    "photo",
    "illustration",
    "watercolor",
    "fantasy",
    "anime",
    "3d",
    "isometric",
    "general",
    "none",
];

/// The pixel sizes every non-snapping model takes.
pub(crate) const SIZES: &[(u32, u32)] = &[
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

/// gpt-image-2's native sizes.
pub(crate) const GPT_SIZES: &[(u32, u32)] = &[
    (1024, 1024),
    (1536, 1024),
    (1024, 1536),
    (1792, 1008),
    (1008, 1792),
];

pub(crate) fn model(id: &str) -> Option<&'static KoalaModel> {
    MODELS.iter().find(|m| m.id == id)
}

impl KoalaModel {
    /// Price, time and plan need for a quality (`None`: the model's default).
    pub(crate) fn quality(&self, wanted: Option<&str>) -> Result<(u64, f64, bool), String> {
        if self.qualities.is_empty() {
            return Ok((self.credits, self.seconds, self.professional));
        }
        let q = match wanted {
            None => self.qualities.first(),
            Some(name) => self.qualities.iter().find(|q| q.name == name),
        };
        q.map(|q| (q.credits, q.seconds, self.professional || q.professional))
            .ok_or_else(|| {
                let names: Vec<&str> = self.qualities.iter().map(|q| q.name).collect();
                format!(
                    "quality must be one of {} for {}",
                    names.join(", "),
                    self.id
                )
            })
    }

    pub(crate) fn allowed_on(&self, professional_needed: bool, plan: KoalaPlan) -> bool {
        !professional_needed || plan == KoalaPlan::Professional
    }
}

/// The pixel size a request's `size` gives on `model`.
pub(crate) fn resolve_size(model: &KoalaModel, size: &str) -> Result<(u32, u32), String> {
    let size = size.trim().to_ascii_lowercase();
    let asked = match size.as_str() {
        "1:1" | "square" => (1024, 1024),
        "5:4" => (1152, 896),
        "3:2" | "landscape" => (1216, 832),
        "16:9" => (1344, 768),
        "21:9" => (1536, 640),
        "9:21" => (640, 1536),
        "9:16" => (768, 1344),
        "2:3" | "portrait" => (832, 1216),
        "4:5" => (896, 1152),
        other => {
            let parsed = other
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .filter(|(w, h)| (1..=4096).contains(w) && (1..=4096).contains(h));
            match parsed {
                Some(dims) if model.snaps_size || SIZES.contains(&dims) => dims,
                _ => {
                    return Err(format!(
                        "size must be one of {} or an aspect ratio such as 16:9",
                        SIZES
                            .iter()
                            .map(|(w, h)| format!("{w}x{h}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    };
    if model.snaps_size {
        Ok(snap(asked))
    } else {
        Ok(asked)
    }
}

/// The native gpt-image-2 size nearest by log aspect ratio.
fn snap((w, h): (u32, u32)) -> (u32, u32) {
    let want = (f64::from(w) / f64::from(h)).ln();
    GPT_SIZES
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = ((f64::from(a.0) / f64::from(a.1)).ln() - want).abs();
            let db = ((f64::from(b.0) / f64::from(b.1)).ln() - want).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((1024, 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpt() -> &'static KoalaModel {
        model("gpt-image-2").unwrap()
    }

    #[test]
    fn gpt_sizes_snap_by_log_ratio() {
        for (asked, got) in [
            ("1152x896", (1536, 1024)),
            ("5:4", (1536, 1024)),
            ("1344x768", (1792, 1008)),
            ("1792x1024", (1792, 1008)),
            ("21:9", (1792, 1008)),
            ("896x1152", (1024, 1536)),
            ("9:21", (1008, 1792)),
            ("landscape", (1536, 1024)),
            ("square", (1024, 1024)),
        ] {
            assert_eq!(resolve_size(gpt(), asked), Ok(got), "{asked}");
        }
    }

    #[test]
    fn other_models_take_listed_sizes_only() {
        let ideo = model("ideogram-3.0").unwrap();
        assert_eq!(resolve_size(ideo, "1216x832"), Ok((1216, 832)));
        assert_eq!(resolve_size(ideo, "portrait"), Ok((832, 1216)));
        assert!(resolve_size(ideo, "1792x1024").is_err());
        assert!(resolve_size(ideo, "big").is_err());
    }

    #[test]
    fn qualities_prices_and_plans() {
        assert_eq!(gpt().quality(None), Ok((1, 8.0, false)));
        assert_eq!(
            gpt().quality(Some("high")).map(|q| (q.0, q.2)),
            Ok((20, true))
        );
        assert!(gpt().quality(Some("turbo")).is_err());
        let nano = model("nano-banana-2").unwrap();
        assert_eq!(nano.quality(Some("anything")).map(|q| q.0), Ok(5));
        assert!(!gpt().allowed_on(true, KoalaPlan::Basic));
        assert!(gpt().allowed_on(false, KoalaPlan::Basic));
    }
}

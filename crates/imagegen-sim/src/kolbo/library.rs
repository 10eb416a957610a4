//! Kolbo's moodboards and Visual DNA entries: a small fixed library, with thumbnails and
//! images served by the CDN listener.

use serde::Serialize;

use crate::config::ImageSize;
use crate::image::{ImageFormat, ImageSpec};
use crate::image_store::{ImageStore, StoredImage};
use crate::kolbo::catalog::KolboModel;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Moodboard {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) scope: &'static str,
    pub(crate) master_prompt: &'static str,
    pub(crate) style_guide: &'static str,
    pub(crate) thumbnail_url: String,
    pub(crate) images: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VisualDna {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) dna_type: &'static str,
    pub(crate) description: &'static str,
    pub(crate) thumbnail_url: String,
    pub(crate) images: Vec<String>,
    pub(crate) is_global: bool,
    pub(crate) created_at: &'static str,
    #[serde(skip)]
    pub(crate) system_prompt: &'static str,
}

#[derive(Debug)]
pub(crate) struct Library {
    pub(crate) moodboards: Vec<Moodboard>,
    pub(crate) visual_dnas: Vec<VisualDna>,
}

const MOODBOARDS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "6601a1b2c3d4e5f6a7b8c9d0",
        "Warm Film",
        "personal",
        "shot on 35mm film, warm golden tones, soft grain, gentle halation",
        "Warm, nostalgic, low contrast.",
    ),
    (
        "6601a1b2c3d4e5f6a7b8c9d1",
        "Neon Noir",
        "preset",
        "rain-soaked streets, neon reflections, deep shadows, cinematic teal and magenta",
        "Moody night scenes with saturated accents.",
    ),
    (
        "6601a1b2c3d4e5f6a7b8c9d2",
        "Pastel Dream",
        "global",
        "soft pastel palette, airy light, dreamy haze, minimal composition",
        "Light and calm.",
    ),
];

const DNAS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "65f1a2b3c4d5e6f7a8b9c0d1",
        "Captain Mira",
        "character",
        "A red-haired starship captain in a navy uniform.",
        false,
    ),
    (
        "65f0c0ffee0000000000a002",
        "Aero Sneaker",
        "product",
        "A white running sneaker with an orange sole.",
        false,
    ),
    (
        "65f0c0ffee0000000000a003",
        "Ink Wash",
        "style",
        "Loose East Asian ink-wash painting style.",
        true,
    ),
];

impl Library {
    pub(crate) fn new(cdn_origin: &str) -> Self {
        let url = |id: &str, n: &str| format!("{cdn_origin}/library/{id}-{n}.png");
        Self {
            moodboards: MOODBOARDS
                .iter()
                .map(|(id, name, scope, master, guide)| Moodboard {
                    id,
                    name,
                    scope,
                    master_prompt: master,
                    style_guide: guide,
                    thumbnail_url: url(id, "thumb"),
                    images: vec![url(id, "0"), url(id, "1")],
                })
                .collect(),
            visual_dnas: DNAS
                .iter()
                .map(|(id, name, dna_type, description, global)| VisualDna {
                    id,
                    name,
                    dna_type,
                    description,
                    thumbnail_url: url(id, "thumb"),
                    images: vec![url(id, "0")],
                    is_global: *global,
                    created_at: "2026-05-01T09:00:00Z",
                    system_prompt: description,
                })
                .collect(),
        }
    }

    pub(crate) fn moodboard(&self, id: &str) -> Option<&Moodboard> {
        self.moodboards.iter().find(|m| m.id == id)
    }

    pub(crate) fn visual_dna(&self, id: &str) -> Option<&VisualDna> {
        self.visual_dnas.iter().find(|d| d.id == id)
    }

    /// Registers every library and avatar image with the store, forever.
    pub(crate) fn register_images(
        &self,
        store: &ImageStore,
        models: &[KolboModel],
        size: ImageSize,
    ) {
        let forever = std::time::Duration::MAX;
        let add = |url: &str, prompt: &str, side: u32| {
            if let Some(path) = url
                .find("://")
                .and_then(|i| url[i + 3..].find('/').map(|j| &url[i + 3 + j..]))
            {
                let (w, h) = size.apply(side, side);
                let spec = ImageSpec::new(prompt, 0, w, h, ImageFormat::Png);
                store.insert(
                    format!("cdn:{path}"),
                    StoredImage::new(spec, std::time::Duration::ZERO, forever),
                );
            }
        };
        for m in &self.moodboards {
            add(&m.thumbnail_url, m.name, 256);
            for (i, u) in m.images.iter().enumerate() {
                add(u, &format!("{} {i}", m.master_prompt), 512);
            }
        }
        for d in &self.visual_dnas {
            add(&d.thumbnail_url, d.name, 256);
            for u in &d.images {
                add(u, d.description, 512);
            }
        }
        for m in models {
            add(&m.avatar, m.name, 128);
        }
    }
}

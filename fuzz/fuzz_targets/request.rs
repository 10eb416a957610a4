//! Requests built from arbitrary options: the facade's `RequestOptions` (as the CLI, a
//! batch line or the gateway fill them) into the core's checked `GenerationRequest` and
//! routing choices, and each wire crate's request types through their validation.
//!
//! Invariants: never panics; a built request serializes and deserializes (through the
//! same checks) to itself, and keeps what was asked (count, shape, style); a request
//! only changes its count through `with_count`'s checks.
#![no_main]

use arbitrary::Arbitrary;
use imagegen::RequestOptions;
use imagegen_core::{Credits, GenerationRequest, ImageShape, Quality};
use koala_api::{ImageGenerationRequest, KoalaPlan};
use kolbo_api::types::GenerateImageRequest;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Options {
    prompt: String,
    count: Option<u32>,
    aspect: Option<String>,
    size: Option<String>,
    style: Option<String>,
    quality: Option<String>,
    resolution: Option<String>,
    refs: Vec<String>,
    provider: Option<String>,
    model: Option<String>,
    max_credits: Option<u64>,
    no_enhance: bool,
    allow_reshape: bool,
    with_count: u32,
    koala_extra: Option<(String, String)>,
    json: Option<String>,
}

fn shape(text: Option<&String>) -> Option<ImageShape> {
    text.and_then(|t| t.parse().ok())
}

fuzz_target!(|o: Options| {
    let mut options = RequestOptions::new(o.prompt.clone());
    options.count = o.count;
    options.aspect = shape(o.aspect.as_ref());
    options.size = shape(o.size.as_ref());
    options.style = o.style.clone();
    options.quality = o.quality.as_deref().and_then(|q| q.parse::<Quality>().ok());
    options.resolution = o.resolution.clone();
    options.refs = o.refs.clone();
    options.provider = o.provider.as_deref().map(Into::into);
    options.model = o.model.as_deref().map(Into::into);
    options.max_credits = o.max_credits.map(Credits::from_micros);
    options.no_enhance = o.no_enhance;
    options.allow_reshape = o.allow_reshape;
    if let Ok((request, call)) = options.clone().into_parts() {
        check(&request);
        assert_eq!(request.count(), o.count.unwrap_or(1));
        assert_eq!(request.shape(), options.aspect.or(options.size));
        let _ = call.is_empty();
        if let Ok(other) = request.with_count(o.with_count) {
            assert_eq!(other.count(), o.with_count);
            check(&other);
        }
    }
    // The same options as JSON (a batch line, the MCP tool's arguments).
    if let Some(json) = &o.json
        && let Ok(options) = serde_json::from_str::<RequestOptions>(json)
        && let Ok((request, _)) = options.into_parts()
    {
        check(&request);
    }

    // KoalaImages' request, as a user of the wire crate fills it.
    let mut koala = ImageGenerationRequest::new(o.prompt.clone());
    if let Some(style) = &o.style {
        koala = koala.with_style(style.as_str());
    }
    if let Some(size) = o.size.as_ref().or(o.aspect.as_ref()) {
        koala = koala.with_size(size.as_str());
    }
    if let Some(n) = o.count {
        koala = koala.with_num_images(n);
    }
    if let Some(model) = &o.model {
        koala = koala.with_model(model.as_str());
    }
    if let Some(quality) = &o.quality {
        koala = koala.with_quality(quality.as_str());
    }
    for r in &o.refs {
        if let Ok(url) = r.parse() {
            koala = koala.with_reference_image(url);
        }
    }
    koala = koala.with_enhance_prompt(!o.no_enhance);
    if let Some((name, value)) = &o.koala_extra {
        koala = koala.with_extra(name.clone(), serde_json::Value::String(value.clone()));
    }
    for plan in [
        KoalaPlan::Basic,
        KoalaPlan::Professional,
        KoalaPlan::Unknown,
    ] {
        if let Err(e) = koala_api::validate(&koala, plan) {
            let _ = (e.to_string(), e.field());
            let _: imagegen_core::Error = e.into();
        }
    }
    let json = serde_json::to_string(&koala).expect("a Koala request serializes");
    let back: ImageGenerationRequest =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(back, koala, "through {json}");

    // Kolbo's request.
    let mut kolbo = GenerateImageRequest::new(o.prompt.clone());
    if let Some(model) = &o.model {
        kolbo = kolbo.model(model.clone());
    }
    if let Some(ratio) = &o.aspect {
        kolbo = kolbo.aspect_ratio(ratio.clone());
    }
    if let Some(n) = o.count {
        kolbo = kolbo.num_images(n);
    }
    for r in &o.refs {
        kolbo = kolbo.reference_image(r.clone());
    }
    kolbo = kolbo.enhance_prompt(!o.no_enhance);
    if let Err(e) = kolbo_api::validate::check_request(&kolbo, None) {
        let _ = (e.to_string(), e.field());
    }
    let json = serde_json::to_string(&kolbo).expect("a Kolbo request serializes");
    let back: GenerateImageRequest =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(back, kolbo, "through {json}");
});

/// A checked request writes itself as JSON that reads back, through the same checks, to
/// the same request.
fn check(request: &GenerationRequest) {
    let json = serde_json::to_string(request).expect("a request serializes");
    let back: GenerationRequest =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    assert_eq!(&back, request, "through {json}");
    let _ = request.prompt().preview();
}

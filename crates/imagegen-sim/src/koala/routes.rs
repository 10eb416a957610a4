//! KoalaImages' HTTP routes, in the simulator's own wire types.

use crate::charges::Charge;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::Value;

use crate::fault::lock;
use crate::image::{ImageFormat, ImageSpec};
use crate::image_store::StoredImage;
use crate::interceptor::JobFaults;
use crate::koala::models::{self, STYLES, resolve_size};
use crate::rate_limit::{MINUTE, retry_after_secs};
use crate::reply::{json, koala_error, set_retry_after, with_type};
use crate::state::SimState;
use crate::timing::draw_duration;

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/image-generation/", post(generate))
        .route("/api/image/{file}", get(image))
}

#[derive(Serialize)]
struct GeneratedImage {
    url: String,
    alt: String,
}

/// A validated request.
struct Order {
    prompt: String,
    /// What the picture is drawn from: the prompt, plus reference URLs where they apply.
    subject: String,
    style: String,
    model: &'static models::KoalaModel,
    size: (u32, u32),
    images: u32,
    credits_per_image: u64,
    seconds: f64,
    professional: bool,
    preserve_original: bool,
    alt_text: bool,
}

fn bad(message: impl AsRef<str>) -> Box<Response> {
    Box::new(koala_error(400, message.as_ref()))
}

fn text_field<'a>(
    body: &'a serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, Box<Response>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

fn flag(body: &serde_json::Map<String, Value>, field: &str) -> Result<bool, Box<Response>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("{field} must be a boolean"))),
    }
}

fn parse_order(body: &[u8]) -> Result<Order, Box<Response>> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("Invalid request format: {e}")))?;
    let Value::Object(body) = value else {
        return Err(bad("Invalid request format: expected a JSON object"));
    };
    let prompt = match text_field(&body, "prompt")? {
        Some(p) if !p.trim().is_empty() => p.trim().to_owned(),
        _ => return Err(bad("prompt is required")),
    };
    let style = text_field(&body, "style")?.unwrap_or("photo").to_owned();
    if !STYLES.contains(&style.as_str()) {
        return Err(bad(format!("style must be one of {}", STYLES.join(", "))));
    }
    let model_id = text_field(&body, "model")?.unwrap_or("gpt-image-2");
    let model = models::model(model_id).ok_or_else(|| {
        bad(format!(
            "model must be one of {}",
            models::MODELS
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let (credits_per_image, seconds, professional) =
        model.quality(text_field(&body, "quality")?).map_err(bad)?;
    let size =
        resolve_size(model, text_field(&body, "size")?.unwrap_or("1024x1024")).map_err(bad)?;
    let images = match body.get("numImages") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=4) => n as u32,
            _ => return Err(bad("numImages must be an integer between 1 and 4")),
        },
    };
    let references: Vec<String> = match body.get("referenceImages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(refs)) => {
            if refs.len() > 5 {
                return Err(bad("Maximum 5 reference images allowed"));
            }
            refs.iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("referenceImages must be an array of URL strings"))?
        }
        Some(_) => return Err(bad("referenceImages must be an array of URL strings")),
    };
    // Models without reference support ignore them, as the docs suggest; the others let
    // them steer the picture (here: its colours).
    let subject = if model.takes_references && !references.is_empty() {
        format!("{prompt} {}", references.join(" "))
    } else {
        prompt.clone()
    };
    match body.get("enhancePrompt") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "on" || s == "off" => {}
        Some(_) => return Err(bad("enhancePrompt must be \"on\" or \"off\"")),
    }
    let preserve_original = flag(&body, "preserveOriginal")? && model.preserves_original;
    let alt_text = flag(&body, "generateAltText")?;
    Ok(Order {
        prompt,
        subject,
        style,
        model,
        size,
        images,
        credits_per_image,
        seconds,
        professional,
        preserve_original,
        alt_text,
    })
}

/// A short alt text from the prompt and style.
fn alt_text(prompt: &str, style: &str) -> String {
    let kind = match style {
        "photo" | "none" | "general" => "A photo",
        "illustration" => "An illustration",
        "watercolor" => "A watercolor painting",
        "fantasy" => "A fantasy artwork",
        "anime" => "An anime-style drawing",
        "3d" => "A 3D render",
        "isometric" => "An isometric illustration",
        _ => "An image",
    };
    let subject: String = prompt.chars().take(120).collect();
    format!("{kind} of {}", subject.trim_end_matches('.'))
}

async fn generate(
    State(sim): State<Arc<SimState>>,
    Extension(faults): Extension<JobFaults>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let now = sim.now();
    if key.is_empty() || !lock(&sim.koala).has_key(&key) {
        return koala_error(401, "Invalid or missing API key");
    }
    let order = match parse_order(&body) {
        Ok(order) => order,
        Err(response) => return *response,
    };
    let mut koala = lock(&sim.koala);
    koala.settle(now);
    let Some(wallet) = koala.accounts.get(&key).copied() else {
        return koala_error(401, "Invalid or missing API key");
    };
    if !order.model.allowed_on(order.professional, wallet.plan) {
        return koala_error(
            403,
            "The selected model or quality requires the Professional Plan",
        );
    }
    let cost = order.credits_per_image * u64::from(order.images);
    if wallet.credits < cost {
        return koala_error(402, "Insufficient credits");
    }
    let limit = sim.config.koala.generate_per_minute;
    if let Err(wait) = koala.limiter.check(&key, "generate", limit, MINUTE, now) {
        let mut response = koala_error(429, "Rate limit exceeded");
        set_retry_after(&mut response, retry_after_secs(wait));
        return response;
    }
    if !sim.images.make_room(order.images as usize, now) {
        return koala_error(503, "The simulator's image store is full; try again later");
    }
    if let Some(w) = koala.accounts.get_mut(&key) {
        w.credits -= cost;
    }
    let format = if order.preserve_original {
        ImageFormat::Png
    } else {
        ImageFormat::Jpeg
    };
    let (w, h) = sim.config.image_size.apply(order.size.0, order.size.1);
    let alt = if order.alt_text {
        alt_text(&order.prompt, &order.style)
    } else {
        String::new()
    };
    let mut out = Vec::new();
    let mut first_id = String::new();
    let mut refunded_at = None;
    if !faults.zero_urls {
        for i in 0..order.images {
            let mut duration = draw_duration(&mut koala.rng, order.seconds, sim.config.speed);
            let slow = sim.config.koala.slow_image_fraction;
            if slow > 0.0 && koala.rng.next_f64() < slow {
                duration = duration.mul_f64(koala.rng.range_f64(5.0, 20.0));
            }
            let ready = now + duration;
            let id = loop {
                let id = koala.new_image_id();
                if sim.images.get(&format!("koala:{id}.jpg"), now).is_none() {
                    break id;
                }
            };
            let spec = ImageSpec::new(&order.subject, i, w, h, format);
            let mut stored =
                StoredImage::new(spec, ready, ready.saturating_add(sim.config.job_ttl));
            if let Some((message, _, _)) = &faults.fail {
                stored = stored.failing(message.clone());
                koala.refund_later(ready, &key, order.credits_per_image);
                refunded_at = refunded_at.max(Some(ready));
            }
            if first_id.is_empty() {
                first_id.clone_from(&id);
            }
            sim.images.insert(format!("koala:{id}.jpg"), stored);
            out.push(GeneratedImage {
                url: format!("{}/api/image/{id}.jpg", sim.api_origin),
                alt: alt.clone(),
            });
        }
    }
    drop(koala);
    sim.charges.record(Charge {
        provider: "koala",
        job_id: first_id,
        prompt: order.prompt.clone(),
        credits: cost as f64,
        at: now,
        answer_lost: faults.answer_lost,
        refunded_at,
    });
    json(200, &out)
}

async fn image(State(sim): State<Arc<SimState>>, Path(file): Path<String>) -> Response {
    let name = format!("koala:{file}");
    let Some(stored) = sim.images.get(&name, sim.now()) else {
        return koala_error(404, "Image not found");
    };
    // Hold the request until the image is ready, as KoalaImages does.
    let wait = stored.available_at.saturating_sub(sim.now());
    if !sim.sleep(wait).await {
        return koala_error(503, "The server is shutting down");
    }
    lock(&sim.koala).settle(sim.now());
    serve_image(&sim, &name, &stored).await
}

/// The bytes of a stored image with its content type, or a 500 for a failed generation.
pub(crate) async fn serve_image(sim: &SimState, name: &str, stored: &StoredImage) -> Response {
    if let Some(message) = &stored.failure {
        return koala_error(500, message);
    }
    match sim.images.bytes(name, stored).await {
        Ok(bytes) => {
            let mut response = with_type(200, stored.spec.format.content_type(), bytes);
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            response
        }
        Err(e) => koala_error(500, &format!("Image encoding failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_text_names_the_style_and_subject() {
        assert_eq!(
            alt_text("cat.", "watercolor"),
            "A watercolor painting of cat"
        );
        assert_eq!(alt_text("a fox", "3d"), "A 3D render of a fox");
    }
}

//! What the generation tools answer: [`GenerationOutput`] as structured content (its JSON
//! schema is the tools' output schema), the images themselves as MCP image content when
//! small enough, and tool errors an agent can act on.

use std::path::PathBuf;

use base64::Engine as _;
use imagegen::Credits;
use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

/// Images larger than this are not inlined (their path or URL is still given).
pub(crate) const MAX_INLINE_BYTES: u64 = 1024 * 1024;

/// Where a generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Every image asked for is saved.
    Done,
    /// Paid jobs are still running: fetch them with `get_generation`; never generate
    /// them again.
    Pending,
    /// It failed; `message` says why, `images` holds any saved before the failure.
    Failed,
}

/// The answer of `generate_image` and `get_generation`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct GenerationOutput {
    /// "done", "pending" (paid, still running: call `get_generation` with each job's
    /// id later, never `generate_image` again) or "failed".
    pub(crate) status: Status,
    /// What happened, in a sentence.
    pub(crate) message: String,
    /// The images saved, each with where it is, who made it and what it cost.
    pub(crate) images: Vec<ImageOutput>,
    /// The provider jobs of this generation (paid once accepted).
    pub(crate) jobs: Vec<JobOutput>,
    /// Credits charged in all, so far.
    pub(crate) credits: f64,
    /// Dollars charged, when the providers' credit worth is known.
    pub(crate) usd: Option<f64>,
    /// Changes to the request the model implied (a shape snapped, a style folded in).
    pub(crate) warnings: Vec<String>,
    /// Whether it ran on the built-in simulator (no real provider was paid).
    pub(crate) simulated: bool,
    /// On the gateway (`/mcp`), `generate_image`'s generation: `GET
    /// /v1/generations/{id}` with the same key shows where it stands and, once it ends,
    /// this answer, also after the call answered "pending" or the gateway restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) generation_id: Option<String>,
}

/// One saved image.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ImageOutput {
    /// The file on this machine (stdio server).
    pub(crate) path: Option<String>,
    /// The gateway's URL of the image (HTTP server).
    pub(crate) url: Option<String>,
    /// "kolbo" or "koala".
    pub(crate) provider: String,
    /// The model that made it.
    pub(crate) model: Option<String>,
    /// Credits it cost.
    pub(crate) credits: Option<f64>,
    /// The provider's job id (what `get_generation` takes).
    pub(crate) job_id: String,
    /// Its media type.
    pub(crate) mime: Option<String>,
    /// Width in pixels.
    pub(crate) width: Option<u32>,
    /// Height in pixels.
    pub(crate) height: Option<u32>,
    /// Size in bytes.
    pub(crate) bytes: Option<u64>,
    /// Alt text, when the provider wrote one.
    pub(crate) alt: Option<String>,
    /// Whether the image is also in this result as image content (only up to 1 MiB).
    pub(crate) inline: bool,
    /// The file read to inline it (not shown).
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) file: Option<PathBuf>,
}

/// One provider job.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct JobOutput {
    /// "kolbo" or "koala".
    pub(crate) provider: String,
    /// The provider's job id: give it to `get_generation`.
    pub(crate) job_id: String,
    /// "done", "pending" or "failed".
    pub(crate) state: Status,
    /// Credits it cost, when known.
    pub(crate) credits: Option<f64>,
    /// Why it failed.
    pub(crate) error: Option<String>,
}

/// Credits as a JSON number.
pub(crate) fn number(credits: Credits) -> f64 {
    credits.to_f64()
}

impl GenerationOutput {
    /// The tool result: the structured output, its JSON as text, and each image small
    /// enough as image content. A failure with nothing saved is a tool error.
    pub(crate) async fn into_result(mut self) -> CallToolResult {
        let mut blocks = Vec::new();
        for image in &mut self.images {
            let (Some(file), Some(mime)) = (&image.file, &image.mime) else {
                continue;
            };
            if image.bytes.is_some_and(|b| b > MAX_INLINE_BYTES) {
                continue;
            }
            match tokio::fs::read(file).await {
                Ok(bytes) if bytes.len() as u64 <= MAX_INLINE_BYTES => {
                    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    blocks.push(ContentBlock::image(data, mime.clone()));
                    image.inline = true;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(path = %file.display(), error = %e, "an image could not be read to inline it");
                }
            }
        }
        let failed = self.status == Status::Failed && self.images.is_empty();
        let value =
            serde_json::to_value(&self).unwrap_or_else(|e| json!({"message": e.to_string()}));
        let mut result = if failed {
            CallToolResult::structured_error(value)
        } else {
            CallToolResult::structured(value)
        };
        // The sentence first, so an agent reading only text gets it at once.
        result
            .content
            .insert(0, ContentBlock::text(self.message.clone()));
        result.content.extend(blocks);
        result
    }
}

/// A tool error (`isError: true`) saying what is wrong and what to do, with `details`
/// as structured content.
pub(crate) fn tool_error(code: &str, message: impl Into<String>, details: Value) -> CallToolResult {
    let message = message.into();
    let mut value = json!({"error": code, "message": message});
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), details) {
        object.extend(extra);
    }
    let mut result = CallToolResult::structured_error(value);
    result.content.insert(0, ContentBlock::text(message));
    result
}

/// Plain structured data as a tool result (its JSON also as text).
pub(crate) fn data(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

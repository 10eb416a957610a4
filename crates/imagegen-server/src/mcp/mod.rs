//! The MCP server: imagegen's tools for AI agents over the Model Context Protocol, on the
//! official Rust SDK (`rmcp`).
//!
//! One server type, [`ImagegenMcp`], over an [`imagegen::Client`], the ledger and (on
//! the gateway) the image store, reached two ways:
//!
//! - **stdio** ([`serve_stdio`], `imagegen mcp`): one agent on this machine; images are
//!   saved in a directory and named by path; an optional budget for the server's life is
//!   a named budget in the ledger.
//! - **Streamable HTTP** at `/mcp` on `imagegen serve`: with the gateway's keys
//!   (`Authorization: Bearer igk_…`, or none on loopback when the gateway has none);
//!   images are kept in the gateway's store and named by its `/v1/files/…` URLs; a call
//!   draws on the caller's budget.
//!
//! | tool | what |
//! |---|---|
//! | `generate_image` | a prompt and the options of `imagegen generate`; the images (inline up to 1 MiB each), and where each is, who made it and what it cost |
//! | `estimate_cost` | the ranked candidates with prices and the reasons any is left out; nothing spent |
//! | `list_models` | every model with its price and capabilities |
//! | `get_generation` | one job by id: finished now if it is still open (waited on, never submitted again), or its images from the ledger |
//! | `list_history` | past generations, newest first, optionally matching a text |
//!
//! `generate_image` reports its progress as `notifications/progress` when the call
//! carries a `progressToken` (submitted, generating N%, downloading, saved k of n, done;
//! rising to a total of 100, all written before the answer), and sends none without
//! one; see the `progress` module. Over `/mcp` such a call is answered as an event
//! stream (the SDK's fallback from a JSON answer when a notification precedes it), so
//! both transports deliver them.
//!
//! A paid job is committed to the ledger before it is waited on. A call waits at most
//! the wait limit ([`DEFAULT_WAIT_LIMIT`]); past it, the answer is `status: "pending"`
//! with the job ids, which `get_generation` fetches later: the job keeps running, and
//! is never paid for twice.
//!
//! | module | owns |
//! |---|---|
//! | `params` | the tools' parameters and their JSON schemas |
//! | `output` | the generation tools' answer, image content, tool errors |
//! | `access` | who calls (a gateway key or this machine) and the budget a call draws on |
//! | `running` | the jobs this server is waiting on, so a fetch waits for them instead of starting again |
//! | `progress` | `generate_image`'s `notifications/progress`, when the call carries a `progressToken` |
//! | `generate` | `generate_image` |
//! | `generation` | `get_generation` |
//! | `catalog` | `estimate_cost` and `list_models` |
//! | `history` | `list_history` |
//! | `stdio` | [`serve_stdio`] |
//! | `http` | the `/mcp` route of the gateway |

mod access;
mod catalog;
mod generate;
mod generation;
mod history;
pub(crate) mod http;
mod output;
mod params;
mod progress;
mod running;
mod stdio;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use imagegen::{Client, Credits};
use imagegen_ledger::{Ledger, LedgerError};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};

pub use stdio::serve_stdio;

use crate::state::AppState;
use access::Access;
use params::{GetGenerationParams, HistoryParams, ImageParams, ModelsParams};
use running::Running;

/// How long one tool call waits for its images by default before answering
/// `status: "pending"` with the job ids.
pub const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(120);

/// What the server tells an agent about itself when it connects.
const INSTRUCTIONS: &str = "imagegen generates images from text through paid APIs (Kolbo and KoalaImages), on the cheapest model that can take the request, within a budget. \
Use estimate_cost to see what a request would cost (nothing is spent), list_models for the models and prices, generate_image to make images. \
Every job a provider accepts is paid for and recorded. When generate_image answers status \"pending\", the jobs are paid and still running: \
call get_generation with each job_id later to fetch the images. Never call generate_image again for the same request: that pays twice. \
A refusal for the budget says what is left and what the request needs: choose a cheaper model or fewer images.";

/// The MCP server; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ImagegenMcp {
    shared: Arc<Shared>,
}

/// Where the server runs: how a call is paid for and how its images are named.
#[derive(Debug)]
enum Surface {
    /// `imagegen mcp`: images saved in `out_dir`, named by path; one budget for the
    /// server's life, when given.
    Stdio {
        out_dir: PathBuf,
        budget: Option<String>,
    },
    /// `/mcp` on the gateway: its store, its keys and their budgets.
    Http(Arc<AppState>),
}

/// What every call shares.
#[derive(Debug)]
struct Shared {
    client: Client,
    ledger: Arc<dyn Ledger>,
    surface: Surface,
    wait_limit: Duration,
    running: Arc<Running>,
    /// Numbers this server's calls (stdio), for their log lines.
    calls: AtomicU64,
    /// The prefix of those numbers: unique among processes on one ledger.
    instance: String,
}

impl ImagegenMcp {
    /// A stdio server (see [`serve_stdio`]) on `client`, recording in `ledger`, saving
    /// images in `out_dir`, each call waiting at most [`DEFAULT_WAIT_LIMIT`].
    pub fn new(client: Client, ledger: Arc<dyn Ledger>, out_dir: impl Into<PathBuf>) -> Self {
        let instance = crate::leases::instance_id().replacen("gw-", "mcp-", 1);
        Self {
            shared: Arc::new(Shared {
                client,
                ledger,
                surface: Surface::Stdio {
                    out_dir: out_dir.into(),
                    budget: None,
                },
                wait_limit: DEFAULT_WAIT_LIMIT,
                running: Arc::default(),
                calls: AtomicU64::new(0),
                instance,
            }),
        }
    }

    /// Each call waits at most `limit` for its images, then answers `status: "pending"`
    /// with the job ids for `get_generation`.
    #[must_use]
    pub fn with_wait_limit(mut self, limit: Duration) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.wait_limit = limit;
        }
        self
    }

    /// Every generation of this server's life draws on `limit` credits, held in the
    /// ledger as the budget returned (`mcp:<instance>`): each call reserves its worst
    /// case there before anything is sent, and settles at what was charged.
    pub async fn with_budget(mut self, limit: Credits) -> Result<(Self, String), LedgerError> {
        let name = format!("mcp:{}", self.shared.instance);
        self.shared.ledger.set_budget(&name, Some(limit)).await?;
        if let Some(shared) = Arc::get_mut(&mut self.shared)
            && let Surface::Stdio { budget, .. } = &mut shared.surface
        {
            *budget = Some(name.clone());
        }
        Ok((self, name))
    }

    /// The server of the gateway's `/mcp`.
    pub(crate) fn for_gateway(state: &Arc<AppState>, wait_limit: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                client: state.client.clone(),
                ledger: Arc::clone(&state.ledger),
                surface: Surface::Http(Arc::clone(state)),
                wait_limit,
                running: Arc::default(),
                calls: AtomicU64::new(0),
                instance: state.instance.clone(),
            }),
        }
    }

    /// A new id for one call: the gateway's request id, or `mcp-…-N` on stdio.
    fn next_id(&self) -> String {
        match &self.shared.surface {
            Surface::Http(state) => state.ids.next(),
            Surface::Stdio { .. } => {
                let n = self.shared.calls.fetch_add(1, Ordering::Relaxed) + 1;
                format!("{}-{n}", self.shared.instance)
            }
        }
    }
}

#[tool_router]
impl ImagegenMcp {
    /// `generate_image`.
    #[tool(
        description = "Generate images from a text prompt on the cheapest model that can take it, within the budget. Returns the images (inline when up to 1 MiB) and, for each, its path or URL, provider, model and credits. If it answers status \"pending\", the jobs are paid and still running: call get_generation with each job_id later; never call generate_image again for the same request (that pays twice). A budget refusal is an error saying what is left and what the request needs.",
        output_schema = rmcp::handler::server::common::schema_for_output::<output::GenerationOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn generate_image(
        &self,
        Parameters(params): Parameters<ImageParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let access = match Access::of(&self.shared, &context).await {
            Ok(access) => access,
            Err(refused) => return Ok(refused),
        };
        let progress = progress::Requested::of(&context);
        Ok(generate::run(self, &access, params, progress).await)
    }

    /// `estimate_cost`.
    #[tool(
        description = "What generating this request would cost on each candidate model, ranked cheapest first (credits, and dollars when known), with the reason any model is left out, and the budget left. Nothing is sent or spent. Takes the same fields as generate_image.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn estimate_cost(
        &self,
        Parameters(params): Parameters<ImageParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let access = match Access::of(&self.shared, &context).await {
            Ok(access) => access,
            Err(refused) => return Ok(refused),
        };
        Ok(catalog::estimate(&self.shared, &access, params).await)
    }

    /// `list_models`.
    #[tool(
        description = "Every model of the configured providers as provider/model (what generate_image's `model` takes), with its price per image in credits (and dollars when known), qualities, shapes and styles.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn list_models(
        &self,
        Parameters(params): Parameters<ModelsParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(refused) = Access::of(&self.shared, &context).await {
            return Ok(refused);
        }
        Ok(catalog::models(&self.shared, params).await)
    }

    /// `get_generation`.
    #[tool(
        description = "Fetch a generation's images by the job_id generate_image returned. A job still running is waited on (never submitted or paid again) and its images saved; a finished one is read from the ledger. Answers like generate_image; \"pending\" again means call it again later.",
        output_schema = rmcp::handler::server::common::schema_for_output::<output::GenerationOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_generation(
        &self,
        Parameters(params): Parameters<GetGenerationParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let access = match Access::of(&self.shared, &context).await {
            Ok(access) => access,
            Err(refused) => return Ok(refused),
        };
        Ok(generation::get(&self.shared, &access, params).await)
    }

    /// `list_history`.
    #[tool(
        description = "Past generations from the ledger, newest first: prompt, provider, model, state, credits and the images' paths or URLs. Optionally only those whose prompt contains a text.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_history(
        &self,
        Parameters(params): Parameters<HistoryParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let access = match Access::of(&self.shared, &context).await {
            Ok(access) => access,
            Err(refused) => return Ok(refused),
        };
        Ok(history::list(&self.shared, &access, params).await)
    }
}

#[tool_handler]
impl ServerHandler for ImagegenMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("imagegen", env!("CARGO_PKG_VERSION"))
                    .with_title("imagegen: images from text, for the fewest credits"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

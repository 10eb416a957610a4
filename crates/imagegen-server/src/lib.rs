//! # imagegen-server
//!
//! imagegen's HTTP gateway: the OpenAI Images API in front of Kolbo and KoalaImages.
//! Any OpenAI client (the official `openai` packages, LiteLLM, curl) pointed at it
//! generates images on the cheapest model that can take the request, never over a
//! budget, with every paid job committed to the ledger before it is waited on and every
//! image kept in a content-addressed store the gateway serves itself.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use imagegen_server::{ServerConfig, serve};
//! let server = serve(ServerConfig::new(imagegen::Client::from_env()?)).await?;
//! println!("listening on {}", server.url()); // http://127.0.0.1:8787
//! // curl http://127.0.0.1:8787/v1/images/generations -H 'Content-Type: application/json' \
//! //   -d '{"prompt": "a lighthouse at dusk", "size": "1536x1024"}'
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! ## Endpoints
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /v1/images/generations` | OpenAI's request (`prompt`, `model`, `n`, `size`, `quality`, `style`, `response_format`, `user`; imagegen's own `reference_images`, `moodboard_id` and `visual_dna_ids`, requirements the chosen model must meet; see the `params` module) and response (`created`, `data[].url` or `b64_json`, `revised_prompt`), plus an `imagegen` object (provider, model, credits, dollars, route, generation ids) and the headers in [`headers`] |
//! | `GET /v1/models`, `GET /v1/models/<provider>/<model>` | every model as `provider/model`, in OpenAI's list shape, with prices |
//! | `GET /v1/files/<sha256>.<ext>` | a stored image |
//! | `POST /v1/estimate` | imagegen's own: the same body as a generation; the ranked candidates with prices and reasons, nothing spent |
//! | `POST /v1/generations`, `GET /v1/generations/<id>` | imagegen's own: the same body as a generation, answered 202 `{id}` at once; the GET gives its `status` and, when done, the response `POST /v1/images/generations` would have given (any generation's id works, its `x-request-id`, on any gateway sharing the ledger) |
//! | `GET /v1/generations/<id>/events` | imagegen's own: server-sent events following a background generation: `progress` (provider, job id, state, percent) as its jobs report it, then one `done` whose data is what `GET /v1/generations/<id>` answers, and the stream ends |
//! | `GET /v1/spend?by=provider\|model\|day` | imagegen's own: what charged jobs cost, from the ledger: a key holder's own, or the whole ledger's for this machine's callers without keys |
//! | `GET /`, `/images/…`, `/generate`, `/spend`, `/login` | the gallery: HTML pages for people (history, one image, a generation form with live estimates and progress, spend and budgets), with the same keys (a browser signs in once; a cookie carries the key); not in the OpenAPI document |
//! | `POST /mcp` | the MCP server (Streamable HTTP, stateless, JSON answers, or an event stream when a call asks for progress) for AI agents: tools `generate_image`, `estimate_cost`, `list_models`, `get_generation`, `list_history` (see [`mcp`]), with the same keys and budgets as the API; not in the OpenAPI document |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of every endpoint above (request and response shapes, errors, the bearer scheme); needs no key |
//!
//! Errors have OpenAI's shape and statuses (the `error_map` module has the
//! table); a response to a request that may have been charged carries
//! `x-should-retry: false`, which the official clients obey instead of retrying (and
//! paying) again.
//!
//! ## Modules
//!
//! | module | owns |
//! |---|---|
//! | [`server`] | [`serve`], the routes, [`RunningServer`] and graceful shutdown |
//! | [`config`] | [`ServerConfig`]: client, address, ledger, image directory, public URL, limits, clock |
//! | [`store`] | [`ImageStore`]: images kept once as `<sha256>.<ext>` |
//! | [`headers`] | the names of the headers the gateway adds |
//! | [`error`] | [`ServerError`]: why the gateway could not start |
//! | `auth` | who may call: gateway keys from the ledger, or this machine only when there are none |
//! | `budget` | the budget a caller draws on, and the hold of a request's worst case on it |
//! | `params` | OpenAI's request fields, typed, and the ones ignored |
//! | `model_choice` | OpenAI's `model` on imagegen's routing, checked against the catalog |
//! | `generations` | `POST /v1/images/generations`: the run and its response |
//! | `idempotency` | `Idempotency-Key`: a repeated request answered again, never paid twice |
//! | `store_log` | the journal of one request: the ledger, with images moved into the store |
//! | `estimate` | `POST /v1/estimate` |
//! | `jobs` | `POST /v1/generations`, `GET /v1/generations/{id}` and its `/events`: a generation started now, its answer read later |
//! | `spend` | `GET /v1/spend` |
//! | `models` | `GET /v1/models` |
//! | `files` | `GET /v1/files/…` |
//! | `openapi` | `GET /openapi.json`: the OpenAPI document, generated from the handlers |
//! | `openai_error` | an error response in OpenAI's shape |
//! | `error_map` | the facade's errors as OpenAI statuses, types, params and codes |
//! | `state` | what the handlers share, and the gateway's URL as a request sees it |
//! | `inflight` | the generations running, which a shutdown waits for |
//! | `key_limit` | at most so many generations in flight per caller; 429 beyond |
//! | `request_id` | `x-request-id` |
//! | `leases` | this gateway's leases on its jobs and background generations, renewed while it lives; the work of a gateway that died, taken over |
//! | `gallery` | the web pages at `/`: askama templates, thumbnails, sign-in; its own router beside the API's |
//! | [`mcp`] | the MCP server: [`mcp::ImagegenMcp`], [`mcp::serve_stdio`] (`imagegen mcp`) and the `/mcp` route |
//! | `maintenance` | the background upkeep: stale idempotency records pruned at start and hourly |
//!
//! ## Features
//!
//! - `simulator` (off by default): the facade's `simulator` feature, so the gateway can
//!   run on a client of the in-process simulator (`imagegen serve` with no provider key).

mod auth;
mod budget;
pub mod config;
pub mod error;
mod error_map;
mod estimate;
mod files;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gallery;
mod generations;
pub mod headers;
mod idempotency;
mod inflight;
mod jobs;
mod key_limit;
mod leases;
mod maintenance;
pub mod mcp;
mod model_choice;
mod models;
mod openai_error;
mod openapi;
mod params;
mod request_id;
pub mod server;
mod spend;
mod state;
pub mod store;
mod store_log;

pub use config::{
    DEFAULT_JOB_LEASE, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IN_FLIGHT_PER_KEY,
    ServerConfig,
};
pub use error::ServerError;
pub use params::MAX_IMAGES;
pub use server::{RunningServer, ShutdownHandle, serve};
pub use store::{ImageStore, StoredImage};
/// The URL type [`ServerConfig::with_public_url`] takes (the `url` crate's).
pub use url::Url;

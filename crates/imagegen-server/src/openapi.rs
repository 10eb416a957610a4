//! `GET /openapi.json`: the gateway's OpenAPI 3.1 document, generated with `utoipa` from
//! the `#[utoipa::path]` attribute on each handler and the schemas below.
//!
//! The handlers build their JSON with `serde_json::json!`, so the shapes they answer are
//! described here by schema-only types (never built, only derived into the document):
//! OpenAI's request and response, the `imagegen` extension, the error shape of
//! `crate::openai_error`, and small descriptions of what other crates serialize (the
//! facade's estimate, the ledger's spend rows, a job's progress). Errors that several
//! operations answer alike are written once, as response lists the handlers name
//! ([`schema::GenerationErrors`], [`schema::CallerErrors`], [`schema::CatalogErrors`]).
//!
//! Every operation but `GET /v1/files/…` and this document names the `bearer` scheme (a
//! gateway key, `igk_…`) and also the empty requirement: a gateway without keys serves
//! this machine without one. The document itself is public (it needs no key) but keeps
//! the host check of a keyless gateway, as image files do (see `crate::auth`).
//!
//! A unit test checks that every route [`crate::server`] registers is described here, so
//! a route added without its `#[utoipa::path]` fails the tests.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

/// The name of the security scheme in `components.securitySchemes`.
pub(crate) const BEARER: &str = "bearer";

/// The document; see the [module docs](self).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "imagegen gateway",
        description = "The OpenAI Images API in front of Kolbo and KoalaImages, routed to the cheapest capable model, every paid job recorded in the ledger, every image kept; plus imagegen's own endpoints (estimates, background generations, spend). Errors have OpenAI's shape and statuses; a response to a request that may have been charged carries `x-should-retry: false`.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(
        crate::generations::create,
        crate::estimate::create,
        crate::jobs::create,
        crate::jobs::get,
        crate::jobs::events,
        crate::spend::get,
        crate::models::list,
        crate::models::retrieve,
        crate::files::get,
        get,
    ),
    components(schemas(
        schema::ImagesRequest,
        schema::ResponseFormatName,
        schema::ImagesResponse,
        schema::ImageData,
        schema::Extension,
        schema::GenerationRef,
        schema::StoredImageInfo,
        schema::ErrorResponse,
        schema::ErrorBody,
        schema::Generation,
        schema::GenerationAnswer,
        schema::GenerationState,
        schema::ProgressEvent,
        schema::Elapsed,
        schema::Estimate,
        schema::CatalogFailure,
        schema::SpendBy,
        schema::SpendResponse,
        schema::SpendRow,
        schema::ModelList,
        schema::ModelListExtension,
        schema::Model,
        schema::ModelDetails,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "images", description = "OpenAI's Images API"),
        (name = "models", description = "OpenAI's Models API, with prices and capabilities"),
        (name = "files", description = "Stored images"),
        (name = "imagegen", description = "imagegen's own endpoints"),
    ),
)]
pub(crate) struct ApiDoc;

/// Adds the `bearer` scheme: a gateway key as `Authorization: Bearer igk_…`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("igk_…")
                    .description(Some(
                        "A gateway key (`igk_…`, made by the operator). Required once the gateway's ledger holds a live key; a gateway without keys serves this machine only and ignores any other bearer token.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document, with the version of this crate.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    doc
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "imagegen",
    summary = "This OpenAPI document",
    description = "The gateway's OpenAPI document. It needs no key; a gateway without keys still serves it to this machine only.",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", body = Object, content_type = "application/json"),
        (status = 403, description = "The gateway has no keys and the request named a host that is not this machine's (`host_not_allowed`)", body = schema::ErrorResponse),
    ),
)]
pub(crate) async fn get(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(error) = state.auth.check_host(&headers) {
        return error.into_response();
    }
    axum::Json(document()).into_response()
}

/// The schema-only types: what the handlers answer and take, as JSON.
#[allow(dead_code, reason = "schema-only types: described, never built")]
pub(crate) mod schema {
    use serde::Serialize;
    use serde_json::Value;
    use utoipa::ToSchema;

    /// The body of `POST /v1/images/generations` (and of `/v1/estimate` and
    /// `/v1/generations`): OpenAI's image request. Fields not listed are accepted and
    /// ignored, and named in `x-imagegen-ignored-fields`.
    #[derive(Serialize, ToSchema)]
    #[schema(example = json!({"prompt": "a lighthouse at dusk, watercolor", "size": "1536x1024"}))]
    pub(crate) struct ImagesRequest {
        /// The prompt (at most 32,000 characters).
        pub(crate) prompt: String,
        /// `auto` (or absent): the cheapest capable model; a model id; or `provider/model`
        /// as `GET /v1/models` lists them.
        #[schema(nullable, example = "auto")]
        pub(crate) model: Option<String>,
        /// How many images (1 to 10; default 1).
        #[schema(nullable, minimum = 1, maximum = 10)]
        pub(crate) n: Option<u32>,
        /// `auto` (or absent): any shape; `WxH` (`1024x1024`, `1536x1024`, any other); a
        /// ratio (`16:9`); or `square`, `portrait`, `landscape`.
        #[schema(nullable, example = "1024x1024")]
        pub(crate) size: Option<String>,
        /// `auto`: the model's default; `low`, `medium`, `high`; `standard` (= medium),
        /// `hd` (= high); any other name: a model's own quality (`turbo`).
        #[schema(nullable, example = "auto")]
        pub(crate) quality: Option<String>,
        /// A style name (`watercolor`); DALL·E's `vivid` and `natural` are ignored.
        #[schema(nullable)]
        pub(crate) style: Option<String>,
        /// imagegen's own: reference image URLs (`http` or `https`), for models that take
        /// them; a model that takes fewer is left out.
        #[schema(nullable)]
        pub(crate) reference_images: Option<Vec<String>>,
        /// imagegen's own: a Kolbo moodboard id; the request then goes to Kolbo only.
        #[schema(nullable)]
        pub(crate) moodboard_id: Option<String>,
        /// imagegen's own: Kolbo visual DNA ids (at most 3); the request then goes to Kolbo
        /// only.
        #[schema(nullable)]
        pub(crate) visual_dna_ids: Option<Vec<String>>,
        /// How images come back (default `url`).
        #[schema(nullable)]
        pub(crate) response_format: Option<ResponseFormatName>,
        /// An end-user id (accepted, logged).
        #[schema(nullable)]
        pub(crate) user: Option<String>,
        /// Must be `false` or absent: streaming is not supported (`true` is a 400).
        #[schema(nullable)]
        pub(crate) stream: Option<bool>,
    }

    /// How images come back.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum ResponseFormatName {
        /// The gateway's own URL of each stored image.
        Url,
        /// The image's bytes, base64.
        B64Json,
    }

    /// OpenAI's images response, with imagegen's extension.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct ImagesResponse {
        /// When it was answered, in seconds since the Unix epoch.
        pub(crate) created: u64,
        /// One item per image.
        pub(crate) data: Vec<ImageData>,
        /// Where the request went, what it cost, what it made.
        pub(crate) imagegen: Extension,
    }

    /// One image: its URL, or its bytes when `response_format` was `b64_json`.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct ImageData {
        /// The image at the gateway (`…/v1/files/<sha256>.<ext>`).
        pub(crate) url: Option<String>,
        /// The image's bytes, base64 (instead of `url`).
        pub(crate) b64_json: Option<String>,
        /// The prompt the provider used, when it says.
        #[schema(nullable)]
        pub(crate) revised_prompt: Option<String>,
    }

    /// The `imagegen` object of a generation's answer (also beside `error` in a failed
    /// generation's, listing what was paid for before the failure).
    #[derive(Serialize, ToSchema)]
    pub(crate) struct Extension {
        /// The gateway's id of the request (as in `x-request-id`).
        pub(crate) request_id: String,
        /// The provider of the first image.
        #[schema(nullable)]
        pub(crate) provider: Option<String>,
        /// The model of the first image.
        #[schema(nullable)]
        pub(crate) model: Option<String>,
        /// Credits charged (a number, or a decimal string when too large for one).
        pub(crate) credits: f64,
        /// Dollars charged, when every charged provider's credit worth is known.
        #[schema(nullable)]
        pub(crate) usd: Option<f64>,
        /// Each attempt in order, one line each.
        pub(crate) route: Vec<String>,
        /// The providers' ids of the jobs sent.
        pub(crate) generation_ids: Vec<GenerationRef>,
        /// Jobs whose outcome is not known yet (may still be charged).
        pub(crate) unfinished: Vec<GenerationRef>,
        /// Each image as stored.
        pub(crate) images: Vec<StoredImageInfo>,
        /// Warnings about the generation.
        pub(crate) warnings: Vec<String>,
        /// The request fields ignored.
        pub(crate) ignored_fields: Vec<String>,
        /// Whether it ran on the built-in simulator.
        pub(crate) simulated: bool,
    }

    /// A provider's job.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct GenerationRef {
        /// The provider.
        pub(crate) provider: String,
        /// The provider's job id.
        pub(crate) id: String,
    }

    /// An image as the gateway stored it.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct StoredImageInfo {
        /// Its URL at the gateway.
        pub(crate) url: String,
        /// The SHA-256 of its bytes, hex.
        pub(crate) sha256: String,
        /// Its media type.
        pub(crate) mime: String,
        /// Its size in bytes.
        pub(crate) bytes: u64,
        /// Width in pixels.
        pub(crate) width: u32,
        /// Height in pixels.
        pub(crate) height: u32,
        /// The provider that made it.
        pub(crate) provider: String,
        /// The model that made it.
        #[schema(nullable)]
        pub(crate) model: Option<String>,
        /// The provider's job id.
        #[schema(nullable)]
        pub(crate) generation_id: Option<String>,
        /// Its share of the charge, in credits.
        #[schema(nullable)]
        pub(crate) credits: Option<f64>,
        /// Alt text, when the provider made one.
        #[schema(nullable)]
        pub(crate) alt: Option<String>,
        /// Its page in the gateway's gallery (`/images/<provider>/<job id>/<index>`).
        pub(crate) detail: String,
    }

    /// An error in OpenAI's shape. A response to a request that may have been charged
    /// carries `x-should-retry: false`; a rate limit carries `Retry-After`.
    #[derive(Serialize, ToSchema)]
    #[schema(example = json!({"error": {"message": "Missing required parameter: 'prompt'.", "type": "invalid_request_error", "param": "prompt", "code": "missing_required_parameter"}}))]
    pub(crate) struct ErrorResponse {
        /// The error.
        pub(crate) error: ErrorBody,
        /// A failed generation's: what was delivered and paid for before the failure.
        pub(crate) imagegen: Option<Extension>,
    }

    /// Who may call, for the endpoints that read on a caller's behalf (a generation, its
    /// events, spend, models): the 401 of a gateway with keys, the 403 of one without.
    #[derive(utoipa::IntoResponses)]
    pub(crate) enum CallerErrors {
        #[response(
            status = 401,
            description = "No key, or not a live gateway key (`missing_api_key`, `invalid_api_key`), when the gateway has keys"
        )]
        Unauthorized(ErrorResponse),
        #[response(
            status = 403,
            description = "The gateway has no keys and the request named a host that is not this machine's (`host_not_allowed`)"
        )]
        Forbidden(ErrorResponse),
    }

    /// The errors of reading the providers' catalogs (`GET /v1/models…`).
    #[derive(utoipa::IntoResponses)]
    pub(crate) enum CatalogErrors {
        #[response(
            status = 429,
            description = "A provider's rate limit while reading its catalog"
        )]
        RateLimited(ErrorResponse),
        #[response(
            status = 500,
            description = "The gateway failed (the ledger, its configuration)"
        )]
        GatewayFailed(ErrorResponse),
        #[response(
            status = 502,
            description = "A provider's catalog could not be read (`provider_error`)"
        )]
        ProviderFailed(ErrorResponse),
        #[response(
            status = 503,
            description = "The gateway is stopping (`shutting_down`)"
        )]
        Stopping(ErrorResponse),
    }

    /// The errors of a generation request, once for both endpoints that take one
    /// (`POST /v1/images/generations` and `POST /v1/generations`).
    #[derive(utoipa::IntoResponses)]
    pub(crate) enum GenerationErrors {
        #[response(
            status = 400,
            description = "The request cannot be taken as it stands (a bad field, `param` names it; not JSON; `stream: true`; no model can take it; a content policy refusal)"
        )]
        BadRequest(ErrorResponse),
        #[response(
            status = 401,
            description = "No key, or not a live gateway key (`missing_api_key`, `invalid_api_key`), when the gateway has keys"
        )]
        Unauthorized(ErrorResponse),
        #[response(
            status = 402,
            description = "Over a budget or price cap (`budget_exceeded`); never retried"
        )]
        OverBudget(ErrorResponse),
        #[response(
            status = 403,
            description = "The gateway has no keys and the request named a host that is not this machine's (`host_not_allowed`), or the provider's plan does not allow the model (`plan_required`)"
        )]
        Forbidden(ErrorResponse),
        #[response(
            status = 404,
            description = "The model named does not exist (`model_not_found`)"
        )]
        NoSuchModel(ErrorResponse),
        #[response(
            status = 409,
            description = "A request with this `Idempotency-Key` is still running (`idempotency_in_progress`, with `Retry-After`)"
        )]
        StillRunning(ErrorResponse),
        #[response(
            status = 413,
            description = "The body is larger than the gateway takes (`request_too_large`)"
        )]
        TooLarge(ErrorResponse),
        #[response(
            status = 422,
            description = "This `Idempotency-Key` was used for a different request (`idempotency_key_reused`)"
        )]
        KeyReused(ErrorResponse),
        #[response(
            status = 429,
            description = "Too many generations in flight for this key (`too_many_requests_in_flight`), a provider's rate limit (`rate_limit_exceeded`), or out of credits (`insufficient_quota`); `Retry-After` when waiting helps"
        )]
        TooMany(ErrorResponse),
        #[response(
            status = 500,
            description = "The gateway failed (the ledger, the disk, its configuration)"
        )]
        GatewayFailed(ErrorResponse),
        #[response(
            status = 502,
            description = "A provider failed or could not be reached (`generation_failed`, `provider_error`); may have been charged when `x-should-retry: false`"
        )]
        ProviderFailed(ErrorResponse),
        #[response(
            status = 503,
            description = "No provider can take it for now (`providers_unavailable`), or the gateway is stopping (`shutting_down`)"
        )]
        Unavailable(ErrorResponse),
    }

    /// OpenAI's error object.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct ErrorBody {
        /// What went wrong, for people.
        pub(crate) message: String,
        /// OpenAI's error type (`invalid_request_error`, `authentication_error`,
        /// `permission_error`, `requests`, `insufficient_quota`, `server_error`).
        #[serde(rename = "type")]
        pub(crate) kind: String,
        /// The request parameter the error is about.
        #[schema(nullable)]
        pub(crate) param: Option<String>,
        /// A machine-readable code (`missing_api_key`, `model_not_found`, …).
        #[schema(nullable)]
        pub(crate) code: Option<String>,
    }

    /// A background generation (`POST /v1/generations`, `GET /v1/generations/{id}`, the
    /// `done` event).
    #[derive(Serialize, ToSchema)]
    pub(crate) struct Generation {
        /// Its id (the request id).
        pub(crate) id: String,
        /// Always `imagegen.generation`.
        #[schema(example = "imagegen.generation")]
        pub(crate) object: String,
        /// Where it is.
        pub(crate) status: GenerationState,
        /// When done: the status `POST /v1/images/generations` would have answered.
        pub(crate) http_status: Option<u16>,
        /// When done: the body `POST /v1/images/generations` would have answered (an
        /// `ImagesResponse`, or an `ErrorResponse` when it failed).
        pub(crate) response: Option<GenerationAnswer>,
    }

    /// What a finished background generation answers.
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum GenerationAnswer {
        /// It succeeded.
        Images(ImagesResponse),
        /// It failed.
        Error(ErrorResponse),
    }

    /// Where a background generation is.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum GenerationState {
        /// Still running.
        Running,
        /// Done, with images.
        Succeeded,
        /// Done, with an error.
        Failed,
    }

    /// The data of a `progress` event: a job's progress.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct ProgressEvent {
        /// The provider.
        pub(crate) provider: String,
        /// The provider's job id.
        pub(crate) job_id: String,
        /// Where the job is (`queued`, `running`, `completed`, `failed`, `cancelled`, or a
        /// provider's own word).
        pub(crate) state: Value,
        /// Percent done, when the provider says.
        #[schema(nullable, maximum = 100)]
        pub(crate) percent: Option<u8>,
        /// How long the job has been waited on.
        pub(crate) elapsed: Elapsed,
    }

    /// A duration.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct Elapsed {
        /// Whole seconds.
        pub(crate) secs: u64,
        /// And nanoseconds.
        pub(crate) nanos: u32,
    }

    /// What a generation would cost (the facade's estimate): every candidate, eligible
    /// ones first in the order they would be tried, with its price and the reasons any is
    /// excluded.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct Estimate {
        /// Images asked for.
        pub(crate) images: u32,
        /// The unit eligible candidates were compared in.
        pub(crate) comparison: Value,
        /// Every candidate: provider, model, the calls it would send, price, eligibility and
        /// exclusions.
        pub(crate) candidates: Vec<Value>,
        /// Remarks on the whole estimate.
        pub(crate) notes: Vec<String>,
        /// Providers whose catalog could not be fetched.
        pub(crate) catalog_failures: Vec<CatalogFailure>,
        /// The run budget, when there is one.
        #[schema(nullable)]
        pub(crate) budget: Option<Value>,
    }

    /// A provider whose catalog could not be fetched.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct CatalogFailure {
        /// The provider.
        pub(crate) provider: String,
        /// What went wrong.
        pub(crate) message: String,
    }

    /// How spend is grouped.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum SpendBy {
        /// By provider (the default).
        Provider,
        /// By provider and model.
        Model,
        /// By UTC day.
        Day,
        /// By provider and UTC day.
        ProviderDay,
    }

    /// What charged jobs cost, from the ledger.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct SpendResponse {
        /// Always `list`.
        #[schema(example = "list")]
        pub(crate) object: String,
        /// The grouping.
        pub(crate) by: SpendBy,
        /// One row per group.
        pub(crate) data: Vec<SpendRow>,
    }

    /// One group's spend.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct SpendRow {
        /// The provider (grouped by provider or model).
        #[schema(nullable)]
        pub(crate) provider: Option<String>,
        /// The model (grouped by model).
        #[schema(nullable)]
        pub(crate) model: Option<String>,
        /// The UTC day, `YYYY-MM-DD` (grouped by day).
        #[schema(nullable)]
        pub(crate) day: Option<String>,
        /// Credits charged.
        pub(crate) credits: f64,
        /// How many charged jobs.
        pub(crate) jobs: u64,
    }

    /// Every model, in OpenAI's list shape.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct ModelList {
        /// Always `list`.
        #[schema(example = "list")]
        pub(crate) object: String,
        /// The models.
        pub(crate) data: Vec<Model>,
        /// Providers whose catalog could not be fetched.
        pub(crate) imagegen: ModelListExtension,
    }

    /// The `imagegen` object of the model list.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct ModelListExtension {
        /// Providers whose catalog could not be fetched.
        pub(crate) catalog_failures: Vec<CatalogFailure>,
    }

    /// A model, in OpenAI's shape.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct Model {
        /// `provider/model`: what `model` takes.
        #[schema(example = "kolbo/z-image/turbo")]
        pub(crate) id: String,
        /// Always `model`.
        #[schema(example = "model")]
        pub(crate) object: String,
        /// When the gateway started, in seconds since the Unix epoch.
        pub(crate) created: u64,
        /// The provider.
        pub(crate) owned_by: String,
        /// Price and capabilities.
        pub(crate) imagegen: ModelDetails,
    }

    /// A model's price and capabilities.
    #[derive(Serialize, ToSchema)]
    pub(crate) struct ModelDetails {
        /// The provider.
        pub(crate) provider: String,
        /// The provider's id of the model.
        pub(crate) model: String,
        /// A human name, when the provider gives one.
        #[schema(nullable)]
        pub(crate) display_name: Option<String>,
        /// Credits per image at the model's default quality.
        pub(crate) credits_per_image: f64,
        /// Dollars per image, when the provider's credit worth is known.
        #[schema(nullable)]
        pub(crate) usd_per_image: Option<f64>,
        /// The full price table.
        pub(crate) price: Value,
        /// Qualities, shapes, styles and limits.
        pub(crate) capabilities: Value,
        /// Kept by the provider for backwards compatibility only.
        pub(crate) deprecated: bool,
        /// Recommended by the provider.
        pub(crate) recommended: bool,
        /// Typical seconds to a finished image, when known.
        #[schema(nullable)]
        pub(crate) typical_seconds: Option<u32>,
    }
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::HttpMethod;

    use super::*;

    /// The OpenAPI form of an axum route path: `{*id}` (a wildcard) is `{id}`.
    fn openapi_path(route: &str) -> String {
        route.replace("{*", "{")
    }

    fn method_of(method: &axum::http::Method) -> HttpMethod {
        match method.as_str() {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            other => panic!("no OpenAPI method for {other}"),
        }
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = document();
        let routes = crate::server::route_table();
        for route in &routes {
            let path = openapi_path(route.path);
            let item = doc
                .paths
                .paths
                .get(&path)
                .unwrap_or_else(|| panic!("{path} has no #[utoipa::path]"));
            let operation = match method_of(&route.method) {
                HttpMethod::Get => item.get.as_ref(),
                HttpMethod::Post => item.post.as_ref(),
                HttpMethod::Put => item.put.as_ref(),
                HttpMethod::Patch => item.patch.as_ref(),
                HttpMethod::Delete => item.delete.as_ref(),
                _ => None,
            };
            assert!(
                operation.is_some(),
                "{} {path} is not documented",
                route.method
            );
        }
        for path in doc.paths.paths.keys() {
            assert!(
                routes.iter().any(|r| openapi_path(r.path) == *path),
                "{path} is documented but not routed"
            );
        }
    }

    #[test]
    fn the_document_names_itself_and_the_bearer_scheme() {
        let doc = document();
        assert_eq!(doc.info.title, "imagegen gateway");
        assert_eq!(doc.info.version, env!("CARGO_PKG_VERSION"));
        assert!(doc.servers.is_none());
        let schemes = &doc.components.as_ref().unwrap().security_schemes;
        assert!(schemes.contains_key(BEARER));
    }
}

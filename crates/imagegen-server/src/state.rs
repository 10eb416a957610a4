//! [`AppState`]: what every handler shares (the client, the ledger, the image store, the
//! access rule, the clock), and the gateway's own base URL as a request sees it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::HOST;
use imagegen::Client;
use imagegen::core::{SharedClock, unix_millis};
use imagegen_ledger::Ledger;
use url::Url;

use crate::auth::Auth;
use crate::inflight::InFlight;
use crate::jobs::Jobs;
use crate::key_limit::KeyLimit;
use crate::request_id::RequestIds;
use crate::store::ImageStore;

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) client: Client,
    pub(crate) ledger: Arc<dyn Ledger>,
    pub(crate) store: ImageStore,
    pub(crate) auth: Auth,
    pub(crate) ids: RequestIds,
    pub(crate) inflight: InFlight,
    /// The generations in flight per caller, and the most allowed.
    pub(crate) key_limit: KeyLimit,
    /// The generations started with `POST /v1/generations`.
    pub(crate) jobs: Jobs,
    /// This gateway's id among those sharing the ledger: what its leases are held by.
    pub(crate) instance: String,
    /// How long its leases last unless renewed.
    pub(crate) job_lease: std::time::Duration,
    /// How long an MCP tool call waits for its images before answering `pending`.
    pub(crate) mcp_wait_limit: std::time::Duration,
    /// The generations it took over from a gateway that died, until answered.
    pub(crate) adopted: crate::leases::Adopted,
    pub(crate) clock: SharedClock,
    /// Where image URLs point when configured (ends with `/`).
    pub(crate) public_url: Option<Url>,
    /// The bound address, for image URLs when a request names no host.
    pub(crate) local_addr: SocketAddr,
    pub(crate) max_body_bytes: usize,
    /// The budget callers without a key draw on.
    pub(crate) local_budget: Option<String>,
    /// When the gateway started, in seconds since the Unix epoch (the models' `created`).
    pub(crate) started_secs: u64,
    /// The Kolbo moodboards and visual DNAs the gallery's form offers, read now and then.
    pub(crate) kolbo_library: crate::gallery::generate::KolboLibrary,
}

impl AppState {
    /// Milliseconds since the Unix epoch, on the gateway's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        unix_millis(self.clock.wall_time())
    }

    /// The gateway's root as the caller reached it (ends with `/`): the public URL when
    /// configured, else `http://` and the request's `Host`, else the bound address.
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.to_string();
        }
        headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|host| Url::parse(&format!("http://{host}/")).ok())
            // Only a bare host and port: nothing a header could smuggle in.
            .filter(|url| {
                url.path() == "/"
                    && url.query().is_none()
                    && url.username().is_empty()
                    && url.password().is_none()
            })
            .map_or_else(
                || format!("http://{}/", self.local_addr),
                |url| format!("{}/", url.origin().ascii_serialization()),
            )
    }

    /// The URL of the stored image `file_name` for a request with `headers`.
    pub(crate) fn file_url(&self, headers: &HeaderMap, file_name: &str) -> String {
        format!("{}v1/files/{file_name}", self.base_url(headers))
    }
}

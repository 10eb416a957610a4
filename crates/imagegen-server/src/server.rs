//! [`serve`]: the gateway started on its own task, its routes, and [`RunningServer`], the
//! handle that says where it listens and stops it gracefully.
//!
//! Stopping ([`RunningServer::shutdown`], or a [`ShutdownHandle`] from anywhere) stops
//! accepting connections, lets every request in flight finish, then waits for every
//! generation still running on its own task (one whose caller hung up) to be recorded
//! and saved: no paid job is left unrecorded by a shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use imagegen::core::unix_millis;
use imagegen_ledger::Ledger;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::auth::Auth;
use crate::config::{LedgerSource, ServerConfig};
use crate::error::ServerError;
use crate::inflight::InFlight;
use crate::jobs::Jobs;
use crate::key_limit::KeyLimit;
use crate::openai_error::ApiError;
use crate::request_id::RequestIds;
use crate::state::AppState;
use crate::store::{ImageStore, default_image_dir};
use crate::{
    estimate, files, gallery, generations, jobs, leases, maintenance, models, openapi, spend,
};

/// Starts the gateway described by `config` on a task of its own and returns once it
/// listens: the ledger is open, the image directory exists, the access rule is settled
/// (no live gateway key: loopback only, else [`ServerError::NoKeysOffLoopback`]) and
/// the address is bound. Needs a Tokio runtime with I/O and time.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = imagegen::Client::from_env()?;
/// let server = imagegen_server::serve(
///     imagegen_server::ServerConfig::new(client).listen("127.0.0.1:0".parse()?),
/// )
/// .await?;
/// println!("listening on {}", server.url());
/// // An OpenAI client with base_url = server.url() + "/v1" generates through it.
/// server.shutdown().await?;
/// # Ok(()) }
/// ```
pub async fn serve(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let ServerConfig {
        client,
        listen,
        ledger,
        image_dir,
        public_url,
        max_body_bytes,
        local_budget,
        max_in_flight_per_key,
        job_lease,
        mcp_wait_limit,
        clock,
    } = config;
    let public_url = public_url.map(checked_public_url).transpose()?;
    let temporary = match ledger {
        LedgerSource::Temporary => Some(
            tempfile::Builder::new()
                .prefix("imagegen-serve-")
                .tempdir()
                .map_err(ServerError::Temporary)?,
        ),
        _ => None,
    };
    let (ledger, owns_ledger): (Arc<dyn Ledger>, bool) = match ledger {
        LedgerSource::Default => {
            let path = imagegen_ledger::default_sqlite_path()?;
            (
                imagegen_ledger::open(&path.display().to_string()).await?,
                true,
            )
        }
        LedgerSource::Url(url) => (imagegen_ledger::open(&url).await?, true),
        LedgerSource::Open(ledger) => (ledger, false),
        LedgerSource::Temporary => {
            let dir = temporary
                .as_ref()
                .map_or_else(std::env::temp_dir, |t| t.path().to_path_buf());
            let path = dir.join(imagegen_ledger::DEFAULT_FILE_NAME);
            (
                imagegen_ledger::open(&path.display().to_string()).await?,
                true,
            )
        }
    };
    let image_dir = match (image_dir, &temporary) {
        (Some(dir), _) => dir,
        (None, Some(temporary)) => temporary.path().join("images"),
        (None, None) => default_image_dir()?,
    };
    let store = ImageStore::open(&image_dir).map_err(|source| ServerError::ImageDir {
        path: image_dir.clone(),
        source,
    })?;
    // A `running` key left by a gateway that crashed answers 409 no longer.
    maintenance::prune(ledger.as_ref(), &clock).await;
    let auth = Auth::new(listen, Arc::clone(&ledger), public_url.as_ref()).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: listen,
        source,
    })?;
    let started_ms = unix_millis(clock.wall_time());
    let instance = leases::instance_id();
    let state = Arc::new(AppState {
        client,
        ledger,
        store,
        auth,
        ids: RequestIds::new(&instance),
        inflight: InFlight::new(),
        key_limit: KeyLimit::new(max_in_flight_per_key),
        jobs: Jobs::default(),
        instance,
        job_lease,
        mcp_wait_limit,
        adopted: leases::Adopted::default(),
        clock,
        public_url,
        local_addr,
        max_body_bytes,
        local_budget,
        started_secs: started_ms / 1000,
        kolbo_library: Default::default(),
    });
    let (stop, mut stopping) = watch::channel(false);
    let upkeep = maintenance::spawn(
        Arc::clone(&state.ledger),
        Arc::clone(&state.clock),
        stopping.clone(),
    );
    let keeper = leases::spawn(Arc::clone(&state), stopping.clone());
    let app = routes(Arc::clone(&state));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped handle stops the server too.
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(addr = %local_addr, instance = %state.instance, keys = state.auth.requires_keys(), "the gateway listens");
    Ok(RunningServer {
        local_addr,
        state,
        shutdown: ShutdownHandle {
            stop: Arc::new(stop),
        },
        task,
        upkeep,
        keeper,
        owns_ledger,
        temporary,
    })
}

/// One route: a method, the path as axum matches it, and its handler.
pub(crate) struct Route {
    /// The method.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the test that every route is documented")
    )]
    pub(crate) method: Method,
    /// The path (`{name}` a segment, `{*name}` the rest).
    pub(crate) path: &'static str,
    handler: MethodRouter<Arc<AppState>>,
}

impl Route {
    fn get<H, T>(path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        Self {
            method: Method::GET,
            path,
            handler: get(handler),
        }
    }

    fn post<H, T>(path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        Self {
            method: Method::POST,
            path,
            handler: post(handler),
        }
    }
}

/// Every route, in one list: the router is built from it, and a test checks that the
/// OpenAPI document ([`crate::openapi`]) describes each, so add a route here with its
/// `#[utoipa::path]`.
pub(crate) fn route_table() -> Vec<Route> {
    vec![
        Route::post("/v1/images/generations", generations::create),
        Route::post("/v1/estimate", estimate::create),
        Route::post("/v1/generations", jobs::create),
        Route::get("/v1/generations/{id}", jobs::get),
        Route::get("/v1/generations/{id}/events", jobs::events),
        Route::get("/v1/spend", spend::get),
        Route::get("/v1/models", models::list),
        Route::get("/v1/models/{*id}", models::retrieve),
        Route::get("/v1/files/{name}", files::get),
        Route::get("/openapi.json", openapi::get),
    ]
}

/// The routes: the API's table, and the gallery's HTML pages beside it.
fn routes(state: Arc<AppState>) -> Router {
    route_table()
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, route.handler)
        })
        .merge(gallery::router())
        .merge(crate::mcp::http::router(&state))
        .fallback(unknown_url)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// 404 in OpenAI's shape and words.
async fn unknown_url(method: Method, uri: Uri) -> Response {
    ApiError::not_found(format!("Invalid URL ({method} {})", uri.path())).into_response()
}

/// 405 in OpenAI's shape.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::openai_error::INVALID_REQUEST,
        format!("Method not allowed ({method} {})", uri.path()),
    )
    .into_response()
}

/// A public URL that can prefix image URLs: http or https, a host, no credentials,
/// query or fragment; its path made to end with `/`.
fn checked_public_url(mut url: Url) -> Result<Url, ServerError> {
    let mut shown = url.clone();
    // Never repeat a password in an error.
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    let refuse = |reason| ServerError::PublicUrl {
        url: shown.to_string(),
        reason,
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("use an http:// or https:// URL"));
    }
    if url.host().is_none() {
        return Err(refuse("it names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it carries credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("it has a query or a fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Stops a [`RunningServer`] from anywhere (a signal handler, another task); cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    stop: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Stops accepting connections; requests and generations in flight finish.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// The gateway, running; see the [module docs](self).
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: ShutdownHandle,
    task: JoinHandle<io::Result<()>>,
    /// The background upkeep ([`maintenance`]), ended by the same stop.
    upkeep: JoinHandle<()>,
    /// The lease keeper ([`leases`]), ended by the same stop.
    keeper: JoinHandle<()>,
    owns_ledger: bool,
    temporary: Option<TempDir>,
}

impl RunningServer {
    /// The address it listens on (the port chosen when it was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR`: its root (an OpenAI client's `base_url` is this and `/v1`).
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The ledger it records in.
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.state.ledger
    }

    /// Where it keeps images.
    pub fn image_store(&self) -> &ImageStore {
        &self.state.store
    }

    /// Whether requests need a gateway key (the ledger has a live one); otherwise it
    /// serves this machine only, without keys.
    pub fn requires_keys(&self) -> bool {
        self.state.auth.requires_keys()
    }

    /// Whether its ledger and images are in a temporary folder removed when it stops.
    pub fn is_ephemeral(&self) -> bool {
        self.temporary.is_some()
    }

    /// Its instance id: what its leases in the ledger are held by (see
    /// [`ServerConfig::with_job_lease`]).
    pub fn instance(&self) -> &str {
        &self.state.instance
    }

    /// How many generations are running.
    pub fn generations_in_flight(&self) -> usize {
        self.state.inflight.count()
    }

    /// A handle that stops it from anywhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Stops it gracefully and waits: no new connections, requests in flight answered,
    /// every generation still running recorded and saved.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.shutdown.shutdown();
        self.stopped().await
    }

    /// Waits until it has stopped (after [`ShutdownHandle::shutdown`]) and every
    /// generation still running has been recorded and saved.
    pub async fn stopped(self) -> Result<(), ServerError> {
        let served = self.task.await;
        self.state.inflight.idle().await;
        // It stops with the server; a prune it was running finishes first.
        let _ = self.upkeep.await;
        let _ = self.keeper.await;
        // What it leaves open (a job whose images could not be fetched) is taken over
        // by another gateway on the ledger at once, or by this one when it starts again.
        match self.state.ledger.release_leases(&self.state.instance).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "leases released for another gateway"),
            Err(e) => {
                tracing::warn!(error = %e, "leases could not be released; they run out on their own")
            }
        }
        if self.owns_ledger {
            self.state.ledger.close().await;
        }
        drop(self.temporary);
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Serve(e)),
            Err(e) => Err(ServerError::Serve(io::Error::other(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_checked_and_end_with_a_slash() {
        let url = |text: &str| checked_public_url(text.parse().unwrap());
        assert_eq!(
            url("https://images.example.org/gw").unwrap().as_str(),
            "https://images.example.org/gw/"
        );
        assert_eq!(
            url("http://127.0.0.1:8787").unwrap().as_str(),
            "http://127.0.0.1:8787/"
        );
        for bad in [
            "ftp://x/",
            "https://u:secret@x/",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            let error = url(bad).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{error}");
        }
    }
}

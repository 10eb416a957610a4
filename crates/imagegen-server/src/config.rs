//! [`ServerConfig`]: what [`serve`](crate::serve) needs: the client that generates, the
//! address to listen on, the ledger, where images are kept, the public URL, limits and
//! the clock.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use imagegen::Client;
use imagegen::core::{SharedClock, TokioClock};
use imagegen_ledger::Ledger;
use url::Url;

/// The address `imagegen serve` listens on by default: port 8787 of the loopback
/// interface.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8787);

/// The largest request body taken by default (1 MiB): a prompt has at most 32,000
/// characters.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// The most generations one caller (a gateway key, or this machine's callers without
/// one) has in flight by default; one more is refused with 429.
pub const DEFAULT_MAX_IN_FLIGHT_PER_KEY: usize = 4;

/// How long a gateway's lease on the jobs it waits on lasts unless renewed (see
/// [`ServerConfig::with_job_lease`]).
pub const DEFAULT_JOB_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the gateway's ledger comes from.
#[derive(Clone)]
pub(crate) enum LedgerSource {
    /// The default SQLite file in the user's data directory.
    Default,
    /// A ledger URL (`sqlite://PATH`, a path, `postgres://…`).
    Url(String),
    /// A ledger already open (not closed by the server).
    Open(Arc<dyn Ledger>),
    /// A SQLite file in a temporary folder, removed when the server stops.
    Temporary,
}

impl fmt::Debug for LedgerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("Default"),
            // A database URL may carry a password.
            Self::Url(url) => f
                .debug_tuple("Url")
                .field(&imagegen_ledger::redact_url(url))
                .finish(),
            Self::Open(ledger) => f.debug_tuple("Open").field(&ledger.url()).finish(),
            Self::Temporary => f.write_str("Temporary"),
        }
    }
}

/// How to run the gateway.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use imagegen_server::{ServerConfig, serve};
/// let client = imagegen::Client::from_env()?;
/// let config = ServerConfig::new(client)
///     .listen("127.0.0.1:0".parse()?)
///     .with_ledger_url("sqlite:///var/lib/imagegen/ledger.sqlite3")
///     .with_image_dir("/var/lib/imagegen/images");
/// let server = serve(config).await?;
/// println!("listening on http://{}", server.local_addr());
/// server.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct ServerConfig {
    pub(crate) client: Client,
    pub(crate) listen: SocketAddr,
    pub(crate) ledger: LedgerSource,
    pub(crate) image_dir: Option<PathBuf>,
    pub(crate) public_url: Option<Url>,
    pub(crate) max_body_bytes: usize,
    pub(crate) local_budget: Option<String>,
    pub(crate) max_in_flight_per_key: usize,
    pub(crate) job_lease: std::time::Duration,
    pub(crate) mcp_wait_limit: std::time::Duration,
    pub(crate) clock: SharedClock,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A public URL given with credentials is refused by `serve`; never show them here.
        let public_url = self.public_url.as_ref().map(|url| {
            let mut shown = url.clone();
            let _ = shown.set_password(None);
            let _ = shown.set_username("");
            shown.to_string()
        });
        f.debug_struct("ServerConfig")
            .field("client", &self.client)
            .field("listen", &self.listen)
            .field("ledger", &self.ledger)
            .field("image_dir", &self.image_dir)
            .field("public_url", &public_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("local_budget", &self.local_budget)
            .field("max_in_flight_per_key", &self.max_in_flight_per_key)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// A gateway generating with `client` (from the environment, a builder, or the
    /// simulator), on [`DEFAULT_LISTEN`], with the default ledger and image directory.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            listen: DEFAULT_LISTEN,
            ledger: LedgerSource::Default,
            image_dir: None,
            public_url: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            local_budget: None,
            max_in_flight_per_key: DEFAULT_MAX_IN_FLIGHT_PER_KEY,
            job_lease: DEFAULT_JOB_LEASE,
            mcp_wait_limit: crate::mcp::DEFAULT_WAIT_LIMIT,
            clock: TokioClock::shared(),
        }
    }

    /// A gateway generating with a client made beforehand: the same as
    /// [`ServerConfig::new`], named for tests and embedders that build the client
    /// themselves (a simulator's, with its faults).
    pub fn with_client(client: Client) -> Self {
        Self::new(client)
    }

    /// Listens on `addr`; port 0 picks a free port ([`RunningServer::local_addr`]
    /// tells which).
    ///
    /// [`RunningServer::local_addr`]: crate::RunningServer::local_addr
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Records in the ledger at `url` (`sqlite://PATH`, a path, `postgres://…`).
    pub fn with_ledger_url(mut self, url: impl Into<String>) -> Self {
        self.ledger = LedgerSource::Url(url.into());
        self
    }

    /// Records in `ledger`, already open (the server does not close it).
    pub fn with_ledger(mut self, ledger: Arc<dyn Ledger>) -> Self {
        self.ledger = LedgerSource::Open(ledger);
        self
    }

    /// Records in a ledger in a temporary folder, removed when the server stops, and
    /// keeps images there too unless [`ServerConfig::with_image_dir`] says otherwise: for
    /// the built-in simulator, whose jobs end with the process.
    pub fn ephemeral(mut self) -> Self {
        self.ledger = LedgerSource::Temporary;
        self
    }

    /// Keeps images in `dir` (default: [`default_image_dir`](crate::store::default_image_dir)).
    pub fn with_image_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.image_dir = Some(dir.into());
        self
    }

    /// Gives out image URLs under `url` (`https://images.example.org/`), as the gateway
    /// is reached from outside (behind a proxy); default: `http://` and the request's
    /// `Host`.
    pub fn with_public_url(mut self, url: Url) -> Self {
        self.public_url = Some(url);
        self
    }

    /// Takes request bodies of at most `bytes` (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes.max(1);
        self
    }

    /// Callers without a key draw on the ledger budget `name` (create it with
    /// [`Ledger::set_budget`]): every request holds its worst case there first, and is
    /// refused with 402 when it does not fit. Callers with a key draw on their key's.
    pub fn with_local_budget(mut self, name: impl Into<String>) -> Self {
        self.local_budget = Some(name.into());
        self
    }

    /// Runs at most `max` (at least one) generations at once per caller (default
    /// [`DEFAULT_MAX_IN_FLIGHT_PER_KEY`]): one more is refused with 429
    /// `too_many_requests_in_flight` and `Retry-After: 1`, nothing sent or charged.
    pub fn with_max_in_flight_per_key(mut self, max: usize) -> Self {
        self.max_in_flight_per_key = max.max(1);
        self
    }

    /// How long this gateway's lease on each job it waits on (and each background
    /// generation it runs) lasts unless renewed (default [`DEFAULT_JOB_LEASE`], at least
    /// a second). It renews its leases a third of the way through. When it dies, another
    /// gateway on the same ledger claims its open jobs once their lease ran out, waits on
    /// them and keeps their images: never submitting them again.
    pub fn with_job_lease(mut self, lease: std::time::Duration) -> Self {
        self.job_lease = lease.max(std::time::Duration::from_secs(1));
        self
    }

    /// How long an MCP tool call at `/mcp` waits for its images (default
    /// [`DEFAULT_WAIT_LIMIT`](crate::mcp::DEFAULT_WAIT_LIMIT), at least a millisecond);
    /// past it, the call answers `pending` with the paid job ids, for `get_generation`.
    pub fn with_mcp_wait_limit(mut self, limit: std::time::Duration) -> Self {
        self.mcp_wait_limit = limit.max(std::time::Duration::from_millis(1));
        self
    }

    /// Stamps responses (`created`) with `clock`'s wall time.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

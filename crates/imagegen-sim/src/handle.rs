//! Starting the simulator and the handle that controls a running one.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use imagegen_core::SharedClock;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{KoalaAccount, KoalaPlan, KolboAccount, SimConfig};
use crate::error::SimError;
use crate::fault::{Faults, lock};
use crate::interceptor::{InterceptContext, intercept, not_found};
use crate::koala::KoalaWallet;
use crate::kolbo::Wallet;
use crate::log::{ListenerKind, RequestLog};
use crate::state::SimState;
use crate::{cdn, koala, kolbo};

/// Starts a simulator: binds the API and CDN listeners and serves them on the current
/// Tokio runtime until [`SimHandle::shutdown`] (or until the handle is dropped).
///
/// ```no_run
/// # async fn demo() -> Result<(), imagegen_sim::SimError> {
/// let sim = imagegen_sim::start(imagegen_sim::SimConfig::default()).await?;
/// println!("KOLBO_BASE_URL={}", sim.kolbo_base_url());
/// sim.shutdown().await;
/// # Ok(()) }
/// ```
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    check(&config)?;
    let api_addr = SocketAddr::new(config.host, config.port);
    let cdn_addr = SocketAddr::new(config.host, config.cdn_port);
    let api = TcpListener::bind(api_addr)
        .await
        .map_err(|source| SimError::Bind {
            listener: "API",
            addr: api_addr,
            source,
        })?;
    let cdn = TcpListener::bind(cdn_addr)
        .await
        .map_err(|source| SimError::Bind {
            listener: "CDN",
            addr: cdn_addr,
            source,
        })?;
    let bound = |l: &TcpListener, name: &'static str, addr| {
        l.local_addr().map_err(|source| SimError::Bind {
            listener: name,
            addr,
            source,
        })
    };
    let api_addr = bound(&api, "API", api_addr)?;
    let cdn_addr = bound(&cdn, "CDN", cdn_addr)?;
    let (stop, stopped) = watch::channel(false);
    let state = Arc::new(SimState::new(
        config,
        format!("http://{api_addr}"),
        format!("http://{cdn_addr}"),
        stopped.clone(),
    ));

    let api_router = kolbo::routes::router()
        .merge(koala::routes::router())
        .fallback(not_found)
        .layer(from_fn_with_state(
            InterceptContext {
                sim: Arc::clone(&state),
                listener: ListenerKind::Api,
            },
            intercept,
        ))
        .with_state(Arc::clone(&state));
    let cdn_router = cdn::router()
        .layer(from_fn_with_state(
            InterceptContext {
                sim: Arc::clone(&state),
                listener: ListenerKind::Cdn,
            },
            intercept,
        ))
        .with_state(Arc::clone(&state));

    let idle_timeout = state.config.idle_timeout;
    let serve = |listener: TcpListener, router: axum::Router| {
        tokio::spawn(crate::serve::serve(
            listener,
            router,
            idle_timeout,
            stopped.clone(),
        ))
    };
    let tasks = vec![serve(api, api_router), serve(cdn, cdn_router)];
    tracing::info!(api = %api_addr, cdn = %cdn_addr, "imagegen simulator started");
    Ok(SimHandle {
        state,
        api_addr,
        cdn_addr,
        stop,
        tasks,
    })
}

fn check(config: &SimConfig) -> Result<(), SimError> {
    if config.kolbo.accounts.is_empty() {
        return Err(SimError::Config(
            "at least one Kolbo account is needed".into(),
        ));
    }
    if config.koala.accounts.is_empty() {
        return Err(SimError::Config(
            "at least one KoalaImages account is needed".into(),
        ));
    }
    let mut keys = HashSet::new();
    for key in config
        .kolbo
        .accounts
        .iter()
        .map(|a| &a.key)
        .chain(config.koala.accounts.iter().map(|a| &a.key))
    {
        if key.trim().is_empty() {
            return Err(SimError::Config("an account has an empty API key".into()));
        }
        if !keys.insert(key) {
            return Err(SimError::Config(
                "two accounts share an API key; give each its own".into(),
            ));
        }
    }
    if !(200..=599).contains(&config.kolbo.insufficient_credits_status) {
        return Err(SimError::Config(format!(
            "insufficient_credits_status {} is not an HTTP error status",
            config.kolbo.insufficient_credits_status
        )));
    }
    Ok(())
}

/// A running simulator. Dropping it stops the listeners; [`SimHandle::shutdown`] stops
/// them gracefully and waits.
#[derive(Debug)]
pub struct SimHandle {
    state: Arc<SimState>,
    api_addr: SocketAddr,
    cdn_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// The API listener's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The CDN listener's address (another origin).
    pub fn cdn_addr(&self) -> SocketAddr {
        self.cdn_addr
    }

    /// What `KOLBO_BASE_URL` takes: `http://127.0.0.1:PORT/api` (routes under `/v1/...`).
    pub fn kolbo_base_url(&self) -> String {
        format!("{}/api", self.state.api_origin)
    }

    /// What `KOALA_BASE_URL` takes: `http://127.0.0.1:PORT/api` (routes
    /// `/image-generation/` and `/image/<id>.jpg`).
    pub fn koala_base_url(&self) -> String {
        format!("{}/api", self.state.api_origin)
    }

    /// `http://127.0.0.1:PORT` of the API listener.
    pub fn api_origin(&self) -> &str {
        &self.state.api_origin
    }

    /// `http://127.0.0.1:PORT` of the CDN listener, where Kolbo image URLs point.
    pub fn cdn_origin(&self) -> &str {
        &self.state.cdn_origin
    }

    /// The first Kolbo account's key (`kolbo_live_` + 40 hex).
    pub fn kolbo_api_key(&self) -> &str {
        self.state
            .config
            .kolbo
            .accounts
            .first()
            .map_or("", |a| a.key.as_str())
    }

    /// The first KoalaImages account's key (a UUID).
    pub fn koala_api_key(&self) -> &str {
        self.state
            .config
            .koala
            .accounts
            .first()
            .map_or("", |a| a.key.as_str())
    }

    /// Every request received so far.
    pub fn request_log(&self) -> &RequestLog {
        &self.state.log
    }

    /// Every generation charged so far (up to the last 200,000), with its refund if any:
    /// the provider's side of what was paid.
    pub fn charges(&self) -> Vec<crate::Charge> {
        self.state.charges.entries()
    }

    /// The active faults; inject more at any time.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The simulator's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.state.clock
    }

    /// A Kolbo key's total balance (after any refunds now due).
    pub fn kolbo_credits(&self, key: &str) -> Option<f64> {
        let mut kolbo = lock(&self.state.kolbo);
        kolbo.settle(self.state.now());
        kolbo.wallets.get(key).map(|w| w.total().to_f64())
    }

    /// Sets a Kolbo key's balance (all in the plan bucket); `false` for an unknown key.
    pub fn set_kolbo_credits(&self, key: &str, credits: f64) -> bool {
        let mut kolbo = lock(&self.state.kolbo);
        match kolbo.wallets.get_mut(key) {
            Some(wallet) => {
                *wallet = Wallet::from_account(&KolboAccount::with_credits(key, credits));
                true
            }
            None => false,
        }
    }

    /// Adds (or replaces) a Kolbo account.
    pub fn add_kolbo_account(&self, account: KolboAccount) {
        lock(&self.state.kolbo)
            .wallets
            .insert(account.key.clone(), Wallet::from_account(&account));
    }

    /// A KoalaImages key's balance (after any refunds now due).
    pub fn koala_credits(&self, key: &str) -> Option<u64> {
        let mut koala = lock(&self.state.koala);
        koala.settle(self.state.now());
        koala.accounts.get(key).map(|w| w.credits)
    }

    /// Sets a KoalaImages key's balance; `false` for an unknown key.
    pub fn set_koala_credits(&self, key: &str, credits: u64) -> bool {
        match lock(&self.state.koala).accounts.get_mut(key) {
            Some(w) => {
                w.credits = credits;
                true
            }
            None => false,
        }
    }

    /// Moves a KoalaImages key to another plan; `false` for an unknown key.
    pub fn set_koala_plan(&self, key: &str, plan: KoalaPlan) -> bool {
        match lock(&self.state.koala).accounts.get_mut(key) {
            Some(w) => {
                w.plan = plan;
                true
            }
            None => false,
        }
    }

    /// Adds (or replaces) a KoalaImages account.
    pub fn add_koala_account(&self, account: KoalaAccount) {
        lock(&self.state.koala).accounts.insert(
            account.key.clone(),
            KoalaWallet {
                plan: account.plan,
                credits: account.credits,
            },
        );
    }

    /// When a Kolbo generation ends (or ended), on the simulator's clock: the truth a
    /// client can only learn by polling, for benchmarks that measure how soon it does.
    /// `None` for an id the simulator does not hold.
    pub fn kolbo_job_ends_at(&self, generation_id: &str) -> Option<Duration> {
        lock(&self.state.kolbo)
            .jobs
            .get(generation_id)
            .map(crate::kolbo::Job::ended_at)
    }

    /// How many Kolbo generations are stored (bounded by TTL and `max_jobs`).
    pub fn stored_jobs(&self) -> usize {
        lock(&self.state.kolbo).jobs.len()
    }

    /// How many images are stored (KoalaImages images, Kolbo outputs, library images).
    pub fn stored_images(&self) -> usize {
        self.state.images.len()
    }

    /// Stops accepting connections, lets requests in flight finish (a KoalaImages image
    /// request still waiting is answered 503) and waits up to five seconds for both
    /// listeners to stop.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

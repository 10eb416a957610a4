//! The simulator's shared state: configuration, clock, stores, accounts, log and faults.

use crate::charges::ChargeBook;
use std::sync::Mutex;
use std::time::Duration;

use imagegen_core::SharedClock;
use tokio::sync::watch;

use crate::config::SimConfig;
use crate::fault::{Faults, lock};
use crate::image_store::ImageStore;
use crate::koala::KoalaState;
use crate::kolbo::KolboState;
use crate::kolbo::catalog::{self, KolboModel};
use crate::kolbo::library::Library;
use crate::log::{Credential, RequestLog};
use crate::wallclock;

#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) config: SimConfig,
    pub(crate) clock: SharedClock,
    /// `http://127.0.0.1:PORT` of the API listener.
    pub(crate) api_origin: String,
    /// `http://127.0.0.1:PORT` of the CDN listener.
    pub(crate) cdn_origin: String,
    pub(crate) log: RequestLog,
    pub(crate) faults: Faults,
    pub(crate) charges: ChargeBook,
    pub(crate) images: ImageStore,
    pub(crate) kolbo: Mutex<KolboState>,
    pub(crate) koala: Mutex<KoalaState>,
    pub(crate) kolbo_catalog: Vec<KolboModel>,
    pub(crate) library: Library,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl SimState {
    pub(crate) fn new(
        config: SimConfig,
        api_origin: String,
        cdn_origin: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let images = ImageStore::new(
            config.max_jobs.saturating_mul(4).max(64),
            config.image_cache_bytes,
        );
        let mut kolbo_catalog = catalog::catalog(&cdn_origin);
        if config.kolbo.list_smart_select_router {
            kolbo_catalog.insert(0, catalog::smart_select_entry(&cdn_origin));
        }
        let library = Library::new(&cdn_origin);
        library.register_images(&images, &kolbo_catalog, config.image_size);
        Self {
            clock: config.clock.clone(),
            log: RequestLog::new(config.request_log_capacity),
            faults: Faults::new(config.faults.clone()),
            charges: ChargeBook::default(),
            kolbo: Mutex::new(KolboState::new(&config)),
            koala: Mutex::new(KoalaState::new(&config)),
            images,
            kolbo_catalog,
            library,
            api_origin,
            cdn_origin,
            shutdown,
            config,
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    /// RFC 3339 wall time for a clock instant.
    pub(crate) fn wall(&self, at: Duration) -> String {
        wallclock::rfc3339(self.config.wall_epoch, at)
    }

    /// Sleeps on the simulator's clock; `false` when the simulator shut down first.
    pub(crate) async fn sleep(&self, duration: Duration) -> bool {
        if duration.is_zero() {
            return true;
        }
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = self.clock.sleep(duration) => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        }
    }

    /// Which of the simulator's keys a header value is.
    pub(crate) fn credential(&self, value: &str) -> Credential {
        if lock(&self.kolbo).has_key(value) {
            Credential::KolboKey
        } else if lock(&self.koala).has_key(value) {
            Credential::KoalaKey
        } else {
            Credential::Unknown
        }
    }
}

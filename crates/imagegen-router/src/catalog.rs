//! One catalog from every configured provider, cached for a time-to-live.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::lock::Mutex;
use imagegen_core::{ModelEntry, Provider, ProviderId, SharedClock};
use serde::Serialize;

/// A provider whose catalog could not be fetched: reported, not fatal.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogFailure {
    /// The provider.
    pub provider: ProviderId,
    /// What went wrong, as text.
    pub message: String,
    /// The typed error.
    #[serde(skip)]
    pub error: imagegen_core::Error,
}

/// The models of every configured provider, in provider order, with the providers whose
/// catalogs failed.
#[derive(Debug, Clone, Serialize)]
pub struct MergedCatalog {
    /// Every model, in provider order then the provider's order; one entry per
    /// (provider, model).
    pub entries: Vec<ModelEntry>,
    /// Providers whose catalog failed.
    pub failures: Vec<CatalogFailure>,
    /// When it was fetched, on the router's clock.
    #[serde(skip)]
    pub fetched_at: Duration,
}

impl MergedCatalog {
    /// Fetches every provider's catalog at once and merges them.
    ///
    /// An entry is filed under the provider that returned it, whatever its own
    /// `provider` field says; a model listed twice by one provider keeps its first entry.
    pub async fn fetch(providers: &[Arc<dyn Provider>], clock: &SharedClock) -> Self {
        let results = join_all(providers.iter().map(|p| p.catalog())).await;
        let mut entries: Vec<ModelEntry> = Vec::new();
        let mut failures = Vec::new();
        for (provider, result) in providers.iter().zip(results) {
            let id = provider.id();
            match result {
                Ok(models) => {
                    for mut entry in models {
                        entry.provider = id.clone();
                        let duplicate = entries
                            .iter()
                            .any(|e| e.provider == entry.provider && e.id == entry.id);
                        if !duplicate {
                            entries.push(entry);
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(provider = %id, %error, "catalog unavailable");
                    failures.push(CatalogFailure {
                        provider: id,
                        message: error.to_string(),
                        error,
                    });
                }
            }
        }
        Self {
            entries,
            failures,
            fetched_at: clock.now(),
        }
    }

    /// The entries of one provider.
    pub fn of_provider<'a>(
        &'a self,
        provider: &'a ProviderId,
    ) -> impl Iterator<Item = &'a ModelEntry> {
        self.entries.iter().filter(move |e| &e.provider == provider)
    }
}

/// How long a catalog with a failed provider is reused at most.
const FAILED_CATALOG_TTL: Duration = Duration::from_secs(60);

/// A [`MergedCatalog`] reused until its time-to-live passes; concurrent callers share one
/// fetch.
#[derive(Debug)]
pub(crate) struct CatalogCache {
    ttl: Duration,
    cached: Mutex<Option<Arc<MergedCatalog>>>,
}

impl CatalogCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// A catalog with failed providers is retried sooner: within a minute at most.
    fn ttl_of(&self, catalog: &MergedCatalog) -> Duration {
        if catalog.failures.is_empty() {
            self.ttl
        } else {
            self.ttl.min(FAILED_CATALOG_TTL)
        }
    }

    /// The cached catalog, fetched again when older than the time-to-live or when
    /// `refresh` is set. A catalog in which every provider failed is not kept.
    pub(crate) async fn get(
        &self,
        providers: &[Arc<dyn Provider>],
        clock: &SharedClock,
        refresh: bool,
    ) -> Arc<MergedCatalog> {
        let mut cached = self.cached.lock().await;
        if !refresh
            && let Some(catalog) = cached.as_ref()
            && clock.now().saturating_sub(catalog.fetched_at) < self.ttl_of(catalog)
        {
            return Arc::clone(catalog);
        }
        let fresh = Arc::new(MergedCatalog::fetch(providers, clock).await);
        *cached =
            (!fresh.entries.is_empty() || fresh.failures.is_empty()).then(|| Arc::clone(&fresh));
        fresh
    }
}

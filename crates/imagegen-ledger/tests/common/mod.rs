//! The shared harness: every store test is written once and run on SQLite (a file in a
//! temporary folder) and on PostgreSQL (a fresh database per test).

#![allow(dead_code, unreachable_pub)]

/// The throwaway PostgreSQL server (the ledger's `testing` feature).
pub use imagegen_ledger::testing as postgres;

use std::sync::Arc;

use imagegen_ledger::{Backend, Ledger, LedgerOptions};

/// One test's own, empty store.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// Which database.
    pub backend: Backend,
    /// The SQLite file's folder.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database's name.
    pg_name: Option<String>,
}

impl TestDb {
    /// A fresh store on `backend`.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}", dir.path().join("ledger.sqlite3").display());
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let (url, name) = postgres::fresh_database().await;
                Self {
                    url,
                    backend,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// Opens a ledger on it (a pool of 8).
    pub async fn open(&self) -> Arc<dyn Ledger> {
        self.open_with(&LedgerOptions::default().with_max_connections(8))
            .await
    }

    /// Opens a ledger on it with `options`.
    pub async fn open_with(&self, options: &LedgerOptions) -> Arc<dyn Ledger> {
        let ledger = imagegen_ledger::open_with(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("could not open {}: {e:?}", self.url));
        assert_eq!(ledger.backend(), self.backend);
        ledger
    }

    /// Removes it (a PostgreSQL database is dropped; a SQLite folder goes with `self`).
    pub async fn finish(self) {
        if let Some(name) = &self.pg_name {
            postgres::drop_database(name).await;
        }
    }
}

/// Runs `test` with a fresh ledger on `backend`.
pub async fn with_ledger<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<dyn Ledger>) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = TestDb::new(backend).await;
    let ledger = db.open().await;
    test(Arc::clone(&ledger)).await;
    ledger.close().await;
    db.finish().await;
}

/// Runs `test` with a fresh store on `backend`, for tests that open it themselves.
pub async fn with_db<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = TestDb>,
{
    let db = TestDb::new(backend).await;
    test(db).await.finish().await;
}

/// Declares, for each `async fn NAME(Arc<dyn Ledger>)`, the tests `NAME::sqlite` and
/// `NAME::postgres`.
#[macro_export]
macro_rules! on_both_ledgers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::with_ledger(imagegen_ledger::Backend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::with_ledger(imagegen_ledger::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

/// Declares, for each `async fn NAME(TestDb) -> TestDb`, the tests `NAME::sqlite` and
/// `NAME::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::common::with_db(imagegen_ledger::Backend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::common::with_db(imagegen_ledger::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

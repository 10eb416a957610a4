//! [`SqliteLedger`]: the ledger in one SQLite file, shared by the processes of one machine.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use imagegen_core::SharedClock;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Pool};

use crate::LedgerOptions;
use crate::target::redact_url;

type Db = sqlx::Sqlite;
type DbConn = SqliteConnection;
type DbRow = SqliteRow;
type Store = SqliteLedger;
const STORE_NAME: &str = "SqliteLedger";

const BACKEND: Backend = Backend::Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The ledger in a SQLite file: WAL mode (readers never wait for the writer), a busy
/// timeout (writers take turns instead of failing), `synchronous = FULL` (a commit is on
/// disk when it returns), foreign keys on. Several processes may share one file; every
/// write that reads first runs under `BEGIN IMMEDIATE`, so it holds the write lock from
/// its first statement.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use imagegen_ledger::{Ledger, LedgerOptions, SqliteLedger};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("ledger.sqlite3");
/// let ledger = SqliteLedger::open_path(&path, &LedgerOptions::default()).await?;
/// assert!(ledger.open_jobs().await?.is_empty());
/// # Ok(()) }
/// ```
pub struct SqliteLedger {
    pool: Pool<Db>,
    url: String,
    clock: SharedClock,
}

impl SqliteLedger {
    /// Opens (creating when missing) the SQLite ledger `url` names: `sqlite://PATH`,
    /// `sqlite:PATH` or a bare path.
    pub async fn open(url: &str, options: &LedgerOptions) -> Result<Self, LedgerError> {
        match crate::target::parse(url)? {
            crate::target::Target::Sqlite(connect) => {
                Self::connect(connect, redact_url(url), options).await
            }
            crate::target::Target::Postgres(_) => Err(LedgerError::UnsupportedUrl {
                url: redact_url(url),
            }),
        }
    }

    /// Opens (creating when missing) the SQLite ledger at `path`.
    pub async fn open_path(path: &Path, options: &LedgerOptions) -> Result<Self, LedgerError> {
        let shown = path.display().to_string();
        Self::connect(SqliteConnectOptions::new().filename(path), shown, options).await
    }

    pub(crate) async fn connect(
        connect: SqliteConnectOptions,
        url: String,
        options: &LedgerOptions,
    ) -> Result<Self, LedgerError> {
        let file = connect.get_filename().to_path_buf();
        if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| LedgerError::CreateDir {
                path: folder.to_path_buf(),
                source,
            })?;
        }
        let connect = connect
            .create_if_missing(true)
            .busy_timeout(options.busy_timeout)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        setup(&connect, &url, options.busy_timeout).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|source| LedgerError::Open {
                url: url.clone(),
                source,
            })?;
        Ok(Self {
            pool,
            url,
            clock: options.clock.clone(),
        })
    }
}

/// Turns WAL on and migrates, on one connection holding the write lock, so processes that
/// open a new file at once take turns instead of migrating twice.
async fn setup(
    connect: &SqliteConnectOptions,
    url: &str,
    busy_timeout: Duration,
) -> Result<(), LedgerError> {
    let open_error = |source| LedgerError::Open {
        url: url.to_owned(),
        source,
    };
    // Switching a new file to WAL takes an exclusive lock that the busy timeout does not
    // wait for: retry while another process holds it.
    let wal = connect.clone().journal_mode(SqliteJournalMode::Wal);
    let started = Instant::now();
    let mut conn = loop {
        match SqliteConnection::connect_with(&wal).await {
            Ok(conn) => break conn,
            Err(error) if is_busy(&error) && started.elapsed() < busy_timeout => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(error) => return Err(open_error(error)),
        }
    };
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(open_error)?;
    // `run_direct` (sqlx's way around `Acquire`'s lifetimes) keeps `open` a `Send` future.
    MIGRATOR
        .run_direct(&mut *tx)
        .await
        .map_err(|source| LedgerError::Migrate {
            url: url.to_owned(),
            source,
        })?;
    tx.commit().await.map_err(open_error)?;
    conn.close().await.map_err(open_error)
}

/// Whether `error` is SQLite's "database is locked" (SQLITE_BUSY and its extended codes).
fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| i32::from_str(&code).ok())
            .is_some_and(|code| code & 0xff == 5),
        _ => false,
    }
}

async fn begin_write(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

include!("shared.rs");

//! [`SqliteLedger`]: the ledger in one SQLite file, shared by the processes of one machine.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use imagegen_core::SharedClock;
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};

use crate::LedgerOptions;
use crate::connections::{Connections, Held};
use crate::sqlite_writer::{WriteConn, WriteTx, Writer};
use crate::target::redact_url;

type Db = sqlx::Sqlite;
type DbConn = SqliteConnection;
type DbRow = SqliteRow;
type Store = SqliteLedger;
const STORE_NAME: &str = "SqliteLedger";

const BACKEND: Backend = Backend::Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The ledger in a SQLite file: WAL mode (readers never wait for the writer), a busy
/// timeout (writers of several processes take turns instead of failing), foreign keys on.
/// Several processes may share one file; every write that reads first runs under `BEGIN
/// IMMEDIATE`, so it holds the write lock from its first statement.
///
/// Within one process every write goes through one connection, taken in turn (a fair
/// queue, instead of SQLite's busy handler sleeping between tries), while reads use the
/// others. A write that records money or a paid job (an accepted job, its end, a budget
/// hold, a gateway key, an idempotent answer, …) is on disk when it returns: its commit is
/// followed by an `fdatasync` of the WAL file, shared by every write committed before it
/// started (group commit: concurrent writes pay for one sync, not one each). The
/// gateway's own bookkeeping (a generation's row and progress, a request's row) is
/// committed without waiting for the disk: a crash of the process loses none of it (it
/// is in the WAL), a power cut may lose the last of it, and the next durable write makes
/// it durable too.
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
    /// Reads: several connections, without a pool (see `connections`).
    readers: Connections<SqliteConnection>,
    /// Writes: one connection, `synchronous = NORMAL`, without a pool (see
    /// `sqlite_writer`); made durable by [`SqliteLedger::durable`].
    writer: Writer,
    wal: WalSync,
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
        let open_error = |source| LedgerError::Open {
            url: url.clone(),
            source,
        };
        // Opened when first needed; a connection to a local file does not go stale, so
        // none is tested before or after a read.
        let readers = Connections::new(
            connect.clone(),
            options.max_connections,
            options.acquire_timeout,
            None,
        );
        // The WAL is synced by `durable`, once for every write committed before it.
        let writer =
            SqliteConnection::connect_with(&connect.synchronous(SqliteSynchronous::Normal))
                .await
                .map_err(open_error)?;
        let writer = Writer::new(writer, options.acquire_timeout);
        let mut wal = file.into_os_string();
        wal.push("-wal");
        Ok(Self {
            readers,
            writer,
            wal: WalSync::new(std::path::PathBuf::from(wal)),
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

async fn begin_write(writer: &Writer) -> Result<WriteTx, sqlx::Error> {
    writer.begin().await
}

async fn write_conn(writer: &Writer) -> Result<WriteConn, sqlx::Error> {
    writer.conn().await
}

/// A read connection.
type ReadConn = Held<SqliteConnection>;

async fn read_conn(readers: &Connections<SqliteConnection>) -> Result<ReadConn, sqlx::Error> {
    readers.conn().await
}

async fn close_readers(readers: &Connections<SqliteConnection>) {
    readers.close().await;
}

impl SqliteLedger {
    /// Puts every write committed so far on disk (see the type's docs): an `fdatasync` of
    /// the WAL file, one at a time, each covering every write committed before it began.
    async fn durable(&self, op: &'static str) -> Result<(), LedgerError> {
        self.wal
            .sync()
            .await
            .map_err(|e| LedgerError::db(op)(sqlx::Error::Io(e)))
    }
}

/// Group commit for the WAL: [`WalSync::sync`] returns once an `fdatasync` of the WAL
/// file that began after it was called has finished.
#[derive(Debug)]
struct WalSync {
    path: std::path::PathBuf,
    /// One sync at a time.
    turn: tokio::sync::Mutex<()>,
    /// Tickets handed out: a caller's commit came before its ticket.
    asked: AtomicU64,
    /// Every ticket up to this one is on disk.
    synced: AtomicU64,
}

impl WalSync {
    fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            turn: tokio::sync::Mutex::new(()),
            asked: AtomicU64::new(0),
            synced: AtomicU64::new(0),
        }
    }

    async fn sync(&self) -> std::io::Result<()> {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.turn.lock().await;
        if self.synced.load(Ordering::SeqCst) >= ticket {
            // A sync that began after this commit has finished.
            return Ok(());
        }
        // Every ticket handed out by now committed before this sync begins.
        let covered = self.asked.load(Ordering::SeqCst);
        let path = self.path.clone();
        // Opened each time: the WAL is the file at this path now (SQLite may have
        // removed and made it again when every connection closed).
        tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
            Ok(file) => file.sync_data(),
            // No WAL: everything is in the database file, synced by the checkpoint that
            // removed it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .map_err(std::io::Error::other)??;
        self.synced.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

include!("shared.rs");

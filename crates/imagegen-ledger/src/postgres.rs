//! [`PostgresLedger`]: the ledger in a PostgreSQL database, shared by any number of
//! processes and machines.

use imagegen_core::SharedClock;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{Connection, Pool};

use crate::LedgerOptions;
use crate::target::redact_url;

type Db = sqlx::Postgres;
type DbConn = PgConnection;
type DbRow = PgRow;
type Store = PostgresLedger;
const STORE_NAME: &str = "PostgresLedger";

const BACKEND: Backend = Backend::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The ledger in a PostgreSQL database, at the default READ COMMITTED isolation: every
/// read-modify-write is either one conditional statement (a reservation's check and hold,
/// a rate-limit slot) or a transaction that starts by locking its row with an UPDATE, so
/// concurrent writers in any number of processes serialize on the rows they share.
/// Migrations take sqlx's advisory lock, so processes opening at once take turns.
///
/// Its `Debug` shows the URL with the password redacted, never the connect options.
pub struct PostgresLedger {
    /// Reads.
    readers: Pool<Db>,
    /// Writes: the same pool (PostgreSQL's writers do not wait on one another's locks
    /// the way SQLite's do).
    writer: Pool<Db>,
    url: String,
    clock: SharedClock,
}

impl PostgresLedger {
    /// Opens the PostgreSQL ledger `url` names (`postgres://…` or `postgresql://…`).
    pub async fn open(url: &str, options: &LedgerOptions) -> Result<Self, LedgerError> {
        match crate::target::parse(url)? {
            crate::target::Target::Postgres(connect) => {
                Self::connect(connect, redact_url(url), options).await
            }
            crate::target::Target::Sqlite(_) => Err(LedgerError::UnsupportedUrl {
                url: redact_url(url),
            }),
        }
    }

    pub(crate) async fn connect(
        connect: PgConnectOptions,
        url: String,
        options: &LedgerOptions,
    ) -> Result<Self, LedgerError> {
        let open_error = |source| LedgerError::Open {
            url: url.clone(),
            source,
        };
        // One connection first: a wrong URL, password or host fails at once (a pool would
        // retry until its acquire timeout), and it migrates under sqlx's advisory lock, so
        // processes opening at once take turns. `run_direct` (sqlx's way around
        // `Acquire`'s lifetimes) keeps `open` a `Send` future.
        let connecting = PgConnection::connect_with(&connect);
        let mut conn = tokio::time::timeout(options.acquire_timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting took longer than the acquire timeout",
                )))
            })
            .map_err(open_error)?;
        MIGRATOR
            .run_direct(&mut conn)
            .await
            .map_err(|source| LedgerError::Migrate {
                url: url.clone(),
                source,
            })?;
        conn.close().await.map_err(open_error)?;
        // sqlx pings every connection as it goes back to the pool, and by default again
        // before it hands it out: two round trips to the server around each statement's
        // one. The second only finds a connection that broke while idle (a restarted
        // server, a dropped socket), so it is kept for connections idle for a while.
        let recheck_idle_after = options.recheck_idle_after;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= recheck_idle_after {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(connect);
        Ok(Self {
            writer: pool.clone(),
            readers: pool,
            url,
            clock: options.clock.clone(),
        })
    }
}

/// A write transaction.
type WriteTx = sqlx::Transaction<'static, Db>;

/// A connection for one write statement.
type WriteConn = sqlx::pool::PoolConnection<Db>;

async fn begin_write(pool: &Pool<Db>) -> Result<WriteTx, sqlx::Error> {
    pool.begin().await
}

async fn write_conn(pool: &Pool<Db>) -> Result<WriteConn, sqlx::Error> {
    pool.acquire().await
}

/// A connection for reads.
type ReadConn = sqlx::pool::PoolConnection<Db>;

async fn read_conn(pool: &Pool<Db>) -> Result<ReadConn, sqlx::Error> {
    pool.acquire().await
}

async fn close_readers(pool: &Pool<Db>) {
    pool.close().await;
}

impl PostgresLedger {
    /// Every write committed so far is on disk: PostgreSQL's commits are (and it groups
    /// concurrent ones itself).
    async fn durable(&self, _op: &'static str) -> Result<(), LedgerError> {
        Ok(())
    }
}

include!("shared.rs");

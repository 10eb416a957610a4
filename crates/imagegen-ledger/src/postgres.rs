//! [`PostgresLedger`]: the ledger in a PostgreSQL database, shared by any number of
//! processes and machines.

use std::sync::Arc;

use imagegen_core::SharedClock;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};

use crate::LedgerOptions;
use crate::connections::{Connections, Held};
use crate::target::redact_url;
use crate::tx::Tx;

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
    /// Reads, without a pool (see `connections`).
    readers: Arc<Connections<PgConnection>>,
    /// Writes: the same connections (PostgreSQL's writers do not wait on one another's
    /// locks the way SQLite's do).
    writer: Arc<Connections<PgConnection>>,
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
        // Without an sqlx pool, which pings every connection as it goes back (and by
        // default again before it hands it out): a statement is one round trip to the
        // server, not two or three. A connection that may have broken is still checked
        // before use (see `connections`).
        let connections = Arc::new(Connections::new(
            connect,
            options.max_connections,
            options.acquire_timeout,
            Some(options.recheck_idle_after),
        ));
        Ok(Self {
            writer: Arc::clone(&connections),
            readers: connections,
            url,
            clock: options.clock.clone(),
        })
    }
}

/// A write transaction.
type WriteTx = Tx<Held<PgConnection>>;

/// A connection for one write statement.
type WriteConn = Held<PgConnection>;

async fn begin_write(connections: &Connections<PgConnection>) -> Result<WriteTx, sqlx::Error> {
    Tx::begin(connections.conn().await?, None).await
}

async fn write_conn(connections: &Connections<PgConnection>) -> Result<WriteConn, sqlx::Error> {
    connections.conn().await
}

/// A connection for reads.
type ReadConn = Held<PgConnection>;

async fn read_conn(connections: &Connections<PgConnection>) -> Result<ReadConn, sqlx::Error> {
    connections.conn().await
}

async fn close_readers(connections: &Connections<PgConnection>) {
    connections.close().await;
}

impl PostgresLedger {
    /// Every write committed so far is on disk: PostgreSQL's commits are (and it groups
    /// concurrent ones itself).
    async fn durable(&self, _op: &'static str) -> Result<(), LedgerError> {
        Ok(())
    }
}

include!("shared.rs");

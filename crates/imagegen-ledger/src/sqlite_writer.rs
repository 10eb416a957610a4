//! [`Writer`]: the one connection every write of a [`SqliteLedger`](crate::SqliteLedger)
//! goes through, held without a pool.
//!
//! SQLite takes one writer at a time, so the ledger always had a single write connection;
//! it was a pool of one. An sqlx pool pings every connection it takes back
//! (`SELECT`-free, but for SQLite a round trip to the connection's worker thread) and
//! returns it from a task of its own, so each write cost two round trips to that thread
//! and the thread switches that go with them; on the gateway's path that was the largest
//! cost after the disk (see the gateway benchmark in `docs/benchmarks.md`). Here the
//! connection sits behind a mutex instead: a write is one round trip.
//!
//! What the pool did that matters here is kept: waiting for the connection gives up after
//! the ledger's acquire timeout ([`sqlx::Error::PoolTimedOut`]), and a transaction dropped
//! before its commit is rolled back before the connection's next statement, as sqlx's own
//! [`Transaction`](sqlx::Transaction) does.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::tx::{Tx, settle_transaction};

/// The write connection; see the [module docs](self).
pub(crate) struct Writer {
    /// `None` once closed.
    conn: Arc<Mutex<Option<SqliteConnection>>>,
    acquire_timeout: Duration,
}

/// The write connection, held: no other write runs until it is dropped.
pub(crate) type WriteConn = OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>;

/// A write transaction on the [`Writer`]'s connection; rolled back unless committed.
pub(crate) type WriteTx = Tx<WriteConn>;

impl Writer {
    pub(crate) fn new(conn: SqliteConnection, acquire_timeout: Duration) -> Self {
        Self {
            conn: Arc::new(Mutex::new(Some(conn))),
            acquire_timeout,
        }
    }

    /// The connection, once no other write holds it.
    pub(crate) async fn conn(&self) -> Result<WriteConn, sqlx::Error> {
        let held = tokio::time::timeout(self.acquire_timeout, Arc::clone(&self.conn).lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        let mut conn =
            OwnedMutexGuard::try_map(held, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)?;
        settle_transaction(&mut *conn).await?;
        Ok(conn)
    }

    /// A transaction that may read then write (`BEGIN IMMEDIATE`: the write lock is taken
    /// first, so a read is never followed by a write another process got in before).
    pub(crate) async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        Tx::begin(self.conn().await?, Some("BEGIN IMMEDIATE")).await
    }

    /// Closes the connection once the write holding it (if any) is done; later writes
    /// fail with [`sqlx::Error::PoolClosed`].
    pub(crate) async fn close(&self) {
        let conn = self.conn.lock().await.take();
        if let Some(conn) = conn
            && let Err(e) = conn.close().await
        {
            tracing::debug!(error = %e, "the ledger's write connection did not close cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::TransactionManager;
    use sqlx::sqlite::SqliteConnectOptions;

    type Manager = <sqlx::Sqlite as sqlx::Database>::TransactionManager;

    async fn writer(timeout: Duration) -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("w.sqlite3"))
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        (dir, Writer::new(conn, timeout))
    }

    /// The rows another connection sees: what was committed.
    async fn committed_rows(dir: &tempfile::TempDir) -> Vec<i64> {
        let options = SqliteConnectOptions::new().filename(dir.path().join("w.sqlite3"));
        let mut other = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query_scalar("SELECT v FROM t ORDER BY v")
            .fetch_all(&mut other)
            .await
            .unwrap()
    }

    async fn count(writer: &Writer) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *writer.conn().await.unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_its_commit_is_rolled_back() {
        let (_dir, writer) = writer(Duration::from_secs(5)).await;
        {
            let mut tx = writer.begin().await.unwrap();
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        assert_eq!(count(&writer).await, 0);
        // The connection is usable again, inside and outside transactions.
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut *writer.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!(count(&writer).await, 2);
    }

    #[tokio::test]
    async fn a_transaction_begun_without_a_write_tx_is_not_left_open() {
        let (dir, writer) = writer(Duration::from_secs(5)).await;
        {
            // As a `begin` cancelled after its BEGIN reached the connection.
            let mut conn = writer.conn().await.unwrap();
            Manager::begin(&mut conn, Some("BEGIN IMMEDIATE".into()))
                .await
                .unwrap();
        }
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *writer.conn().await.unwrap())
            .await
            .unwrap();
        assert_eq!(committed_rows(&dir).await, [1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_dropped_or_cancelled_leave_only_what_was_committed() {
        let (dir, writer) = writer(Duration::from_secs(5)).await;
        let writer = Arc::new(writer);
        let mut tasks = Vec::new();
        for i in 0..400_i64 {
            let writer = Arc::clone(&writer);
            tasks.push(tokio::spawn(async move {
                let work = async {
                    let mut tx = writer.begin().await?;
                    sqlx::query("INSERT INTO t VALUES ($1)")
                        .bind(i)
                        .execute(&mut *tx)
                        .await?;
                    match i % 4 {
                        0 => Ok(()), // dropped uncommitted
                        2 => tx.rollback().await,
                        _ => tx.commit().await,
                    }
                };
                if i % 4 == 3 {
                    // Cancelled wherever it got to: waiting, begun, inserted, committing.
                    let after = Duration::from_micros(u64::try_from(i % 11).unwrap() * 30);
                    let _ = tokio::time::timeout(after, work).await;
                    Ok(())
                } else {
                    work.await
                }
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        sqlx::query("INSERT INTO t VALUES (-1)")
            .execute(&mut *writer.conn().await.unwrap())
            .await
            .unwrap();
        let rows = committed_rows(&dir).await;
        assert!(rows.contains(&-1), "the last write is committed");
        for i in 0..400_i64 {
            match i % 4 {
                0 | 2 => assert!(!rows.contains(&i), "row {i} was not committed"),
                1 => assert!(rows.contains(&i), "row {i} was committed"),
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn waiting_for_a_held_connection_times_out_and_a_closed_one_is_refused() {
        let (_dir, writer) = writer(Duration::from_millis(20)).await;
        let held = writer.conn().await.unwrap();
        assert!(matches!(
            writer.conn().await.err(),
            Some(sqlx::Error::PoolTimedOut)
        ));
        drop(held);
        writer.close().await;
        assert!(matches!(
            writer.conn().await.err(),
            Some(sqlx::Error::PoolClosed)
        ));
    }
}

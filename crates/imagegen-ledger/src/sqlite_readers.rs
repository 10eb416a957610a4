//! [`Readers`]: the read connections of a [`SqliteLedger`](crate::SqliteLedger), held
//! without a pool.
//!
//! The same reason as the [`Writer`](crate::sqlite_writer::Writer)'s: an sqlx pool pings
//! every connection it takes back, from a task of its own, and for SQLite a ping is a
//! round trip to the connection's worker thread. A gateway request reads the ledger once
//! (its caller's key), so every request paid a second round trip and the thread switches
//! that go with it. Here the idle connections wait in a list and a semaphore counts the
//! reads in flight: taking one is a pop, giving it back a push.
//!
//! What the pool did that matters here is kept: at most `max` connections, opened when
//! first needed; waiting for one gives up after the ledger's acquire timeout
//! ([`sqlx::Error::PoolTimedOut`]); after [`Readers::close`] a read is refused
//! ([`sqlx::Error::PoolClosed`]); a connection left inside a transaction (a read
//! cancelled between its `BEGIN` and its end) is rolled back before it is handed out
//! again, so no read ever sees an old snapshot.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::sqlite_writer::settle_transaction;

/// The read connections; see the [module docs](self).
pub(crate) struct Readers {
    /// The connections opened and not held.
    idle: Arc<Mutex<Vec<SqliteConnection>>>,
    /// One permit per read that may run: `max` in all.
    free: Arc<Semaphore>,
    max: u32,
    connect: SqliteConnectOptions,
    acquire_timeout: Duration,
}

/// A read connection, held until dropped (then idle again).
pub(crate) struct ReadConn {
    /// `None` only while being dropped.
    conn: Option<SqliteConnection>,
    idle: Arc<Mutex<Vec<SqliteConnection>>>,
    _permit: OwnedSemaphorePermit,
}

impl Readers {
    /// At most `max` (at least 1) connections opened with `connect`.
    pub(crate) fn new(connect: SqliteConnectOptions, max: u32, acquire_timeout: Duration) -> Self {
        let max = max.max(1);
        Self {
            idle: Arc::new(Mutex::new(Vec::new())),
            free: Arc::new(Semaphore::new(usize::try_from(max).unwrap_or(1))),
            max,
            connect,
            acquire_timeout,
        }
    }

    /// An idle connection, or a new one when none is.
    pub(crate) async fn conn(&self) -> Result<ReadConn, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, self.take())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    async fn take(&self) -> Result<ReadConn, sqlx::Error> {
        let permit = Arc::clone(&self.free)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = lock(&self.idle).pop();
        let conn = match idle {
            Some(mut conn) => {
                settle_transaction(&mut conn).await?;
                conn
            }
            None => SqliteConnection::connect_with(&self.connect).await?,
        };
        Ok(ReadConn {
            conn: Some(conn),
            idle: Arc::clone(&self.idle),
            _permit: permit,
        })
    }

    /// Refuses new reads, then closes every connection once the reads in flight are done.
    pub(crate) async fn close(&self) {
        // Every permit: no read holds a connection after this.
        let all = Arc::clone(&self.free).acquire_many_owned(self.max).await;
        self.free.close();
        drop(all);
        let idle = std::mem::take(&mut *lock(&self.idle));
        for conn in idle {
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "a read connection of the ledger did not close cleanly");
            }
        }
    }
}

fn lock(idle: &Mutex<Vec<SqliteConnection>>) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        // Back before the permit goes: the next holder of a permit finds it idle.
        if let Some(conn) = self.conn.take() {
            lock(&self.idle).push(conn);
        }
    }
}

impl Deref for ReadConn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl DerefMut for ReadConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::TransactionManager;

    type Manager = <sqlx::Sqlite as sqlx::Database>::TransactionManager;

    async fn readers(max: u32, timeout: Duration) -> (tempfile::TempDir, Readers) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("r.sqlite3"))
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        (dir, Readers::new(options, max, timeout))
    }

    async fn write(dir: &tempfile::TempDir, v: i64) {
        let options = SqliteConnectOptions::new().filename(dir.path().join("r.sqlite3"));
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("INSERT INTO t VALUES ($1)")
            .bind(v)
            .execute(&mut conn)
            .await
            .unwrap();
    }

    async fn count(readers: &Readers) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *readers.conn().await.unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn at_most_max_are_held_and_waiting_times_out() {
        let (_dir, readers) = readers(2, Duration::from_millis(20)).await;
        let first = readers.conn().await.unwrap();
        let second = readers.conn().await.unwrap();
        assert!(matches!(
            readers.conn().await.err(),
            Some(sqlx::Error::PoolTimedOut)
        ));
        drop(first);
        let third = readers.conn().await.unwrap();
        drop((second, third));
    }

    #[tokio::test]
    async fn a_read_left_in_a_transaction_sees_later_writes_on_its_next_use() {
        let (dir, readers) = readers(1, Duration::from_secs(5)).await;
        {
            // As a read cancelled between its BEGIN and its end, holding a snapshot.
            let mut conn = readers.conn().await.unwrap();
            Manager::begin(&mut conn, None).await.unwrap();
            let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(seen, 0);
        }
        write(&dir, 1).await;
        assert_eq!(count(&readers).await, 1, "not the old snapshot");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_share_the_connections_and_a_closed_set_refuses() {
        let (dir, readers) = readers(3, Duration::from_secs(5)).await;
        write(&dir, 7).await;
        let readers = Arc::new(readers);
        let mut tasks = Vec::new();
        for i in 0..200_u64 {
            let readers = Arc::clone(&readers);
            tasks.push(tokio::spawn(async move {
                let read = async { count(&readers).await };
                if i % 5 == 4 {
                    // Cancelled wherever it got to.
                    let _ = tokio::time::timeout(Duration::from_micros(i % 7 * 40), read).await;
                    None
                } else {
                    Some(read.await)
                }
            }));
        }
        for task in tasks {
            if let Some(seen) = task.await.unwrap() {
                assert_eq!(seen, 1);
            }
        }
        readers.close().await;
        assert!(matches!(
            readers.conn().await.err(),
            Some(sqlx::Error::PoolClosed)
        ));
    }
}

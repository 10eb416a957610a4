//! [`Connections`]: a ledger's connections held without an sqlx pool: a
//! [`SqliteLedger`](crate::SqliteLedger)'s read connections, and every connection of a
//! [`PostgresLedger`](crate::PostgresLedger).
//!
//! An sqlx pool pings every connection it takes back, from a task of its own: for SQLite
//! a round trip to the connection's worker thread, for PostgreSQL one to the server,
//! beside the statement's own (the [`Writer`](crate::sqlite_writer::Writer) left its pool
//! for the same reason). Here the idle connections wait in a list and a semaphore counts
//! the operations in flight: taking one is a pop, giving it back a push.
//!
//! What the pool did that matters here is kept:
//! - at most `max` connections, opened when first needed and kept while the ledger is
//!   open (no idle timeout nor lifetime: a PostgreSQL server that closes idle sessions is
//!   answered by the check below); waiting for one gives up after
//!   the ledger's acquire timeout ([`sqlx::Error::PoolTimedOut`]); after
//!   [`Connections::close`] an operation is refused ([`sqlx::Error::PoolClosed`]);
//! - a connection left inside a transaction (an operation cancelled between its `BEGIN`
//!   and its end) is rolled back before it is handed out again, so none ever sees an old
//!   snapshot or commits another's half;
//! - a PostgreSQL connection can break (a restarted server, a dropped socket): one idle
//!   for at least `recheck_idle_after`, or not checked since a ledger operation last
//!   failed anywhere in this process ([`note_failure`]), is pinged before it is handed
//!   out, and replaced when it does not answer. A connection that breaks while in use
//!   fails that operation, which marks every connection for a check: the broken one is
//!   found and replaced before its next use. A local SQLite file does not break, so its
//!   connections are never pinged.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Connection;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::tx::settle_transaction;

/// Failed ledger operations so far, in this process (see [`note_failure`]).
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Counts a failed ledger operation: every connection that may break is checked before
/// its next use, in case the failure left it broken. Failures are rare; a check is one
/// round trip.
pub(crate) fn note_failure() {
    FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// A ledger's connections; see the [module docs](self).
pub(crate) struct Connections<C: Connection + 'static> {
    /// The connections opened and not held.
    idle: Arc<Mutex<Vec<Idle<C>>>>,
    /// One permit per operation that may run: `max` in all.
    free: Arc<Semaphore>,
    max: u32,
    connect: C::Options,
    acquire_timeout: Duration,
    /// Connections that may break are pinged before use once idle this long; `None`: never
    /// (SQLite).
    recheck_idle_after: Option<Duration>,
}

/// An idle connection, and since when.
struct Idle<C> {
    conn: C,
    since: Instant,
    /// [`FAILURES`] when it was last known to work.
    failures: u64,
}

/// A connection, held until dropped (then idle again).
pub(crate) struct Held<C: Connection + 'static> {
    /// `None` only while being dropped.
    conn: Option<C>,
    /// [`FAILURES`] when it was handed out, known to work.
    failures: u64,
    idle: Arc<Mutex<Vec<Idle<C>>>>,
    /// `None` only once dropped.
    permit: Option<OwnedSemaphorePermit>,
}

impl<C: Connection + 'static> Connections<C> {
    /// At most `max` (at least 1) connections opened with `connect`; with
    /// `recheck_idle_after`, each idle that long is pinged before it is used again.
    pub(crate) fn new(
        connect: C::Options,
        max: u32,
        acquire_timeout: Duration,
        recheck_idle_after: Option<Duration>,
    ) -> Self {
        let max = max.max(1);
        Self {
            idle: Arc::new(Mutex::new(Vec::new())),
            free: Arc::new(Semaphore::new(usize::try_from(max).unwrap_or(1))),
            max,
            connect,
            acquire_timeout,
            recheck_idle_after,
        }
    }

    /// An idle connection, or a new one when none is.
    pub(crate) async fn conn(&self) -> Result<Held<C>, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, self.take())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    async fn take(&self) -> Result<Held<C>, sqlx::Error> {
        let permit = Arc::clone(&self.free)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let failures = FAILURES.load(Ordering::Relaxed);
        let mut conn = None;
        while conn.is_none() {
            let Some(idle) = lock(&self.idle).pop() else {
                break;
            };
            conn = self.checked(idle, failures).await;
        }
        let mut conn = match conn {
            Some(conn) => conn,
            None => C::connect_with(&self.connect).await?,
        };
        settle_transaction(&mut conn).await?;
        Ok(Held {
            conn: Some(conn),
            failures,
            idle: Arc::clone(&self.idle),
            permit: Some(permit),
        })
    }

    /// `idle`, unless it is due a check (see the [module docs](self)) and does not answer.
    async fn checked(&self, idle: Idle<C>, failures: u64) -> Option<C> {
        let Some(after) = self.recheck_idle_after else {
            return Some(idle.conn);
        };
        let mut conn = idle.conn;
        if idle.failures == failures && idle.since.elapsed() < after {
            return Some(conn);
        }
        match conn.ping().await {
            Ok(()) => Some(conn),
            Err(e) => {
                tracing::info!(error = %e, "a ledger connection did not answer; opening another");
                let _ = conn.close_hard().await;
                None
            }
        }
    }

    /// Refuses new operations, then closes every connection once those in flight are done.
    pub(crate) async fn close(&self) {
        // Every permit: no operation holds a connection after this.
        let all = Arc::clone(&self.free).acquire_many_owned(self.max).await;
        self.free.close();
        drop(all);
        let idle = std::mem::take(&mut *lock(&self.idle));
        for idle in idle {
            if let Err(e) = idle.conn.close().await {
                tracing::debug!(error = %e, "a ledger connection did not close cleanly");
            }
        }
    }
}

fn lock<C>(idle: &Mutex<Vec<Idle<C>>>) -> std::sync::MutexGuard<'_, Vec<Idle<C>>> {
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: Connection + 'static> Drop for Held<C> {
    fn drop(&mut self) {
        let (Some(conn), permit) = (self.conn.take(), self.permit.take()) else {
            return;
        };
        if !conn.should_flush() {
            // Back before the permit goes: the next holder of a permit finds it idle.
            lock(&self.idle).push(Idle {
                conn,
                since: Instant::now(),
                failures: self.failures,
            });
            return;
        }
        // Something is queued on it and not sent (PostgreSQL: the rollback of a
        // transaction dropped before its end): sent now, so the server ends that
        // transaction and frees its locks, not whenever the connection is next used. The
        // permit goes with it, so no more than `max` are open. Without a runtime it is
        // dropped, which closes it (and the server rolls back).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let idle = Arc::clone(&self.idle);
        let failures = self.failures;
        runtime.spawn(async move {
            let mut conn = conn;
            match conn.ping().await {
                Ok(()) => lock(&idle).push(Idle {
                    conn,
                    since: Instant::now(),
                    failures,
                }),
                Err(e) => {
                    tracing::info!(error = %e, "a ledger connection did not answer; closing it");
                    let _ = conn.close_hard().await;
                }
            }
            drop(permit);
        });
    }
}

impl<C: Connection + 'static> Deref for Held<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl<C: Connection + 'static> DerefMut for Held<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::TransactionManager;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    type Readers = Connections<SqliteConnection>;

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
        (dir, Readers::new(options, max, timeout, None))
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

    /// PostgreSQL: a transaction dropped before its end is rolled back on the server at
    /// once, not when its connection is next used: its row locks do not outlive it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_transaction_dropped_before_its_end_frees_its_locks_at_once() {
        use sqlx::postgres::{PgConnectOptions, PgConnection};
        let (url, name) = crate::testing::fresh_database().await;
        let options: PgConnectOptions = url.parse().unwrap();
        let set = Connections::<PgConnection>::new(
            options.clone(),
            2,
            Duration::from_secs(5),
            Some(Duration::from_secs(3600)),
        );
        sqlx::raw_sql("CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 0)")
            .execute(&mut *set.conn().await.unwrap())
            .await
            .unwrap();
        {
            let mut tx = crate::tx::Tx::begin(set.conn().await.unwrap(), None)
                .await
                .unwrap();
            sqlx::query("UPDATE t SET v = 1 WHERE id = 1")
                .execute(&mut *tx)
                .await
                .unwrap();
            // Dropped holding row 1's lock; its connection is not used again.
        }
        let mut other = PgConnection::connect_with(&options).await.unwrap();
        sqlx::query("SET lock_timeout = '5s'")
            .execute(&mut other)
            .await
            .unwrap();
        sqlx::query("UPDATE t SET v = 2 WHERE id = 1")
            .execute(&mut other)
            .await
            .expect("the dropped transaction's lock is gone");
        let v: i32 = sqlx::query_scalar("SELECT v FROM t WHERE id = 1")
            .fetch_one(&mut other)
            .await
            .unwrap();
        assert_eq!(v, 2);
        other.close().await.unwrap();
        set.close().await;
        crate::testing::drop_database(&name).await;
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

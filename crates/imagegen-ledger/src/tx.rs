//! [`Tx`]: a transaction on a connection held without a pool (the SQLite
//! [`Writer`](crate::sqlite_writer::Writer)'s, or one of
//! [`Connections`](crate::connections::Connections)), begun, committed and rolled back
//! through sqlx's `TransactionManager` as sqlx's own
//! [`Transaction`](sqlx::Transaction) does: one dropped before its commit is rolled back
//! before the connection's next statement.

use std::ops::{Deref, DerefMut};

use sqlx::{Connection, Database, TransactionManager};

/// The transaction manager of connection type `C`.
type Manager<C> = <<C as Connection>::Database as Database>::TransactionManager;

/// Rolls back the transaction `conn` was left in by a caller cancelled while beginning
/// one (or whose rollback is still queued, which makes this one a no-op), before the
/// connection is handed out again: never one whose writes would not commit, nor whose
/// reads would see an old snapshot.
pub(crate) async fn settle_transaction<C: Connection>(conn: &mut C) -> Result<(), sqlx::Error> {
    if Manager::<C>::get_transaction_depth(conn) > 0 {
        Manager::<C>::rollback(conn).await?;
    }
    Ok(())
}

/// A transaction on the held connection `G`; rolled back unless committed.
pub(crate) struct Tx<G>
where
    G: DerefMut,
    G::Target: Connection,
{
    conn: G,
    /// Begun and not yet committed nor rolled back.
    open: bool,
}

impl<G> Tx<G>
where
    G: DerefMut,
    G::Target: Connection,
{
    /// Begins a transaction on `conn` with `statement` (the database's `BEGIN` when
    /// `None`).
    pub(crate) async fn begin(
        mut conn: G,
        statement: Option<&'static str>,
    ) -> Result<Self, sqlx::Error> {
        Manager::<G::Target>::begin(&mut *conn, statement.map(Into::into)).await?;
        Ok(Self { conn, open: true })
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        Manager::<G::Target>::commit(&mut *self.conn).await?;
        self.open = false;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        Manager::<G::Target>::rollback(&mut *self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl<G> Deref for Tx<G>
where
    G: DerefMut,
    G::Target: Connection,
{
    type Target = G::Target;

    fn deref(&self) -> &G::Target {
        &self.conn
    }
}

impl<G> DerefMut for Tx<G>
where
    G: DerefMut,
    G::Target: Connection,
{
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.conn
    }
}

impl<G> Drop for Tx<G>
where
    G: DerefMut,
    G::Target: Connection,
{
    fn drop(&mut self) {
        if self.open {
            // Queued to the connection ahead of any later statement, which can only come
            // once this guard is released.
            Manager::<G::Target>::start_rollback(&mut *self.conn);
        }
    }
}

//! [`LedgerError`]: everything a ledger operation can fail with.

use std::path::PathBuf;

use imagegen_core::{Credits, ProviderId};

use crate::types::{ReservationId, ReservationState};

/// Why a ledger operation failed.
///
/// A URL in an error is always redacted: a password in a PostgreSQL URL never appears in
/// `Display`, `Debug` or a log line. The driver's error is kept as the
/// [`source`](std::error::Error::source), never copied into the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The URL names no store this crate opens.
    #[error(
        "`{url}` is not a ledger URL: use sqlite://PATH, a file path, or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl {
        /// The URL, redacted.
        url: String,
    },
    /// The store could not be reached or opened.
    #[error("could not open the ledger at {url}")]
    Open {
        /// The URL, redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The folder for a SQLite file could not be created.
    #[error("could not create the ledger's folder {path}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The schema could not be brought up to date.
    #[error("could not bring the ledger's tables at {url} up to date")]
    Migrate {
        /// The URL, redacted.
        url: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed (connection lost, lock timeout, constraint).
    #[error("the ledger could not {op}")]
    Database {
        /// What was being done ("record an accepted job").
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// No data directory is known for the default SQLite file.
    #[error("no data directory for the ledger: set XDG_DATA_HOME or HOME, or name a ledger URL")]
    NoDataDir,
    /// The budget does not exist (see [`Ledger::set_budget`](crate::Ledger::set_budget)).
    #[error("no budget named `{0}` in the ledger")]
    UnknownBudget(String),
    /// Reserving would pass the budget's limit; nothing was reserved.
    #[error(
        "budget `{budget}` cannot cover {needed} more credits ({remaining} left): raise the budget or choose a cheaper model"
    )]
    BudgetExceeded {
        /// The budget.
        budget: String,
        /// What was asked for.
        needed: Credits,
        /// What was left.
        remaining: Credits,
    },
    /// No such reservation.
    #[error("{0} does not exist")]
    UnknownReservation(ReservationId),
    /// The reservation was already settled or released: nothing was counted again.
    #[error("{id} is already {state}: nothing was counted again")]
    ReservationClosed {
        /// The reservation.
        id: ReservationId,
        /// How it ended.
        state: ReservationState,
    },
    /// A reservation can only shrink.
    #[error("{id} holds {held} credits and cannot grow to {wanted}")]
    CannotGrow {
        /// The reservation.
        id: ReservationId,
        /// What it holds.
        held: Credits,
        /// What was asked.
        wanted: Credits,
    },
    /// No such job.
    #[error("no job {provider}/{job_id} in the ledger")]
    UnknownJob {
        /// Its provider.
        provider: ProviderId,
        /// The provider's job id.
        job_id: String,
    },
    /// A number does not fit the store's 64-bit signed integers.
    #[error("{what} ({value}) is too large for the ledger")]
    TooLarge {
        /// What it is.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A path that is not UTF-8 cannot be stored faithfully as text.
    #[error("the path {} is not valid UTF-8 and cannot be stored in the ledger", path.display())]
    NotUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// A value could not be written as JSON.
    #[error("could not write {what} as JSON")]
    Json {
        /// What it was.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A stored value cannot be read back (edited by hand, or written by a newer imagegen).
    #[error("the ledger holds an unreadable {what}")]
    Corrupt {
        /// What, and where.
        what: String,
    },
    /// A stored JSON value cannot be read back.
    #[error("the ledger holds an unreadable {what}")]
    CorruptJson {
        /// What, and where.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A live gateway key already has this name; nothing was stored.
    #[error("a gateway key named `{name}` already exists: revoke it first or choose another name")]
    DuplicateApiKeyName {
        /// The name.
        name: String,
    },
    /// A gateway key cannot have this name.
    #[error("`{name}` cannot name a gateway key: {reason}")]
    InvalidApiKeyName {
        /// The name.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// A gateway key to store is not well formed; nothing was stored.
    #[error("the gateway key cannot be stored: {reason}")]
    InvalidApiKey {
        /// Why not.
        reason: &'static str,
    },
    /// The ledger already holds this very key (its hash); nothing was stored.
    #[error("the ledger already holds this gateway key: generate a new one")]
    DuplicateApiKey,
    /// A prefix names more than one live gateway key: nothing was revoked.
    #[error("`{prefix}` is the prefix of {matches} live gateway keys: revoke by name instead")]
    AmbiguousApiKey {
        /// The prefix.
        prefix: String,
        /// How many live keys have it.
        matches: usize,
    },
    /// The operating system gave no random bytes for a new gateway key.
    #[error("could not draw random bytes for a new gateway key")]
    KeyGeneration {
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl LedgerError {
    /// A failed database operation `op`. It also has every connection that may break
    /// checked before its next use ([`note_failure`](crate::connections::note_failure)).
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| {
            crate::connections::note_failure();
            Self::Database { op, source }
        }
    }
}

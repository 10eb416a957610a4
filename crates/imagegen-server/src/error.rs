//! [`ServerError`]: why the gateway could not start, or stopped with an error.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why [`serve`](crate::serve) could not start the gateway, or why it stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address could not be bound (in use, not this machine's, not permitted).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },

    /// The ledger has no live gateway key and the address is not a loopback one: anyone
    /// who could reach the gateway could spend the account's credits.
    #[error(
        "refusing to listen on {addr} without gateway keys: anyone who can reach it could spend your credits; listen on 127.0.0.1 (or [::1]), or create a gateway key first"
    )]
    NoKeysOffLoopback {
        /// The address.
        addr: SocketAddr,
    },

    /// The ledger could not be opened or read.
    #[error("the ledger: {0}")]
    Ledger(#[from] imagegen_ledger::LedgerError),

    /// The image directory could not be created.
    #[error("the image directory {}: {source}", path.display())]
    ImageDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// The temporary folder of an ephemeral gateway could not be made.
    #[error("a temporary folder for the ledger and images: {0}")]
    Temporary(#[source] io::Error),

    /// The public URL cannot prefix image URLs.
    #[error("the public URL `{url}` cannot be used: {reason}")]
    PublicUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: &'static str,
    },

    /// Serving stopped with an I/O error.
    #[error("the server stopped: {0}")]
    Serve(#[source] io::Error),
}

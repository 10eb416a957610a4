//! Why the simulator could not start.

use std::net::SocketAddr;

/// An error starting the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A listener could not bind its address (the port is taken, or the address is not
    /// local): pick another port, or 0 for any free one.
    #[error("the simulator's {listener} listener could not bind {addr}: {source}")]
    Bind {
        /// `API` or `CDN`.
        listener: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration cannot work; the message says what to change.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
}

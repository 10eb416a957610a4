//! [`serve_stdio`]: the MCP server over this process's stdin and stdout (`imagegen mcp`).
//! Stdout carries the protocol alone: logs go to stderr.

use std::io;

use rmcp::ServiceExt as _;

use super::ImagegenMcp;

/// Serves `server` over stdin/stdout until the client closes its end (or the process
/// is stopped). A generation still running then keeps its job open in the ledger, for
/// `imagegen resume` or the next server's `get_generation`.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = imagegen::Client::from_env()?;
/// let ledger = imagegen::ledger::open("ledger.sqlite3").await?;
/// let server = imagegen_server::mcp::ImagegenMcp::new(client, ledger, "imagegen-out");
/// imagegen_server::mcp::serve_stdio(server).await?;
/// # Ok(()) }
/// ```
pub async fn serve_stdio(server: ImagegenMcp) -> io::Result<()> {
    let running = match server.serve(rmcp::transport::stdio()).await {
        Ok(running) => running,
        // Stdin ended before a client said hello: nothing to serve, not a failure.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(e) => return Err(io::Error::other(e)),
    };
    running.waiting().await.map_err(io::Error::other)?;
    Ok(())
}

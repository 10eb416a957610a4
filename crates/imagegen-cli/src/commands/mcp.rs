//! `imagegen mcp`: imagegen's tools for an AI agent over MCP on stdin/stdout
//! (`imagegen_server::mcp`). Stdout carries the protocol alone; notes and logs go to
//! stderr.
//!
//! Providers come from the environment as for every command; with no provider key it
//! runs on the built-in simulator (said on stderr), with its ledger and images in a
//! temporary folder unless `--db` / `--out` name others. `--budget` caps what the
//! server spends in its life, held in the ledger.

use std::path::PathBuf;

use imagegen_server::mcp::{ImagegenMcp, serve_stdio};

use super::{connect, fail, open_ledger};
use crate::args::McpArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: McpArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(false, quiet);
    let client = match connect(&out, true).await {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    // The built-in simulator's jobs end with this process: nothing is kept for later.
    let temporary = if client.is_simulated() && (db.is_none() || args.out.is_none()) {
        match tempfile::Builder::new().prefix("imagegen-mcp-").tempdir() {
            Ok(dir) => Some(dir),
            Err(e) => {
                out.error(format!("cannot make a temporary folder: {e}"));
                return exit::OTHER;
            }
        }
    } else {
        None
    };
    let ledger = match (db, &temporary) {
        (None, Some(dir)) => {
            let path = dir.path().join(imagegen::ledger::DEFAULT_FILE_NAME);
            imagegen::ledger::open(&path.display().to_string())
                .await
                .map_err(imagegen::Error::from)
        }
        _ => open_ledger(db).await,
    };
    let ledger = match ledger {
        Ok(ledger) => ledger,
        Err(error) => return fail(&out, &error),
    };
    let out_dir = match (args.out, &temporary) {
        (Some(dir), _) => dir,
        (None, Some(dir)) => dir.path().join("images"),
        (None, None) => match imagegen::ledger::default_sqlite_path() {
            Ok(path) => path.with_file_name("mcp-out"),
            Err(_) => PathBuf::from("imagegen-out"),
        },
    };
    let out_dir = std::path::absolute(&out_dir).unwrap_or(out_dir);
    let mut server = ImagegenMcp::new(client.clone(), std::sync::Arc::clone(&ledger), &out_dir)
        .with_wait_limit(args.wait_limit);
    if let Some(limit) = args.budget {
        match server.with_budget(limit).await {
            Ok((with_budget, name)) => {
                server = with_budget;
                out.note(format!(
                    "budget: {} for this server's life (ledger budget `{name}`)",
                    limit.with_unit()
                ));
            }
            Err(error) => {
                super::print_with_causes(&out, &error);
                return exit::OTHER;
            }
        }
    }
    if temporary.is_some() {
        out.note("the simulator's jobs end with this process: its ledger and images are in a temporary folder (give --db and --out to keep them)");
    }
    out.note(format!(
        "MCP server on stdin/stdout: images in {}, ledger {}; each call waits at most {}s",
        out_dir.display(),
        ledger.url(),
        args.wait_limit.as_secs_f64()
    ));
    let code = match serve_stdio(server).await {
        Ok(()) => exit::OK,
        Err(error) => {
            out.error(format!("the MCP connection failed: {error}"));
            exit::OTHER
        }
    };
    ledger.close().await;
    drop(temporary);
    code
}

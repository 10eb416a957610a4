//! `imagegen history [--limit N] [--search TEXT]`: past generations from the ledger,
//! newest first.

use imagegen::ledger::{HistoryEntry, HistoryQuery};
use serde_json::json;

use super::{fail, open_ledger};
use crate::args::HistoryArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: HistoryArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let ledger = match open_ledger(db).await {
        Ok(ledger) => ledger,
        Err(error) => return fail(&out, &error),
    };
    let mut query = HistoryQuery::newest(args.limit);
    if let Some(text) = &args.search {
        query = query.matching(text.clone());
    }
    let read = ledger.history(&query).await;
    ledger.close().await;
    let entries = match read {
        Ok(entries) => entries,
        Err(error) => return fail(&out, &imagegen::Error::from(error)),
    };
    if out.json() {
        // The library's own type, as it serializes: one source for the JSON.
        out.emit(&json!({ "history": entries }));
    } else if entries.is_empty() {
        out.line(match &args.search {
            Some(text) => format!("no generations match {text:?} (ledger: {})", ledger.url()),
            None => format!("no generations yet (ledger: {})", ledger.url()),
        });
    } else {
        print_table(&out, &entries);
    }
    exit::OK
}

/// One row per generation, its files and any error on the lines below it.
fn print_table(out: &Output, entries: &[HistoryEntry]) {
    let names: Vec<String> = entries.iter().map(provider_model).collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .chain(["PROVIDER/MODEL".len()])
        .max()
        .unwrap_or_default();
    out.line(format!(
        "{:<16}  {:<width$}  {:>9}  {:<8}  {}",
        "WHEN (UTC)", "PROVIDER/MODEL", "CREDITS", "STATE", "PROMPT"
    ));
    let indent = " ".repeat(18);
    for (entry, name) in entries.iter().zip(&names) {
        // Unknown until the provider reports a charge (an open job, some failures).
        let credits = entry
            .charged
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        out.line(format!(
            "{:<16}  {:<width$}  {:>9}  {:<8}  {}",
            imagegen::ledger::utc_minute(entry.accepted_at_ms),
            name,
            credits,
            entry.state.to_string(),
            imagegen::core::prompt_preview(&entry.prompt)
        ));
        for file in &entry.files {
            out.line(format!("{indent}{}", file.display()));
        }
        if let Some(error) = &entry.error {
            out.line(format!("{indent}error: {error}"));
        }
    }
}

/// `kolbo/z-image/turbo`, or the provider alone when the model is unknown.
fn provider_model(entry: &HistoryEntry) -> String {
    match &entry.model {
        Some(model) => format!("{}/{}", entry.provider, model),
        None => entry.provider.to_string(),
    }
}

//! `imagegen spend [--by provider|model|day]`: what the ledger shows was charged, summed,
//! with a total.

use imagegen::Credits;
use imagegen::ledger::{LedgerError, SpendGroup, SpendQuery, SpendRow};
use serde_json::json;

use super::{fail, open_ledger};
use crate::args::SpendArgs;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: SpendArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let ledger = match open_ledger(db).await {
        Ok(ledger) => ledger,
        Err(error) => return fail(&out, &error),
    };
    let read = ledger.spend(&SpendQuery::by(args.by)).await;
    ledger.close().await;
    let rows = match read {
        Ok(rows) => rows,
        Err(error) => return fail(&out, &imagegen::Error::from(error)),
    };
    let Some((credits, jobs)) = total(&rows) else {
        let error = LedgerError::TooLarge {
            what: "the total spend in millionths of a credit",
            value: u64::MAX,
        };
        return fail(&out, &imagegen::Error::from(error));
    };
    if out.json() {
        // The library's own rows, as they serialize, and their sum.
        out.emit(&json!({
            "by": args.by,
            "spend": rows,
            "total": { "credits": credits, "jobs": jobs },
        }));
    } else if rows.is_empty() {
        out.line(format!(
            "no generations yet with a known charge (ledger: {})",
            ledger.url()
        ));
    } else {
        print_table(&out, args.by, &rows, credits, jobs);
    }
    exit::OK
}

/// What every row sums to: credits and jobs, or `None` on overflow.
fn total(rows: &[SpendRow]) -> Option<(Credits, u64)> {
    let credits = Credits::checked_sum(rows.iter().map(|r| r.credits))?;
    let jobs = rows
        .iter()
        .try_fold(0_u64, |sum, r| sum.checked_add(r.jobs))?;
    Some((credits, jobs))
}

/// One row per group, then the total.
fn print_table(out: &Output, by: SpendGroup, rows: &[SpendRow], credits: Credits, jobs: u64) {
    let header = match by {
        SpendGroup::Provider => "PROVIDER",
        SpendGroup::Model => "PROVIDER/MODEL",
        SpendGroup::Day => "DAY (UTC)",
        SpendGroup::ProviderDay => "DAY (UTC) PROVIDER",
    };
    let names: Vec<String> = rows.iter().map(|row| group_name(by, row)).collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .chain([header.len(), "TOTAL".len()])
        .max()
        .unwrap_or_default();
    out.line(format!("{header:<width$}  {:>6}  {:>9}", "JOBS", "CREDITS"));
    for (row, name) in rows.iter().zip(&names) {
        out.line(format!(
            "{name:<width$}  {:>6}  {:>9}",
            row.jobs,
            row.credits.to_string()
        ));
    }
    out.line(format!(
        "{:<width$}  {jobs:>6}  {:>9}",
        "TOTAL",
        credits.to_string()
    ));
}

/// The group a row sums: a provider, `provider/model` (`provider (model unknown)` when
/// no model was recorded) or a day.
fn group_name(by: SpendGroup, row: &SpendRow) -> String {
    let provider = row
        .provider
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    match by {
        SpendGroup::Provider => provider,
        SpendGroup::Model => match &row.model {
            Some(model) => format!("{provider}/{model}"),
            None => format!("{provider} (model unknown)"),
        },
        SpendGroup::Day => row.day.clone().unwrap_or_default(),
        SpendGroup::ProviderDay => {
            format!("{} {provider}", row.day.as_deref().unwrap_or_default())
        }
    }
}

//! `imagegen keys create|list|revoke`: the keys clients present to the gateway
//! (`imagegen serve`), kept in the ledger as hashes. A key is printed once, when it is
//! created, and never again.

use imagegen::ledger::api_keys::{ApiKey, ApiKeyRecord, ExposeSecret, KeyPeriod, NewApiKey};
use imagegen::ledger::{Ledger, LedgerError};
use serde_json::json;

use super::{fail, open_ledger, print_error};
use crate::args::{KeysCommand, KeysCreateArgs, KeysRevokeArgs};
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(command: KeysCommand, db: Option<&str>, quiet: bool) -> u8 {
    match command {
        KeysCommand::Create(args) => create(args, db, quiet).await,
        KeysCommand::List(args) => list(args.json, db, quiet).await,
        KeysCommand::Revoke(args) => revoke(args, db, quiet).await,
    }
}

/// Opens the ledger, or prints why not.
async fn ledger(out: &Output, db: Option<&str>) -> Result<std::sync::Arc<dyn Ledger>, u8> {
    open_ledger(db).await.map_err(|error| fail(out, &error))
}

/// Prints a ledger error; one the user's input caused (a name taken or not allowed, a
/// prefix shared by several keys) exits 2, like any input rejected.
fn ledger_fail(out: &Output, error: LedgerError) -> u8 {
    let invalid = matches!(
        error,
        LedgerError::DuplicateApiKeyName { .. }
            | LedgerError::InvalidApiKeyName { .. }
            | LedgerError::AmbiguousApiKey { .. }
    );
    let error = imagegen::Error::from(error);
    if invalid && !out.json() {
        print_error(out, &error);
        exit::INVALID_INPUT
    } else {
        fail(out, &error)
    }
}

async fn create(args: KeysCreateArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(false, quiet);
    let key = match ApiKey::generate() {
        Ok(key) => key,
        Err(error) => return ledger_fail(&out, error),
    };
    let period = args.period.unwrap_or(if args.budget.is_some() {
        KeyPeriod::Month
    } else {
        KeyPeriod::Total
    });
    let mut new = NewApiKey::new(args.name, &key).with_period(period);
    if let Some(limit) = args.budget {
        new = new.with_limit(limit);
    }
    let ledger = match ledger(&out, db).await {
        Ok(ledger) => ledger,
        Err(code) => return code,
    };
    let created = ledger.create_api_key(&new).await;
    ledger.close().await;
    let record = match created {
        Ok(record) => record,
        Err(error) => return ledger_fail(&out, error),
    };
    // The key alone on stdout, for `KEY=$(imagegen keys create …)`; it exists nowhere else.
    out.line(key.secret().expose_secret());
    out.status(
        "Created",
        format!(
            "gateway key `{}` ({}, {}): store it now, it will not be shown again",
            record.name,
            record.prefix,
            budget_text(&record)
        ),
    );
    exit::OK
}

async fn list(json: bool, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(json, quiet);
    let ledger = match ledger(&out, db).await {
        Ok(ledger) => ledger,
        Err(code) => return code,
    };
    let read = ledger.list_api_keys().await;
    ledger.close().await;
    let keys = match read {
        Ok(keys) => keys,
        Err(error) => return ledger_fail(&out, error),
    };
    if out.json() {
        // The library's own records, as they serialize: never a key or its hash.
        out.emit(&json!({ "keys": keys }));
    } else if keys.is_empty() {
        out.line(format!(
            "no gateway keys yet (ledger: {}); create one with `imagegen keys create --name NAME`",
            ledger.url()
        ));
    } else {
        print_table(&out, &keys);
    }
    exit::OK
}

async fn revoke(args: KeysRevokeArgs, db: Option<&str>, quiet: bool) -> u8 {
    let out = Output::new(false, quiet);
    let ledger = match ledger(&out, db).await {
        Ok(ledger) => ledger,
        Err(code) => return code,
    };
    let revoked = ledger.revoke_api_key(&args.key).await;
    ledger.close().await;
    // A whole key given on the command line is named by its prefix, never echoed.
    let shown = match ApiKey::parse(&args.key) {
        Some(key) => format!("{}…", key.prefix()),
        None => args.key.clone(),
    };
    match revoked {
        Ok(true) => {
            out.status(
                "Revoked",
                format!("gateway key `{shown}`: it is refused from now on"),
            );
            exit::OK
        }
        Ok(false) => {
            out.error(format!(
                "no live gateway key is named or prefixed `{shown}` (see `imagegen keys list`)"
            ));
            exit::INVALID_INPUT
        }
        Err(error) => ledger_fail(&out, error),
    }
}

/// "50 credits per month", "unlimited, counted in total".
fn budget_text(key: &ApiKeyRecord) -> String {
    match (key.limit, key.period) {
        (Some(limit), KeyPeriod::Total) => format!("{} in total", limit.with_unit()),
        (Some(limit), period) => format!("{} per {period}", limit.with_unit()),
        (None, KeyPeriod::Total) => "unlimited, counted in total".to_owned(),
        (None, period) => format!("unlimited, counted per {period}"),
    }
}

/// One row per key, oldest first.
fn print_table(out: &Output, keys: &[ApiKeyRecord]) {
    let width = keys
        .iter()
        .map(|k| k.name.chars().count())
        .chain(["NAME".len()])
        .max()
        .unwrap_or_default();
    out.line(format!(
        "{:<width$}  {:<10}  {:>9}  {:<6}  {:>9}  {:<16}  {}",
        "NAME", "PREFIX", "BUDGET", "PERIOD", "SPENT", "CREATED (UTC)", "REVOKED (UTC)"
    ));
    for key in keys {
        let budget = key
            .limit
            .map_or_else(|| "-".to_owned(), |limit| limit.to_string());
        let revoked = key
            .revoked_at_ms
            .map_or_else(|| "-".to_owned(), imagegen::ledger::utc_minute);
        out.line(format!(
            "{:<width$}  {:<10}  {:>9}  {:<6}  {:>9}  {:<16}  {}",
            key.name,
            key.prefix,
            budget,
            key.period.as_str(),
            key.spent.to_string(),
            imagegen::ledger::utc_minute(key.created_at_ms),
            revoked
        ));
    }
}

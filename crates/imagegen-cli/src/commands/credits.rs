//! `imagegen credits`: the balance where a provider reports one.

use serde_json::json;

use super::{connect, error_json, fail};
use crate::args::JsonArg;
use crate::exit;
use crate::output::Output;

pub(crate) async fn run(args: JsonArg, quiet: bool) -> u8 {
    let out = Output::new(args.json, quiet);
    let client = match connect(&out, false).await {
        Ok(client) => client,
        Err(error) => return fail(&out, &error),
    };
    let balances = client.credits().await;
    let mut code = exit::OK;
    let mut rows = Vec::new();
    for balance in &balances {
        match balance {
            Ok(b) => {
                let credits = b
                    .credits
                    .map_or_else(|| "unknown".to_owned(), |c| format!("{c} credits"));
                let note = b
                    .note
                    .as_deref()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default();
                out.line(format!("{:<8} {credits}{note}", b.provider.as_str()));
                rows.push(json!({"provider": b.provider, "credits": b.credits, "note": b.note}));
            }
            Err(error) => {
                out.error(error.to_string());
                code = code.max(exit::code(error.kind()));
                rows.push(json!({"error": error_json(error)}));
            }
        }
    }
    out.emit(&json!({ "balances": rows }));
    code
}

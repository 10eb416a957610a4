//! `imagegen credits`: each provider's balance, or where to look when it reports none.

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
    let mut kinds = Vec::new();
    let mut rows = Vec::new();
    for balance in &balances {
        match balance {
            Ok(b) => {
                let shown = match (&b.credits, &b.note) {
                    (Some(credits), _) => credits.with_unit().to_string(),
                    (None, Some(note)) => note.clone(),
                    (None, None) => "not reported".to_owned(),
                };
                out.line(format!("{:<8} {shown}", b.provider.as_str()));
                match serde_json::to_value(b) {
                    Ok(value) => rows.push(value),
                    Err(e) => {
                        out.error(format!("the balance could not be written as JSON: {e}"));
                        kinds.push(imagegen::ErrorKind::Other);
                    }
                }
            }
            Err(error) => {
                out.error(error.to_string());
                kinds.push(error.kind());
                rows.push(json!({"error": error_json(error)}));
            }
        }
    }
    out.emit(&json!({ "balances": rows }));
    imagegen::ErrorKind::most_serious(&kinds).map_or(exit::OK, exit::code)
}

//! A batch of prompts under one budget, journaled.
//!
//! ```text
//! cargo run -p imagegen --example batch_with_budget -- 4
//! ```
//!
//! Every prompt reserves its worst-case cost before anything is sent, so the batch never
//! spends more than the budget; prompts it cannot cover are skipped and named. Each paid
//! job is journaled before it is waited on, so `imagegen resume` can finish it after a
//! crash.

#![allow(clippy::print_stdout)] // an example prints its results

use std::sync::Arc;

use imagegen::batch::{BatchOptions, parse_batch};
use imagegen::{Client, Credits, Journal};

const PROMPTS: &str = "\
a lighthouse at dusk, watercolor
a red fox in the snow, photo
{\"prompt\": \"a heron at sunrise\", \"count\": 2, \"aspect\": \"16:9\"}
a koi pond from above, ink drawing
a mountain village at night, oil painting
";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let budget: Credits = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "4".to_owned())
        .parse()?;
    let client = match Client::from_env() {
        Err(imagegen::Error::NoProvider) => {
            eprintln!("no API key set: using the built-in simulator");
            Client::simulated().await?
        }
        other => other?,
    }
    .with_policy(|policy| policy.run_budget(budget))?;

    let items = parse_batch(PROMPTS)?;
    let journal = Arc::new(Journal::open("imagegen-out/imagegen-journal.jsonl")?);
    let options = BatchOptions::new("imagegen-out")
        .concurrency(3)
        .journal(journal);
    let report = client.batch(items, &options).await;

    for run in report.ran() {
        for saved in &run.saved {
            println!("saved   {}", saved.path.display());
        }
        if let Some(error) = &run.error {
            println!("failed  {:?}: {error}", run.prompt);
        }
    }
    for skipped in report.skipped() {
        println!(
            "skipped {:?} (line {}): {}",
            skipped.prompt, skipped.line, skipped.reason
        );
    }
    let status = client.budget();
    println!(
        "{} image(s), {} of {} credits spent",
        report.images_saved(),
        status.spent,
        budget
    );
    Ok(())
}

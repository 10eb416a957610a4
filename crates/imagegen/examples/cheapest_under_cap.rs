//! The cheapest of both providers, under a price cap.
//!
//! ```text
//! cargo run -p imagegen --example cheapest_under_cap -- 6
//! ```
//!
//! Prints every candidate with its price and why it ranks where it does (or why it is
//! excluded), then generates on the best one. Set `KOALA_CREDIT_USD` to compare the
//! providers in dollars instead of credits.

#![allow(clippy::print_stdout)] // an example prints its results

use imagegen::{Client, Credits, GenerationRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cap: Credits = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "6".to_owned())
        .parse()?;
    let client = match Client::from_env() {
        Err(imagegen::Error::NoProvider) => {
            eprintln!("no API key set: using the built-in simulator");
            Client::simulated().await?
        }
        other => other?,
    }
    .with_policy(|policy| policy.max_credits_per_image(cap))?;

    let request = GenerationRequest::builder("a red fox in the snow, photo")
        .shape("16:9".parse().map_err(|e| format!("{e}"))?)
        .build()?;

    // Nothing is spent here.
    let estimate = client.estimate(&request).await?;
    println!("{estimate}");
    let Some(best) = estimate.best() else {
        return Err(format!("no model can make this for {cap} credits per image or less").into());
    };
    println!(
        "best: {} at {} credits per image\n",
        best.label(),
        best.credits_per_image.unwrap_or_default()
    );

    let generation = client.generate(&request).await?;
    for saved in generation.save("imagegen-out").await? {
        println!(
            "{} ({}x{})",
            saved.path.display(),
            saved.width.unwrap_or(0),
            saved.height.unwrap_or(0)
        );
    }
    println!(
        "{} credits charged: {}",
        generation.credits_charged,
        generation.route_summary()
    );
    Ok(())
}

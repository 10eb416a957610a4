//! One prompt in, image files out.
//!
//! ```text
//! cargo run -p imagegen --example one_prompt -- "a lighthouse at dusk, watercolor"
//! ```
//!
//! Uses your keys (`KOLBO_API_KEY`, `KOALA_API_KEY`) when set, else a simulator of both APIs
//! started in this process.

#![allow(clippy::print_stdout)] // an example prints its results

use imagegen::{Client, GenerateOptions, GenerationRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "a lighthouse at dusk, watercolor".to_owned());
    let client = match Client::from_env() {
        Err(imagegen::Error::NoProvider) => {
            eprintln!("no API key set: using the built-in simulator");
            Client::simulated().await?
        }
        other => other?,
    };

    let request = GenerationRequest::builder(prompt).build()?;
    // Saves every delivered image (even when a later step fails) with a JSON sidecar.
    let report = client
        .generate_to_dir(&request, "imagegen-out", &GenerateOptions::default())
        .await;
    for saved in &report.saved {
        println!(
            "{}  {} {}  {} credits",
            saved.path.display(),
            saved.image.provider,
            saved.image.model.as_ref().map_or("?", |m| m.as_str()),
            saved.image.credits.unwrap_or_default()
        );
    }
    println!("route: {}", report.route_summary());
    match report.error {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

//! Starting, configuration errors, shutdown and drop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imagegen_sim::{KoalaAccount, KoalaPlan, SimConfig, SimError};

#[tokio::test]
async fn base_urls_keys_and_distinct_origins() {
    let (sim, _clock) = common::sim(|c| c).await;
    assert_eq!(
        sim.kolbo_base_url(),
        format!("http://{}/api", sim.api_addr())
    );
    assert_eq!(
        sim.koala_base_url(),
        format!("http://{}/api", sim.api_addr())
    );
    assert_ne!(sim.api_addr().port(), sim.cdn_addr().port());
    assert!(sim.api_addr().ip().is_loopback());
    let kolbo = sim.kolbo_api_key();
    assert!(kolbo.starts_with("kolbo_live_") && kolbo.len() == 51);
    assert!(kolbo[11..].bytes().all(|b| b.is_ascii_hexdigit()));
    let koala = sim.koala_api_key();
    assert_eq!(koala.len(), 36);
    assert_eq!(koala.matches('-').count(), 4);
    // Another seed, other keys.
    let (other, _c) = common::sim(|c| c.with_seed(42)).await;
    assert_ne!(other.kolbo_api_key(), kolbo);
}

#[tokio::test]
async fn a_taken_port_and_a_bad_configuration_are_typed_errors() {
    let (sim, _clock) = common::sim(|c| c).await;
    let taken = imagegen_sim::start(SimConfig::default().with_port(sim.api_addr().port())).await;
    assert!(
        matches!(
            taken,
            Err(SimError::Bind {
                listener: "API",
                ..
            })
        ),
        "{taken:?}"
    );

    let mut shared_key = SimConfig::default();
    let key = shared_key.kolbo.accounts[0].key.clone();
    shared_key.koala.accounts = vec![KoalaAccount::new(key, KoalaPlan::Basic)];
    let err = imagegen_sim::start(shared_key).await.unwrap_err();
    assert!(err.to_string().contains("share an API key"), "{err}");

    let mut none = SimConfig::default();
    none.kolbo.accounts.clear();
    assert!(matches!(
        imagegen_sim::start(none).await,
        Err(SimError::Config(_))
    ));
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_listeners() {
    let (sim, _clock) = common::sim(|c| c).await;
    let url = format!("{}/v1/models", sim.kolbo_base_url());
    assert!(reqwest::get(&url).await.is_ok());
    sim.shutdown().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());

    let (dropped, _clock) = common::sim(|c| c).await;
    let url = format!("{}/v1/models", dropped.kolbo_base_url());
    drop(dropped);
    // The aborted listener task is dropped (closing its socket) on the runtime's next turns.
    let mut refused = false;
    for _ in 0..100 {
        tokio::task::yield_now().await;
        if reqwest::Client::new().get(&url).send().await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the listener still answers after drop");
}

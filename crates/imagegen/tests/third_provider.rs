//! A provider the facade has never heard of plugs in through the core trait alone: it is
//! priced, ranked, routed to, planned, waited on, downloaded from and asked for its
//! balance with no change to the facade.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use imagegen::core::{
    Balance, CallPlan, Capabilities, Credits, Error, ImageRef, JobHandle, JobOutput, ModelEntry,
    Price, ProgressSink, Provider, ProviderId, ProviderProfile, ShapeSupport, StyleSupport,
};
use imagegen::{Client, GenerationRequest};

/// A test double of a third image service.
struct Atelier {
    image_url: url::Url,
    sent: Mutex<Vec<CallPlan>>,
}

#[async_trait]
impl Provider for Atelier {
    fn id(&self) -> ProviderId {
        ProviderId::new("atelier")
    }

    async fn catalog(&self) -> Result<Vec<ModelEntry>, Error> {
        Ok(vec![
            ModelEntry::new("atelier", "sketch", Price::flat(Credits::whole(2))).with_capabilities(
                Capabilities {
                    shapes: ShapeSupport::AspectRatios {
                        ratios: vec!["1:1".parse().unwrap(), "16:9".parse().unwrap()],
                        snap: true,
                    },
                    max_images_per_request: 2,
                    styles: StyleSupport::Any,
                    ..Capabilities::default()
                },
            ),
        ])
    }

    fn profile(&self) -> ProviderProfile {
        ProviderProfile::default().with_credit_worth("$0.01".parse().unwrap())
    }

    async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error> {
        self.sent.lock().unwrap().push(call.clone());
        Ok(JobHandle::new("atelier", "a-1", call.images, 0).with_credits_charged(call.credits))
    }

    async fn wait(&self, job: &JobHandle, _: &dyn ProgressSink) -> Result<JobOutput, Error> {
        let images = (0..job.images_requested)
            .map(|_| ImageRef::new(self.image_url.clone(), Some("a sketch".into())))
            .collect();
        Ok(JobOutput::new(job.clone(), images))
    }

    async fn balance(&self) -> Result<Balance, Error> {
        Ok(Balance::reported("atelier", Some(Credits::whole(42))))
    }
}

fn png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 3, 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[200u8; 18]).unwrap();
    }
    out
}

#[tokio::test]
async fn a_third_provider_plugs_in_through_the_trait_alone() {
    let mut server = mockito::Server::new_async().await;
    let image = server
        .mock("GET", "/sketch.png")
        .with_header("content-type", "image/png")
        .with_body(png())
        .expect(1)
        .create_async()
        .await;
    let atelier = Arc::new(Atelier {
        image_url: format!("{}/sketch.png", server.url()).parse().unwrap(),
        sent: Mutex::new(Vec::new()),
    });
    let client = Client::builder().provider(atelier.clone()).build().unwrap();
    assert_eq!(client.providers(), vec![ProviderId::new("atelier")]);

    let request = GenerationRequest::builder("a heron")
        .shape("16:9".parse().unwrap())
        .style("charcoal")
        .build()
        .unwrap();
    let estimate = client.estimate(&request).await.unwrap();
    let best = estimate.best().unwrap().clone();
    assert_eq!(best.label(), "atelier/sketch");
    assert_eq!(best.total_usd.unwrap().to_string(), "0.02");

    let generation = client.generate(&request).await.unwrap();
    assert_eq!(
        *atelier.sent.lock().unwrap(),
        best.calls,
        "the plan shown is the plan sent"
    );
    assert_eq!(
        atelier.sent.lock().unwrap()[0].style_field(),
        Some("charcoal")
    );
    assert_eq!(generation.credits_charged, Credits::whole(2));

    let dir = tempfile::tempdir().unwrap();
    let saved = generation.save(dir.path()).await.unwrap();
    assert_eq!((saved[0].width, saved[0].height), (Some(3), Some(2)));
    image.assert_async().await;

    let balances = client.credits().await;
    assert_eq!(
        balances[0].as_ref().unwrap().credits,
        Some(Credits::whole(42))
    );
}

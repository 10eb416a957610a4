//! [`StoreLog`]: the journal of one generation request. It records every paid job in the
//! ledger through the facade's [`LedgerLog`] (committed before the job is waited on),
//! and, the moment a job's images are saved, moves them into the [`ImageStore`] before
//! the ledger records them: so the ledger names each image by its content-addressed
//! path, the one the gateway serves.
//!
//! A generation the gateway runs is saved straight into the store, each image once under
//! its hash and without a sidecar (the ledger holds the request, the plan and the
//! images): it is taken as it is. A job taken over from another gateway is saved as
//! `resume` saves, named with a JSON sidecar, in a folder of its own: its images are
//! moved into the store and their sidecars removed.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use imagegen::JobHandle;
use imagegen::SavedImage;
use imagegen::job_log::{AcceptedRecord, JobLog, OpenJobs, SubmittingRecord};
use imagegen::journal::Outcome;
use imagegen::ledger_log::LedgerLog;

use crate::store::{ImageStore, StoredImage};

/// The journal of one request; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct StoreLog {
    ledger: LedgerLog,
    store: ImageStore,
    /// Each adopted image, by the path the facade saved it at.
    adopted: Mutex<HashMap<PathBuf, StoredImage>>,
}

impl StoreLog {
    /// A journal recording in `ledger`, moving images into `store`.
    pub(crate) fn new(ledger: LedgerLog, store: ImageStore) -> Arc<Self> {
        Arc::new(Self {
            ledger,
            store,
            adopted: Mutex::new(HashMap::new()),
        })
    }

    /// The stored image of each of `saved` (in order): adopted already when its job was
    /// recorded, otherwise adopted now (an image of a job that did not finish here, so
    /// the ledger keeps that job open for `resume`). An image that cannot be adopted is
    /// `Err`.
    pub(crate) async fn stored(&self, saved: &[SavedImage]) -> Vec<io::Result<StoredImage>> {
        let mut stored = Vec::with_capacity(saved.len());
        for image in saved {
            let known = self.lock().get(&image.path).cloned();
            stored.push(match known {
                Some(found) => Ok(found),
                None => self.adopt(image).await,
            });
        }
        stored
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, StoredImage>> {
        self.adopted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves one saved image into the store and drops its sidecar; an image saved into
    /// the store by its hash already ([`ImageLayout::ContentAddressed`]) is taken as it is.
    ///
    /// [`ImageLayout::ContentAddressed`]: imagegen::layout::ImageLayout::ContentAddressed
    async fn adopt(&self, saved: &SavedImage) -> io::Result<StoredImage> {
        if let Some(stored) = self.store.kept(saved) {
            self.lock().insert(saved.path.clone(), stored.clone());
            return Ok(stored);
        }
        let store = self.store.clone();
        let path = saved.path.clone();
        let sidecar = saved.sidecar.clone();
        let mime = saved.mime;
        let stored = tokio::task::spawn_blocking(move || {
            let stored = store.adopt(&path, Some(mime))?;
            if let Some(sidecar) = sidecar
                && let Err(e) = std::fs::remove_file(&sidecar)
            {
                tracing::debug!(path = %sidecar.display(), error = %e, "a sidecar was left");
            }
            Ok::<_, io::Error>(stored)
        })
        .await
        .map_err(io::Error::other)??;
        self.lock().insert(saved.path.clone(), stored.clone());
        Ok(stored)
    }
}

#[async_trait]
impl JobLog for StoreLog {
    fn location(&self) -> String {
        self.ledger.location()
    }

    async fn record_submitting(&self, submitting: &SubmittingRecord<'_>) -> io::Result<()> {
        self.ledger.record_submitting(submitting).await
    }

    async fn record_accepted(&self, accepted: &AcceptedRecord<'_>) -> io::Result<()> {
        self.ledger.record_accepted(accepted).await
    }

    async fn record_finished(
        &self,
        job: &JobHandle,
        outcome: &Outcome,
        saved: &[SavedImage],
    ) -> io::Result<()> {
        if !matches!(outcome, Outcome::Saved { .. }) {
            return self.ledger.record_finished(job, outcome, saved).await;
        }
        let mut moved = Vec::with_capacity(saved.len());
        let mut hashes = Vec::with_capacity(saved.len());
        for image in saved {
            let stored = self.adopt(image).await?;
            let mut image = image.clone();
            image.path = stored.path;
            hashes.push(stored.sha256);
            moved.push(image);
        }
        let outcome = Outcome::Saved {
            paths: moved.iter().map(|s| s.path.clone()).collect(),
        };
        // The store hashed each image to name it: the ledger takes that hash as it is.
        self.ledger
            .record_finished_hashed(job, &outcome, &moved, &hashes)
            .await
    }

    async fn record_skipped(&self, prompt: &str, reason: &str) -> io::Result<()> {
        self.ledger.record_skipped(prompt, reason).await
    }

    async fn open_jobs(&self) -> io::Result<OpenJobs> {
        self.ledger.open_jobs().await
    }
}

//! The jobs this server is waiting on right now, each with a signal that turns true
//! once its run has recorded it: a `get_generation` for one of them waits for that run
//! instead of waiting on the job a second time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use imagegen::JobHandle;
use tokio::sync::watch;

/// The jobs being waited on, by provider and job id.
#[derive(Debug, Default)]
pub(crate) struct Running {
    jobs: Mutex<HashMap<(String, String), watch::Receiver<bool>>>,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), watch::Receiver<bool>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `job` is being waited on until `done` turns true.
    pub(crate) fn insert(&self, job: &JobHandle, done: watch::Receiver<bool>) {
        self.lock()
            .insert((job.provider.to_string(), job.job_id.clone()), done);
    }

    /// Registers `provider`/`job_id` with `done` unless a wait is registered already:
    /// `true` when this call registered it (and must wait on the job itself).
    pub(crate) fn claim(&self, provider: &str, job_id: &str, done: watch::Receiver<bool>) -> bool {
        let mut jobs = self.lock();
        let key = (provider.to_owned(), job_id.to_owned());
        if jobs.get(&key).is_some_and(|rx| !*rx.borrow()) {
            return false;
        }
        jobs.insert(key, done);
        true
    }

    /// The signal of the wait on `provider`/`job_id`, when one is registered.
    pub(crate) fn get(&self, provider: &str, job_id: &str) -> Option<watch::Receiver<bool>> {
        self.lock()
            .get(&(provider.to_owned(), job_id.to_owned()))
            .cloned()
    }

    /// Forgets the waits on `jobs` (their runs ended).
    pub(crate) fn remove<'a>(&self, jobs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut map = self.lock();
        for (provider, job_id) in jobs {
            map.remove(&(provider.to_owned(), job_id.to_owned()));
        }
    }
}

/// Waits at most `limit` for `done` to turn true (or its run to end): whether it did.
pub(crate) async fn wait_done(mut done: watch::Receiver<bool>, limit: Duration) -> bool {
    // A run that ended without saying so (its task stopped) is over too.
    tokio::time::timeout(limit, done.wait_for(|d| *d))
        .await
        .is_ok()
}

//! `generate_image`'s progress, as MCP `notifications/progress`, when the client's
//! `tools/call` carries a `progressToken` in `_meta` (none is sent without one).
//!
//! Fed by what the run already reports: the journal's records (a call about to be sent,
//! a job accepted, a job's images saved) and the facade's [`ProgressEvent`]s while a
//! job is polled. Each becomes a point on a scale of [`TOTAL`] with a short message:
//!
//! | progress | message |
//! |---|---|
//! | 2 | `submitting to kolbo/z-image/turbo` |
//! | 5 | `submitted to kolbo/z-image/turbo` (the job is paid from here) |
//! | 8 | `queued at kolbo` |
//! | 10 – 80 | `generating 47%` (the mean of the jobs' percents, when the provider says) |
//! | 82 | `downloading` (every job has finished generating) |
//! | 85 – 99 | `saved 1 of 2` |
//! | 100 | `done` or `failed` (the call is about to answer) |
//!
//! Progress only rises: a point at or below the last one sent is dropped (a fallback to
//! another model after a failed job starts lower, so it is silent until it passes the
//! last point). The notifications go out in order on a task of their own, and the call
//! waits for them to be written before it answers, so none follows the answer. A call
//! that answers `pending` (past the wait limit) stops its notifications there without
//! reaching the total: the job runs on, unobserved by that token. A call dropped before
//! it answers (cancelled) sends nothing more either.
//!
//! Which calls carry a token is the client's choice: the Python SDK sends one when
//! `call_tool` is given a `progress_callback`; the Rust SDK's client (`rmcp`) on every
//! request.
//!
//! Over stdio every notification is delivered. Over the gateway's stateless `/mcp`, the
//! SDK answers a call as JSON only when nothing precedes the answer: a call with a
//! token that emits a notification is answered as a `text/event-stream` instead (the
//! notifications, then the result, and the stream ends), which every Streamable HTTP
//! client accepts. A notification that cannot be written (the client went away) is
//! logged and dropped; it never fails the call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use imagegen::{CallPlan, JobHandle, JobState, ProgressEvent, ProgressSink};
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The `total` every notification carries: progress is a percent of the call.
pub(crate) const TOTAL: f64 = 100.0;

const SUBMITTING: f64 = 2.0;
const SUBMITTED: f64 = 5.0;
const QUEUED: f64 = 8.0;
const GENERATING_FROM: f64 = 10.0;
const GENERATING_SPAN: f64 = 70.0;
const DOWNLOADING: f64 = 82.0;
const SAVING_FROM: f64 = 85.0;
const SAVING_SPAN: f64 = 14.0;

/// How long a call waits at most for its notifications to be written before it answers.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Where a call's progress would go: its client and token, when it gave one.
#[derive(Debug)]
pub(crate) struct Requested {
    peer: Peer<RoleServer>,
    token: ProgressToken,
}

impl Requested {
    /// The progress token of the call in `context`, when it carries one.
    pub(crate) fn of(context: &RequestContext<RoleServer>) -> Option<Self> {
        context.meta.get_progress_token().map(|token| Self {
            peer: context.peer.clone(),
            token,
        })
    }
}

/// One call's progress reporter: a no-op when the call gave no token. Clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// How many images the call asked for.
    images: u32,
    state: Mutex<State>,
    /// The task writing the notifications, until the call ends.
    writer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct State {
    token: ProgressToken,
    /// The notifications to write; `None` once the call has answered.
    queue: Option<mpsc::UnboundedSender<ProgressNotificationParam>>,
    /// The last progress sent.
    sent: f64,
    /// How far each job being generated is, from 0 to 1, by provider and job id.
    jobs: HashMap<(String, String), f64>,
    /// Images saved so far.
    saved: u32,
}

impl Progress {
    /// The reporter of a call asking for `images` images: it writes to `requested`'s
    /// client (on a task of its own), or does nothing without a token.
    pub(crate) fn start(requested: Option<Requested>, images: u32) -> Self {
        let Some(Requested { peer, token }) = requested else {
            return Self::default();
        };
        let (queue, mut notifications) = mpsc::unbounded_channel::<ProgressNotificationParam>();
        let writer = tokio::spawn(async move {
            while let Some(notification) = notifications.recv().await {
                if let Err(e) = peer.notify_progress(notification).await {
                    // The client is gone: the rest would fail the same way.
                    tracing::debug!(error = %e, "a progress notification was not delivered");
                    break;
                }
            }
        });
        Self {
            inner: Some(Arc::new(Inner {
                images: images.max(1),
                state: Mutex::new(State {
                    token,
                    queue: Some(queue),
                    sent: 0.0,
                    jobs: HashMap::new(),
                    saved: 0,
                }),
                writer: Mutex::new(Some(writer)),
            })),
        }
    }

    /// Whether the call gave a token (else nothing is ever sent).
    pub(crate) fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    fn state(&self) -> Option<(MutexGuard<'_, State>, u32)> {
        let inner = self.inner.as_ref()?;
        let state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        Some((state, inner.images))
    }

    /// `plan` is about to be sent.
    pub(crate) fn submitting(&self, plan: &CallPlan) {
        if let Some((mut state, _)) = self.state() {
            state.emit(SUBMITTING, format!("submitting to {}", plan.label()));
        }
    }

    /// `job` was accepted (and is paid for), sent as `plan`.
    pub(crate) fn accepted(&self, job: &JobHandle, plan: Option<&CallPlan>) {
        if let Some((mut state, _)) = self.state() {
            let label = plan.map_or_else(
                || match &job.model {
                    Some(model) => format!("{}/{model}", job.provider),
                    None => job.provider.to_string(),
                },
                CallPlan::label,
            );
            state.jobs.entry(key(job)).or_insert(0.0);
            state.emit(SUBMITTED, format!("submitted to {label}"));
        }
    }

    /// `saved` more images are saved.
    pub(crate) fn saved(&self, saved: usize) {
        if saved == 0 {
            return;
        }
        if let Some((mut state, images)) = self.state() {
            let saved = u32::try_from(saved).unwrap_or(u32::MAX);
            state.saved = state.saved.saturating_add(saved);
            let done = f64::from(state.saved.min(images)) / f64::from(images);
            let message = format!("saved {} of {}", state.saved, images.max(state.saved));
            state.emit(SAVING_FROM + SAVING_SPAN * done, message);
        }
    }

    /// A guard that stops the notifications when dropped: a call dropped before it
    /// answers (cancelled by its client) sends none after that.
    pub(crate) fn stop_on_drop(&self) -> StopOnDrop {
        StopOnDrop(self.clone())
    }

    /// No notification is queued from now on; the writer ends with what is queued.
    fn stop(&self) {
        if let Some((mut state, _)) = self.state() {
            state.queue = None;
        }
    }

    /// The call is about to answer: `end` (`done`, `failed`) at the total when it ended,
    /// nothing more when it answers `pending`. Waits (a few seconds at most) until
    /// every notification is written; none is sent after this.
    pub(crate) async fn finish(&self, end: Option<&str>) {
        let Some(inner) = &self.inner else {
            return;
        };
        {
            let mut state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(end) = end {
                state.emit(TOTAL, end.to_owned());
            }
            // The writer ends once it has written what is queued.
            state.queue = None;
        }
        let writer = inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer
            && tokio::time::timeout(FLUSH_LIMIT, writer).await.is_err()
        {
            tracing::debug!(
                "progress notifications were still being written when the call answered"
            );
        }
    }
}

/// Stops a call's notifications when dropped; see [`Progress::stop_on_drop`].
#[derive(Debug)]
pub(crate) struct StopOnDrop(Progress);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl ProgressSink for Progress {
    fn report(&self, event: ProgressEvent) {
        let Some((mut state, _)) = self.state() else {
            return;
        };
        let job = (event.provider.to_string(), event.job_id.clone());
        match event.state {
            JobState::Queued => {
                state.jobs.entry(job).or_insert(0.0);
                state.emit(QUEUED, format!("queued at {}", event.provider));
            }
            JobState::Completed => {
                state.jobs.insert(job, 1.0);
                if state.jobs.values().all(|done| *done >= 1.0) {
                    state.emit(DOWNLOADING, "downloading".to_owned());
                } else {
                    state.generating();
                }
            }
            // A fallback may follow: its job starts over.
            JobState::Failed | JobState::Cancelled => {
                state.jobs.remove(&job);
            }
            // Running, or a state this version does not know: still generating.
            _ => {
                let done = event.percent.map_or(0.0, |p| f64::from(p.min(100)) / 100.0);
                let entry = state.jobs.entry(job).or_insert(0.0);
                *entry = entry.max(done);
                state.generating();
            }
        }
    }
}

impl State {
    /// Queues `progress` with `message` when it is above the last sent and the call
    /// has not answered.
    fn emit(&mut self, progress: f64, message: String) {
        // Tenths: `21.2`, not `21.200000000000003`.
        let progress = (progress * 10.0).round() / 10.0;
        if progress <= self.sent {
            return;
        }
        let Some(queue) = &self.queue else {
            return;
        };
        let notification = ProgressNotificationParam::new(self.token.clone(), progress)
            .with_total(TOTAL)
            .with_message(message);
        if queue.send(notification).is_ok() {
            self.sent = progress;
        }
    }

    /// `generating N%`, N the mean of the jobs being generated.
    fn generating(&mut self) {
        if self.jobs.is_empty() {
            return;
        }
        let count = u32::try_from(self.jobs.len()).unwrap_or(u32::MAX);
        let done = self.jobs.values().sum::<f64>() / f64::from(count);
        let message = if done > 0.0 {
            format!("generating {:.0}%", done * 100.0)
        } else {
            "generating".to_owned()
        };
        self.emit(GENERATING_FROM + GENERATING_SPAN * done, message);
    }
}

fn key(job: &JobHandle) -> (String, String) {
    (job.provider.to_string(), job.job_id.clone())
}

//! Progress as a stream: [`channel`] gives a [`ProgressSink`] that forwards every
//! [`ProgressEvent`] into a Tokio channel, so a UI can read them on its own task;
//! [`batch_channel`] does the same for a batch's [`BatchEvent`]s.
//!
//! ```
//! use imagegen::progress;
//! use imagegen::{JobState, ProgressEvent, ProgressSink};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (sink, mut events) = progress::channel();
//! sink.report(ProgressEvent::new("kolbo", "gen_1", JobState::Running, Some(40), Default::default()));
//! drop(sink);
//! while let Some(event) = events.recv().await {
//!     println!("{} {}: {} {:?}%", event.provider, event.job_id, event.state, event.percent);
//! }
//! # }
//! ```

use imagegen_core::{ProgressEvent, ProgressSink};
use tokio::sync::mpsc;

use crate::batch::{BatchEvent, BatchSink};

/// A [`ProgressSink`] that sends every event into a channel; see [`channel`].
#[derive(Debug, Clone)]
pub struct ChannelSink {
    sender: mpsc::UnboundedSender<ProgressEvent>,
}

impl ProgressSink for ChannelSink {
    fn report(&self, event: ProgressEvent) {
        // A receiver that went away no longer wants progress; that is not an error.
        let _ = self.sender.send(event);
    }
}

/// A sink and the stream of events sent into it. The stream ends when every clone of
/// the sink is dropped.
pub fn channel() -> (ChannelSink, mpsc::UnboundedReceiver<ProgressEvent>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (ChannelSink { sender }, receiver)
}

/// A [`BatchSink`] that sends every [`BatchEvent`] into a channel; see [`batch_channel`].
#[derive(Debug, Clone)]
pub struct BatchChannelSink {
    sender: mpsc::UnboundedSender<BatchEvent>,
}

impl BatchSink for BatchChannelSink {
    fn event(&self, event: BatchEvent) {
        // A receiver that went away no longer wants events; that is not an error.
        let _ = self.sender.send(event);
    }
}

/// A batch-event sink (for [`BatchOptions::events`](crate::BatchOptions::events)) and the
/// stream of events sent into it: lines started, jobs accepted (paid), rate-limit waits,
/// job progress. The stream ends when every clone of the sink is dropped.
///
/// ```
/// use imagegen::batch::BatchEvent;
/// use imagegen::progress;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (sink, mut events) = progress::batch_channel();
/// let options = imagegen::BatchOptions::new("out").events(std::sync::Arc::new(sink));
/// drop(options);
/// while let Some(event) = events.recv().await {
///     if let BatchEvent::RateLimited { line, provider, wait, .. } = event {
///         println!("line {line}: waiting {wait:?} for {provider}'s rate limit");
///     }
/// }
/// # }
/// ```
pub fn batch_channel() -> (BatchChannelSink, mpsc::UnboundedReceiver<BatchEvent>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (BatchChannelSink { sender }, receiver)
}
